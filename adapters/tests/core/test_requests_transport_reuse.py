"""RequestsTransport reuses a prepared request per (method, URL, headers): what reaches the
server is still exactly each call's body, length and headers, and the session's cookies.

Against the real loopback server of ``test_requests_transport`` (which records each request's
head and body).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_requests_transport import LoopbackServer

from gateway_core import HttpRequest, RequestsTransport


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    yield srv
    srv.close()


@pytest.fixture
def transport() -> Iterator[RequestsTransport]:
    t = RequestsTransport(connect_timeout=2.0, read_timeout=5.0)
    yield t
    t.close()


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _send(transport: RequestsTransport, url: str, body: bytes, **headers: str) -> tuple[int, bytes]:
    response = transport.send(
        HttpRequest("POST", url, body=body, headers=headers, operation="create"), timeout=10.0
    )
    return response.status_code, response.body


def test_each_call_sends_its_own_body_with_its_own_length(
    server: LoopbackServer, transport: RequestsTransport
) -> None:
    bodies = [b'{"n":1}', b'{"n":"a longer body than the first"}', b"x", b'{"n":2}']
    for body in bodies:
        assert (
            _send(transport, server.url(), body, **{"Content-Type": "application/json"})[0] == 200
        )
    assert server.bodies == bodies
    for head, body in zip(server.heads, bodies, strict=True):
        assert _headers(head)["content-length"] == str(len(body))
        assert _headers(head)["content-type"] == "application/json"


def test_an_empty_body_after_a_full_one_is_sent_empty(
    server: LoopbackServer, transport: RequestsTransport
) -> None:
    _send(transport, server.url(), b'{"full":true}')
    _send(transport, server.url(), b"")
    assert server.bodies == [b'{"full":true}', b""]
    assert _headers(server.heads[1]).get("content-length") == "0"


def test_headers_and_urls_are_each_calls_own(
    server: LoopbackServer, transport: RequestsTransport
) -> None:
    _send(transport, server.url("/a"), b"1", **{"X-Trace": "first"})
    _send(transport, server.url("/a"), b"2", **{"X-Trace": "second"})
    _send(transport, server.url("/b"), b"3")
    _send(transport, server.url("/a"), b"4", **{"X-Trace": "first"})
    heads = [_headers(h) for h in server.heads]
    assert [h.get("x-trace") for h in heads] == ["first", "second", None, "first"]
    paths = [h.split(b" ")[1].partition(b"?")[0] for h in server.heads]
    assert paths == [b"/a", b"/a", b"/b", b"/a"]
    assert all(h["user-agent"] == "gateway-core/0.1" for h in heads)


def test_a_cookie_the_server_set_is_sent_back(
    server: LoopbackServer, transport: RequestsTransport
) -> None:
    _send(transport, server.url(), b"1")  # prepared and kept before any cookie exists
    server.then(("respond", 200, b"{}", {"Set-Cookie": "lb=node-7; Path=/"}))
    _send(transport, server.url(), b"2")
    _send(transport, server.url(), b"3")
    cookies = [_headers(h).get("cookie") for h in server.heads]
    assert cookies == [None, None, "lb=node-7"]
    assert server.bodies == [b"1", b"2", b"3"]
