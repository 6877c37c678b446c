"""``gateway emulator faspay_dana ...``: run the emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway_core.emulation.console import serve_until_stopped
from gateway_faspay_dana.emulator._app import EmulatorApp
from gateway_faspay_dana.emulator._model import SANDBOX_PASSWORD, Merchant, mask
from gateway_faspay_dana.emulator._server import EmulatorServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway emulator faspay_dana",
        description="Local emulator of Faspay's Debit API: DANA (819) and the other channel "
        "families (virtual accounts, retail, QRIS, e-wallets, OVO). "
        "Loopback testing only: fake money, fake credentials.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0 = a free port)")
    parser.add_argument("--merchant-id", default="99999", help="merchant code (99999)")
    parser.add_argument("--merchant-name", default="Sophia Store", help="merchant name")
    parser.add_argument(
        "--password",
        default=SANDBOX_PASSWORD,
        help="the merchant's API password (default: Faspay's public sandbox example)",
    )
    parser.add_argument("--notification-url", default="", help="where notifications go")
    parser.add_argument("--return-url", default="", help="where the DANA page sends customers")
    parser.add_argument(
        "--notification-format",
        "--format",
        dest="format",
        choices=("json", "xml"),
        default="xml",
        help="notification format (xml, what Faspay's own SDK parses; or json)",
    )
    parser.add_argument(
        "--language",
        choices=("en", "id"),
        default="en",
        help="response_desc texts: en (the docs) or id (the sandbox's Indonesian)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse texts over their documented length (default: accept and log, like the "
        "sandbox)",
    )
    parser.add_argument(
        "--accept-amount-mismatch",
        action="store_true",
        help="let simulated VA/retail payers pay another amount than the bill's",
    )
    parser.add_argument(
        "--ovo-push-mode",
        choices=("immediate", "blocking"),
        default="immediate",
        help="whether /pws/ovo_direct answers at once or waits for the payer (immediate)",
    )
    parser.add_argument(
        "--ovo-push-window",
        type=float,
        default=60.0,
        help="seconds an OVO push waits for the payer before timing out (60)",
    )
    parser.add_argument(
        "--retry-interval",
        type=float,
        default=60.0,
        help="seconds between notification attempts (60)",
    )
    parser.add_argument(
        "--channel",
        action="append",
        dest="channels",
        help="enabled payment channel (repeatable; 'all' for every modelled channel; default 819)",
    )
    parser.add_argument(
        "--duplicate-bill-no",
        choices=("return_existing", "reject", "new_bill"),
        default="return_existing",
        help="what a repeated bill_no gets (return_existing)",
    )
    parser.add_argument("--show-password", action="store_true", help="print the password unmasked")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the emulator with one merchant until interrupted; returns the exit code."""
    args = _parser().parse_args(argv)
    if not args.merchant_id.isdigit():
        print("error: --merchant-id must be digits", file=sys.stderr)
        return 2
    if args.retry_interval < 0:
        print("error: --retry-interval must be >= 0", file=sys.stderr)
        return 2
    merchant = Merchant(
        merchant_id=args.merchant_id,
        merchant_name=args.merchant_name,
        password=args.password,
        notification_url=args.notification_url,
        notification_format=args.format,
        return_url=args.return_url,
        channels=tuple(args.channels or ("819",)),
    )
    if args.ovo_push_window < 0:
        print("error: --ovo-push-window must be >= 0", file=sys.stderr)
        return 2
    app = EmulatorApp(
        merchant,
        retry_interval=args.retry_interval,
        duplicate_bill_no=args.duplicate_bill_no,
        language=args.language,
        strict=args.strict,
        accept_amount_mismatch=args.accept_amount_mismatch,
        ovo_push_mode=args.ovo_push_mode,
        ovo_push_window=args.ovo_push_window,
    )

    def banner(server: Any) -> list[str]:
        password = merchant.password if args.show_password else mask(merchant.password)
        return [
            f"Faspay DANA emulator listening on {server.url}",
            f"  FASPAY_BASE_URL={server.url}",
            f"  control API:       {server.url}/_emulator/",
            f"  merchant_id:       {merchant.merchant_id}",
            f"  merchant_name:     {merchant.merchant_name}",
            f"  user_id:           {merchant.user_id}",
            f"  password:          {password}"
            + ("" if args.show_password else "  (--show-password to print it)"),
            f"  channels:          {', '.join(merchant.channels)}",
            f"  notification_url:  {merchant.notification_url or '(none: recorded, not sent)'}"
            f" [{merchant.notification_format}, retry every {args.retry_interval:g}s]",
            f"  return_url:        {merchant.return_url or '(none)'}",
            f"  lengths:           {'strict' if args.strict else 'lenient, logged (--strict)'};"
            f" language {args.language}",
        ]

    return serve_until_stopped(
        app,
        lambda: EmulatorServer(app, host=args.host, port=args.port).start(),
        banner,
        name="Faspay DANA emulator",
        address=f"{args.host}:{args.port}",
    )
