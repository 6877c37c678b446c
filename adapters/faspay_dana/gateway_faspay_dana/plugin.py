"""The ``gateway_core`` entry point of the Faspay DANA provider.

Loading this module registers nothing by itself and imports no transport. The provider is
registered by reference, so discovering plugins does not import its implementation: the
class is imported the first time a gateway is built or its capabilities are read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway_core import hookimpl

if TYPE_CHECKING:
    from gateway_core import ProviderRegistry


#: What only this provider knows to scrub from logs, contributed to the core's redaction:
#:
#: * an Indonesian mobile number (the ``msisdn`` of the DANA account) in any of its written
#:   forms, ``+62 8...``, ``62 8...``, ``0 8...`` or bare ``8...``, 8 to 14 digits from the 8
#:   (the core only knows E.164 ``+`` numbers);
#: * the signature in the path of Faspay's payment page, ``/pws/<merchant>/<trx_id>/<sig>``
#:   (the customer's redirect URL: whoever holds it can pay or see the bill).
#:
#: Both run on attacker-controlled text in linear time: the lookahead on the first character
#: lets the engine skip ahead, every repetition is bounded or stops at a fixed character, and
#: no quantifier is nested (``adapters/tests/faspay_dana/test_dana_redaction.py`` times them
#: on hostile input).
REDACTION_PATTERNS: tuple[str, ...] = (
    r"(?=[+068])(?<![\w.:/-])\+?(?:62|0)?8\d{7,13}(?![\w])",
    r"/pws/\d+/\d+/(?P<secret>[^\s/?'\"]+)",
)


@hookimpl
def gateway_register_providers(registry: ProviderRegistry) -> None:
    """Register :class:`~gateway_faspay_dana.FaspayDanaGateway` as ``faspay_dana``, and the
    shapes of its personal data and signatures for redaction."""
    registry.add_redaction(*REDACTION_PATTERNS)
    registry.add("gateway_faspay_dana._gateway:FaspayDanaGateway", name="faspay_dana")
