"""Prometheus metrics of a payment service (the optional ``metrics`` extra:
``pip install 'gateway-core[metrics]'``, which brings ``prometheus_client``).

:class:`Metrics` keeps its own :class:`~prometheus_client.CollectorRegistry` (not the
process-wide default, so several services, and tests, never collide; pass one to share it)::

    from gateway_core.metrics import Metrics, metrics_wsgi_app

    metrics = Metrics()
    metrics.watch_outbox(ledger)                # the backlog gauges, read at each scrape
    service = PaymentService(..., metrics=metrics)
    app = mount_metrics(make_wsgi_app(service), metrics)   # GET /metrics

``gateway serve --metrics`` (or ``[service] metrics = true``) does all of this. The series:

``gateway_inbound_messages_total{gateway,provider,kind,verdict,reason}``
    every notification (``kind="notification"``: ``verdict`` applied, duplicate, ignored,
    review, rejected, event; ``reason`` why, e.g. ``bad_signature``) and customer return
    (``kind="return"``: ``received`` or ``rejected`` with its reason).
``gateway_provider_calls_total{provider,operation,outcome}``,
``gateway_provider_call_seconds{provider,operation}`` (histogram),
``gateway_provider_retries_total{provider,operation}``
    every logical call to a provider (retries included in its time), its outcome (``ok``,
    ``never_sent``, ``outcome_unknown``, ``unavailable``, ``refused``, ``malformed``...: see
    :func:`gateway_core._retry.call_outcome`) and the retries it took. Provider plugins make
    their own clients, so these count every call of the process.
``gateway_reconcile_payments_total{gateway,result}``
    each payment a reconcile pass examined: ``changed``, ``unchanged``, ``waiting``,
    ``review`` or ``error``.
``gateway_outbox_events_delivered_total{kind}``, ``gateway_outbox_events_failed_total{kind}``
    hook deliveries by this process, and those whose hook raised (retried later).
``gateway_outbox_backlog{kind}``, ``gateway_outbox_oldest_age_seconds{kind}``, ``gateway_ledger_up``
    read from the ledger at each scrape: the undelivered events per kind and the age of the
    oldest (the same in every process sharing the ledger: alert on ``max``, not ``sum``),
    and whether that read succeeded.
``gateway_refunds_open{status}``, ``gateway_refunds_open_oldest_age_seconds{status}``
    read from the ledger at each scrape too: refunds not settled yet (``requested``,
    ``pending``, ``unknown``: an answer was lost) and how long the oldest has waited.

Counters are per process; Prometheus adds up the processes it scrapes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway_core._config import SettingsReader
from gateway_core._exceptions import ConfigurationError
from gateway_core._redact import get_logger
from gateway_core._service_metrics import NULL_METRICS, Progress, ServiceMetrics

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

    from gateway_core.ledger import Ledger

__all__ = [
    "CALL_SECONDS_BUCKETS",
    "Metrics",
    "ServiceMetrics",
    "available",
    "metrics_from_settings",
    "metrics_route",
    "metrics_wsgi_app",
    "mount_metrics",
    "switch_metrics",
]

log = get_logger("gateway_core.metrics")

#: Buckets of ``gateway_provider_call_seconds`` (a call may retry up to its 30 s deadline).
CALL_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)

_INSTALL = "metrics need prometheus_client: pip install 'gateway-core[metrics]'"

#: What each progress word of a reconcile pass counts as.
_RECONCILE_RESULT = {
    "changed": "changed",
    "applied": "changed",
    "waiting": "waiting",
    "error": "error",
    "review": "review",
}


def available() -> bool:
    """Whether ``prometheus_client`` can be imported (the ``metrics`` extra)."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


class Metrics(ServiceMetrics):
    """The payment service's Prometheus metrics (see the module docstring for the series).

    ``registry``: where the series live (default: a new registry of this object's own).
    ``observe_provider_calls``: count every provider call of the process (until
    :meth:`close`). Raises :class:`~gateway_core.ConfigurationError` when
    ``prometheus_client`` is not installed.
    """

    enabled = True

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        observe_provider_calls: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Histogram
        except ImportError:
            raise ConfigurationError(_INSTALL, key="service.metrics") from None
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self._inbound = Counter(
            "gateway_inbound_messages",
            "Inbound messages (notifications, customer returns) by the service's verdict.",
            ["gateway", "provider", "kind", "verdict", "reason"],
            registry=reg,
        )
        self._calls = Counter(
            "gateway_provider_calls",
            "Logical calls to a provider (retries included), by outcome.",
            ["provider", "operation", "outcome"],
            registry=reg,
        )
        self._call_seconds = Histogram(
            "gateway_provider_call_seconds",
            "Time of a logical call to a provider, retries and their waits included.",
            ["provider", "operation"],
            buckets=CALL_SECONDS_BUCKETS,
            registry=reg,
        )
        self._retries = Counter(
            "gateway_provider_retries",
            "Retries of provider calls (attempts after the first).",
            ["provider", "operation"],
            registry=reg,
        )
        self._reconcile = Counter(
            "gateway_reconcile_payments",
            "Payments examined by reconciliation, by result.",
            ["gateway", "result"],
            registry=reg,
        )
        self._delivered = Counter(
            "gateway_outbox_events_delivered",
            "Outbox events delivered to the hooks by this process.",
            ["kind"],
            registry=reg,
        )
        self._failed = Counter(
            "gateway_outbox_events_failed",
            "Outbox event deliveries whose hook raised (retried later).",
            ["kind"],
            registry=reg,
        )
        self._children: dict[tuple[Any, ...], Any] = {}
        self._outbox: _OutboxCollector | None = None
        self._clock = clock
        self._lock = threading.Lock()
        self._observing = observe_provider_calls
        if observe_provider_calls:
            from gateway_core._retry import observe_calls

            observe_calls(self)

    def __repr__(self) -> str:
        return f"Metrics(outbox={'watched' if self._outbox else 'not watched'})"

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:  # a race only makes the same child twice
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- what the service tells -----------------------------------------------------------

    def inbound(self, gateway: str, provider: str, kind: str, verdict: str, reason: str) -> None:
        self._child(self._inbound, gateway, provider, kind, str(verdict), str(reason)).inc()

    def delivered(self, kind: str) -> None:
        self._child(self._delivered, str(kind)).inc()

    def delivery_failed(self, kind: str) -> None:
        self._child(self._failed, str(kind)).inc()

    def reconcile_progress(self, progress: Progress | None) -> Progress:
        def counted(record: Any, verdict: str) -> None:
            result = _RECONCILE_RESULT.get(verdict, "unchanged")
            self._child(self._reconcile, str(record.gateway), result).inc()
            if progress is not None:
                progress(record, verdict)

        return counted

    def provider_call(
        self, provider: str, operation: str, outcome: str, seconds: float, retries: int
    ) -> None:
        """One finished provider call (:class:`gateway_core._retry.CallObserver`)."""
        self._child(self._calls, provider, operation, outcome).inc()
        self._child(self._call_seconds, provider, operation).observe(seconds)
        if retries:
            self._child(self._retries, provider, operation).inc(retries)

    # -- the ledger's gauges and the exposition ------------------------------------------

    def watch_outbox(self, ledger: Ledger) -> None:
        """Read the outbox backlog of ``ledger`` at every scrape (once per :class:`Metrics`)."""
        with self._lock:
            if self._outbox is not None:
                raise ValueError("this Metrics already watches a ledger's outbox")
            self._outbox = _OutboxCollector(ledger, self._clock)
        self.registry.register(self._outbox)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (the text format, or OpenMetrics when ``accept`` asks for it) and
        its content type."""
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def close(self) -> None:
        if self._observing:
            from gateway_core._retry import observe_calls

            observe_calls(self, on=False)
            self._observing = False


class _OutboxCollector:
    """The gauges read from the ledger at each scrape (a custom collector)."""

    def __init__(self, ledger: Ledger, clock: Callable[[], datetime]) -> None:
        self._ledger = ledger
        self._clock = clock
        self._failing = False  # one warning per incident, not one per scrape

    def _families(self) -> tuple[Any, ...]:
        from prometheus_client.core import GaugeMetricFamily

        return (
            GaugeMetricFamily(
                "gateway_outbox_backlog", "Undelivered outbox events, by kind.", labels=["kind"]
            ),
            GaugeMetricFamily(
                "gateway_outbox_oldest_age_seconds",
                "Age of the oldest undelivered outbox event, by kind.",
                labels=["kind"],
            ),
            GaugeMetricFamily("gateway_ledger_up", "1 when the ledger answered this scrape."),
            GaugeMetricFamily(
                "gateway_refunds_open",
                "Refunds not settled yet (requested, pending, unknown), by status.",
                labels=["status"],
            ),
            GaugeMetricFamily(
                "gateway_refunds_open_oldest_age_seconds",
                "Time since the oldest open refund of that status last changed.",
                labels=["status"],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()  # without samples: registering reads nothing

    def collect(self) -> Iterator[Metric]:
        backlog, age, up, refunds, refund_age = self._families()
        try:
            counts = self._ledger.outbox_backlog_by_kind()
            open_refunds = self._ledger.open_refunds_by_status()
        except Exception as exc:  # a scrape never fails: the gauge says the ledger is down
            if not self._failing:
                self._failing = True
                log.warning("metrics: the ledger did not answer (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        if self._failing:
            self._failing = False
            log.info("metrics: the ledger answers again")
        now = self._clock()
        for kind, (count, oldest) in sorted(counts.items()):
            backlog.add_metric([kind], count)
            age.add_metric([kind], max((now - oldest).total_seconds(), 0.0))
        for status, (count, oldest) in sorted(open_refunds.items()):
            refunds.add_metric([status], count)
            refund_age.add_metric([status], max((now - oldest).total_seconds(), 0.0))
        up.add_metric([], 1)
        yield from (backlog, age, up, refunds, refund_age)


def metrics_from_settings(
    service: Mapping[str, Any], *, enabled: bool | None = None
) -> ServiceMetrics:
    """The metrics a configuration's ``[service]`` table asks for (``metrics = true``), or
    ``enabled`` when given (a command-line switch): a :class:`Metrics`, or the no-op
    :class:`ServiceMetrics`. Metrics asked for without ``prometheus_client`` installed are a
    no-op, with a warning."""
    wanted = SettingsReader(service, provider="service").flag("metrics", False)
    if enabled is not None:
        wanted = enabled
    if not wanted:
        return NULL_METRICS
    if not available():
        log.warning("%s; metrics are off", _INSTALL)
        return NULL_METRICS
    return Metrics()


def switch_metrics(service: Any, ledger: Ledger, wanted: bool | None) -> ServiceMetrics:
    """Turn a built service's metrics on or off as a command line asks (``--metrics`` /
    ``--no-metrics``; ``None`` keeps what the configuration made) and return them: metrics
    turned on here watch ``ledger``'s outbox. :class:`~gateway_core.ConfigurationError` when
    they are asked for and ``prometheus_client`` is not installed."""
    current: ServiceMetrics = service.metrics
    if wanted is None or wanted == current.enabled:
        return current
    if wanted:
        made = Metrics()  # raises when prometheus_client is missing
        made.watch_outbox(ledger)
        service.metrics = made
        return made
    current.close()
    service.metrics = NULL_METRICS
    return NULL_METRICS


# -- WSGI -----------------------------------------------------------------------------------

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def metrics_wsgi_app(metrics: ServiceMetrics) -> WSGIApp:
    """A WSGI app answering ``GET`` (and ``HEAD``) with ``metrics``' exposition, whatever the
    path (mount it where it belongs: :func:`mount_metrics`, or a worker's router); 405 for
    other methods, 404 when ``metrics`` is the no-op."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if not isinstance(metrics, Metrics):
            status, content_type, body = "404 Not Found", "text/plain", b"metrics are off"
            headers: list[tuple[str, str]] = []
        elif method not in ("GET", "HEAD"):
            status, content_type, body = "405 Method Not Allowed", "text/plain", b"GET only"
            headers = [("Allow", "GET")]
        else:
            started = time.perf_counter()
            body, content_type = metrics.render(str(environ.get("HTTP_ACCEPT", "")))
            status = "200 OK"
            headers = [("Cache-Control", "no-store")]
            log.debug("metrics scraped in %.3f s", time.perf_counter() - started)
        start_response(
            status,
            [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers],
        )
        return [] if method == "HEAD" else [body]

    return app


def metrics_route(metrics: ServiceMetrics) -> Callable[[], tuple[int, str, bytes]]:
    """A route of no arguments returning (status, content type, body): the exposition, or
    404 when ``metrics`` is the no-op (for a router such as ``gateway worker``'s health
    endpoint)."""

    def route() -> tuple[int, str, bytes]:
        if not isinstance(metrics, Metrics):
            return 404, "text/plain", b"metrics are off"
        body, content_type = metrics.render()
        return 200, content_type, body

    return route


def mount_metrics(app: WSGIApp, metrics: ServiceMetrics, path: str = "/metrics") -> WSGIApp:
    """``app`` with ``metrics`` served at ``path`` (an exact match; everything else goes to
    ``app``)."""
    exposition = metrics_wsgi_app(metrics)

    def mounted(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == path:
            return exposition(environ, start_response)
        return app(environ, start_response)

    return mounted
