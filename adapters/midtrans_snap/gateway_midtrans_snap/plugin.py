"""The ``gateway_core`` entry point of the Midtrans Snap provider.

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
#: * a Midtrans server key, ``SB-Mid-server-...`` (sandbox) or ``Mid-server-...``
#:   (production), wherever it shows (the configured key is also registered as a secret);
#: * the credentials of an ``Authorization: Basic ...`` header, in a header dump or a dict's
#:   ``repr`` (``'Authorization': 'Basic ...'``): base64 of ``server_key + ":"``;
#: * the token in the path of the Snap payment page,
#:   ``/snap/v3/redirection/<token>`` (whoever holds it can open the order's payment page);
#: * an Indonesian mobile number in any written form (the customer's ``phone``), the same
#:   pattern the Faspay plugin contributes (registering it twice is harmless).
#:
#: Each starts with a lookahead on its first character, bounds every repetition and nests no
#: quantifier, so it runs in linear time on attacker-controlled text.
REDACTION_PATTERNS: tuple[str, ...] = (
    r"(?=[SM])(?<![\w-])(?:SB-)?Mid-server-[\w-]{1,128}",
    r"(?=[Aa])(?<![\w-])[Aa]uthorization['\"]?[ \t]{0,3}[:=,][ \t]{0,3}['\"]?Basic[ \t]{1,3}"
    r"(?P<secret>[A-Za-z0-9+/=]{1,512})",
    r"(?=/)/snap/v[0-9]{1,2}/(?:redirection|vtweb)/(?P<secret>[\w-]{1,64})",
    r"(?=[+068])(?<![\w.:/-])\+?(?:62|0)?8\d{7,13}(?![\w])",
)


@hookimpl
def gateway_register_providers(registry: ProviderRegistry) -> None:
    """Register :class:`~gateway_midtrans_snap.MidtransSnapGateway` as ``midtrans_snap``, and
    the shapes of its keys, header and page tokens for redaction."""
    registry.add_redaction(*REDACTION_PATTERNS)
    registry.add("gateway_midtrans_snap._gateway:MidtransSnapGateway", name="midtrans_snap")
