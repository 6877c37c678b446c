"""The ``gateway`` command.

Every subcommand reads its configuration from ``--config FILE`` (TOML, else
``$GATEWAY_CONFIG``) and the environment, prints human text by default and one JSON document
with ``--json``, and turns every user mistake into one line on stderr (with ``--json``, one
JSON document holding that line) and a non-zero exit code: never a traceback, never a
secret. Log records reach stderr only with ``-v``. See :mod:`gateway_core._cli_support`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TextIO

import attrs

from gateway_core._cli_maintenance import PRUNE_HELP, add_prune_arguments, prune
from gateway_core._cli_refund import (
    REFUND_HELP,
    add_demo_arguments,
    add_refund_arguments,
    refund,
)
from gateway_core._cli_serve import add_observability_arguments
from gateway_core._cli_support import (
    CommandError,
    Parser,
    UsageError,
    add_verbose,
    configure_logging,
    one_line,
    plugin_host,
    report_error,
    require_configuration,
    require_ledger,
    wants_json,
)
from gateway_core._cli_verify import VERIFY_HELP, add_verify_arguments
from gateway_core._cli_worker import WORKER_HELP, add_worker_arguments, run_worker
from gateway_core._config import Gateways, Settings
from gateway_core._customer_action import action_data, action_text
from gateway_core._exceptions import GatewayError
from gateway_core._models import Customer, Money, PaymentRequest, PaymentStatus
from gateway_core._runtime import Runtime, build_runtime
from gateway_core.ledger import PaymentRecord

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

Command = Callable[[argparse.Namespace, TextIO], int]
_COMMANDS: dict[str, Command] = {}


def _emit(args: argparse.Namespace, out: TextIO, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        out.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        out.write(text.rstrip("\n") + "\n")


def _count(text: str) -> int:
    """An argparse type: a whole number from 0 to 1,000,000."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("must be between 0 and 1000000")
    return value


def _seconds(text: str) -> float:
    """An argparse type: seconds from 0 to one year."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 366 * 24 * 3600:
        raise argparse.ArgumentTypeError("must be between 0 and one year")
    return value


def command(name: str) -> Callable[[Command], Command]:
    def register(func: Command) -> Command:
        _COMMANDS[name] = func
        return func

    return register


# -- providers --------------------------------------------------------------------------


@command("providers")
def _providers(args: argparse.Namespace, out: TextIO) -> int:
    host = plugin_host(args.plugin)
    rows: list[dict[str, Any]] = []
    for info in host.registry:
        rows.append(
            {
                "name": info.name,
                "plugin": info.plugin,
                "distribution": info.distribution,
                "version": info.version,
                "capabilities": sorted(c.value for c in info.capabilities),
                "notification_signature_covers": sorted(
                    f.value for f in info.trust.notification_covers
                ),
                "notification_replayable": info.trust.notification_replayable,
                "return_settles": info.trust.return_settles,
                "notification_settles": info.trust.notification_settles,
                "emulator": bool(info.gateway_class.emulator_entry),
            }
        )
    lines = [f"{len(rows)} provider(s) installed:"]
    for row in rows:
        dist = f"{row['distribution']} {row['version']}".strip() or "(not from a distribution)"
        lines.append(f"  {row['name']}  plugin={row['plugin']}  from {dist}")
        lines.append(f"    capabilities: {', '.join(row['capabilities'])}")
        covers = ", ".join(row["notification_signature_covers"]) or "nothing"
        lines.append(
            f"    notification signature covers: {covers}"
            f"{' (replayable)' if row['notification_replayable'] else ''}; "
            f"return settles: {'yes' if row['return_settles'] else 'no (inquiry confirms)'}"
        )
        settles = "yes" if row["notification_settles"] else "no (inquiry confirms)"
        lines.append(f"    notification settles: {settles}")
    _emit(args, out, {"providers": rows}, "\n".join(lines))
    return EXIT_OK


# -- emulator ---------------------------------------------------------------------------


@command("emulator")
def _emulator(args: argparse.Namespace, out: TextIO) -> int:
    host = plugin_host(args.plugin)
    info = host.registry.get(args.provider)
    entry = info.gateway_class.emulator_entry
    if not entry:
        raise CommandError(f"provider {args.provider!r} ships no emulator")
    module_name, _, func_name = entry.partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    result = func(list(args.emulator_args))
    return int(result or 0)


# -- commands on the configured ledger ---------------------------------------------------


#: Commands that only read: they never create (or migrate into being) a ledger.
_READ_ONLY = frozenset({"status", "verify"})


def _runtime(args: argparse.Namespace) -> Runtime:
    settings = load_settings(args)
    require_configuration(settings)
    host = plugin_host(args.plugin)
    if args.command in _READ_ONLY:
        # Configuration mistakes first (they name the key), then the ledger's absence.
        Gateways.from_settings(settings, registry=host.registry).close()
        require_ledger(settings)
    return build_runtime(settings, host=host)


def _record_dict(record: PaymentRecord) -> dict[str, Any]:
    return {
        "gateway": record.gateway,
        "provider": record.provider,
        "order_reference": record.order_reference,
        "merchant_reference": record.merchant_reference,
        "provider_reference": record.provider_reference,
        "status": record.status.value,
        "amount": str(record.amount.amount),
        "currency": record.amount.currency,
        "attempt": record.attempt,
        "superseded": record.superseded,
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "updated_at": record.updated_at.isoformat(),
    }


def _record_line(record: PaymentRecord) -> str:
    return (
        f"{record.gateway:<12} {record.merchant_reference:<32} {record.status.value:<10} "
        f"{record.amount!s:>18}  order={record.order_reference}"
        f"{'  (superseded)' if record.superseded else ''}"
    )


@command("status")
def _status(args: argparse.Namespace, out: TextIO) -> int:
    with _runtime(args) as rt:
        if args.reference:
            gateway = args.gateway or _only_gateway(rt)
            record = rt.service.payment(gateway, args.reference)
            transitions = rt.ledger.transitions(record.id or 0)
            data: dict[str, Any] = {
                "payment": _record_dict(record),
                "transitions": [
                    {
                        "from": t.from_status.value if t.from_status else None,
                        "to": t.to_status.value,
                        "source": t.source,
                        "at": t.at.isoformat(),
                    }
                    for t in transitions
                ],
                "events": [
                    {
                        "event_id": e.event_id,
                        "kind": e.kind.value,
                        "delivered": e.delivered_at is not None,
                        "attempts": e.attempts,
                    }
                    for e in rt.ledger.outbox(payment_id=record.id)
                ],
            }
            lines = [_record_line(record), "transitions:"]
            lines += [
                f"  {t['at']}  {t['from'] or '-'} -> {t['to']}  ({t['source']})"
                for t in data["transitions"]
            ]
            lines.append("hook events:")
            lines += [
                f"  {e['kind']:<12} {'delivered' if e['delivered'] else 'PENDING'}"
                f"  attempts={e['attempts']}  id={e['event_id']}"
                for e in data["events"]
            ]
            _emit(args, out, data, "\n".join(lines))
            return EXIT_OK
        status = PaymentStatus(args.status) if args.status else None
        records = rt.ledger.list_payments(gateway=args.gateway, status=status, limit=args.limit)
        counts = {k.value: v for k, v in rt.ledger.counts_by_status().items()}
        pending_events = len(rt.ledger.outbox(delivered=False))
        summary = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no payments"
        lines = [f"ledger: {summary}; undelivered hook events: {pending_events}"]
        lines += [_record_line(r) for r in records]
        _emit(
            args,
            out,
            {
                "counts": counts,
                "undelivered_events": pending_events,
                "payments": [_record_dict(r) for r in records],
            },
            "\n".join(lines),
        )
        return EXIT_OK


def _only_gateway(rt: Runtime) -> str:
    names = sorted(rt.gateways)
    if not names:
        raise CommandError("no gateway is configured: add a [providers.NAME] table")
    if len(names) != 1:
        raise CommandError(f"several gateways are configured ({', '.join(names)}): pass --gateway")
    return names[0]


@command("reconcile")
def _reconcile(args: argparse.Namespace, out: TextIO) -> int:
    with _runtime(args) as rt:
        quiet = args.json

        def progress(record: PaymentRecord, verdict: str) -> None:
            if not quiet:  # the words of the summary's counts (a duplicate is "unchanged")
                verdict = {"applied": "changed", "duplicate": "unchanged"}.get(verdict, verdict)
                verdict = "unchanged" if verdict in ("ignored", "rejected") else verdict
                out.write(f"  {record.merchant_reference}: {verdict} ({record.status.value})\n")
                out.flush()

        report = rt.service.reconcile(
            gateway_names=[args.gateway] if args.gateway else None,
            limit=args.limit,
            min_interval=args.interval,
            grace=timedelta(seconds=args.grace) if args.grace is not None else None,
            progress=progress,
        )
        data = attrs.asdict(report)
        text = (
            f"reconciled: examined={report.examined} changed={report.changed} "
            f"unchanged={report.unchanged} waiting={report.waiting} errors={report.errors} "
            f"reviews={report.reviews} unconfigured={report.unconfigured}"
        )
        if report.unconfigured:
            text += (
                f"\n{report.unconfigured} open payments belong to gateways not configured "
                f"here ({', '.join(report.unconfigured_gateways)}); they are not reconciled"
            )
        _emit(args, out, data, text)
        return EXIT_OK if report.errors == 0 else EXIT_ERROR


@command("redeliver")
def _redeliver(args: argparse.Namespace, out: TextIO) -> int:
    with _runtime(args) as rt:
        report = rt.service.redeliver(limit=args.limit, force=args.force)
        remaining = len(rt.ledger.outbox(delivered=False))
        data = {"delivered": report.delivered, "failed": report.failed, "remaining": remaining}
        _emit(
            args,
            out,
            data,
            f"hook events delivered={report.delivered} failed={report.failed} "
            f"still pending={remaining}",
        )
        return EXIT_OK if report.failed == 0 else EXIT_ERROR


@command("inquire")
def _inquire(args: argparse.Namespace, out: TextIO) -> int:
    with _runtime(args) as rt:
        gateway = args.gateway or _only_gateway(rt)
        record = rt.service.inquire(gateway, args.reference)
        _emit(args, out, _record_dict(record), _record_line(record))
        return EXIT_OK


@command("cancel")
def _cancel(args: argparse.Namespace, out: TextIO) -> int:
    with _runtime(args) as rt:
        gateway = args.gateway or _only_gateway(rt)
        record = rt.service.cancel(gateway, args.reference, args.reason)
        _emit(args, out, _record_dict(record), _record_line(record))
        return EXIT_OK


@command("refund")
def _refund(args: argparse.Namespace, out: TextIO) -> int:
    with _runtime(args) as rt:
        _emit(args, out, *refund(rt.service, args.gateway or _only_gateway(rt), args))
        return EXIT_OK


@command("create")
def _create(args: argparse.Namespace, out: TextIO) -> int:
    with _runtime(args) as rt:
        gateway = args.gateway or _only_gateway(rt)
        currency = args.currency or rt.service.gateway(gateway).default_currency
        if not currency:
            raise CommandError(f"gateway {gateway!r} has no default currency: pass --currency")
        try:
            amount = Money(args.amount, currency)
        except (TypeError, ValueError) as exc:
            raise CommandError(f"bad amount: {exc}") from None
        request = PaymentRequest(
            order_reference=args.order,
            amount=amount,
            customer=Customer(args.customer_name, email=args.email, phone=args.phone),
            description=args.description,
            return_url=args.return_url,
        )
        started = rt.service.start_payment(gateway, request)
        data = _record_dict(started.payment)
        data["redirect_url"] = started.redirect.url  # kept for scripts written before "action"
        data["action"] = action_data(started.redirect)
        data["reused"] = started.reused
        _emit(
            args,
            out,
            data,
            _record_line(started.payment)
            + f"\n{action_text(started.redirect)}"
            + ("\n(an existing payable attempt was reused)" if started.reused else ""),
        )
        return EXIT_OK


@command("verify")
def _verify(args: argparse.Namespace, out: TextIO) -> int:
    from gateway_core._cli_verify import VerifyError, verify

    with _runtime(args) as rt:
        try:
            valid, data, text = verify(rt, args.gateway or _only_gateway(rt), args)
        except VerifyError as exc:
            raise CommandError(str(exc)) from None
        _emit(args, out, data, text)
        return EXIT_OK if valid else EXIT_ERROR


@command("serve")
def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from gateway_core._cli_serve import ServeError, serve

    with _runtime(args) as rt:
        try:
            serve(rt, args, out)
        except ServeError as exc:
            raise CommandError(str(exc)) from None
    return EXIT_OK


@command("worker")
def _worker(args: argparse.Namespace, out: TextIO) -> int:
    return run_worker(load_settings(args), lambda: _runtime(args), args, out)


@command("prune")
def _prune(args: argparse.Namespace, out: TextIO) -> int:
    settings = load_settings(args)
    require_configuration(settings)
    _emit(args, out, *prune(settings, args.older_than))
    return EXIT_OK


@command("demo")
def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from gateway_core.demo import DemoOptions, run_demo

    options = DemoOptions(
        provider=args.provider,
        customer=args.customer,
        duplicate_notifications=args.duplicate_notifications,
        drop_notifications=args.drop_notifications,
        amount=args.amount,
        currency=args.currency,
        keep_ledger=args.keep_ledger,
        method=args.method,
    )
    result = run_demo(options, out=None if args.json else out)
    if args.json:
        _emit(args, out, result, "")
    return EXIT_OK if result["ok"] else EXIT_ERROR


# -- argument parsing -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gateway",
        description=(
            "Pluggable payment gateway adapter: list providers, run a provider's emulator, "
            "serve the notification and return endpoints, and operate the payment ledger."
        ),
        epilog="Configuration: --config FILE (TOML) or $GATEWAY_CONFIG, plus environment "
        "variables. Add --json to any command for machine-readable output.",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="TOML configuration file (before the command)"
    )
    add_verbose(parser)
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE[:ATTR]",
        help="also load this plugin (e.g. your order system's hooks), besides the "
        "'gateway_core' entry points; found from the working directory first (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON document")
        add_verbose(p, default=argparse.SUPPRESS)
        return p

    add("providers", "list installed providers, their plugin, version and capabilities")

    add_demo_arguments(
        add("demo", "run a complete payment against a provider's emulator, on a throwaway ledger"),
        _count,
    )
    add_refund_arguments(add("refund", REFUND_HELP))

    p = add("serve", "serve the notification and return endpoints with waitress")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--prefix", default="", help="URL prefix, e.g. /payments")
    p.add_argument(
        "--return-page",
        default="",
        help="where customers go after a return (default: the built-in PREFIX/done page)",
    )
    p.add_argument(
        "--max-body", type=_count, default=16384, help="largest notification body, in bytes"
    )
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="CIDR",
        help="only accept notifications from these addresses (repeatable)",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="CIDR",
        help="reverse proxies whose X-Forwarded-For is believed (repeatable)",
    )
    add_observability_arguments(p)  # --metrics, --log-format

    p = add("create", "create a payment and print where to send the customer")
    p.add_argument("--gateway", help="configured gateway name (default: the only one)")
    p.add_argument("--order", required=True, help="order reference")
    p.add_argument("--amount", required=True, help="decimal amount, e.g. 2000")
    p.add_argument(
        "--currency", default="", help="ISO 4217 code (default: the provider's, if it has one)"
    )
    p.add_argument("--description", default="Order payment")
    p.add_argument("--customer-name", default="Customer")
    p.add_argument("--email", default="")
    p.add_argument("--phone", default="")
    p.add_argument("--return-url", required=True, help="the customer's return URL")

    for name, help_text in (
        ("inquire", "ask the provider for a payment's status and apply it"),
        ("cancel", "cancel an unpaid payment at the provider"),
    ):
        p = add(name, help_text)
        p.add_argument("reference", help="merchant reference (bill number)")
        p.add_argument("--gateway", help="configured gateway name (default: the only one)")
        if name == "cancel":
            p.add_argument("--reason", default="", help="cancellation reason sent to the provider")

    p = add("status", "show the ledger: counts, recent payments, or one payment's history")
    p.add_argument("reference", nargs="?", help="merchant reference for one payment's history")
    p.add_argument("--gateway", help="configured gateway name")
    p.add_argument("--status", choices=[s.value for s in PaymentStatus])
    p.add_argument("--limit", type=_count, default=20)

    p = add("reconcile", "inquire stuck payments (pending/unknown) and apply the answers")
    p.add_argument("--gateway", help="only this configured gateway")
    p.add_argument("--limit", type=_count, default=100, help="at most this many payments")
    p.add_argument("--interval", type=_seconds, default=0.2, help="seconds between inquiries")
    p.add_argument(
        "--grace",
        type=_seconds,
        default=None,
        help="only payments untouched for this many seconds (default 300)",
    )

    p = add("redeliver", "deliver pending hook events from the outbox")
    p.add_argument("--limit", type=_count, default=1000)
    p.add_argument("--force", action="store_true", help="ignore the retry schedule")

    add_prune_arguments(add("prune", PRUNE_HELP))
    add_worker_arguments(add("worker", WORKER_HELP))
    add_verify_arguments(add("verify", VERIFY_HELP))
    p = add("emulator", "run a provider's local emulator (`gateway emulator <provider> ...`)")
    p.add_argument("provider", help="installed provider name")
    p.add_argument("emulator_args", nargs=argparse.REMAINDER, help="options passed to the emulator")
    return parser


def load_settings(args: argparse.Namespace) -> Settings:
    """The configuration named by ``--config`` or the environment."""
    return Settings.load(args.config, environ=os.environ)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the ``gateway`` command; returns the exit code."""
    stream = out or sys.stdout
    argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return report_error(stream, one_line(str(exc)), EXIT_USAGE, as_json=wants_json(argv))
    undo_logging = configure_logging(args.verbose)
    prefix = f"gateway {args.command}: error: "
    try:
        return _COMMANDS[args.command](args, stream)
    except (GatewayError, CommandError, ValueError, OverflowError, OSError) as exc:
        # ValueError, OverflowError: values the command line let through but the models
        # refuse (an amount out of range, say); still a user mistake, still one line.
        line = prefix + one_line(str(exc) or type(exc).__name__)
        return report_error(stream, line, EXIT_ERROR, as_json=getattr(args, "json", False))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    finally:
        undo_logging()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
