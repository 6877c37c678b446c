"""OVO "Push to Pay" (channels reference §4.2 option b): ``POST /pws/ovo_direct``.

After the post-data call created an OVO (812) bill, the merchant's backend sends the
customer's OVO number; OVO pushes a payment request to the customer's app, which they approve
with their PIN. The outcome arrives by notification (and inquiry), never in this call's answer.

Facts (D23, C18): form-encoded ``trx_id``, ``ovo_number``, ``signature`` =
``sha1(md5(user_id + password + trx_id))`` (``trx_id``, not ``bill_no``).

ASSUMPTIONS (reference §4.2, §12 #3): the path is the same on the production host; the answer
is a JSON object (or a ``<faspay>`` XML document) whose ``response_code "00"`` means "push
sent", any other code (or a ``response_error`` wrapper) a refusal (``18``: the number has no
OVO account); the call may stay open until the customer acts, so a timeout means "push sent,
wait" (C18), not a failure; ``ovo_number`` is written ``08...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Self
from urllib.parse import urlencode

import attrs

from gateway_faspay_dana._config import FaspayConfig
from gateway_faspay_dana._errors import PayloadError
from gateway_faspay_dana._messages.common import TRX_ID, check_text, envelope
from gateway_faspay_dana._signature import sign
from gateway_faspay_dana._wire import decode_json_object, normalise_msisdn, sniff_format

PATH_OVO_PUSH: Final = "/pws/ovo_direct"
FORM_HEADERS: Final = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
}


def ovo_number(phone: str) -> str:
    """The customer's phone as the ``08...`` OVO number (ASSUMPTION: the form C18 sends)."""
    return "0" + normalise_msisdn(phone)


def mask_phone(number: str) -> str:
    """``08******1111``: what the customer is shown (never the whole number)."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:2] + "*" * (len(number) - 6) + number[-4:]


@attrs.frozen
class OvoPushRequest:
    """``POST /pws/ovo_direct``: push the bill to the customer's OVO app."""

    trx_id: str = attrs.field(validator=check_text(32, pattern=TRX_ID.pattern))
    ovo_number: str = attrs.field(repr=False, validator=check_text(16, pattern=r"0[0-9]{6,15}"))
    signature: str = attrs.field(repr=False)

    @classmethod
    def for_bill(cls, config: FaspayConfig, *, trx_id: str, phone: str) -> Self:
        """Signed ``sha1(md5(user_id + password + trx_id))``."""
        return cls(
            trx_id=trx_id,
            ovo_number=ovo_number(phone),
            signature=sign(config.user_id, config.password, trx_id),
        )

    def to_form(self) -> bytes:
        """The form-encoded body."""
        fields = {"trx_id": self.trx_id, "ovo_number": self.ovo_number, "signature": self.signature}
        return urlencode(fields).encode("ascii")


@attrs.frozen
class OvoPushResponse:
    """Faspay's answer to the push (ASSUMPTION: see the module docstring)."""

    response_code: str
    response_desc: str = ""
    trx_id: str = ""

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        """JSON or ``<faspay>`` XML; :class:`PayloadError` for anything else."""
        if sniff_format(body) == "xml":
            return cls.from_payload(_xml_fields(body))
        return cls.from_payload(decode_json_object(body))

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Self:
        fields, code, desc = envelope(payload)
        return cls(
            response_code=code,
            response_desc=desc,
            trx_id=fields.text("trx_id", numeric=True, pattern=TRX_ID),
        )


def _xml_fields(body: bytes) -> dict[str, object]:
    """The ``<faspay>`` fields, a nested ``<response_error>`` flattened to a mapping."""
    import xml.etree.ElementTree as ElementTree

    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(bytes(body), forbid_dtd=True)
    except (ElementTree.ParseError, ValueError, LookupError):
        raise PayloadError("body is not a well-formed, safe XML document") from None
    fields: dict[str, object] = {}
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if len(child):
            fields[child.tag] = {
                c.tag: (c.text or "").strip() for c in child if isinstance(c.tag, str)
            }
        else:
            fields[child.tag] = (child.text or "").strip()
    return fields
