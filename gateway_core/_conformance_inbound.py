"""The conformance kit's checks of inbound messages: notifications, replies, non-status
events and customer returns."""

from __future__ import annotations

import pytest

from gateway_core._conformance_base import ConformanceBase, check, fail
from gateway_core._exceptions import NotificationRejected
from gateway_core._gateway import Gateway
from gateway_core._inbound import InboundRequest, ProviderEvent, Reason, Verdict
from gateway_core._models import (
    Acknowledgement,
    Notification,
)

__all__ = ["InboundChecks"]

_GARBAGE: tuple[bytes, ...] = (
    b"",
    b"\x00\xff\xfe",
    b"{",
    b"[]",
    b"null",
    b'{"signature": ["a"]}',
    b"<notification><reference>1</reference>",
    b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>",
    b"A" * 100_000,
)


class InboundChecks(ConformanceBase):
    """Notifications, replies, events and returns."""

    # -- notifications --------------------------------------------------------------------

    def test_signed_notification_round_trips(self, gateway: Gateway) -> None:
        notification = self._parse(gateway, self._notification(gateway))
        check(
            gateway,
            isinstance(notification, Notification),
            "a status notification parsed as an event",
        )
        assert isinstance(notification, Notification)
        check(
            gateway,
            notification.merchant_reference == self.merchant_reference,
            f"parsed reference {notification.merchant_reference!r}",
        )
        check(
            gateway,
            notification.status is self.notified_status,
            f"parsed status {notification.status}",
        )
        check(
            gateway,
            notification.provider == type(gateway).name,
            "wrong provider on the notification",
        )
        check(gateway, notification.event_key, "a notification without event_key")

    def test_same_notification_has_the_same_event_key(self, gateway: Gateway) -> None:
        request = self._notification(gateway)
        first, second = self._parse(gateway, request), self._parse(gateway, request)
        check(gateway, first.event_key == second.event_key, "a re-delivery gets another event_key")

    def test_forged_notification_is_rejected_with_a_failure_reply(self, gateway: Gateway) -> None:
        signed = self._notification(gateway)
        forged = InboundRequest.post(_forge(signed.body), signed.headers)
        try:
            gateway.parse_notification(forged)
        except NotificationRejected as exc:
            reason = Reason.of(exc.reason)
        else:
            fail(gateway, "accepted a notification with one character changed after signing")
        ack = gateway.reply(Verdict.REJECTED, None, reason, forged, accepted=False)
        check(
            gateway,
            isinstance(ack, Acknowledgement) and not ack.accepted,
            "failure reply says accepted",
        )
        check(
            gateway,
            not self.provider_accepts(ack),
            "the provider would take the failure reply as delivered",
        )

    @pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "validly-signed"])
    @pytest.mark.parametrize("body", _GARBAGE, ids=lambda b: repr(b[:12]))
    def test_garbage_is_rejected_never_raised_otherwise(
        self, gateway: Gateway, body: bytes, signed: bool
    ) -> None:
        self._reject(gateway, body, signed)

    @pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "validly-signed"])
    def test_malformed_provider_bodies_are_rejected(self, gateway: Gateway, signed: bool) -> None:
        for body in self.malformed_notifications(gateway):
            self._reject(gateway, body, signed)

    def _reject(self, gateway: Gateway, body: bytes, signed: bool) -> None:
        headers = self.notification_headers(gateway, body) if signed else {}
        request = InboundRequest.post(body, headers)
        label = f"{'validly signed ' if signed else ''}garbage {body[:24]!r}"
        try:
            gateway.parse_notification(request)
        except NotificationRejected as exc:
            ack = gateway.reply(
                Verdict.REJECTED, None, Reason.of(exc.reason), request, accepted=False
            )
            check(gateway, not self.provider_accepts(ack), f"the reply to {label} is a success")
        except Exception as exc:
            fail(gateway, f"{label} raised {type(exc).__name__}, not NotificationRejected")
        else:
            fail(gateway, f"accepted {label}")

    def test_acknowledgements_follow_the_providers_rule(self, gateway: Gateway) -> None:
        request = self._notification(gateway)
        message = self._parse(gateway, request)
        for verdict in (Verdict.APPLIED, Verdict.DUPLICATE):
            ok = gateway.reply(verdict, message, Reason.NONE, request, accepted=True)
            check(gateway, ok.accepted, f"the {verdict.value} reply is not marked accepted")
            check(
                gateway,
                self.provider_accepts(ok),
                f"the provider would re-send after the {verdict.value} reply",
            )
            check(gateway, isinstance(ok.body, bytes), "a reply body must be bytes")
        refused = gateway.reply(
            Verdict.REJECTED, message, Reason.STATUS_UNCONFIRMED, request, accepted=False
        )
        check(gateway, not refused.accepted, "the failure reply is marked accepted")
        check(
            gateway,
            not self.provider_accepts(refused),
            "the provider would take the failure reply as success",
        )

    def test_reply_never_raises(self, gateway: Gateway) -> None:
        request = self._notification(gateway)
        message = self._parse(gateway, request)
        for verdict in Verdict:
            for parsed, req in ((message, request), (None, request), (None, None)):
                for accepted in (True, False):
                    try:
                        ack = gateway.reply(verdict, parsed, Reason.NONE, req, accepted=accepted)
                    except Exception as exc:
                        fail(gateway, f"reply({verdict.value}, accepted={accepted}) raised {exc!r}")
                    check(
                        gateway,
                        isinstance(ack, Acknowledgement),
                        "reply returned no Acknowledgement",
                    )

    @pytest.mark.parametrize("index", range(4), ids=lambda i: f"event{i}")
    def test_non_status_events_parse_as_provider_events(self, gateway: Gateway, index: int) -> None:
        if index >= len(self.event_kinds):
            pytest.skip("no such event kind declared")
        kind = self.event_kinds[index]
        amount = self._money(gateway, self.amounts[0])
        body = self.signed_event(
            gateway, kind=kind, merchant_reference=self.merchant_reference, amount=amount
        )
        request = self._notification(gateway, body=body)
        event = self._parse(gateway, request)
        check(
            gateway, isinstance(event, ProviderEvent), f"a {kind} event parsed as a status change"
        )
        assert isinstance(event, ProviderEvent)
        check(gateway, event.kind == kind, f"a {kind} event parsed as kind {event.kind!r}")
        check(
            gateway,
            event.merchant_reference == self.merchant_reference,
            "the event names another payment",
        )
        check(gateway, event.event_key, "an event without event_key")
        check(
            gateway,
            self._parse(gateway, request).event_key == event.event_key,
            "a re-delivered event gets another key",
        )
        check(
            gateway, event.amount in (None, amount), f"the event's amount parsed as {event.amount}"
        )
        ack = gateway.reply(Verdict.EVENT, event, Reason.NONE, request, accepted=True)
        check(gateway, self.provider_accepts(ack), f"the provider would re-send the {kind} event")

    # -- returns --------------------------------------------------------------------------

    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_signed_return_round_trips(self, gateway: Gateway, method: str) -> None:
        if method not in self.return_methods:
            pytest.skip(f"the provider does not return by {method}")
        fields = self.signed_return(
            gateway, merchant_reference=self.merchant_reference, status=self.notified_status
        )
        try:
            result = gateway.parse_return(self._return_request(fields, method))
        except NotificationRejected as exc:
            fail(gateway, f"rejected a signed return by {method}: {exc.reason}: {exc}")
            raise
        check(
            gateway,
            result.merchant_reference == self.merchant_reference,
            "the return names another payment",
        )
        check(
            gateway, result.status is self.notified_status, f"the return parsed as {result.status}"
        )

    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_forged_return_is_rejected(self, gateway: Gateway, method: str) -> None:
        if method not in self.return_methods:
            pytest.skip(f"the provider does not return by {method}")
        fields = dict(
            self.signed_return(
                gateway, merchant_reference=self.merchant_reference, status=self.notified_status
            )
        )
        forged = {k: (v + "X" if v == self.merchant_reference else v) for k, v in fields.items()}
        check(gateway, forged != fields, "signed_return must contain the merchant reference")
        for bad in (forged, {}):
            try:
                gateway.parse_return(self._return_request(bad, method))
            except NotificationRejected:
                continue
            except Exception as exc:
                fail(gateway, f"a bad return by {method} raised {type(exc).__name__}")
            fail(gateway, f"accepted a {'forged' if bad else 'empty'} return by {method}")

    def test_repr_keeps_secrets_out(self, gateway: Gateway) -> None:
        text = repr(gateway)
        for secret in self.secret_values(gateway):
            check(gateway, secret not in text, "repr() shows a secret")


def _forge(body: bytes) -> bytes:
    """Flip one character of a signed body outside its framing."""
    text = body.decode("utf-8", "replace")
    for old, new in (("a", "b"), ("b", "a"), ("1", "2"), ("2", "1"), ("0", "9")):
        idx = text.rfind(old)
        if idx != -1:
            return (text[:idx] + new + text[idx + 1 :]).encode()
    return body + b" "
