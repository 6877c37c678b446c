"""Faspay-hosted pages of the non-DANA families, behind the same redirect URL (§3.3, §5.3, §4.2).

* VA / retail: bank or store, the number to pay (``#va-number`` / ``#payment-code``), amount,
  expiry, the inter-bank code (and Mandiri's company code 88308); a sandbox form
  ``#sim-transfer`` / ``#sim-retail`` plays the payer (no Return URL: a result page).
* QRIS: the QR (``<img id='qr-image'>`` from the ``web_url``), ``#qr-content``, the expiry and
  a sandbox form ``#sim-scan``.
* OVO (option a): ``#ovo-push`` asks for the OVO number (pre-filled with ``msisdn``); after the
  push a waiting page offers sandbox decisions ``#ovo-approve``, ``#ovo-decline``,
  ``#ovo-timeout`` and ``#ovo-check`` (continue once decided elsewhere); a decided bill goes to
  the Return URL with status 2 or 3.

Every form POSTs to ``<redirect path>/complete`` with hidden ``action``, ``trx_id``,
``merchant_id`` and ``bill_no``, like the DANA page.
"""

from __future__ import annotations

from html import escape

from gateway_faspay_dana.emulator._clock import FASPAY_DATETIME
from gateway_faspay_dana.emulator._codes import status_desc
from gateway_faspay_dana.emulator._model import Bill
from gateway_faspay_dana.emulator._pages import message_page, rupiah

_STYLE = (
    "body{font-family:sans-serif;background:#f3f3f7;margin:0;padding:2em}"
    "main{max-width:30em;margin:auto;background:#fff;border-radius:8px;padding:1.5em}"
    "h1{margin-top:0}.number{font-size:1.5em;font-family:monospace;letter-spacing:.1em}"
    ".amount{font-size:1.4em;font-weight:bold}code{word-break:break-all}"
)


def _document(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    ).encode()


def _form(action_url: str, bill: Bill, action: str, label: str, extra: str = "") -> str:
    hidden = "".join(
        f"<input type='hidden' name='{n}' value='{escape(v, quote=True)}'>"
        for n, v in (
            ("action", action),
            ("trx_id", bill.trx_id),
            ("merchant_id", bill.merchant_id),
            ("bill_no", bill.bill_no),
        )
    )
    form_id = action.replace("_", "-")
    return (
        f"<form id='{form_id}' method='post' action='{escape(action_url, quote=True)}'>"
        f"{hidden}{extra}<button id='{form_id}-button' type='submit'>{escape(label)}</button>"
        "</form>"
    )


def _summary(bill: Bill, title: str) -> str:
    expiry = bill.bill_expired.strftime(FASPAY_DATETIME)
    return (
        f"<h1 id='channel-title'>{escape(title)}</h1>"
        "<p>Faspay emulator &mdash; sandbox, no real money.</p>"
        f"<p>Merchant: <span id='merchant'>{escape(bill.merchant_name)}</span></p>"
        f"<p>Bill: <span id='bill-no'>{escape(bill.bill_no)}</span></p>"
        f"<p class='amount' id='amount'>{rupiah(bill.bill_total)}</p>"
        f"<p>Pay before <span id='expires'>{expiry}</span> (WIB)</p>"
    )


def _closed(bill: Bill, language: str) -> str:
    return (
        f"<p id='bill-status' data-status='{bill.status}'>"
        f"{escape(status_desc(bill.status, language))}</p>"
    )


def instrument_page(bill: Bill, action_url: str, web_url: str, *, language: str = "en") -> bytes:
    """The page of a VA, retail or QRIS bill."""
    spec = bill.spec
    assert spec is not None
    title = f"{spec.name} - {bill.bill_no}"
    body = _summary(bill, spec.name)
    if spec.family == "virtual_account":
        body += f"<p>Bank: <span id='bank'>{escape(spec.issuer)}</span>"
        if spec.interbank_code:
            body += f" (inter-bank code <span id='interbank'>{spec.interbank_code}</span>)"
        body += "</p>"
        if spec.code == "802":
            body += "<p>Multi Payment company code <span id='company-code'>88308</span></p>"
        body += f"<p>VA number</p><p class='number' id='va-number'>{bill.trx_id}</p>"
        sim = _form(action_url, bill, "sim_transfer", "Simulate bank transfer")
    elif spec.family == "retail":
        body += f"<p>Store: <span id='store'>{escape(spec.issuer)}</span></p>"
        body += f"<p>Payment code</p><p class='number' id='payment-code'>{bill.trx_id}</p>"
        sim = _form(action_url, bill, "sim_retail", "Simulate payment at the cashier")
    else:
        body += (
            f"<p><img id='qr-image' alt='QRIS' src='{escape(web_url, quote=True)}'></p>"
            f"<p>Scan with any QRIS app.</p><p><code id='qr-content'>"
            f"{escape(bill.qr_content)}</code></p>"
        )
        sim = _form(action_url, bill, "sim_scan", "Simulate scan and pay")
    if not bill.open:
        return _document(title, body + _closed(bill, language))
    return _document(title, body + "<h2>Sandbox payer</h2>" + sim)


def ovo_page(bill: Bill, action_url: str, *, language: str = "en") -> bytes:
    """The OVO page: ask for the number, or wait for the payer's decision."""
    body = _summary(bill, "OVO")
    title = f"OVO - {bill.bill_no}"
    if not bill.open:
        back = _form(action_url, bill, "ovo_check", "Back to merchant")
        return _document(title, body + _closed(bill, language) + back)
    if bill.ovo_push_deadline is None:
        field = (
            "<label>OVO number <input type='text' id='ovo-number' name='ovo_number' "
            f"value='{escape(bill.msisdn, quote=True)}'></label><br>"
        )
        hint = (
            "<p><small>Sandbox: numbers ending 0000 decline, 1111 approve, 8888 are not "
            "registered, 9999 never answer.</small></p>"
        )
        return _document(title, body + _form(action_url, bill, "ovo_push", "Pay", field) + hint)
    masked = "*" * max(0, len(bill.ovo_number) - 4) + bill.ovo_number[-4:]
    waiting = (
        f"<p id='ovo-waiting'>Approve the payment in your OVO app ({escape(masked)}).</p>"
        "<h2>Sandbox payer</h2>"
        + _form(action_url, bill, "ovo_approve", "Approve in OVO")
        + _form(action_url, bill, "ovo_decline", "Decline in OVO")
        + _form(action_url, bill, "ovo_timeout", "Let it time out")
        + _form(action_url, bill, "ovo_check", "Check status")
    )
    return _document(title, body + waiting)


def result_page(bill: Bill, language: str) -> bytes:
    """The end of a flow without a Return URL."""
    spec = bill.spec
    return message_page(spec.name if spec else "Faspay", status_desc(bill.status, language))
