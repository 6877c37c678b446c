"""The ``gateway`` command's manners, kept out of :mod:`gateway_core.cli`: a user mistake is
one line (or, with ``--json``, one JSON document holding the same line), with the fix when
there is one; log records reach the terminal only with ``-v``; ``--plugin`` imports modules
from the working directory as ``python -m`` does, and a bad one fails the command; commands
that read the ledger never create one."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO
from urllib.parse import unquote

from gateway_core._config import Settings
from gateway_core._plugins import PluginHost
from gateway_core._redact import redact_text
from gateway_core._runtime import DEFAULT_LEDGER_URL

#: Options of the ``gateway`` command itself, which go before the command.
GLOBAL_OPTIONS = ("--config", "--plugin")


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


class UsageError(Exception):
    """The command line itself is wrong: one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """Usage mistakes are one line too (``gateway status: error: ...``), with the fix for an
    option on the wrong side of the command."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            raise UsageError(f"{prog}: error: {_misplaced(extras, command)}")
        return parsed


def _misplaced(extras: list[str], command: str | None) -> str:
    names = [e.partition("=")[0] for e in extras]
    cmd = command or "COMMAND"
    for option in GLOBAL_OPTIONS:
        if option in names:
            value = "FILE" if option == "--config" else "MODULE[:ATTR]"
            return f"put {option} before the command: gateway {option} {value} {cmd} ..."
    if "--json" in names:
        return f"put --json after the command: gateway {cmd} --json"
    return f"unrecognized arguments: {' '.join(extras)} (see gateway {cmd} --help)"


def one_line(text: str) -> str:
    """``text`` as one redacted line: line breaks and tabs (libpq's messages have them)
    become spaces, other control characters are escaped, secrets are masked."""
    return redact_text(" ".join(text.split()))


def report_error(out: TextIO, line: str, code: int, *, as_json: bool) -> int:
    """Print an error line on stderr, or, with ``--json``, one JSON document holding the
    same line on ``out``; returns ``code``."""
    if as_json:
        out.write(json.dumps({"error": line, "exit_code": code}, sort_keys=True) + "\n")
    else:
        sys.stderr.write(line + "\n")
    return code


def wants_json(argv: Sequence[str]) -> bool:
    """``--json`` anywhere on the command line (a usage error happens before parsing ends)."""
    return "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv


def add_verbose(parser: argparse.ArgumentParser, *, default: Any = 0) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="print log records on stderr (-v: warnings and progress, -vv: debug)",
    )


def configure_logging(verbose: int) -> Callable[[], None]:
    """Without ``-v`` log records go nowhere (not Python's last-resort stderr handler, which
    would mix WARNING lines into the command's output); with it they go to stderr.
    Returns the undo, so :func:`gateway_core.cli.main` can be called more than once."""
    root = logging.getLogger()
    handler: logging.Handler
    previous = root.level
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    else:
        handler = logging.NullHandler()
    root.addHandler(handler)

    def undo() -> None:
        root.removeHandler(handler)
        root.setLevel(previous)

    return undo


def plugin_objects(specs: Sequence[str]) -> list[object]:
    """The objects named by ``--plugin MODULE[:ATTR]`` (a class is instantiated); modules
    are found in the working directory first, as with ``python -m``."""
    cwd = os.getcwd()
    if specs and cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    plugins: list[object] = []
    for spec in specs:
        module_name, _, attribute = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            where = "in the working directory or the installed packages"
            if exc.name and exc.name != module_name and not module_name.startswith(exc.name):
                where = f"(needed by {module_name})"
            raise CommandError(f"--plugin {spec}: no module named {exc.name!r} {where}") from None
        except Exception as exc:
            raise CommandError(
                f"--plugin {spec}: importing {module_name} failed: {type(exc).__name__}: {exc}"
            ) from None
        if not attribute:
            plugins.append(module)
            continue
        try:
            target = getattr(module, attribute)
        except AttributeError:
            raise CommandError(f"--plugin {spec}: {module_name} has no {attribute!r}") from None
        try:
            plugins.append(target() if isinstance(target, type) else target)
        except Exception as exc:
            raise CommandError(
                f"--plugin {spec}: {attribute}() failed: {type(exc).__name__}: {exc}"
            ) from None
    return plugins


def plugin_host(specs: Sequence[str]) -> PluginHost:
    """The installed plugins plus those named by ``--plugin``; any failure is an error."""
    host = PluginHost()
    for plugin in plugin_objects(specs):
        host.register(plugin)
    return host


def require_configuration(settings: Settings) -> None:
    """Refuse to run on nothing: no file, no gateways, no ledger URL."""
    if settings.providers or settings.ledger_url or settings.source != "<environment>":
        return
    raise CommandError(
        "nothing is configured: pass --config FILE before the command, or set "
        "$GATEWAY_CONFIG (see docs/configuration.md)"
    )


def require_ledger(settings: Settings) -> None:
    """A command that only reads never creates a ledger (a SQLite file that is not there)."""
    url = settings.ledger_url or DEFAULT_LEDGER_URL
    if not url.startswith("sqlite:///"):
        return
    path = unquote(url[len("sqlite:///") :].partition("?")[0])
    if path and not Path(path).exists():
        raise CommandError(
            f"no ledger at {path}: nothing is recorded there yet (check [ledger] url "
            "or $GATEWAY_LEDGER_URL)"
        )
