"""HTML of the fake DANA payment page (plain forms, no JavaScript).

Stable hooks for browsers and scripts: three forms ``#dana-pay``, ``#dana-fail`` and
``#dana-abandon``, each POSTing to ``<redirect path>/complete`` with hidden ``action``
(``pay``/``fail``/``abandon``), ``trx_id``, ``merchant_id`` and ``bill_no``; the pay form also
has a text field ``bank_user_name``. Buttons are ``#pay-button``, ``#fail-button`` and
``#abandon-button``. A bill that can no longer be paid shows ``#dana-status`` and only the
abandon form (labelled "Back to merchant").
"""

from __future__ import annotations

from html import escape

from gateway_faspay_dana.emulator._codes import status_desc
from gateway_faspay_dana.emulator._model import Bill

_STYLE = (
    "body{font-family:sans-serif;background:#e9f3fd;margin:0;padding:2em}"
    "main{max-width:28em;margin:auto;background:#fff;border-radius:8px;padding:1.5em}"
    "h1{color:#118eea;margin-top:0}button{font-size:1em;padding:.5em 1em;margin:.25em 0}"
    "form{margin:.5em 0}.amount{font-size:1.6em;font-weight:bold}"
)


def rupiah(hundredths: int) -> str:
    """``Rp 2.000,00`` formatting of an amount in hundredths."""
    whole, cents = divmod(hundredths, 100)
    return f"Rp {whole:,}".replace(",", ".") + f",{cents:02d}"


def _document(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    ).encode()


def _form(action_url: str, bill: Bill, action: str, label: str, extra: str = "") -> str:
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{escape(value, quote=True)}'>"
        for name, value in (
            ("action", action),
            ("trx_id", bill.trx_id),
            ("merchant_id", bill.merchant_id),
            ("bill_no", bill.bill_no),
        )
    )
    return (
        f"<form id='dana-{action}' method='post' action='{escape(action_url, quote=True)}'>"
        f"{hidden}{extra}<button id='{action}-button' type='submit'>{escape(label)}</button>"
        "</form>"
    )


def payment_page(
    bill: Bill, action_url: str, *, language: str = "en", title: str = "DANA"
) -> bytes:
    """The wallet page for ``bill`` (DANA, or a redirect wallet's ``title``): pay, fail or
    abandon (or only go back when not payable)."""
    summary = (
        f"<h1 id='channel-title'>{escape(title)}</h1>"
        f"<p>Faspay {escape(title)} emulator &mdash; sandbox, no real money.</p>"
        f"<p>Merchant: <span id='merchant'>{escape(bill.merchant_name)}</span></p>"
        f"<p>Bill: <span id='bill-no'>{escape(bill.bill_no)}</span> "
        f"(trx <span id='trx-id'>{escape(bill.trx_id)}</span>)</p>"
        f"<p class='amount' id='amount'>{rupiah(bill.bill_total)}</p>"
        f"<p>{escape(bill.bill_desc)}</p>"
    )
    if not bill.open:
        status = (
            f"<p id='dana-status' data-status='{bill.status}'>"
            f"{escape(status_desc(bill.status, language))}</p>"
        )
        back = _form(action_url, bill, "abandon", "Back to merchant")
        return _document(f"{title} - {bill.bill_no}", summary + status + back)
    name_field = (
        f"<label>{escape(title)} account name <input type='text' id='bank-user-name' "
        f"name='bank_user_name' value='{escape(bill.cust_name, quote=True)}'></label><br>"
    )
    forms = (
        _form(action_url, bill, "pay", "Pay", name_field)
        + _form(action_url, bill, "fail", "Fail payment")
        + _form(action_url, bill, "abandon", "Cancel and go back")
    )
    if title == "DANA":
        forms += "<p><small>Sandbox test account: phone 0817345545, PIN 123321.</small></p>"
    return _document(f"{title} - {bill.bill_no}", summary + forms)


def message_page(title: str, message: str) -> bytes:
    """A plain page (errors, or the end of a flow without a return URL)."""
    return _document(title, f"<h1>{escape(title)}</h1><p id='message'>{escape(message)}</p>")
