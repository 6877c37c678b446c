"""``gateway verify``: check a saved notification (its body, and the headers its signature
may travel in, ``--header NAME:VALUE``) or a return URL, naming the first check that fails.
The dispatch lives in :mod:`gateway_core.cli`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import attrs

from gateway_core._runtime import Runtime
from gateway_core._service_types import Check

VERIFY_HELP = "check a saved notification body or a return URL, naming what fails"


class VerifyError(Exception):
    """The input cannot be read (one line for the user)."""


def header(text: str) -> tuple[str, str]:
    """An argparse type: ``NAME:VALUE`` (the value may contain colons)."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise argparse.ArgumentTypeError(f"not NAME:VALUE: {text[:40]!r}")
    return name, value.strip()


def add_verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=["notification", "return"])
    p.add_argument("source", help="notification: a file (or -); return: the full return URL")
    p.add_argument("--gateway", help="configured gateway name (default: the only one)")
    p.add_argument(
        "--header",
        action="append",
        default=[],
        type=header,
        metavar="NAME:VALUE",
        help="a header the notification came with, e.g. its signature (repeatable)",
    )


def verify(
    rt: Runtime, gateway: str, args: argparse.Namespace
) -> tuple[bool, dict[str, object], str]:
    """Run the checks: (valid, JSON data, text)."""
    checks: list[Check]
    headers = dict(args.header)
    if args.kind == "notification":
        try:
            body = Path(args.source).read_bytes() if args.source != "-" else sys.stdin.buffer.read()
        except OSError as exc:
            raise VerifyError(f"cannot read {args.source}: {exc.strerror}") from None
        checks = rt.service.check_notification(gateway, body, headers)
    else:
        query = dict(parse_qsl(urlsplit(args.source).query, keep_blank_values=True))
        checks = rt.service.check_return(gateway, query)
    valid = all(check.ok for check in checks)
    lines = [f"{'VALID' if valid else 'INVALID'} {args.kind} for gateway {gateway}"]
    lines += [
        f"  [{'ok' if c.ok else 'FAIL'}] {c.name}{': ' + c.detail if c.detail else ''}"
        for c in checks
    ]
    data: dict[str, object] = {"valid": valid, "checks": [attrs.asdict(c) for c in checks]}
    return valid, data, "\n".join(lines)
