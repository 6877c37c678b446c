"""A small threaded HTTP/1.1 server for emulators, with the socket under its control.

Why not ``wsgiref``/``http.server``: a fault layer must reset connections before or after
reading a request, close idle keep-alive connections, stop listening (connection refused) and
stream a reply byte by byte. This server parses requests itself (one thread per connection,
persistent connections as HTTP/1.1 wants), runs the WSGI application, and carries out the
socket-level faults (:mod:`gateway_core.emulation.faults`) the application hands back:

* ``reset_before_read`` — the request head is parsed (to know the endpoint), the body is left
  unread, then ``SO_LINGER(1, 0)`` and ``close()``: the client sees a connection reset;
* ``close_without_response`` — the body is drained, then the connection is closed with a FIN
  and zero bytes (``RemoteDisconnected`` in ``http.client``);
* ``reset_after_read`` — the application processes the request, the reply is discarded and
  the connection reset (the application sets ``environ[CONTROL_KEY]["reset"] = True``);
* ``refuse`` — the listening socket is closed (and idle keep-alive connections dropped) for the
  given seconds, then bound again on the same port (:meth:`HttpServer.refuse`).

The application (:class:`ServedApp`) names the endpoint of each path, hands out the next fault
for it and records the requests the server cut off. It finds the fault it was given in
``environ[FAULT_KEY]`` (present only for endpoint paths) and the connection number in
``environ[CONNECTION_KEY]``.

``keepalive_timeout`` closes connections idle for that long (the stale keep-alive case when set
below the client's pool idle time). ``accept_count`` counts accepted connections, so tests can
check that a client pools them.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import select
import socket
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import unquote_to_bytes
from wsgiref.types import StartResponse, WSGIEnvironment

from gateway_core.emulation import _http11 as wire
from gateway_core.emulation.faults import Fault

_log = logging.getLogger("gateway_core.emulation")

_POLL = 0.05

#: WSGI environ keys the server sets for the application.
FAULT_KEY = "gateway_emulation.fault"
CONTROL_KEY = "gateway_emulation.control"
CONNECTION_KEY = "gateway_emulation.connection"


class SocketController(Protocol):
    """What the server offers the application for server-level faults."""

    def refuse(self, seconds: float) -> None:
        """Stop listening for ``seconds`` (connections are refused), then listen again."""


class ServedApp(Protocol):
    """A WSGI application :class:`HttpServer` can serve with socket-level faults."""

    socket_controller: SocketController | None

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]: ...

    def endpoint_for(self, path: str) -> str | None:
        """The endpoint name of ``path`` (faults are scripted per endpoint), or None."""

    def take_fault(self, endpoint: str) -> Fault | None:
        """Consume the next scripted fault for ``endpoint``."""

    def record_request(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        fault: Fault | None,
        connection: int | None = None,
        detail: str = "",
    ) -> None:
        """Log a request the server cut off before the application saw it."""

    def tick(self) -> object:
        """Periodic work (expiry), called every ``tick_interval`` seconds."""

    def close(self) -> None:
        """Stop the application's background work."""


class HttpServer:
    """Serve a :class:`ServedApp` on ``host:port`` (0 = a free port).

    ``start()`` returns once the socket listens; ``stop()`` closes everything and, with
    ``close_app`` (default), stops the application's background work too. Also a context
    manager. ``name`` prefixes thread names; ``server_name`` is the ``Server`` header.
    """

    def __init__(
        self,
        app: ServedApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        keepalive_timeout: float = 15.0,
        request_timeout: float = 30.0,
        tick_interval: float = 0.25,
        close_app: bool = True,
        name: str = "emulator",
        server_name: str = "gateway-emulator",
    ) -> None:
        self.app = app
        self.name = name
        self.server_name = server_name
        self.host = host
        self._requested_port = port
        self.port = port
        self.keepalive_timeout = keepalive_timeout
        self.request_timeout = request_timeout
        self.tick_interval = tick_interval
        self.close_app = close_app
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._family = socket.AF_INET
        self._refuse_until = 0.0
        self._accepts = 0
        self._conn_ids = itertools.count(1)
        self._conns: dict[int, socket.socket] = {}
        self._threads: set[threading.Thread] = set()
        self._accept_thread: threading.Thread | None = None
        self._tick_thread: threading.Thread | None = None
        self._started = False

    # --- public -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://host:port`` (point the provider's base URL at this)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def accept_count(self) -> int:
        """Connections accepted since start."""
        with self._lock:
            return self._accepts

    @property
    def open_connections(self) -> int:
        """Connections currently open."""
        with self._lock:
            return len(self._conns)

    @property
    def refusing(self) -> bool:
        """True while a ``refuse`` fault keeps the port closed."""
        with self._lock:
            return time.monotonic() < self._refuse_until

    def start(self) -> Self:
        """Bind, listen and serve in background threads."""
        if self._started:
            return self
        self._listener = self._bind(self._requested_port)
        self.port = self._listener.getsockname()[1]
        self._started = True
        self.app.socket_controller = self
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{self.name}-accept-{self.port}", daemon=True
        )
        self._accept_thread.start()
        if self.tick_interval > 0:
            self._tick_thread = threading.Thread(
                target=self._tick_loop, name=f"{self.name}-tick-{self.port}", daemon=True
            )
            self._tick_thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, close every connection, join the threads."""
        if not self._started:
            return
        self._started = False
        self._stop.set()
        if self.close_app:
            self.app.close()
        if self.app.socket_controller is self:
            self.app.socket_controller = None
        with self._lock:
            listener, self._listener = self._listener, None
            conns = list(self._conns.values())
        if listener is not None:
            listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in [self._accept_thread, self._tick_thread]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def refuse(self, seconds: float) -> None:
        """Close the listening socket for ``seconds`` (connections refused), then reopen it."""
        with self._lock:
            self._refuse_until = time.monotonic() + max(0.0, seconds)
            listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() first: close() alone leaves the socket listening while the accept
            # loop's select() still watches it, so a connection in that gap would be reset
            # after sending instead of refused.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def resume(self) -> None:
        """End a refusal early (the accept loop binds the port again)."""
        with self._lock:
            self._refuse_until = 0.0

    # --- listening ----------------------------------------------------------------------------

    def _bind(self, port: int) -> socket.socket:
        infos = socket.getaddrinfo(self.host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        self._family = family
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                listener = self._listener
                remaining = self._refuse_until - time.monotonic()
            if remaining > 0:
                self._stop.wait(min(_POLL, remaining))
                continue
            if listener is None:
                try:
                    fresh = self._bind(self.port)
                except OSError as exc:
                    _log.warning("emulator could not listen again on %s: %s", self.port, exc)
                    self._stop.wait(0.1)
                    continue
                with self._lock:
                    if self._stop.is_set() or time.monotonic() < self._refuse_until:
                        fresh.close()
                        continue
                    self._listener = fresh
                continue
            try:
                readable, _, _ = select.select([listener], [], [], _POLL)
            except (OSError, ValueError):
                continue
            if not readable:
                continue
            try:
                conn, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                continue
            self._start_connection(conn, peer)

    def _start_connection(self, conn: socket.socket, peer: Any) -> None:
        conn.setblocking(True)
        conn.settimeout(self.request_timeout)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn_id = next(self._conn_ids)
        thread = threading.Thread(
            target=self._serve_connection,
            args=(conn, conn_id, peer),
            name=f"{self.name}-conn-{conn_id}",
            daemon=True,
        )
        with self._lock:
            if self._stop.is_set():
                conn.close()
                return
            self._accepts += 1
            self._conns[conn_id] = conn
            self._threads.add(thread)
        thread.start()

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.tick_interval):
            try:
                self.app.tick()
            except Exception:  # pragma: no cover - keep ticking whatever happens
                _log.exception("emulator tick failed")

    # --- one connection -----------------------------------------------------------------------

    def _wait_for_request(self, conn: socket.socket) -> bool:
        """Wait until the next request starts; False to close (idle, stop or refusal)."""
        deadline = time.monotonic() + self.keepalive_timeout
        while not self._stop.is_set():
            if self.refusing:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                readable, _, _ = select.select([conn], [], [], min(_POLL, remaining))
            except (OSError, ValueError):
                return False
            if readable:
                return True
        return False

    def _serve_connection(self, conn: socket.socket, conn_id: int, peer: Any) -> None:
        reader = wire.Reader(conn)
        reset = False
        try:
            while not self._stop.is_set():
                if not reader.buffered() and not self._wait_for_request(conn):
                    break
                outcome = self._serve_request(conn, conn_id, peer, reader)
                if outcome == "reset":
                    reset = True
                    break
                if outcome == "close":
                    break
        except (OSError, wire.BadRequest) as exc:
            _log.debug("connection %s ended: %s", conn_id, exc)
        except Exception:  # pragma: no cover - never let a handler thread raise
            _log.exception("connection %s failed", conn_id)
        finally:
            if reset:
                wire.reset(conn)
            else:
                wire.close(conn)
            with self._lock:
                self._conns.pop(conn_id, None)
                self._threads.discard(threading.current_thread())

    def _serve_request(
        self, conn: socket.socket, conn_id: int, peer: Any, reader: wire.Reader
    ) -> str:
        line = reader.readline()
        while line in (b"\r\n", b"\n"):
            line = reader.readline()
        if not line:
            return "close"
        try:
            method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
        except ValueError:
            wire.send_plain_error(conn, 400, b"bad request line")
            return "close"
        if not version.startswith("HTTP/1."):
            wire.send_plain_error(conn, 505, b"HTTP/1.x only")
            return "close"
        try:
            headers = wire.read_headers(reader)
        except wire.BadRequest as exc:
            wire.send_plain_error(conn, 431, str(exc).encode())
            return "close"
        lower = {name.lower(): value for name, value in headers}
        path, _, query = target.partition("?")
        path_info = unquote_to_bytes(path).decode("latin-1")
        endpoint = self.app.endpoint_for(path_info)
        fault = self.app.take_fault(endpoint) if endpoint else None
        kind = fault.kind if fault is not None else None

        if kind == "reset_before_read":
            assert endpoint is not None
            self.app.record_request(
                endpoint, method, path_info, fault=fault, connection=conn_id, detail="reset"
            )
            return "reset"

        if lower.get("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            body = wire.read_body(reader, lower)
        except wire.BadRequest as exc:
            wire.send_plain_error(conn, 400, str(exc).encode())
            return "close"

        if kind == "close_without_response":
            assert endpoint is not None
            self.app.record_request(
                endpoint, method, path_info, fault=fault, connection=conn_id, detail="closed"
            )
            return "close"

        connection = lower.get("connection", "").lower()
        keep_alive = (
            "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        )
        environ = wire.make_environ(
            method=method,
            path_info=path_info,
            query=query,
            version=version,
            headers=headers,
            body=body,
            peer=peer,
            host=self.host,
            port=self.port,
        )
        environ[CONNECTION_KEY] = conn_id
        control: dict[str, Any] = {}
        environ[CONTROL_KEY] = control
        if endpoint is not None:
            environ[FAULT_KEY] = fault
        return self._run_app(conn, environ, control, method, keep_alive)

    def _run_app(
        self,
        conn: socket.socket,
        environ: WSGIEnvironment,
        control: dict[str, Any],
        method: str,
        keep_alive: bool,
    ) -> str:
        state: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            if exc_info is not None and state.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"] = status
            state["headers"] = headers
            return wire.no_write

        try:
            result: Iterable[bytes] = self.app(environ, start_response)
        except Exception:
            _log.exception("emulator application failed")
            wire.send_plain_error(conn, 500, b"internal error")
            return "close"
        try:
            if control.get("reset"):
                return "reset"
            wire.write_response(
                conn,
                state.get("status", "500 Internal Server Error"),
                state.get("headers", []),
                result,
                head_only=method == "HEAD",
                keep_alive=keep_alive,
                server_name=self.server_name,
            )
            return "keep" if keep_alive else "close"
        finally:
            closer = getattr(result, "close", None)
            if callable(closer):
                closer()
