"""Nothing Faspay-specific in ``gateway_core`` (issue 10, item 7).

Redaction patterns and reference rules are contributed by the plugins, the core never defaults
a currency, and the conformance kit's inputs come from the plugin under test. The core may
name Faspay only in comments and docstrings, as an example.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import gateway_core
from gateway_core.cli import build_parser
from gateway_core.demo import DemoOptions

CORE = Path(gateway_core.__file__).resolve().parent
PROVIDER = re.compile(r"faspay", re.IGNORECASE)


def _prose_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of every comment and docstring (a string statement) in
    ``source``."""
    docstrings = {
        (node.lineno, node.col_offset)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }
    return [
        (token.start, token.end)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
        or (token.type == tokenize.STRING and token.start in docstrings)
    ]


def _mentions_outside_prose(path: Path, root: Path = CORE.parent) -> list[str]:
    source = path.read_text(encoding="utf-8")
    spans = _prose_spans(source)
    found = []
    for number, line in enumerate(source.splitlines(), start=1):
        for match in PROVIDER.finditer(line):
            at = (number, match.start())
            if not any(start <= at and (number, match.end()) <= end for start, end in spans):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_the_core_names_faspay_only_in_comments_and_docstrings() -> None:
    found = [hit for path in sorted(CORE.rglob("*.py")) for hit in _mentions_outside_prose(path)]
    assert not found, "provider names in gateway_core code:\n" + "\n".join(found)


def test_the_core_ships_no_other_file_naming_faspay() -> None:
    others = [p for p in CORE.rglob("*") if p.is_file() and p.suffix not in {".py", ".pyc"}]
    named = [str(p) for p in others if PROVIDER.search(p.read_text("utf-8", "replace"))]
    assert not named


def test_the_check_sees_a_mention_in_code_but_not_in_prose(tmp_path: Path) -> None:
    """Guards against a vacuous scan."""
    module = tmp_path / "sample.py"
    module.write_text(
        '"""Faspay, as an example."""\n'
        "# Faspay in a comment\n"
        "x = 1  # faspay again\n"
        'NAME = "faspay_dana"\n'
        "def f():\n"
        '    """Like FASPAY does."""\n'
        '    return f"{NAME} Faspay"\n',
        encoding="utf-8",
    )
    found = _mentions_outside_prose(module, tmp_path)
    assert [hit.split(":")[1] for hit in found] == ["4", "7"]


def test_importing_the_core_imports_no_provider_plugin() -> None:
    """With the Faspay plugin installed, the core and every one of its modules import
    without it (its entry point loads only when a PluginHost starts)."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import gateway_core\n"
        "assert not [n for n in sys.modules if n.startswith('adapters')], 'import gateway_core'\n"
        "for info in pkgutil.walk_packages(gateway_core.__path__, 'gateway_core.'):\n"
        "    importlib.import_module(info.name)\n"
        "print(sorted(n for n in sys.modules if n.startswith('adapters')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_faspay_plugin_is_installed_for_the_import_check() -> None:
    import importlib.metadata

    names = {ep.name for ep in importlib.metadata.entry_points(group="gateway_core")}
    assert "faspay_dana" in names


def test_the_core_defaults_no_currency() -> None:
    """``gateway create`` and ``gateway demo`` take the provider's ``default_currency``
    unless ``--currency`` is given; the core has none of its own."""
    parser = build_parser()
    create = parser.parse_args(
        ["create", "--order", "o", "--amount", "1", "--return-url", "https://shop.example/r"]
    )
    demo = parser.parse_args(["demo"])
    assert create.currency == ""
    assert demo.currency == ""
    assert DemoOptions().currency == ""
