"""The publisher: every hook event to a RabbitMQ exchange, confirmed before the hook returns.

The hook returns only after the broker confirmed the message (publisher confirms), so the
outbox marks an event delivered only once RabbitMQ has it. Anything else raises
:class:`RelayError` and the outbox keeps the event for a later attempt: the broker
unreachable, a connection lost before the confirm, a negative acknowledgement, a message no
queue would take (published ``mandatory``). Delivery to the broker is therefore at least once:
a confirm lost with its connection means the event is published again. Consumers dedupe on the
message id, which is the event id.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pika
import pika.exceptions

from gateway_core import PaymentEvent, get_logger, hookimpl
from gateway_rabbitmq_relay._message import SCHEMA, encode_event
from gateway_rabbitmq_relay._settings import RelayConfig

log = get_logger(__name__)

#: Errors after which the connection is dropped and made again on the next publish: any
#: but the broker's refusals (pika's connection workflow raises errors outside its
#: ``AMQPError`` tree, a handshake timeout for one).
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (Exception,)


#: The broker's answers to a publish that it did not take: the connection is fine.
_REFUSALS: tuple[type[BaseException], ...] = (
    pika.exceptions.UnroutableError,
    pika.exceptions.NackError,
)


class RelayError(Exception):
    """A publish the broker did not confirm; the event stays in the outbox. The message names
    the broker by host and port only (never its credentials)."""


class RabbitRelay:
    """A hook plugin that publishes each event to ``config.exchange`` and waits for the
    confirm.

    One connection and one channel, used under a lock (pika's blocking connection is not
    thread-safe; the service may deliver from several threads). Connected lazily, on the
    first publish; after a failure the connection is dropped and made again on a later
    publish, at most once per ``reconnect_delay`` seconds (until then publishes fail at once,
    so a web request does not wait on a broker known to be down). Connecting is bounded by
    ``connect_timeout``; a confirm that never comes by the heartbeat (a silent connection is
    declared dead after missed heartbeats).
    """

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._connection: Any = None
        self._channel: Any = None
        self._down_until = 0.0
        self._pid = os.getpid()
        self.published = 0

    def __repr__(self) -> str:
        return (
            f"RabbitRelay(broker={self.config.where!r}, exchange={self.config.exchange!r}, "
            f"routing_key={self.config.routing_key!r})"
        )

    # -- connection --------------------------------------------------------------------------

    def _parameters(self) -> pika.URLParameters:
        params = pika.URLParameters(self.config.url)
        params.connection_attempts = 1
        params.retry_delay = 0
        params.socket_timeout = self.config.connect_timeout
        params.stack_timeout = self.config.connect_timeout * 2
        params.blocked_connection_timeout = self.config.blocked_timeout
        params.heartbeat = self.config.heartbeat
        params.client_properties = {"connection_name": "gateway-rabbitmq-relay"}
        return params

    def _connect(self) -> None:
        connection = pika.BlockingConnection(self._parameters())
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            if self.config.declare:
                channel.exchange_declare(
                    exchange=self.config.exchange, exchange_type="topic", durable=True
                )
                if self.config.queue:
                    channel.queue_declare(queue=self.config.queue, durable=True)
                    channel.queue_bind(
                        queue=self.config.queue, exchange=self.config.exchange, routing_key="#"
                    )
        except BaseException:
            _close_quietly(connection)
            raise
        self._connection, self._channel = connection, channel
        log.info("connected to RabbitMQ at %s", self.config.where)

    def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            _close_quietly(connection)

    def close(self) -> None:
        """Close the connection (a later publish opens a new one)."""
        with self._lock:
            self._drop()

    # -- publishing --------------------------------------------------------------------------

    def publish(self, event: PaymentEvent) -> None:
        """Publish ``event`` and return once the broker confirmed it; :class:`RelayError`
        otherwise."""
        body = encode_event(event)
        key = self.config.routing_key_for(event)
        properties = pika.BasicProperties(
            message_id=event.event_id,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=pika.DeliveryMode.Persistent,
            type=SCHEMA,
            timestamp=int(event.occurred_at.timestamp()),
            app_id="gateway-rabbitmq-relay",
        )
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's socket is not ours
                self._connection = self._channel = None
                self._pid = os.getpid()
            reused = self._connection is not None
            try:
                try:
                    self._publish(key, body, properties)
                except _REFUSALS:
                    raise
                except _CONNECTION_ERRORS:
                    self._drop()
                    if not reused:
                        raise
                    # A connection idle past the broker's heartbeat is closed under us: once
                    # more on a fresh one (a confirm lost with the old one means a duplicate,
                    # which consumers dedupe on the message id).
                    self._publish(key, body, properties)
            except _REFUSALS as exc:  # the broker answered: the channel stays usable
                raise self._failure(event, exc) from None
            except _CONNECTION_ERRORS as exc:
                self._drop()
                raise self._failure(event, exc) from None
            self.published += 1

    def _publish(self, key: str, body: bytes, properties: pika.BasicProperties) -> None:
        if self._connection is None:
            now = time.monotonic()
            if now < self._down_until:
                raise _Unreachable(f"waiting {self._down_until - now:.1f}s before reconnecting")
            try:
                self._connect()
            except _CONNECTION_ERRORS:
                self._down_until = time.monotonic() + self.config.reconnect_delay
                raise
        self._channel.basic_publish(
            exchange=self.config.exchange,
            routing_key=key,
            body=body,
            properties=properties,
            mandatory=True,
        )

    def _failure(self, event: PaymentEvent, exc: BaseException) -> RelayError:
        where = f"RabbitMQ at {self.config.where}"
        target = f"exchange {self.config.exchange!r}"
        if isinstance(exc, pika.exceptions.UnroutableError):
            problem = f"unroutable: no queue bound to {target} took it (mandatory publish)"
        elif isinstance(exc, pika.exceptions.NackError):
            problem = f"refused by {where} (negative publisher confirm)"
        elif isinstance(exc, _Unreachable):
            problem = f"{where} unreachable, {exc}"
        elif isinstance(exc, pika.exceptions.ChannelClosedByBroker):
            # The broker's reply text names the problem (a missing exchange, say): no secret.
            problem = f"{where} closed the channel: {exc.reply_code} {exc.reply_text}"
        else:
            problem = f"{where} unreachable or connection lost ({type(exc).__name__})"
        log.warning("event %s not published: %s", event.event_id, problem)
        return RelayError(f"event {event.event_id} not published: {problem}")

    # -- the hooks: every event kind -------------------------------------------------------

    @hookimpl
    def gateway_payment_created(self, event: PaymentEvent) -> None:
        self.publish(event)

    @hookimpl
    def gateway_payment_paid(self, event: PaymentEvent) -> None:
        self.publish(event)

    @hookimpl
    def gateway_payment_failed(self, event: PaymentEvent) -> None:
        self.publish(event)

    @hookimpl
    def gateway_payment_expired(self, event: PaymentEvent) -> None:
        self.publish(event)

    @hookimpl
    def gateway_payment_cancelled(self, event: PaymentEvent) -> None:
        self.publish(event)

    @hookimpl
    def gateway_payment_reversed(self, event: PaymentEvent) -> None:
        self.publish(event)

    @hookimpl
    def gateway_payment_needs_review(self, event: PaymentEvent) -> None:
        self.publish(event)

    @hookimpl
    def gateway_provider_event(self, event: PaymentEvent) -> None:
        self.publish(event)

    @hookimpl
    def gateway_refund_succeeded(self, event: PaymentEvent) -> None:
        self.publish(event)

    @hookimpl
    def gateway_refund_failed(self, event: PaymentEvent) -> None:
        self.publish(event)


class _Unreachable(pika.exceptions.AMQPConnectionError):  # type: ignore[misc]
    """The broker failed to connect less than ``reconnect_delay`` seconds ago."""


def _close_quietly(connection: Any) -> None:
    try:
        if connection.is_open:
            connection.close()
    except Exception as exc:  # the connection is being dropped: nothing to save
        log.debug("closing the RabbitMQ connection: %s", type(exc).__name__)
