"""The relay's settings: the ``[plugins.rabbitmq_relay]`` table and the environment."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import attrs

from gateway_core import ConfigurationError, PaymentEvent, PluginConfig, register_secret

#: The table (``[plugins.rabbitmq_relay]``) and the entry point's name.
NAME = "rabbitmq_relay"
#: The broker URL, when not in the table (it holds the password: prefer the environment).
URL_ENV = "GATEWAY_RABBITMQ_URL"
EXCHANGE_ENV = "GATEWAY_RABBITMQ_EXCHANGE"

#: The placeholders a routing-key pattern may use.
ROUTING_FIELDS = ("kind", "gateway", "provider")
_SAMPLE = {"kind": "paid", "gateway": "dana", "provider": "faspay_dana"}


@attrs.frozen
class RelayConfig:
    """Where and how the relay publishes.

    ``url`` (secret: it carries the password) is an AMQP URL, ``amqp://user:pass@host:5672/vhost``
    (``amqps://`` for TLS). ``routing_key`` is a pattern over ``{kind}``, ``{gateway}`` and
    ``{provider}``. ``declare`` declares the exchange (durable, type ``topic``) on connect, and
    ``queue`` (when set) a durable queue bound to every key (``#``) so no event is unroutable.
    """

    url: str = attrs.field(repr=False)
    exchange: str = "gateway.events"
    routing_key: str = "{kind}"
    declare: bool = True
    queue: str = ""
    connect_timeout: float = 5.0
    heartbeat: int = 30
    blocked_timeout: float = 30.0
    reconnect_delay: float = 1.0

    def __attrs_post_init__(self) -> None:
        parts = urlsplit(self.url)
        register_secret(self.url, unquote(parts.password or ""))
        if parts.scheme not in {"amqp", "amqps"} or not parts.hostname:
            raise ConfigurationError(
                "setting 'url' (or $GATEWAY_RABBITMQ_URL) must be an amqp:// or amqps:// URL "
                "with a host",
                key="url",
                provider=f"plugins.{NAME}",
            )
        try:
            self.routing_key.format_map(_SAMPLE)
        except (KeyError, IndexError, ValueError):
            raise ConfigurationError(
                f"setting 'routing_key' may use only {{{'}, {'.join(ROUTING_FIELDS)}}}, "
                f"got {self.routing_key!r}",
                key="routing_key",
                provider=f"plugins.{NAME}",
            ) from None

    @property
    def where(self) -> str:
        """The broker's host and port, for messages (never the credentials)."""
        parts = urlsplit(self.url)
        port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
        return f"{parts.hostname}:{port}"

    def routing_key_for(self, event: PaymentEvent) -> str:
        """The routing key of ``event``'s message."""
        return self.routing_key.format_map(
            {"kind": event.kind.value, "gateway": event.gateway_name, "provider": event.provider}
        )

    @classmethod
    def from_config(cls, config: PluginConfig) -> RelayConfig:
        """Read ``[plugins.rabbitmq_relay]`` (and the environment); unknown keys are errors."""
        reader = config.reader(
            NAME,
            env_names={"url": URL_ENV, "exchange": EXCHANGE_ENV},
            secrets=frozenset({"url"}),
        )
        url = reader.text("url")
        register_secret(url)
        built = cls(
            url=url,
            exchange=reader.text("exchange", "gateway.events", pattern=r"[\w.:/-]{1,255}"),
            routing_key=reader.text("routing_key", "{kind}", max_length=255),
            declare=reader.flag("declare", True),
            queue=reader.text("queue", "", max_length=255),
            connect_timeout=reader.number("connect_timeout", 5.0, minimum=0.1, maximum=120.0),
            heartbeat=reader.integer("heartbeat", 30, minimum=1, maximum=3600),
            blocked_timeout=reader.number("blocked_timeout", 30.0, minimum=0.1, maximum=3600.0),
            reconnect_delay=reader.number("reconnect_delay", 1.0, minimum=0.0, maximum=300.0),
        )
        reader.finish()
        return built
