"""Every request is bounded before it is read (issue 9, item 6).

``gateway serve`` runs as a real process on loopback (the Acme Pay example plugin, a SQLite
file): a 50 MB body and a chunked body that never ends are refused after a bounded read, the
process's memory barely moves, and it still answers afterwards. At the WSGI level: a source
outside the allow-list, and a body without Content-Length on a server that promises no end of
stream, are refused without reading a byte; rejected bodies keep a short journal row.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from plugin_distributions import EXAMPLE_PLUGIN_DIR
from test_web_support import (
    ACK_OK,
    GATEWAY,
    SECRET,
    acme_notification,
    acme_runtime,
    insert_pending_payment,
    signed_headers,
)

from gateway_core import Runtime
from gateway_core.ledger import open_ledger
from gateway_core.testing import HookRecorder
from gateway_core.web import make_wsgi_app

REPO_ROOT = Path(__file__).resolve().parents[3]
MB = 1024 * 1024


# -- a real `gateway serve` process ------------------------------------------------------------


class Served:
    """A running ``gateway serve`` process and its port."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def rss(self) -> int:
        """The process's resident memory, in bytes (``VmRSS`` of ``/proc/<pid>/status``)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read a process's memory")
    ledger_url = f"sqlite:///{tmp_path}/serve.db"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[ledger]\nurl = "{ledger_url}"\n\n'
        f'[providers.{GATEWAY}]\nprovider = "acme_pay"\naccount = "shop_1"\n'
        f'api_secret = "{SECRET}"\nbase_url = "http://127.0.0.1:9"\n'
    )
    with open_ledger(ledger_url) as ledger:
        insert_pending_payment(ledger)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLE_PLUGIN_DIR), str(REPO_ROOT)])}
    command = [sys.executable, "-m", "gateway_core.cli", "--config", str(config), "serve"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--threads", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(process.communicate()[1].decode()) from None
                time.sleep(0.05)
        yield Served(process, port)
    finally:
        process.terminate()
        process.communicate(timeout=10)


def push(port: int, head: bytes, chunk: bytes, total: int) -> tuple[int, bytes]:
    """Send ``head`` then ``chunk`` repeatedly until ``total`` bytes of it are sent or the
    server stops taking them, reading whatever it answers meanwhile; (bytes sent, reply)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    reply = bytearray()

    def read() -> None:
        try:
            while data := sock.recv(65536):
                reply.extend(data)
        except OSError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent = 0
    try:
        sock.sendall(head)
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the server closed the connection: it will read no more
    reader.join(20)
    sock.close()
    return sent, bytes(reply)


def assert_refused(reply: bytes) -> None:
    # The 413 may be lost to the reset that follows it; a reply, if read, is a refusal.
    assert reply == b"" or reply.startswith(b"HTTP/1.1 413"), reply[:200]


def assert_still_serving(served: Served) -> None:
    body = acme_notification()
    response = requests.post(
        f"{served.url}/notify/{GATEWAY}", data=body, headers=signed_headers(body), timeout=10
    )
    assert response.status_code == 200
    assert response.content == ACK_OK


def test_serve_refuses_a_50_mb_body_before_reading_it(served: Served) -> None:
    total = 50 * MB
    head = (
        f"POST /notify/{GATEWAY} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {total}\r\n\r\n"
    ).encode()
    before = served.rss()
    sent, reply = push(served.port, head, b"x" * (64 * 1024), total)
    growth = served.rss() - before
    assert sent < total // 2, f"the server took {sent / MB:.1f} MB of the body"
    assert_refused(reply)
    assert growth < 20 * MB, f"RSS grew by {growth / MB:.1f} MB"
    assert_still_serving(served)


def test_serve_cuts_off_a_chunked_body_that_never_ends(served: Served) -> None:
    head = (
        f"POST /notify/{GATEWAY} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b"x" * (64 * 1024)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"  # never the final 0-chunk
    before = served.rss()
    sent, reply = push(served.port, head, chunk, 50 * MB)
    growth = served.rss() - before
    assert sent < 25 * MB, f"the server took {sent / MB:.1f} MB of an endless body"
    assert_refused(reply)
    assert growth < 20 * MB, f"RSS grew by {growth / MB:.1f} MB"
    assert_still_serving(served)


# -- the WSGI app reads nothing it has not decided to read ---------------------------------------


class UnreadableStream(io.RawIOBase):
    """A ``wsgi.input`` that fails the test if anything reads it."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")

    readline = readlines = read  # type: ignore[assignment]


class DrippingStream(io.RawIOBase):
    """An endless body that arrives a few bytes per read; counts what was read."""

    def __init__(self) -> None:
        self.taken = 0

    def read(self, size: int = -1) -> bytes:
        piece = b"x" * min(7, size if size >= 0 else 7)
        self.taken += len(piece)
        return piece


@pytest.fixture
def runtime(tmp_path: Path, example_plugin_on_path: Path) -> Iterator[Runtime]:
    rt = acme_runtime(tmp_path, HookRecorder())
    insert_pending_payment(rt.ledger)
    yield rt
    rt.close()


def call(app: Callable[..., Any], **environ: Any) -> tuple[str, bytes]:
    """Call a WSGI app with a POST to the Acme notification endpoint; (status, body)."""
    base = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": f"/notify/{GATEWAY}",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
    }
    answer: list[str] = []
    body = b"".join(app({**base, **environ}, lambda status, headers: answer.append(status)))
    return answer[0], body


def test_source_outside_the_allow_list_is_refused_without_reading_the_body(
    runtime: Runtime,
) -> None:
    app = make_wsgi_app(runtime.service, allowed_sources=["10.0.0.0/8"])
    status, _ = call(
        app, REMOTE_ADDR="192.0.2.7", CONTENT_LENGTH="100", **{"wsgi.input": UnreadableStream()}
    )
    assert status.startswith("403")
    refusals = [(e.verdict, e.reason, e.body) for e in runtime.ledger.journal()]
    assert refusals == [("rejected", "source_not_allowed", "")]  # journalled, body unread


def test_body_without_length_on_an_unterminated_input_is_refused_unread(
    runtime: Runtime,
) -> None:
    """wsgiref passes a chunked body as the raw socket: a read would wait forever."""
    app = make_wsgi_app(runtime.service)
    status, _ = call(app, **{"wsgi.input": UnreadableStream()})
    assert status.startswith("411")


def test_body_without_length_on_a_terminated_input_is_read_only_to_the_cap(
    runtime: Runtime,
) -> None:
    app = make_wsgi_app(runtime.service, max_body=1024)
    stream = DrippingStream()
    status, _ = call(app, **{"wsgi.input": stream, "wsgi.input_terminated": True})
    assert status.startswith("413")
    assert stream.taken == 1025


def test_rejected_bodies_keep_a_short_journal_row(runtime: Runtime) -> None:
    app = make_wsgi_app(runtime.service)
    junk = (b"junk " * 4000)[: 16 * 1024]
    oversized = acme_notification(size=20 * 1024)
    for body in (junk, oversized):
        call(app, CONTENT_LENGTH=str(len(body)), **{"wsgi.input": io.BytesIO(body)})
    rows = runtime.ledger.journal()
    assert [row.verdict for row in rows] == ["rejected", "rejected"]
    assert all(0 < len(row.body) <= 1024 for row in rows), [len(row.body) for row in rows]
