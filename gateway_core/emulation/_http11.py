"""Just enough HTTP/1.1 for :class:`~gateway_core.emulation.http_server.HttpServer`: read
requests, build the WSGI environ, write replies, and end connections with a FIN or a reset.

Requests are parsed here rather than with ``http.server`` so the server can act between
reading the head and the body (a reset before reading) and after the application ran (a reset
instead of the reply).
"""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import sys
from collections.abc import Iterable
from email.utils import formatdate
from typing import Any
from wsgiref.types import WSGIEnvironment

_MAX_LINE = 65536
_MAX_HEADERS = 100
_MAX_BODY = 4 * 1024 * 1024


class BadRequest(Exception):
    """The request cannot be parsed (or the connection ended inside it)."""


class Reader:
    """Buffered reads from a socket (so pipelined data is never lost between requests)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def buffered(self) -> bool:
        return bool(self.buf)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def readline(self) -> bytes:
        while True:
            index = self.buf.find(b"\n")
            if index >= 0:
                line = bytes(self.buf[: index + 1])
                del self.buf[: index + 1]
                return line
            if len(self.buf) > _MAX_LINE:
                raise BadRequest("line too long")
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self._fill():
                raise BadRequest("connection closed inside the body")
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data


def read_headers(reader: Reader) -> list[tuple[str, str]]:
    """The header lines up to the blank line, as (name, value) pairs."""
    headers: list[tuple[str, str]] = []
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        if len(headers) >= _MAX_HEADERS:
            raise BadRequest("too many headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise BadRequest("bad header line")
        headers.append((name.strip(), value.strip()))


def read_body(reader: Reader, headers: dict[str, str]) -> bytes:
    """The request body (chunked or by ``Content-Length``); ``headers`` keys are lower case."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = reader.readline().split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                while reader.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                raise BadRequest("body too large")
            parts.append(reader.read(size))
            reader.readline()
    length_text = headers.get("content-length", "0") or "0"
    try:
        length = int(length_text)
    except ValueError:
        raise BadRequest("bad Content-Length") from None
    if length < 0 or length > _MAX_BODY:
        raise BadRequest("bad Content-Length")
    return reader.read(length) if length else b""


def make_environ(
    *,
    method: str,
    path_info: str,
    query: str,
    version: str,
    headers: list[tuple[str, str]],
    body: bytes,
    peer: Any,
    host: str,
    port: int,
) -> WSGIEnvironment:
    """The WSGI environ of a parsed request."""
    environ: WSGIEnvironment = {
        "REQUEST_METHOD": method.upper(),
        "SCRIPT_NAME": "",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "SERVER_NAME": host,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": version,
        "REMOTE_ADDR": str(peer[0]) if peer else "",
        "REMOTE_PORT": str(peer[1]) if peer else "",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue
        else:
            http_key = "HTTP_" + key
            if http_key in environ:
                environ[http_key] += "," + value
            else:
                environ[http_key] = value
    return environ


def write_response(
    conn: socket.socket,
    status: str,
    headers: list[tuple[str, str]],
    result: Iterable[bytes],
    *,
    head_only: bool,
    keep_alive: bool,
    server_name: str = "gateway-emulator",
) -> None:
    """Send a WSGI reply: the head, then the body as the application yields it."""
    chunks = iter(result)
    headers = list(headers)
    names = {name.lower() for name, _ in headers}
    first = b""
    if "content-length" not in names:
        first = b"".join(chunks)
        headers.append(("Content-Length", str(len(first))))
        chunks = iter(())
    else:
        for chunk in chunks:
            if chunk:
                first = chunk
                break
    headers = [(n, v) for n, v in headers if n.lower() != "connection"]
    headers.append(("Connection", "keep-alive" if keep_alive else "close"))
    head = [f"HTTP/1.1 {status}"]
    head.append(f"Date: {formatdate(usegmt=True)}")
    head.append(f"Server: {server_name}")
    head.extend(f"{name}: {value}" for name, value in headers)
    head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
    if head_only:
        conn.sendall(head_bytes)
        return
    conn.sendall(head_bytes + first)
    for chunk in chunks:
        if chunk:
            conn.sendall(chunk)


def send_plain_error(conn: socket.socket, status: int, body: bytes) -> None:
    """Answer a request the server could not hand to the application, then close."""
    head = (
        f"HTTP/1.1 {status} Error\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    with contextlib.suppress(OSError):
        conn.sendall(head + body)


def no_write(data: bytes) -> None:
    """The ``write`` callable of ``start_response``, which the emulator never uses."""
    raise RuntimeError("the emulator server does not support write()")


def reset(conn: socket.socket) -> None:
    """Abort the connection with a TCP RST (``SO_LINGER`` on, zero timeout)."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def close(conn: socket.socket) -> None:
    """Close the connection with a FIN."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
    conn.close()
