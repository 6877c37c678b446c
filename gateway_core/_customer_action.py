"""What the customer is shown to pay, rendered for people: a GET link, a POST form, or
instructions (a virtual-account number, a QR payload).

:func:`action_data` and :func:`action_text` are what ``gateway create`` prints (``--json``
and text); :func:`pay_page` is the web app's ``GET {prefix}/pay/<gateway>/<reference>``: a
302 for a GET redirect, a tiny auto-submitting form for a POST redirect (every value
escaped, a ``<noscript>`` button), a small page for instructions, 404 when the payment is
unknown or no longer payable. None of it proves anything about the payment.
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from gateway_core._exceptions import GatewayError, LedgerError, UnknownPayment
from gateway_core._models import PaymentInstructions, RedirectInstruction
from gateway_core._redact import get_logger, scrub_secrets

if TYPE_CHECKING:
    from gateway_core._service import PaymentService

log = get_logger(__name__)

Action = RedirectInstruction | PaymentInstructions

_SUBMIT_SCRIPT = "document.getElementById('pay').submit();"
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SUBMIT_SCRIPT.encode()).digest()).decode()

#: Headers of every page: never cached (the form may carry a one-time token), never leaking
#: the page's address to the provider, no other script than the one submitting the form.
PAGE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    (
        "Content-Security-Policy",
        f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; "
        "frame-ancestors 'none'",
    ),
)


# -- data and text (gateway create) ------------------------------------------------------------


def action_data(action: Action) -> dict[str, Any]:
    """The action as a JSON-ready dict. A form's fields are printed (they are what the
    browser posts), with any configured secret value masked."""
    if isinstance(action, RedirectInstruction):
        data: dict[str, Any] = {
            "type": "redirect",
            "method": action.method.value,
            "url": action.url,
        }
        if action.is_form:
            data["fields"] = {k: scrub_secrets(str(v)) for k, v in action.form_fields.items()}
        return data
    return {
        "type": "instructions",
        "kind": action.kind.value,
        "bank": action.bank,
        "number": action.number,
        "payload": action.payload,
        "url": action.url,
        "text": action.text,
        "amount": None if action.amount is None else str(action.amount),
        "expires_at": None if action.expires_at is None else action.expires_at.isoformat(),
    }


def action_text(action: Action) -> str:
    """The action for a person at a terminal."""
    if isinstance(action, RedirectInstruction):
        if not action.is_form:
            return f"send the customer to: {action.url}"
        lines = [f"send the customer's browser to: POST {action.url}", "with the form fields:"]
        lines += [f"  {k}={scrub_secrets(str(v))}" for k, v in action.form_fields.items()]
        return "\n".join(lines)
    lines = [f"show the customer how to pay ({action.kind.value}):"]
    for label, value in (
        ("bank", action.bank),
        ("number", action.number),
        ("payload", action.payload),
        ("amount", "" if action.amount is None else str(action.amount)),
        ("expires", "" if action.expires_at is None else action.expires_at.isoformat()),
        ("link", action.url),
        ("text", action.text),
    ):
        if value:
            lines.append(f"  {label}: {value}")
    return "\n".join(lines)


# -- the pay page (web) ------------------------------------------------------------------------


@attrs.frozen
class Page:
    """One HTTP answer of the pay endpoint."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = PAGE_HEADERS


_HTML = "text/html; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"


def _document(title: str, body: str, *, onload: bool = False) -> bytes:
    script = f"<script>{_SUBMIT_SCRIPT}</script>" if onload else ""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>\n<body>{body}{script}</body></html>\n"
    ).encode()


def form_page(redirect: RedirectInstruction) -> bytes:
    """The auto-submitting form of a POST redirect; every value escaped."""
    esc = html.escape
    inputs = "".join(
        f'<input type="hidden" name="{esc(str(k))}" value="{esc(str(v))}">'
        for k, v in redirect.form_fields.items()
    )
    body = (
        f'<form id="pay" method="post" action="{esc(redirect.url)}">{inputs}'
        "<noscript><p>Continue to the payment page.</p>"
        '<button type="submit">Continue</button></noscript></form>'
    )
    return _document("Redirecting to the payment page", body, onload=True)


def instructions_page(instructions: PaymentInstructions) -> bytes:
    """A small page showing how to pay; every value escaped."""
    esc = html.escape
    rows = "".join(
        f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>"
        for label, value in (
            ("Bank", instructions.bank),
            ("Number", instructions.number),
            ("Code", instructions.payload),
            ("Amount", "" if instructions.amount is None else str(instructions.amount)),
            ("Pay before", "" if instructions.expires_at is None else str(instructions.expires_at)),
        )
        if value
    )
    text = f"<p>{esc(instructions.text)}</p>" if instructions.text else ""
    link = ""
    if instructions.url and _web_url(instructions.url):
        link = f'<p><a href="{esc(instructions.url)}" rel="noreferrer">Open</a></p>'
    body = f"<h1>How to pay</h1>{text}<dl>{rows}</dl>{link}"
    return _document("How to pay", body)


def _web_url(url: str) -> bool:
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return False  # no header or attribute injection, whatever the plugin returned
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def pay_page(service: PaymentService, gateway_name: str, merchant_reference: str) -> Page:
    """The answer to ``GET {prefix}/pay/<gateway>/<merchant_reference>``."""
    try:
        action = service.customer_action(gateway_name, merchant_reference)
    except UnknownPayment:
        action = None
    except LedgerError:
        return Page(
            503, _TEXT, b"Please try again in a minute.", (*PAGE_HEADERS, ("Retry-After", "60"))
        )
    except GatewayError as exc:
        log.warning(
            "pay page for %s on %s: %s", merchant_reference, gateway_name, type(exc).__name__
        )
        return Page(502, _TEXT, b"The payment page is not available right now.")
    if action is None:
        return Page(404, _TEXT, b"This payment cannot be paid (any more).")
    if isinstance(action, PaymentInstructions):
        return Page(200, _HTML, instructions_page(action))
    if not _web_url(action.url):
        log.warning("pay page for %s on %s: not a web URL", merchant_reference, gateway_name)
        return Page(502, _TEXT, b"The payment page is not available right now.")
    if action.is_form:
        return Page(200, _HTML, form_page(action))
    return Page(302, _TEXT, b"Found", (*PAGE_HEADERS, ("Location", action.url)))
