"""The ``gateway`` command.

Every subcommand reads its configuration from ``--config FILE`` (TOML, else
``$GATEWAY_CONFIG``) and the environment, prints human text by default and one JSON document
with ``--json``, and turns every user mistake into one line on stderr and a non-zero exit
code: never a traceback, never a secret.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from gateway_core._config import Settings
from gateway_core._exceptions import GatewayError
from gateway_core._plugins import PluginHost
from gateway_core._redact import redact_text

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

Command = Callable[[argparse.Namespace, TextIO], int]
_COMMANDS: dict[str, Command] = {}


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def _emit(args: argparse.Namespace, out: TextIO, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        out.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        out.write(text.rstrip("\n") + "\n")


def command(name: str) -> Callable[[Command], Command]:
    def register(func: Command) -> Command:
        _COMMANDS[name] = func
        return func

    return register


# -- providers --------------------------------------------------------------------------


@command("providers")
def _providers(args: argparse.Namespace, out: TextIO) -> int:
    host = PluginHost()
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
    _emit(args, out, {"providers": rows}, "\n".join(lines))
    return EXIT_OK


# -- emulator ---------------------------------------------------------------------------


@command("emulator")
def _emulator(args: argparse.Namespace, out: TextIO) -> int:
    host = PluginHost()
    info = host.registry.get(args.provider)
    entry = info.gateway_class.emulator_entry
    if not entry:
        raise CommandError(f"provider {args.provider!r} ships no emulator")
    module_name, _, func_name = entry.partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    result = func(list(args.emulator_args))
    return int(result or 0)


# -- argument parsing -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description=(
            "Pluggable payment gateway adapter: list providers, run a provider's emulator, "
            "serve the notification and return endpoints, and operate the payment ledger."
        ),
        epilog="Configuration: --config FILE (TOML) or $GATEWAY_CONFIG, plus environment "
        "variables. Add --json to any command for machine-readable output.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON document")
        return p

    add("providers", "list installed providers, their plugin, version and capabilities")
    p = add("emulator", "run a provider's local emulator (e.g. `gateway emulator faspay_dana`)")
    p.add_argument("provider", help="installed provider name")
    p.add_argument("emulator_args", nargs=argparse.REMAINDER, help="options passed to the emulator")
    return parser


def load_settings(args: argparse.Namespace) -> Settings:
    """The configuration named by ``--config`` or the environment."""
    return Settings.load(args.config, environ=os.environ)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the ``gateway`` command; returns the exit code."""
    stream = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        return _COMMANDS[args.command](args, stream)
    except (GatewayError, CommandError) as exc:
        sys.stderr.write(f"gateway {args.command}: error: {redact_text(str(exc))}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
