"""The ``gateway_core`` entry point of the RabbitMQ relay.

Loading this module imports neither pika nor the relay and implements no event hook: the
relay's hooks exist only when :func:`gateway_configure` finds it configured (a
``[plugins.rabbitmq_relay]`` table, or ``$GATEWAY_RABBITMQ_URL``). Unconfigured, a process
claims no outbox event on its behalf, so none waits on a broker nobody named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway_core import hookimpl

if TYPE_CHECKING:
    from gateway_core import PluginConfig

#: The name the relay's hook implementations are registered under.
PUBLISHER_NAME = "rabbitmq_relay.publisher"


@hookimpl
def gateway_configure(config: PluginConfig) -> None:
    """Enable the relay when ``[plugins.rabbitmq_relay]`` or ``$GATEWAY_RABBITMQ_URL`` is set."""
    from gateway_rabbitmq_relay._settings import NAME, URL_ENV, RelayConfig

    if not config.has(NAME) and not config.environ.get(URL_ENV):
        return
    settings = RelayConfig.from_config(config)
    from gateway_rabbitmq_relay._relay import RabbitRelay  # pika, only when configured

    config.enable(RabbitRelay(settings), PUBLISHER_NAME)
