"""The hook contract between gateway_core, provider plugins and order systems.

Hooks are pluggy hooks of the project ``gateway_core``; every hook name starts with
``gateway_``. A plugin is a module (or object) with functions decorated by :data:`hookimpl`,
exposed through the ``gateway_core`` entry-point group or registered by hand on a
:class:`gateway_core.PluginHost`.

Provider plugins implement :func:`gateway_register_providers`. Order systems implement the
lifecycle hooks: each receives one :class:`gateway_core.PaymentEvent`, is called after the
ledger has committed the change, at least once (a handler that raises is retried later), and
its return value is ignored. Handlers should be idempotent on ``event.event_id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from gateway_core._config import PluginConfig
    from gateway_core._events import PaymentEvent
    from gateway_core._registry import ProviderRegistry

PROJECT = "gateway_core"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gateway_register_providers(registry: ProviderRegistry) -> None:
    """Register the gateway classes this plugin provides with ``registry.add(GatewayClass)``.

    Called once per plugin when the plugin host starts. Registering a provider name that
    another plugin already took is an error that names both plugins.
    """


@hookspec
def gateway_configure(config: PluginConfig) -> None:
    """Read this plugin's settings and enable the hook implementations they turn on.

    ``config.reader(name)`` reads the ``[plugins.<name>]`` table (and the environment);
    ``config.enable(obj, name)`` registers ``obj``'s hook implementations once every plugin
    has read its settings. Called by :func:`gateway_core.build_runtime`. A plugin whose hooks
    need configuration (a relay to a broker, say) implements them on an object it enables
    here, not at module level: unconfigured, it implements no hook, so the process claims no
    outbox event it could not deliver. A ``[plugins.<name>]`` table no plugin reads is an
    error.
    """


@hookspec
def gateway_payment_created(event: PaymentEvent) -> None:
    """A payment was created at the provider and the customer can be sent to pay."""


@hookspec
def gateway_payment_paid(event: PaymentEvent) -> None:
    """The provider confirmed the payment as paid (by a verified notification or an inquiry).

    Fulfil the order here. Fired once per payment; a later duplicate notification does not
    fire it again.
    """


@hookspec
def gateway_payment_failed(event: PaymentEvent) -> None:
    """The provider reported the payment as failed; the order may offer a new attempt."""


@hookspec
def gateway_payment_expired(event: PaymentEvent) -> None:
    """The payment expired unpaid."""


@hookspec
def gateway_payment_cancelled(event: PaymentEvent) -> None:
    """The payment was cancelled before it was paid."""


@hookspec
def gateway_payment_reversed(event: PaymentEvent) -> None:
    """A paid payment was reversed by the provider; the order should be refunded or held."""


@hookspec
def gateway_payment_needs_review(event: PaymentEvent) -> None:
    """Something suspicious or contradictory arrived and was recorded, not applied.

    ``event.reason`` says what: a failure after paid, a paid notification for a cancelled or
    superseded bill (money may need refunding), an amount or reference mismatch.
    """


@hookspec
def gateway_provider_event(event: PaymentEvent) -> None:
    """A verified provider message that is not a status change arrived for a payment: a
    refund, a dispute, a chargeback, an informational notice.

    ``event.provider_kind`` names it (``"refund.created"``), ``event.event_amount`` is the
    amount it names (None when it names none); ``event.status`` is the payment's status,
    which the event did not change. Called after the ledger committed it, at least once per
    provider event (a re-delivery by the provider is not delivered again).
    """


@hookspec
def gateway_refund_succeeded(event: PaymentEvent) -> None:
    """The provider refunded ``event.event_amount`` of a paid payment (``event.refund_key``
    names the refund; ``event.status`` is ``partially_refunded`` or ``refunded``). Called
    after the ledger committed it, at least once per refund."""


@hookspec
def gateway_refund_failed(event: PaymentEvent) -> None:
    """The provider refused the refund ``event.refund_key``: nothing was refunded and the
    amount may be refunded again (with a new key)."""
