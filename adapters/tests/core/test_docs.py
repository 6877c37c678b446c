"""The user documentation in ``docs/`` stays true to the code.

* every relative link between documentation files resolves (the file, and the heading when
  the link names one);
* every ``gateway <subcommand>`` shown as a command is a real subcommand of the CLI;
* the ``faspay_dana`` settings table in ``configuration.md`` lists exactly the keys
  ``FaspayConfig.from_settings`` reads, with their environment variables;
* the fault tables in ``emulator.md`` list exactly the emulator's fault names;
* the example test in ``emulator.md`` passes when run by pytest in a fresh directory, with
  nothing but the installed pytest plugin's fixtures.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from gateway_core import SettingsReader
from gateway_core.cli import build_parser

DOCS = Path(__file__).resolve().parents[3] / "docs"

_FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_MD_LINK_TEXT = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console", "crontab", "cron"})
#: ``gateway [--config FILE] <subcommand>``, where ``gateway`` may follow a path or a shell
#: separator.
_COMMAND = re.compile(r"(?:^|(?<=[\s/;&|(]))gateway(?:\s+--config(?:=|\s+)\S+)?\s+([a-z][\w-]*)")


@attrs.frozen
class Block:
    """One fenced code block."""

    info: str
    text: str
    line: int
    heading: str


@attrs.frozen
class Doc:
    """One Markdown file split into prose (code blocks removed) and fenced blocks."""

    path: Path
    prose: str
    blocks: tuple[Block, ...]

    @property
    def name(self) -> str:
        return self.path.name


def parse(path: Path) -> Doc:
    prose: list[str] = []
    blocks: list[Block] = []
    fence = ""
    info = ""
    start = 0
    body: list[str] = []
    heading = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _FENCE.match(line)
        if fence:
            if match and match.group(1).startswith(fence) and not match.group(2).strip():
                blocks.append(Block(info, "\n".join(body) + "\n", start, heading))
                fence = ""
            else:
                body.append(line)
            prose.append("")
            continue
        if match:
            fence, info, start, body = match.group(1), match.group(2).strip(), number, []
            prose.append("")
            continue
        title = _HEADING.match(line)
        if title:
            heading = title.group(2)
        prose.append(line)
    assert not fence, f"{path.name}: a code block opened on line {start} is never closed"
    return Doc(path, "\n".join(prose), tuple(blocks))


def all_docs() -> list[Doc]:
    return [parse(path) for path in sorted(DOCS.glob("*.md"))]


def doc(name: str) -> Doc:
    return parse(DOCS / name)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = _MD_LINK_TEXT.sub(r"\1", heading)
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(document: Doc) -> set[str]:
    seen: dict[str, int] = {}
    result: set[str] = set()
    for line in document.prose.splitlines():
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(document: Doc) -> Iterator[str]:
    text = _INLINE_CODE.sub("", document.prose)
    for match in _LINK.finditer(text):
        yield match.group(1)


def table_after(document: Doc, heading: str) -> list[list[str]]:
    """The rows (cells stripped, header and separator dropped) of the first table after
    ``heading``."""
    lines = document.prose.splitlines()
    starts = [
        number
        for number, line in enumerate(lines)
        if (match := _HEADING.match(line)) and match.group(2) == heading
    ]
    assert starts, f"{document.name} has no heading {heading!r}"
    rows: list[list[str]] = []
    for line in lines[starts[0] + 1 :]:
        if _HEADING.match(line):
            break
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    assert len(rows) > 2, f"{document.name}: no table after {heading!r}"
    return rows[2:]


def code_name(cell: str) -> str:
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"expected a `code` cell, got {cell!r}"
    return match.group(1)


# -- links ----------------------------------------------------------------------------------


def test_every_relative_link_between_docs_resolves() -> None:
    documents = {d.path.resolve(): d for d in all_docs()}
    assert len(documents) >= 10
    broken: list[str] = []
    checked = 0
    for source in documents.values():
        for target in links(source):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue  # https:, mailto: ...
            checked += 1
            path_part, _, fragment = target.partition("#")
            path = (source.path.parent / path_part).resolve() if path_part else source.path
            if not path.exists():
                broken.append(f"{source.name}: {target} (no such file)")
                continue
            if not fragment or path.suffix != ".md":
                continue
            linked = documents.get(path.resolve()) or parse(path)
            if fragment not in anchors(linked):
                broken.append(f"{source.name}: {target} (no such heading)")
    assert checked > 20
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_slug_follows_github() -> None:
    assert slug("Faspay DANA settings (`faspay_dana`)") == "faspay-dana-settings-faspay_dana"
    assert slug("6. Implement the order-system hooks") == "6-implement-the-order-system-hooks"


# -- gateway subcommands ----------------------------------------------------------------------


def subcommands() -> set[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the gateway parser has no subcommands")


def command_mentions(document: Doc) -> Iterator[tuple[str, str]]:
    """(subcommand, where) for every ``gateway <word>`` written as a command."""
    for span in _INLINE_CODE.finditer(document.prose):
        code = span.group(2).strip()
        match = _COMMAND.match(code)
        if match:
            yield match.group(1), f"{document.name}: `{code}`"
    for block in document.blocks:
        language = block.info.split()[0].lower() if block.info else ""
        for offset, line in enumerate(block.text.splitlines(), start=1):
            if language in _SHELL_LANGUAGES:
                command = line
            elif line.startswith("$ "):  # a command shown with its output
                command = line[2:]
            else:
                continue
            if command.lstrip().startswith("#"):
                continue
            for match in _COMMAND.finditer(command):
                yield match.group(1), f"{document.name}:{block.line + offset}: {line.strip()}"


def test_every_gateway_subcommand_in_the_docs_exists() -> None:
    known = subcommands()
    mentions = [m for d in all_docs() for m in command_mentions(d)]
    found = {name for name, _ in mentions}
    assert {"demo", "serve", "reconcile", "emulator", "status"} <= found, found
    unknown = [f"{where} -> {name!r}" for name, where in mentions if name not in known]
    assert not unknown, f"not gateway subcommands ({sorted(known)}):\n" + "\n".join(unknown)


# -- faspay_dana settings -------------------------------------------------------------------


def faspay_settings_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys ``FaspayConfig.from_settings`` reads, in order."""
    from gateway_faspay_dana import _config

    seen: list[str] = []

    class Recording(SettingsReader):
        def text(self, key: str, *args: Any, **kwargs: Any) -> str:
            seen.append(key)
            return super().text(key, *args, **kwargs)

        def number(self, key: str, *args: Any, **kwargs: Any) -> float:
            seen.append(key)
            return super().number(key, *args, **kwargs)

        def integer(self, key: str, *args: Any, **kwargs: Any) -> int:
            seen.append(key)
            return super().integer(key, *args, **kwargs)

        def flag(self, key: str, *args: Any, **kwargs: Any) -> bool:
            seen.append(key)
            return super().flag(key, *args, **kwargs)

        def names(self, key: str, *args: Any, **kwargs: Any) -> tuple[str, ...]:
            seen.append(key)
            return super().names(key, *args, **kwargs)

    monkeypatch.setattr(_config, "SettingsReader", Recording)
    _config.FaspayConfig.from_settings(
        {"merchant_id": "99999", "merchant_name": "Shop", "password": "a-test-password"},
        environ={},
    )
    return seen


def test_faspay_settings_table_matches_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway_faspay_dana._config import ENV_NAMES

    rows = table_after(doc("configuration.md"), "Faspay DANA settings (`faspay_dana`)")
    documented = [code_name(row[0]) for row in rows]
    read = faspay_settings_read(monkeypatch)
    assert len(read) > 10
    assert len(documented) == len(set(documented)), "a key is documented twice"
    assert set(documented) - set(read) == set(), "documented but not read by from_settings"
    assert set(read) - set(documented) == set(), "read by from_settings but not documented"
    for row in rows:
        key, env = code_name(row[0]), row[3]
        if key in ENV_NAMES:
            assert env == f"`{ENV_NAMES[key]}`", f"{key}: environment variable {env}"
        else:
            assert env == "—", f"{key} has no environment variable, the table says {env}"


# -- emulator faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "catalogue"),
    [("Endpoint faults", "ENDPOINT_FAULTS"), ("Notification faults", "NOTIFICATION_FAULTS")],
)
def test_fault_tables_match_the_emulator(heading: str, catalogue: str) -> None:
    from gateway_faspay_dana import emulator

    documented = [code_name(row[0]) for row in table_after(doc("emulator.md"), heading)]
    actual = set(getattr(emulator, catalogue))
    assert len(documented) == len(set(documented)), "a fault is documented twice"
    assert set(documented) - actual == set(), f"documented but not in {catalogue}"
    assert actual - set(documented) == set(), f"in {catalogue} but not documented"


# -- the example test -----------------------------------------------------------------------


def example_test_source() -> str:
    for block in doc("emulator.md").blocks:
        if block.heading == "Example test" and block.info.split()[:1] == ["python"]:
            return block.text
    raise AssertionError("emulator.md has no ```python block under 'Example test'")


def test_the_example_test_in_emulator_md_passes(tmp_path: Path) -> None:
    source = example_test_source()
    assert "def test_" in source
    (tmp_path / "test_example.py").write_text(source, encoding="utf-8")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_PLUGINS"}
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
