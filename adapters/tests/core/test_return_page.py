"""The built-in return page (issue 15): `gateway serve` without `--return-page` once sent the
customer to `/`, which answered `not found`. Now it sends them to `{prefix}/done`, which shows
the payment's status as the ledger has it, never the status the query claims."""

from __future__ import annotations

import io
from typing import Any
from wsgiref.util import setup_testing_defaults

from gateway_core.web import make_wsgi_app


def _get(app: Any, path: str, query: str = "") -> tuple[str, dict[str, str], str]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(b""),
    }
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
        seen["status"], seen["headers"] = status, dict(headers)
        return lambda data: None

    body = b"".join(app(environ, start_response)).decode("utf-8")
    return seen["status"], seen["headers"], body


def test_the_done_page_shows_the_ledgers_status_not_the_querys(sqlite_stack: Any) -> None:
    app = make_wsgi_app(sqlite_stack.service, prefix="/payments", return_page="/payments/done")
    record = sqlite_stack.start("ORDER-DONE").payment
    query = f"gateway=dana&reference={record.merchant_reference}&status=paid&order=ORDER-DONE"

    status, headers, body = _get(app, "/payments/done", query)

    assert status.startswith("200")
    assert headers["Cache-Control"] == "no-store"
    assert f"Payment {record.merchant_reference}: pending" in body  # not the claimed "paid"
    assert "Order ORDER-DONE" in body


def test_the_done_page_knows_nothing_of_other_payments(sqlite_stack: Any) -> None:
    app = make_wsgi_app(sqlite_stack.service, prefix="/payments", return_page="/payments/done")
    assert _get(app, "/payments/done", "gateway=dana&reference=NOPE-1P")[0].startswith("404")
    assert _get(app, "/payments/done", "gateway=nope&reference=X")[0].startswith("404")
    assert _get(app, "/payments/done", "gateway=dana&reference=%3Cscript%3E")[0].startswith("404")
