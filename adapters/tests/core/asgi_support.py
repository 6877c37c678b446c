"""Serving an ASGI app with uvicorn on a loopback port, from a thread of the test process."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest


@contextlib.contextmanager
def uvicorn_serving(app: Any, sock: socket.socket | None = None) -> Iterator[str]:
    """Run ``app`` under a real ``uvicorn.Server`` (lifespan on) until the block ends; yields
    its base URL. ``sock`` is an already bound listening socket (its port known in advance)."""
    uvicorn = pytest.importorskip(
        "uvicorn", reason="uvicorn is not installed (pip install -e '.[test]' brings it)"
    )
    if sock is None:
        sock = bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def raw_exchange(base: str, head: bytes, body: bytes = b"", timeout: float = 5.0) -> bytes:
    """Send ``head`` and ``body`` on one connection, then read what comes back until the
    server closes or ``timeout``."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(head + body)
        received = b""
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += chunk
                if b"\r\n\r\n" in received:
                    head_end = received.index(b"\r\n\r\n") + 4
                    length = 0
                    for line in received[:head_end].split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    if len(received) >= head_end + length:
                        break
        except (ConnectionResetError, TimeoutError):
            pass
        return received
