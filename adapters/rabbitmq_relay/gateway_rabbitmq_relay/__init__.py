"""A gateway-core hook plugin that publishes every payment event to RabbitMQ.

Configure it with a ``[plugins.rabbitmq_relay]`` table (see :class:`RelayConfig`) or
``$GATEWAY_RABBITMQ_URL``; :func:`gateway_core.build_runtime` then registers a
:class:`RabbitRelay`, whose hooks publish each event (JSON, schema :data:`SCHEMA`, see
:func:`event_document`) with the event id as message id, persistent, and return only after
the broker's publisher confirm. The guide: ``docs/operations.md``, "Events to RabbitMQ".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway_rabbitmq_relay._message import SCHEMA, encode_event, event_document
    from gateway_rabbitmq_relay._relay import RabbitRelay, RelayError
    from gateway_rabbitmq_relay._settings import NAME, URL_ENV, RelayConfig

__all__ = [
    "NAME",
    "SCHEMA",
    "URL_ENV",
    "RabbitRelay",
    "RelayConfig",
    "RelayError",
    "encode_event",
    "event_document",
]

_LAZY = {
    "NAME": "_settings",
    "SCHEMA": "_message",
    "URL_ENV": "_settings",
    "RabbitRelay": "_relay",
    "RelayConfig": "_settings",
    "RelayError": "_relay",
    "encode_event": "_message",
    "event_document": "_message",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
