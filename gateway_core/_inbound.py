"""The vocabulary of inbound messages: the request a provider (or the customer's browser) sent,
a provider event that is not a status change, and the verdict and reason the payment service
decides for each message.

Inbound messages flow one way::

    web ─► PaymentService ─► gateway.parse_notification(request) ─► Notification | ProviderEvent
              │ decides a (Verdict, Reason) and writes once
              └─► gateway.reply(verdict, message, reason, request) ─► Acknowledgement ─► web

The gateway parses and renders; the service decides; the web layer talks only to the service.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import attrs

from gateway_core._models import Money

_FORM = "application/x-www-form-urlencoded"


def _lower_keys(value: Mapping[str, str] | None) -> dict[str, str]:
    if not value:
        return {}
    return {str(k).lower(): str(v) for k, v in value.items()}


def _upper(value: object) -> str:
    return str(value).upper()


def _plain(value: Mapping[str, str] | None) -> dict[str, str]:
    # Values are not coerced: one that is not a string is the gateway's to reject.
    return dict(value or {})


@attrs.frozen(eq=False)
class InboundRequest:
    """One HTTP request as a gateway parses it, free of any web framework.

    ``headers`` keys are lower-cased; ``query`` is the URL's query string, ``form`` the
    url-encoded form of a POST (empty otherwise) and ``body`` the raw body bytes, kept for
    signature checks. Values are kept out of ``repr`` (they carry signatures).
    """

    method: str = attrs.field(default="POST", converter=_upper)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_lower_keys, repr=False)
    query: Mapping[str, str] = attrs.field(factory=dict, converter=_plain, repr=False)
    form: Mapping[str, str] = attrs.field(factory=dict, converter=_plain, repr=False)
    body: bytes = attrs.field(default=b"", repr=False)

    @classmethod
    def post(
        cls,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        query: Mapping[str, str] | None = None,
    ) -> InboundRequest:
        """A POST of ``body``; a url-encoded body (by its ``Content-Type``) also fills
        ``form``."""
        lowered = _lower_keys(headers)
        form: dict[str, str] = {}
        content_type = lowered.get("content-type")
        if (
            content_type
            and content_type.split(";")[0].strip().lower() == _FORM
            and isinstance(body, bytes | bytearray)
        ):
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        # Not coerced: a body that is not bytes is the gateway's to reject as malformed.
        # The fields are already what the converters would make them (upper-case method,
        # lower-cased header keys, plain dicts): set them directly rather than convert twice.
        request = cls.__new__(cls)
        _set = object.__setattr__
        _set(request, "method", "POST")
        _set(request, "headers", lowered)
        _set(request, "query", dict(query) if query else {})
        _set(request, "form", form)
        _set(request, "body", body)
        return request

    @classmethod
    def get(
        cls, query: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> InboundRequest:
        """A GET with the query string ``query``."""
        return cls("GET", headers or {}, query, {}, b"")

    @property
    def params(self) -> dict[str, str]:
        """The query and the form together (the form wins): a return's fields, whether the
        provider sends the browser back by GET or by POST."""
        return {**self.query, **self.form}


@attrs.frozen
class ProviderEvent:
    """A verified provider message that is not a status change of a payment: a refund, a
    dispute, a chargeback, an informational notice.

    ``kind`` is a dotted name (``"refund.created"``, ``"dispute.opened"``); ``event_key`` is
    stable for the same provider event, so a re-delivery is recognised. ``amount`` is the
    amount the event names (a refund's), when it names one. The service journals it,
    acknowledges it with success and delivers it once to the ``gateway_provider_event`` hook;
    it never changes a payment's status.
    """

    provider: str
    kind: str
    event_key: str
    merchant_reference: str
    provider_reference: str = ""
    amount: Money | None = None
    fields: Mapping[str, Any] = attrs.field(factory=dict, repr=False)


class Verdict(enum.StrEnum):
    """What the payment service decided about one inbound message."""

    APPLIED = "applied"  # a status change was written
    DUPLICATE = "duplicate"  # already known: no effect, success reply
    IGNORED = "ignored"  # stale progress: journalled only
    REVIEW = "review"  # recorded, not applied; a needs_review event
    REJECTED = "rejected"  # not acceptable (or not now): the provider's failure reply
    EVENT = "event"  # a provider event, journalled and delivered to its hook


class Reason(enum.StrEnum):
    """Why the service decided what it did (``""`` when nothing needs saying).

    The ``<reported>_after_<current>`` members are the state machine's: a reported status
    that may not follow the current one (:func:`gateway_core._state.review_reason`).
    """

    NONE = ""
    REJECTED = "rejected"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    UNKNOWN_PAYMENT = "unknown_payment"
    MERCHANT_MISMATCH = "merchant_mismatch"
    AMOUNT_MISMATCH = "amount_mismatch"
    REFERENCE_MISMATCH = "reference_mismatch"
    #: The notification is for another payment method than the attempt's (a plugin's check,
    #: :meth:`Gateway.notification_mismatch`).
    METHOD_MISMATCH = "method_mismatch"
    REFERENCE_UNCONFIRMED = "reference_unconfirmed"
    STATUS_UNCONFIRMED = "status_unconfirmed"
    PAID_TWICE = "paid_twice"
    #: The provider reports a refund that would take the refunded total above the paid amount.
    REFUND_EXCEEDS_PAID = "refund_exceeds_paid"
    TOO_LARGE = "too_large"
    LENGTH_REQUIRED = "length_required"
    SOURCE_NOT_ALLOWED = "source_not_allowed"
    LEDGER_UNAVAILABLE = "ledger_unavailable"
    OUTCOME_UNKNOWN = "outcome_unknown"
    # -- the state machine: money may have moved, a review ----------------------------------
    PAID_AFTER_CANCELLED = "paid_after_cancelled"
    PAID_AFTER_EXPIRED = "paid_after_expired"
    PAID_AFTER_FAILED = "paid_after_failed"
    CANCELLED_AFTER_PAID = "cancelled_after_paid"
    CANCELLED_AFTER_REVERSED = "cancelled_after_reversed"
    EXPIRED_AFTER_PAID = "expired_after_paid"
    EXPIRED_AFTER_REVERSED = "expired_after_reversed"
    FAILED_AFTER_PAID = "failed_after_paid"
    FAILED_AFTER_REVERSED = "failed_after_reversed"
    REVERSED_AFTER_CANCELLED = "reversed_after_cancelled"
    REVERSED_AFTER_EXPIRED = "reversed_after_expired"
    REVERSED_AFTER_FAILED = "reversed_after_failed"
    REVERSED_AFTER_IN_PROCESS = "reversed_after_in_process"
    REVERSED_AFTER_PENDING = "reversed_after_pending"
    # -- the state machine: stale progress or another "not paid", ignored -------------------
    CANCELLED_AFTER_EXPIRED = "cancelled_after_expired"
    CANCELLED_AFTER_FAILED = "cancelled_after_failed"
    EXPIRED_AFTER_CANCELLED = "expired_after_cancelled"
    EXPIRED_AFTER_FAILED = "expired_after_failed"
    FAILED_AFTER_CANCELLED = "failed_after_cancelled"
    FAILED_AFTER_EXPIRED = "failed_after_expired"
    IN_PROCESS_AFTER_CANCELLED = "in_process_after_cancelled"
    IN_PROCESS_AFTER_EXPIRED = "in_process_after_expired"
    IN_PROCESS_AFTER_FAILED = "in_process_after_failed"
    IN_PROCESS_AFTER_PAID = "in_process_after_paid"
    IN_PROCESS_AFTER_REVERSED = "in_process_after_reversed"
    PENDING_AFTER_CANCELLED = "pending_after_cancelled"
    PENDING_AFTER_EXPIRED = "pending_after_expired"
    PENDING_AFTER_FAILED = "pending_after_failed"
    PENDING_AFTER_IN_PROCESS = "pending_after_in_process"
    PENDING_AFTER_PAID = "pending_after_paid"
    PENDING_AFTER_REVERSED = "pending_after_reversed"
    UNKNOWN_AFTER_CANCELLED = "unknown_after_cancelled"
    UNKNOWN_AFTER_EXPIRED = "unknown_after_expired"
    UNKNOWN_AFTER_FAILED = "unknown_after_failed"
    UNKNOWN_AFTER_IN_PROCESS = "unknown_after_in_process"
    UNKNOWN_AFTER_PAID = "unknown_after_paid"
    UNKNOWN_AFTER_PENDING = "unknown_after_pending"
    UNKNOWN_AFTER_REVERSED = "unknown_after_reversed"

    # -- the state machine around refunds: money may have moved, a review ------------------
    CANCELLED_AFTER_PARTIALLY_REFUNDED = "cancelled_after_partially_refunded"
    CANCELLED_AFTER_REFUNDED = "cancelled_after_refunded"
    EXPIRED_AFTER_PARTIALLY_REFUNDED = "expired_after_partially_refunded"
    EXPIRED_AFTER_REFUNDED = "expired_after_refunded"
    FAILED_AFTER_PARTIALLY_REFUNDED = "failed_after_partially_refunded"
    FAILED_AFTER_REFUNDED = "failed_after_refunded"
    PARTIALLY_REFUNDED_AFTER_CANCELLED = "partially_refunded_after_cancelled"
    PARTIALLY_REFUNDED_AFTER_EXPIRED = "partially_refunded_after_expired"
    PARTIALLY_REFUNDED_AFTER_FAILED = "partially_refunded_after_failed"
    PARTIALLY_REFUNDED_AFTER_IN_PROCESS = "partially_refunded_after_in_process"
    PARTIALLY_REFUNDED_AFTER_PENDING = "partially_refunded_after_pending"
    PARTIALLY_REFUNDED_AFTER_REVERSED = "partially_refunded_after_reversed"
    REFUNDED_AFTER_CANCELLED = "refunded_after_cancelled"
    REFUNDED_AFTER_EXPIRED = "refunded_after_expired"
    REFUNDED_AFTER_FAILED = "refunded_after_failed"
    REFUNDED_AFTER_IN_PROCESS = "refunded_after_in_process"
    REFUNDED_AFTER_PENDING = "refunded_after_pending"
    REFUNDED_AFTER_REVERSED = "refunded_after_reversed"
    REVERSED_AFTER_REFUNDED = "reversed_after_refunded"
    # -- the state machine around refunds: stale progress, ignored ------------------------
    IN_PROCESS_AFTER_PARTIALLY_REFUNDED = "in_process_after_partially_refunded"
    IN_PROCESS_AFTER_REFUNDED = "in_process_after_refunded"
    PENDING_AFTER_PARTIALLY_REFUNDED = "pending_after_partially_refunded"
    PENDING_AFTER_REFUNDED = "pending_after_refunded"
    UNKNOWN_AFTER_PARTIALLY_REFUNDED = "unknown_after_partially_refunded"
    UNKNOWN_AFTER_REFUNDED = "unknown_after_refunded"

    @classmethod
    def of(cls, code: str) -> Reason:
        """The member for ``code`` (a rejection's ``reason``), ``REJECTED`` for a code the
        core does not know (a plugin's own rejection class)."""
        member = cls._value2member_map_.get(code) if code.__class__ is str else None
        if member is not None:
            return member  # type: ignore[return-value]
        try:
            return cls(code)
        except ValueError:
            return cls.REJECTED
