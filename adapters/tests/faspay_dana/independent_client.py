"""A minimal Faspay Debit API client, written independently to cross-check the emulator.

No third-party Python or npm Faspay Debit client is installable from the registries the suite
can reach, so this client was written from the protocol reference only
(``faspay-debit-protocol.md``, "DANA ref", and ``faspay-channels.md``, "channels ref"), without
reading or importing ``gateway_faspay_dana`` or ``gateway_core``. It talks to whatever Faspay
``base_url`` points at — the emulator in the tests — so the emulator and our plugin are checked
against a second reading of the same documents.

What it follows, by section of the DANA ref:

* §2.2 the JSON paths (``/cvr/100001/10``, ``/cvr/300011/10``, ``/cvr/100004/10``,
  ``/cvr/100005/10``); §2.4 raw JSON bodies, every value a string, business results as HTTP 200
  with ``response_code``, and the undocumented ``{"response_error": {...}}`` wrapper;
* §3.1 ``user_id = "bot" + merchant_id``; §3.2/§3.3 ``sha1(md5(concat).hexdigest())`` over
  ``user_id + password`` (channel inquiry), ``+ bill_no`` (post data, inquiry, cancel) and
  ``+ bill_no + payment_status_code`` (notification);
* §4.1 amounts as digit-only hundredths of a rupiah; §4.2 dates ``YYYY-MM-DD HH:MM:SS`` in
  Jakarta time (ASSUMPTION there: WIB, UTC+7);
* §5, §6.1, §8, §9 the request fields (``item`` sent as an array, §14 #8; ``bank_userid``, §14 #2);
* §10.1-§10.4 notifications in XML or JSON (sniffed from the first non-blank byte), verified
  with the status in the signature (§14 #3), acknowledged in the same format.

Channels ref §3.3: for a virtual account the ``trx_id`` the post-data response returns *is* the
VA number. Channels ref §9.2: XML bodies are ``<faspay>`` with one child per field, parsed here
with ``defusedxml``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
import requests

#: DANA ref §4.2: Faspay's wall clock is assumed to be WIB (UTC+7, no daylight saving).
WIB = timezone(timedelta(hours=7), "WIB")
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

CHANNEL_INQUIRY_PATH = "/cvr/100001/10"
POST_DATA_PATH = "/cvr/300011/10"
INQUIRY_PATH = "/cvr/100004/10"
CANCEL_PATH = "/cvr/100005/10"
#: Channels ref §9.1: the sandbox XML twins (the stage segment after the function code).
XML_POST_DATA_PATH = "/pws/300011/183xx00010100000"
XML_INQUIRY_PATH = "/pws/100004/183xx00010100000"


def faspay_signature(*parts: str) -> str:
    """DANA ref §3.2: ``sha1`` of the lowercase hex ``md5`` of the plain concatenation."""
    md5_hex = hashlib.md5("".join(parts).encode("utf-8")).hexdigest()
    return hashlib.sha1(md5_hex.encode("ascii")).hexdigest()


def faspay_time(moment: datetime) -> str:
    """A datetime as Faspay writes it (Jakarta wall time, DANA ref §4.2)."""
    return moment.astimezone(WIB).strftime(DATETIME_FORMAT)


def hundredths(rupiah: int) -> str:
    """DANA ref §4.1: Rp 10.000,00 is written ``1000000``."""
    return str(rupiah * 100)


class FaspayError(Exception):
    """A ``response_code`` other than ``00``, or the ``response_error`` wrapper (§2.4)."""

    def __init__(self, response_code: str, response_desc: str, body: Mapping[str, Any]) -> None:
        super().__init__(f"Faspay answered {response_code}: {response_desc}")
        self.response_code = response_code
        self.response_desc = response_desc
        self.body = dict(body)


@dataclasses.dataclass(frozen=True)
class FaspayDebitConfig:
    """The four settings a Faspay Debit merchant has (DANA ref §3.1, §2.1)."""

    merchant_id: str
    merchant_name: str
    password: str = dataclasses.field(repr=False)
    base_url: str = "https://debit-sandbox.faspay.co.id"
    user_id: str = ""

    @property
    def api_user(self) -> str:
        """``bot`` + merchant id unless given (§3.1)."""
        return self.user_id or "bot" + self.merchant_id


class FaspayDebitClient:
    """Channel inquiry, post data, inquiry, cancel, and the notification's verification."""

    def __init__(self, config: FaspayDebitConfig, *, timeout: float = 10.0) -> None:
        self.config = config
        self.timeout = timeout
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> FaspayDebitClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- signatures ---------------------------------------------------------------------------

    def sign(self, *parts: str) -> str:
        """``sha1(md5(user_id + password + parts...))`` (§3.3)."""
        return faspay_signature(self.config.api_user, self.config.password, *parts)

    # --- the four API calls -------------------------------------------------------------------

    def _post(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        response = self.session.post(
            self.config.base_url.rstrip("/") + path,
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            timeout=self.timeout,
        )
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise FaspayError("", "the answer is not a JSON object", {})
        wrapped = body.get("response_error")
        if isinstance(wrapped, dict):
            raise FaspayError(
                str(wrapped.get("response_code", "")), str(wrapped.get("response_desc", "")), body
            )
        if body.get("response_code") != "00":
            raise FaspayError(
                str(body.get("response_code", "")), str(body.get("response_desc", "")), body
            )
        return body

    def channel_inquiry(self) -> dict[str, str]:
        """§5: the merchant's enabled channels as ``{pg_code: pg_name}`` (the array, §14 #12)."""
        body = self._post(
            CHANNEL_INQUIRY_PATH,
            {
                "request": "Daftar Payment Channel",
                "merchant_id": self.config.merchant_id,
                "merchant": self.config.merchant_name,
                "signature": self.sign(),
            },
        )
        channels = body.get("payment_channel") or []
        return {str(c["pg_code"]): str(c["pg_name"]) for c in channels}

    def post_data_payload(
        self,
        *,
        bill_no: str,
        channel: str,
        total_rupiah: int,
        customer_no: str,
        customer_name: str,
        msisdn: str,
        email: str,
        description: str,
        lifetime: timedelta,
        now: datetime | None = None,
        items: Sequence[tuple[str, int]] = (),
    ) -> dict[str, Any]:
        """§6: the Post Data Transaction body (``item`` as an array, §14 #8)."""
        start = now or datetime.now(WIB)
        mid = self.config.merchant_id
        lines = items or [(description, total_rupiah)]
        return {
            "request": "Post Data Transaction",
            "merchant_id": mid,
            "merchant": self.config.merchant_name,
            "bill_no": bill_no,
            "bill_reff": bill_no,
            "bill_date": faspay_time(start),
            "bill_expired": faspay_time(start + lifetime),
            "bill_desc": description,
            "bill_currency": "IDR",
            "bill_gross": hundredths(total_rupiah),
            "bill_miscfee": "0",
            "bill_total": hundredths(total_rupiah),
            "cust_no": customer_no,
            "cust_name": customer_name,
            "payment_channel": channel,
            "pay_type": "1",
            "bank_userid": "",
            "msisdn": msisdn,
            "email": email,
            "terminal": "10",
            "item": [
                {
                    "product": product,
                    "qty": "1",
                    "amount": hundredths(amount),
                    "payment_plan": "1",
                    "merchant_id": mid,
                    "tenor": "00",
                }
                for product, amount in lines
            ],
            "reserve1": "",
            "reserve2": "",
            "signature": self.sign(bill_no),
        }

    def post_data(self, **bill: Any) -> dict[str, Any]:
        """§6: create a bill (arguments of :meth:`post_data_payload`); returns the answer
        (``trx_id``, ``redirect_url``...)."""
        return self._post(POST_DATA_PATH, self.post_data_payload(**bill))

    def _inquiry_payload(self, trx_id: str, bill_no: str) -> dict[str, Any]:
        return {
            "request": "Inquiry Payment Status",
            "trx_id": trx_id,
            "merchant_id": self.config.merchant_id,
            "bill_no": bill_no,
            "signature": self.sign(bill_no),
        }

    def inquiry(self, trx_id: str, bill_no: str) -> dict[str, Any]:
        """§8: the bill's ``payment_status_code`` (and ``payment_reff``/``payment_date``)."""
        return self._post(INQUIRY_PATH, self._inquiry_payload(trx_id, bill_no))

    # --- the XML twins (channels ref §9) ------------------------------------------------------

    def _post_xml(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        response = self.session.post(
            self.config.base_url.rstrip("/") + path,
            data=to_xml(payload),
            headers={"Content-Type": "text/xml"},
            timeout=self.timeout,
        )
        response.raise_for_status()
        root = SafeET.fromstring(response.content)
        if root.tag != "faspay":
            raise FaspayError("", f"the XML answer's root is <{root.tag}>", {})
        body: dict[str, Any] = {}
        for child in root:
            if len(child):
                nested = {sub.tag: (sub.text or "").strip() for sub in child}
                body.setdefault(child.tag, []).append(nested)
            else:
                body[child.tag] = (child.text or "").strip()
        wrapped = body.get("response_error")
        if wrapped:
            raise FaspayError(
                wrapped[0].get("response_code", ""), wrapped[0].get("response_desc", ""), body
            )
        if body.get("response_code") != "00":
            raise FaspayError(
                str(body.get("response_code", "")), str(body.get("response_desc", "")), body
            )
        return body

    def post_data_xml(self, **bill: Any) -> dict[str, Any]:
        """§9.1/§9.2: Post Data Transaction as XML (no ``redirect_url`` in the answer, §9.3)."""
        return self._post_xml(XML_POST_DATA_PATH, self.post_data_payload(**bill))

    def inquiry_xml(self, trx_id: str, bill_no: str) -> dict[str, Any]:
        """Inquiry Payment Status as XML (channels ref §9.1)."""
        return self._post_xml(XML_INQUIRY_PATH, self._inquiry_payload(trx_id, bill_no))

    def cancel(self, trx_id: str, bill_no: str, reason: str) -> dict[str, Any]:
        """§9: void an unpaid bill (``payment_status_code`` ``8`` afterwards)."""
        return self._post(
            CANCEL_PATH,
            {
                "request": "Canceling Payment",
                "trx_id": trx_id,
                "merchant_id": self.config.merchant_id,
                "merchant": self.config.merchant_name,
                "bill_no": bill_no,
                "payment_cancel": reason,
                "signature": self.sign(bill_no),
            },
        )

    # --- notifications (Faspay -> merchant) ---------------------------------------------------

    def verify_notification(self, fields: Mapping[str, str]) -> bool:
        """§10.3: the signature over ``bill_no`` and ``payment_status_code``, compared in
        constant time, and the merchant id is ours."""
        expected = self.sign(fields.get("bill_no", ""), fields.get("payment_status_code", ""))
        given = fields.get("signature", "").strip().lower()
        return fields.get("merchant_id") == self.config.merchant_id and hmac.compare_digest(
            expected, given
        )

    def acknowledgement(self, fields: Mapping[str, str], fmt: str, now: datetime) -> bytes:
        """§10.4: the ``00`` reply, in the notification's own format."""
        reply = {
            "response": "Payment Notification",
            "trx_id": fields.get("trx_id", ""),
            "merchant_id": fields.get("merchant_id", ""),
            "merchant": fields.get("merchant", ""),
            "bill_no": fields.get("bill_no", ""),
            "response_code": "00",
            "response_desc": "Success",
            "response_date": faspay_time(now),
        }
        if fmt == "json":
            return json.dumps(reply).encode("utf-8")
        del reply["merchant"]  # present in the JSON sample only (§10.4)
        inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in reply.items())
        return f'<?xml version="1.0" encoding="utf-8"?><faspay>{inner}</faspay>'.encode()


def to_xml(payload: Mapping[str, Any]) -> bytes:
    """Channels ref §9.2: ``<faspay>`` with one child per field, one ``<item>`` per item."""
    parts: list[str] = []
    for key, value in payload.items():
        if key == "item":
            for item in value:
                inner = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in item.items())
                parts.append(f"<item>{inner}</item>")
        else:
            parts.append(f"<{key}>{escape(str(value))}</{key}>")
    text = '<?xml version="1.0" encoding="UTF-8"?><faspay>' + "".join(parts) + "</faspay>"
    return text.encode("utf-8")


def parse_notification(body: bytes) -> tuple[str, dict[str, str]]:
    """§10.1: the format (``xml`` or ``json``, from the first non-blank byte) and the fields."""
    text = body.lstrip()
    if text.startswith(b"{"):
        loaded = json.loads(text.decode("utf-8"))
        if not isinstance(loaded, dict):
            raise ValueError("the JSON notification is not an object")
        return "json", {str(k): "" if v is None else str(v) for k, v in loaded.items()}
    if text.startswith(b"<"):
        root = SafeET.fromstring(text)
        if root.tag != "faspay":
            raise ValueError(f"the XML notification's root is <{root.tag}>, not <faspay>")
        return "xml", {child.tag: (child.text or "").strip() for child in root}
    raise ValueError("the notification is neither XML nor JSON")
