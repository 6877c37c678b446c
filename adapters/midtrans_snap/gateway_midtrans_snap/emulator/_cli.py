"""``gateway emulator midtrans_snap ...``: run the Midtrans emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway_core.emulation.console import serve_until_stopped
from gateway_midtrans_snap.emulator._model import DEFAULT_MERCHANT_ID, DEFAULT_SERVER_KEY, Merchant


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway emulator midtrans_snap",
        description="Local emulator of Midtrans Snap and the Core API (status, cancel, expire, "
        "refunds) with webhooks. Loopback testing only: fake money, fake keys.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0 = a free port)")
    parser.add_argument("--merchant-id", default=DEFAULT_MERCHANT_ID, help="merchant id")
    parser.add_argument(
        "--server-key",
        default=DEFAULT_SERVER_KEY,
        help="the merchant's server key (default: the reference's invented sandbox key)",
    )
    parser.add_argument("--notification-url", default="", help="where webhooks go")
    parser.add_argument("--finish-url", default="", help="the dashboard's finish URL")
    parser.add_argument("--unfinish-url", default="", help="the dashboard's unfinish URL")
    parser.add_argument("--error-url", default="", help="the dashboard's error URL")
    parser.add_argument(
        "--retry-scale",
        type=float,
        default=1.0,
        help="factor on Midtrans' webhook retry delays of 2, 10, 30, 90, 210 minutes (1.0)",
    )
    parser.add_argument("--no-jitter", action="store_true", help="no random shift of retries")
    parser.add_argument("--strict", action="store_true", help="documented order_id alphabet")
    parser.add_argument("--show-key", action="store_true", help="print the server key unmasked")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the emulator with one merchant until interrupted; returns the exit code."""
    from gateway_midtrans_snap.emulator._app import MidtransEmulator, MidtransServer
    from gateway_midtrans_snap.emulator._model import mask

    args = _parser().parse_args(argv)
    if args.retry_scale < 0:
        print("error: --retry-scale must be >= 0", file=sys.stderr)
        return 2
    if not args.server_key:
        print("error: --server-key must not be empty", file=sys.stderr)
        return 2
    merchant = Merchant(
        server_key=args.server_key,
        merchant_id=args.merchant_id,
        notification_url=args.notification_url,
        finish_url=args.finish_url,
        unfinish_url=args.unfinish_url,
        error_url=args.error_url,
    )
    app = MidtransEmulator(
        merchant, retry_scale=args.retry_scale, retry_jitter=not args.no_jitter, strict=args.strict
    )

    def banner(server: Any) -> list[str]:
        key = merchant.server_key if args.show_key else mask(merchant.server_key)
        return [
            f"Midtrans Snap emulator listening on {server.url}",
            f"  MIDTRANS_BASE_URL={server.url}   (Snap and Core API)",
            f"  Snap create:       {server.url}/snap/v1/transactions",
            f"  Core API:          {server.url}/v2/<order_id>/status",
            f"  control API:       {server.url}/_emulator/",
            f"  merchant_id:       {merchant.merchant_id}",
            f"  server key:        {key}" + ("" if args.show_key else "  (--show-key to print it)"),
            f"  notification_url:  {merchant.notification_url or '(none: recorded, not sent)'}"
            f" [retry delays x{args.retry_scale:g}]",
            f"  finish_url:        {merchant.finish_url or '(callbacks.finish of each request)'}",
        ]

    return serve_until_stopped(
        app,
        lambda: MidtransServer(app, host=args.host, port=args.port).start(),
        banner,
        name="Midtrans Snap emulator",
        address=f"{args.host}:{args.port}",
    )
