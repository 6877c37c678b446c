"""Control-API plumbing for emulators: a JSON router under a reserved prefix (``/_emulator/``),
the routes every emulator shares (clock, faults, deliveries, request log, reset, wait), the
error type they map to HTTP statuses, small WSGI helpers, and a client base class.

An emulator builds a :class:`ControlRouter`, calls :func:`add_common_routes` with itself (it
follows :class:`CommonControls`), adds its own routes (``router.route("POST",
"orders/<order_id>/pay", handler)``) and hands requests under the prefix to the router. Its
out-of-process client subclasses :class:`ControlClient`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self
from urllib.parse import parse_qs, quote
from wsgiref.types import StartResponse, WSGIEnvironment

from gateway_core.emulation.faults import status_line

if TYPE_CHECKING:
    import requests

    from gateway_core.emulation.clock import EmulatorClock

_MAX_BODY = 1024 * 1024


class EmulatorError(Exception):
    """A control-API error with the HTTP status it maps to."""

    http_status = 400

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        if http_status is not None:
            self.http_status = http_status


# --- WSGI helpers ------------------------------------------------------------------------------


def read_body(environ: WSGIEnvironment, limit: int = _MAX_BODY) -> bytes:
    """The request body (raises :class:`EmulatorError` for a bad or too large length)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise EmulatorError("bad Content-Length") from None
    if length > limit:
        raise EmulatorError("request body too large", http_status=413)
    if length <= 0:
        return b""
    data: bytes = environ["wsgi.input"].read(length)
    return data


def base_url(environ: WSGIEnvironment, public_url: str | None = None) -> str:
    """The emulator's own base URL: ``public_url`` if set, else the request's host."""
    if public_url:
        return public_url
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        host = environ.get("SERVER_NAME", "127.0.0.1")
        port = environ.get("SERVER_PORT", "")
        if port and port not in ("80", "443"):
            host = f"{host}:{port}"
    return f"{scheme}://{host}{quote(environ.get('SCRIPT_NAME', ''))}"


def send_json(
    start_response: StartResponse,
    status: int,
    value: Any,
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    """Answer ``value`` as JSON with ``status``."""
    body = json.dumps(value).encode("utf-8")
    start_response(
        status_line(status),
        [
            ("Content-Type", "application/json"),
            *headers,
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


# --- the router --------------------------------------------------------------------------------


@dataclasses.dataclass
class ControlRequest:
    """One control request: ``args`` are the ``<name>`` segments the route captured."""

    method: str
    parts: list[str]
    args: dict[str, str]
    body: dict[str, Any]
    query: dict[str, str]
    environ: WSGIEnvironment

    @property
    def params(self) -> dict[str, Any]:
        """Query parameters overridden by the JSON body's members."""
        return {**self.query, **self.body}


Handler = Callable[[ControlRequest], Any]


class ControlRouter:
    """JSON routes under ``prefix``; each handler returns the JSON value of a 200 reply.

    Errors become ``{"error": message}``: :class:`EmulatorError` with its status, the types
    registered with :meth:`error` as their renderer says, ``ValueError``/``TypeError``/
    ``KeyError`` as 400 and an unknown route as 404. A JSON array body arrives as
    ``{"faults": [...]}`` (several faults at once).
    """

    def __init__(self, prefix: str = "/_emulator") -> None:
        self.prefix = "/" + prefix.strip("/")
        self._routes: list[tuple[str, tuple[str, ...], Handler]] = []
        self._errors: list[tuple[type[Exception], Callable[[Any], tuple[int, Any]]]] = []

    def matches(self, path: str) -> bool:
        """Whether ``path`` is under the prefix."""
        return path == self.prefix or path.startswith(self.prefix + "/")

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Add a route: ``pattern`` is segments after the prefix, ``<name>`` captures one
        (``""`` is the prefix itself). The first matching route wins."""
        segments = tuple(p for p in pattern.split("/") if p)
        self._routes.append((method.upper(), segments, handler))

    def error(self, kind: type[Exception], render: Callable[[Any], tuple[int, Any]]) -> None:
        """Render errors of ``kind`` as ``(status, JSON value)`` (checked before the defaults)."""
        self._errors.append((kind, render))

    def handle(self, method: str, path: str, environ: WSGIEnvironment) -> tuple[int, Any]:
        """Answer one control request: ``(HTTP status, JSON value)``."""
        try:
            raw = read_body(environ)
            body: dict[str, Any] = {}
            if raw.strip():
                loaded = json.loads(raw.decode("utf-8"))
                if not isinstance(loaded, (dict, list)):
                    raise EmulatorError("control API bodies are JSON objects")
                body = loaded if isinstance(loaded, dict) else {"faults": loaded}
            query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            parts = [p for p in path[len(self.prefix) :].split("/") if p]
            for route_method, segments, handler in self._routes:
                args = _match(segments, parts)
                if route_method == method.upper() and args is not None:
                    request = ControlRequest(method.upper(), parts, args, body, query, environ)
                    return 200, handler(request)
            shown = "/".join(parts)
            raise EmulatorError(f"no control route {method} {self.prefix}/{shown}", http_status=404)
        except Exception as exc:
            for kind, render in self._errors:
                if isinstance(exc, kind):
                    return render(exc)
            if isinstance(exc, EmulatorError):
                return exc.http_status, {"error": str(exc)}
            if isinstance(exc, (ValueError, TypeError, KeyError)):
                return 400, {"error": f"bad request: {exc}"}
            raise

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        status, value = self.handle(method, environ.get("PATH_INFO", "") or "/", environ)
        return send_json(start_response, status, value)


def _match(segments: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    if len(segments) != len(parts):
        return None
    args: dict[str, str] = {}
    for segment, part in zip(segments, parts, strict=True):
        if segment.startswith("<") and segment.endswith(">"):
            args[segment[1:-1]] = part
        elif segment != part:
            return None
    return args


class CommonControls(Protocol):
    """What :func:`add_common_routes` needs of an emulator."""

    @property
    def clock(self) -> EmulatorClock:
        """The emulator's clock."""

    def advance_clock(self, seconds: float) -> Any:
        """Move the clock forward (and do what falls due); what expired."""

    def set_clock(self, moment: datetime) -> Any:
        """Jump the clock (and do what falls due); what expired."""

    def add_fault(self, endpoint: str, fault: str, count: int = 1, **params: Any) -> Any:
        """Script a fault; its plain data."""

    def faults(self) -> list[dict[str, Any]]:
        """Pending faults."""

    def clear_faults(self) -> None:
        """Drop every pending fault."""

    def deliveries(self, **labels: Any) -> list[dict[str, Any]]:
        """Recorded notification deliveries (filtered by labels)."""

    def requests_log(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Requests received."""

    def request_counts(self) -> dict[str, int]:
        """Requests received per endpoint."""

    def reset(self) -> None:
        """Forget all state."""

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until no notification job runs."""


def add_common_routes(router: ControlRouter, app: CommonControls) -> None:
    """``GET clock``, ``POST clock/advance`` (``seconds``), ``POST clock/set`` (``now``, wall
    time); ``GET deliveries`` (query: label filters); ``GET requests`` (``endpoint``);
    ``GET|POST|DELETE faults``; ``POST reset``; ``POST wait`` (``timeout``)."""

    def clock_state(expired: Any = None) -> dict[str, Any]:
        state: dict[str, Any] = {"now": app.clock.wall(), "offset": app.clock.offset}
        if expired is not None:
            state["expired"] = expired
        return state

    def add_faults(request: ControlRequest) -> dict[str, Any]:
        specs = request.body.get("faults", [request.body])
        if not isinstance(specs, list):
            raise EmulatorError("faults must be a list")
        added = []
        for spec in specs:
            if not isinstance(spec, dict):
                raise EmulatorError("each fault is an object")
            spec = dict(spec)
            endpoint = spec.pop("endpoint", None)
            kind = spec.pop("fault", None)
            count = spec.pop("count", 1)
            if not isinstance(endpoint, str) or not isinstance(kind, str):
                raise EmulatorError("a fault needs 'endpoint' and 'fault'")
            added.append(app.add_fault(endpoint, kind, count, **spec))
        return {"added": added, "faults": app.faults()}

    def clear_faults(request: ControlRequest) -> dict[str, Any]:
        app.clear_faults()
        return {"faults": []}

    def reset(request: ControlRequest) -> dict[str, Any]:
        app.reset()
        return {"reset": True}

    router.route("GET", "clock", lambda r: clock_state())
    router.route(
        "POST",
        "clock/advance",
        lambda r: clock_state(app.advance_clock(float(r.params.get("seconds", 0)))),
    )
    router.route(
        "POST",
        "clock/set",
        lambda r: clock_state(app.set_clock(app.clock.parse(str(r.params["now"])))),
    )
    router.route("GET", "deliveries", lambda r: {"deliveries": app.deliveries(**r.query)})
    router.route(
        "GET",
        "requests",
        lambda r: {
            "counts": app.request_counts(),
            "requests": app.requests_log(r.params.get("endpoint")),
        },
    )
    router.route("GET", "faults", lambda r: {"faults": app.faults()})
    router.route("POST", "faults", add_faults)
    router.route("DELETE", "faults", clear_faults)
    for method in ("PUT", "PATCH"):
        router.route(method, "faults", _wrong_method)
    router.route("POST", "reset", reset)
    router.route(
        "POST",
        "wait",
        lambda r: {"idle": app.wait_for_deliveries(float(r.params.get("timeout", 10.0)))},
    )


def _wrong_method(request: ControlRequest) -> Any:
    raise EmulatorError("use GET, POST or DELETE", http_status=405)


# --- the client --------------------------------------------------------------------------------


class ControlClient:
    """Drive a running emulator's control API over HTTP (``requests``), for tests and tools.

    ``base_url`` is the emulator's base URL; errors raise :attr:`error_class` (an
    :class:`EmulatorError`) with the HTTP status and the emulator's message. Subclasses add
    the provider's own calls with :meth:`_call`.
    """

    error_class: type[EmulatorError] = EmulatorError
    prefix = "/_emulator/"

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._own_session = session is None
        self.timeout = timeout

    def close(self) -> None:
        """Close the HTTP session (if this object created it)."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        *,
        timeout: float | None = None,
        close: bool = False,
    ) -> Any:
        headers = {"Connection": "close"} if close else None
        response = self._session.request(
            method,
            f"{self.base_url}{self.prefix}{path}",
            json=body,
            params=params,
            timeout=timeout or self.timeout,
            headers=headers,
        )
        try:
            data = response.json()
        except ValueError:
            data = {"error": response.text}
        if response.status_code != 200:
            message = data.get("error", response.text) if isinstance(data, dict) else str(data)
            raise self.error_class(str(message), http_status=response.status_code)
        return data

    def info(self) -> dict[str, Any]:
        """What the control API's index answers."""
        result: dict[str, Any] = self._call("GET", "")
        return result

    def now(self) -> str:
        """The emulator's current wall time."""
        return str(self._call("GET", "clock")["now"])

    def advance_clock(self, seconds: float) -> Any:
        """Move the clock forward; returns what expired."""
        return self._call("POST", "clock/advance", {"seconds": seconds}).get("expired")

    def set_clock(self, now: str) -> Any:
        """Jump the clock to ``now`` (wall time); returns what expired."""
        return self._call("POST", "clock/set", {"now": now}).get("expired")

    def add_fault(self, endpoint: str, fault: str, count: int = 1, **params: Any) -> dict[str, Any]:
        """Script a fault; ``refuse`` closes the port at once (this call still gets its reply)."""
        body = {"endpoint": endpoint, "fault": fault, "count": count, **params}
        result: dict[str, Any] = self._call("POST", "faults", body, close=fault == "refuse")
        return result

    def faults(self) -> list[dict[str, Any]]:
        """Pending faults."""
        result: list[dict[str, Any]] = self._call("GET", "faults")["faults"]
        return result

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._call("DELETE", "faults")

    def deliveries(self, **labels: str | None) -> list[dict[str, Any]]:
        """Notification deliveries with their attempts (filtered by labels)."""
        params = {k: str(v) for k, v in labels.items() if v}
        result: list[dict[str, Any]] = self._call("GET", "deliveries", params=params or None)[
            "deliveries"
        ]
        return result

    def requests_log(self, endpoint: str | None = None) -> dict[str, Any]:
        """``{"counts": {endpoint: n}, "requests": [...]}``."""
        params = {"endpoint": endpoint} if endpoint else None
        result: dict[str, Any] = self._call("GET", "requests", params=params)
        return result

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until no notification job runs (server side); False on timeout."""
        return bool(
            self._call("POST", "wait", {"timeout": timeout}, timeout=timeout + self.timeout)["idle"]
        )

    def reset(self) -> None:
        """Forget the emulator's state (its own, logs, deliveries, faults); clock to real time."""
        self._call("POST", "reset")
