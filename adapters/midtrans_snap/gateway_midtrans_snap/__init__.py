"""Midtrans Snap provider: the hosted Snap payment page.

Configure it as provider ``midtrans_snap`` (see :class:`MidtransConfig` for the settings). The
gateway is :class:`MidtransSnapGateway`; the signature helpers and the status vocabulary can
be used on their own. Test helpers for integrators live in :mod:`gateway_midtrans_snap.testing`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway_midtrans_snap._codes import (
        KNOWN_PAYMENTS,
        TRANSACTION_STATUSES,
        payment_status,
        provider_status,
    )
    from gateway_midtrans_snap._config import API_BASE_URLS, SNAP_BASE_URLS, MidtransConfig
    from gateway_midtrans_snap._gateway import MidtransSnapGateway
    from gateway_midtrans_snap._references import check_reference, make_reference
    from gateway_midtrans_snap._signature import (
        basic_authorization,
        notification_signature,
        return_signature,
        signature_matches,
    )

# Public name -> the private module defining it. Imported on first access, so that loading
# the plugin module (entry-point discovery) does not import the whole provider.
_LAZY: dict[str, str] = {
    "API_BASE_URLS": "gateway_midtrans_snap._config",
    "KNOWN_PAYMENTS": "gateway_midtrans_snap._codes",
    "MidtransConfig": "gateway_midtrans_snap._config",
    "MidtransSnapGateway": "gateway_midtrans_snap._gateway",
    "SNAP_BASE_URLS": "gateway_midtrans_snap._config",
    "TRANSACTION_STATUSES": "gateway_midtrans_snap._codes",
    "basic_authorization": "gateway_midtrans_snap._signature",
    "check_reference": "gateway_midtrans_snap._references",
    "make_reference": "gateway_midtrans_snap._references",
    "notification_signature": "gateway_midtrans_snap._signature",
    "payment_status": "gateway_midtrans_snap._codes",
    "provider_status": "gateway_midtrans_snap._codes",
    "return_signature": "gateway_midtrans_snap._signature",
    "signature_matches": "gateway_midtrans_snap._signature",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


# Plain sorted() order, like gateway_core.__all__ (ruff would group constants first).
__all__ = [  # noqa: RUF022
    "API_BASE_URLS",
    "KNOWN_PAYMENTS",
    "MidtransConfig",
    "MidtransSnapGateway",
    "SNAP_BASE_URLS",
    "TRANSACTION_STATUSES",
    "basic_authorization",
    "check_reference",
    "make_reference",
    "notification_signature",
    "payment_status",
    "provider_status",
    "return_signature",
    "signature_matches",
]
