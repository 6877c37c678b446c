"""A client of the emulator's control API (``/_emulator/...``) for tests and tools, on the
emulation kit's :class:`~gateway_core.emulation.control.ControlClient` (which brings the clock,
fault, delivery, request-log, wait and reset calls)."""

from __future__ import annotations

from typing import Any

from gateway_core.emulation.control import ControlClient


class MidtransControl(ControlClient):
    """Drive a running Midtrans emulator over HTTP (``base_url``: the emulator's URL)."""

    def transactions(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Every payment attempt (optionally of one order)."""
        params = {"order_id": order_id} if order_id else None
        result: list[dict[str, Any]] = self._call("GET", "transactions", params=params)[
            "transactions"
        ]
        return result

    def transaction(self, ident: str) -> dict[str, Any]:
        """One attempt (transaction_id, or the latest of an order_id)."""
        result: dict[str, Any] = self._call("GET", f"transactions/{ident}")
        return result

    def sessions(self) -> list[dict[str, Any]]:
        """Every Snap session."""
        result: list[dict[str, Any]] = self._call("GET", "sessions")["sessions"]
        return result

    def act(self, action: str, ident: str, **options: Any) -> dict[str, Any]:
        """A Midtrans-side event for an order or transaction (see the control API)."""
        result: dict[str, Any] = self._call("POST", f"orders/{ident}/{action}", options)
        return result

    def choose(self, ident: str, method: str | None = None) -> dict[str, Any]:
        """The customer picks a method (a pending attempt)."""
        return self.act("choose", ident, **({"method": method} if method else {}))

    def pay(self, ident: str, method: str | None = None) -> dict[str, Any]:
        """Pay the order (settlement; an attempt is made with ``method`` if none is open)."""
        return self.act("pay", ident, **({"method": method} if method else {}))

    def settle(self, ident: str) -> dict[str, Any]:
        """A card capture settles."""
        return self.act("settle", ident)

    def deny(self, ident: str) -> dict[str, Any]:
        """The provider denies the attempt."""
        return self.act("deny", ident)

    def expire(self, ident: str) -> dict[str, Any]:
        """The pending attempt expires now."""
        return self.act("expire", ident)

    def cancel(self, ident: str) -> dict[str, Any]:
        """Midtrans cancels the attempt."""
        return self.act("cancel", ident)

    def challenge(self, ident: str) -> dict[str, Any]:
        """A card capture held for fraud review."""
        return self.act("challenge", ident)

    def approve(self, ident: str) -> dict[str, Any]:
        """Accept a challenged capture."""
        return self.act("approve", ident)

    def reject(self, ident: str) -> dict[str, Any]:
        """Deny a challenged capture."""
        return self.act("reject", ident)

    def refund(self, ident: str, amount: int | None = None, **options: Any) -> dict[str, Any]:
        """A refund made at the dashboard (``reason``, ``refund_key``, ``direct``)."""
        body = {**options, **({"amount": amount} if amount is not None else {})}
        return self.act("refund", ident, **body)

    def notify(self, ident: str, status: str | None = None) -> list[dict[str, Any]]:
        """(Re)send an attempt's webhook (current or scripted status)."""
        result: list[dict[str, Any]] = self.act(
            "notify", ident, **({"status": status} if status else {})
        )["deliveries"]
        return result

    def release_held(self) -> list[dict[str, Any]]:
        """Deliver the webhooks a ``hold`` fault kept back."""
        result: list[dict[str, Any]] = self._call("POST", "held")["deliveries"]
        return result

    def return_query(self, ident: str) -> dict[str, str]:
        """The query the page appends to a return URL now."""
        result: dict[str, str] = self._call("GET", f"return/{ident}")
        return result

    def settings(self, **changes: Any) -> dict[str, Any]:
        """The emulator's settings (changed first when ``changes`` are given)."""
        if changes:
            result: dict[str, Any] = self._call("PATCH", "settings", changes)
        else:
            result = self._call("GET", "settings")
        return result

    def set_retry_scale(self, scale: float) -> dict[str, Any]:
        """Scale Midtrans' webhook retry delays."""
        result: dict[str, Any] = self._call("POST", "retry", {"scale": scale})
        return result

    def configure_merchant(self, merchant_id: str, **changes: Any) -> dict[str, Any]:
        """Change a merchant's settings."""
        result: dict[str, Any] = self._call("PATCH", f"merchants/{merchant_id}", changes)
        return result
