"""The Snap payment page (``GET redirect_url``) and its forms (protocol reference §3, §11.8).

The page lists the session's payment methods and one form per outcome, each posting to
``<redirect_url>/submit`` with ``outcome`` (and ``method`` where it matters):

==============  ===========================================================  ==============
outcome         what happens                                                  browser goes to
==============  ===========================================================  ==============
``pay``         attempt with ``method`` (default GoPay, else the first        finish
                non-card method): ``pending`` then ``settlement``
``pending``     attempt ``pending`` (VA number / code issued; pay it later     finish
                through the control API)
``card``        card attempt: ``pending`` (3DS) then ``capture``/accept       finish
``challenge``   card attempt: ``capture`` with fraud ``challenge``            finish
``deny``        attempt ``deny``; the page again until more than              page / error
                ``error_after_denials`` denials, then the error URL
``error``       attempt ``failure``                                          error
``cancel``      the open attempt ``cancel`` (else the session is cancelled)   unfinish
``leave``       nothing changes ("back to merchant")                          unfinish
==============  ===========================================================  ==============

Each step sends its webhook. The redirect appends ``merchant_id`` (setting
``return_merchant_id``), ``order_id``, ``status_code`` and ``transaction_status`` of the latest
attempt to the URL, keeping its own query (§3.2).

ASSUMPTIONS: the error URL is ``callbacks.error``, else the merchant's error URL, else the
finish URL; the unfinish URL is the merchant's, else the finish URL; without an attempt the
unfinish redirect carries ``order_id`` only; without any URL the page shows the result (200);
an unknown, expired, cancelled or superseded token shows an error page (404); a completed one
shows "already paid" (200).
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import parse_qs, urlencode

from gateway_core.emulation.serving import Reply
from gateway_midtrans_snap.emulator import _model as m
from gateway_midtrans_snap.emulator._api import PAGE_PREFIX
from gateway_midtrans_snap.emulator._settings import Settings
from gateway_midtrans_snap.emulator._store import CoreRefusal, Store

OUTCOMES = ("pay", "pending", "card", "challenge", "deny", "error", "cancel", "leave")
_HTML = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]


def html(status: int, title: str, body: str) -> Reply:
    """A small HTML page."""
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return Reply(status, page.encode("utf-8"), list(_HTML))


def redirect(location: str, status: int = 302) -> Reply:
    """A redirect to ``location``."""
    return Reply(status, b"", [*_HTML, ("Location", location)])


def default_method(methods: list[str]) -> str:
    """GoPay when offered, else the first non-card method, else the card."""
    if "gopay" in methods:
        return "gopay"
    return next((x for x in methods if x != "credit_card"), methods[0])


class PaymentPage:
    """Serves the page of a Snap token and carries out what its forms ask."""

    def __init__(self, *, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    def page(self, token: str, method: str, query: str = "") -> Reply:
        """``GET`` the page."""
        if method not in ("GET", "HEAD"):
            return html(405, "Method not allowed", "<p>use GET</p>")
        with self._store.lock:
            session = self._store.session(token)
            if session is None or session.state not in ("active", "completed"):
                return html(
                    404,
                    "Transaction not available",
                    "<p>transaction not available or wrong URL</p>",
                )
            if session.state == "completed":
                txn = self._latest(session)
                link = self._target(session, "finish", txn)
                return html(
                    200,
                    "Already paid",
                    f"<p>This order is paid.</p>"
                    f"<p><a id='back' href='{escape(link, quote=True)}'>Back to merchant"
                    "</a></p>"
                    if link
                    else "<p>This order is paid.</p>",
                )
            notice = "<p id='notice'>Payment denied: try again.</p>" if "denied" in query else ""
            return html(200, "Midtrans Snap (emulator)", notice + self._forms(session))

    def _forms(self, session: m.Session) -> str:
        action = escape(f"{session.token}/submit", quote=True)
        others = [x for x in session.methods if x != "credit_card"]
        chosen = default_method(others or session.methods)
        options = "".join(
            f"<option value='{x}'{' selected' if x == chosen else ''}>{x}</option>" for x in others
        )
        parts = [
            f"<p>Order <b id='order'>{escape(session.order_id)}</b>, amount "
            f"<b id='amount'>Rp {session.gross_amount:,}</b></p>",
        ]

        def form(outcome: str, label: str, choose: bool = False) -> str:
            chooser = f"<select name='method'>{options}</select>" if choose and options else ""
            return (
                f"<form id='snap-{outcome}' method='post' action='{action}'>"
                f"<input type='hidden' name='outcome' value='{outcome}'>{chooser}"
                f"<button type='submit'>{escape(label)}</button></form>"
            )

        if others:
            parts.append(form("pay", "Pay", choose=True))
            parts.append(form("pending", "Get payment instructions", choose=True))
        if "credit_card" in session.methods:
            parts.append(form("card", "Pay by card"))
            parts.append(form("challenge", "Pay by card (fraud challenge)"))
        parts += [
            form("deny", "Payment denied"),
            form("error", "Payment error"),
            form("cancel", "Cancel payment"),
            form("leave", "Back to merchant"),
        ]
        return "".join(parts)

    def submit(self, token: str, method: str, raw: bytes) -> Reply:
        """``POST <page>/submit``: carry out an outcome, then redirect."""
        if method != "POST":
            return html(405, "Method not allowed", "<p>use POST</p>")
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        outcome = form.get("outcome", "")
        if outcome not in OUTCOMES:
            return html(400, "Bad request", f"<p>outcome must be one of {', '.join(OUTCOMES)}</p>")
        with self._store.lock:
            session = self._store.session(token)
            if session is None or session.state not in ("active", "completed"):
                return html(404, "Transaction not available", "<p>wrong URL</p>")
            if session.state == "completed":
                return self._go(session, "finish", self._latest(session))
            try:
                return self._act(session, outcome, form.get("method") or "")
            except CoreRefusal as exc:
                return html(400, "Refused", f"<p>{escape(exc.message or exc.code)}</p>")

    def _act(self, session: m.Session, outcome: str, method: str) -> Reply:
        store = self._store
        card = "credit_card" in session.methods
        if outcome in ("pay", "pending"):
            chosen = method or default_method(session.methods)
            txn = store.choose(session, chosen)
            if outcome == "pay" and txn.status == m.PENDING:
                store.move(txn, m.SETTLEMENT, source="page")
            return self._go(session, "finish", txn)
        if outcome in ("card", "challenge"):
            if not card:
                raise CoreRefusal("402", "credit_card is not enabled for this transaction")
            first = m.PENDING if self._settings.card_3ds else m.CAPTURE
            txn = store.choose(session, "credit_card", status=first)
            fraud = "challenge" if outcome == "challenge" else "accept"
            if txn.status == m.PENDING or fraud == "challenge":
                store.move(txn, m.CAPTURE, fraud=fraud, force=True, source="page")
            return self._go(session, "finish", txn)
        if outcome in ("deny", "error"):
            chosen = (
                "credit_card"
                if card and not method
                else (method or default_method(session.methods))
            )
            txn = store.choose(session, chosen)
            store.move(txn, m.DENY if outcome == "deny" else m.FAILURE, source="page")
            if outcome == "error":
                return self._go(session, "error", txn)
            session.denials += 1
            if session.denials > self._settings.error_after_denials:
                return self._go(session, "error", txn)
            return redirect(f"{PAGE_PREFIX}{session.token}?denied={session.denials}", 303)
        attempt = store.open_attempt(session)
        if outcome == "cancel":
            if attempt is not None:
                store.move(attempt, m.CANCEL, source="page")
            else:
                session.state = "canceled"
        return self._go(
            session, "unfinish", attempt if outcome == "cancel" else self._latest(session)
        )

    def _latest(self, session: m.Session) -> m.Transaction | None:
        attempts = self._store.orders.get((session.merchant_id, session.order_id), [])
        mine = [t for t in attempts if t.token == session.token]
        return mine[-1] if mine else None

    def _target(self, session: m.Session, kind: str, txn: m.Transaction | None) -> str:
        merchant = self._store.merchants[session.merchant_id]
        callbacks = session.callbacks
        finish = str(callbacks.get("finish") or merchant.finish_url or "")
        if kind == "error":
            url = str(callbacks.get("error") or merchant.error_url or finish)
        elif kind == "unfinish":
            url = merchant.unfinish_url or finish
        else:
            url = finish
        if not url:
            return ""
        return url + ("&" if "?" in url else "?") + urlencode(self.query(session, txn))

    def query(self, session: m.Session, txn: m.Transaction | None) -> dict[str, str]:
        """The parameters appended to a return URL (§3.2)."""
        params: dict[str, Any] = {}
        if self._settings.return_merchant_id and txn is not None:
            params["merchant_id"] = session.merchant_id
        params["order_id"] = session.order_id
        if txn is not None:
            params["status_code"] = m.webhook_code(txn.status, txn.fraud_status)
            params["transaction_status"] = txn.status
        return params

    def _go(self, session: m.Session, kind: str, txn: m.Transaction | None) -> Reply:
        target = self._target(session, kind, txn)
        if target:
            return redirect(target)
        shown = "".join(
            f"<li>{escape(k)}: <span id='{escape(k, quote=True)}'>{escape(str(v))}</span></li>"
            for k, v in self.query(session, txn).items()
        )
        return html(200, f"Payment {kind}", f"<ul>{shown}</ul>")
