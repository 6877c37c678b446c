"""QR images of QRIS bills: ``GET /__assets/qr/<acquirer>/<merchant>-<trx_id>.svg`` (the
post-data ``web_url``) and ``....html`` (the ``alt_url``: a page showing only the QR).

Served for as long as the bill exists, whatever its status (ASSUMPTION: the real image URL may
be short-lived, channels reference §5.4). Unknown bill or a path of another shape: 404.
"""

from __future__ import annotations

from html import escape
from wsgiref.types import WSGIEnvironment

from gateway_faspay_dana.emulator._families import QR_ASSET_PREFIX, qr_svg
from gateway_faspay_dana.emulator._reply import Reply, json_reply
from gateway_faspay_dana.emulator._store import BillStore

__all__ = ["QR_ASSET_PREFIX", "serve_qr_asset"]


def serve_qr_asset(store: BillStore, environ: WSGIEnvironment, path: str) -> Reply:
    """The SVG (or its HTML wrapper) of the QRIS bill named by ``path``."""
    parts = path[len(QR_ASSET_PREFIX) :].split("/")
    if len(parts) != 2:
        return json_reply(404, {"error": "no such QR"})
    acquirer, name = parts
    stem, dot, kind = name.rpartition(".")
    merchant_id, dash, trx_id = stem.partition("-")
    if not dot or not dash or kind not in ("svg", "html"):
        return json_reply(404, {"error": "no such QR"})
    with store.lock:
        bill = store.by_trx_id(trx_id)
        if (
            bill is None
            or bill.merchant_id != merchant_id
            or bill.spec is None
            or bill.spec.acquirer != acquirer
            or not bill.qr_content
        ):
            return json_reply(404, {"error": "no such QR"})
        payload = bill.qr_content
    if kind == "svg":
        return Reply(200, qr_svg(payload), "image/svg+xml")
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>QRIS</title></head><body>"
        f"<img id='qr-image' alt='QRIS' src='{escape(stem, quote=True)}.svg'></body></html>\n"
    )
    return Reply(200, page.encode(), "text/html; charset=utf-8")
