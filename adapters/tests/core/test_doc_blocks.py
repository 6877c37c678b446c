"""Every fenced code block in ``README.md`` and ``docs/*.md`` runs as printed, or says why not.

A block is classified by its language and by an optional marker, an HTML comment on the line
right before its opening fence (invisible when rendered):

* ``<!-- excerpt: why -->``: not runnable as shown (a fragment, an output sample, a deployment
  path, an install step); the reason is required;
* ``<!-- tested-by: path::test_name -->``: run by another test, which must exist; a block quoting
  a ``docs/examples`` file must be a verbatim slice of it;
* ``<!-- output -->`` (text blocks): the output of the block run just before it, compared
  after volatile values (ports, temp paths, ids, signatures) are normalised;
* ``<!-- runs -->`` (shell blocks): run with ``bash`` in a temp directory, ``gateway`` on the
  ``PATH``;
* ``<!-- runs: server -->`` (shell blocks): a long-running command; started (``--port N``
  becomes a free port), its banner read, then stopped. The first one in ``emulator.md`` is the
  emulator the Python blocks run against.

Unmarked blocks: ``python`` blocks are executed in a subprocess (temp directory, timeout) with
``GATEWAY_CONFIG`` naming a SQLite gateway config whose ``dana`` gateway points at the
emulator, ``FASPAY_PASSWORD`` set to the emulator's sandbox password, and the doc's
``gateway.toml`` (the TOML block before it, else after it, that starts ``# gateway.toml``)
written to the temp directory with the emulator's ``base_url``; ``toml`` blocks are parsed,
and gateway configs are loaded with ``Settings``.
Anything else unmarked fails with its file and line.
"""

from __future__ import annotations

import os
import re
import selectors
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_docs import Block, parse

from gateway_core import Settings

ROOT = Path(__file__).resolve().parents[3]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
PASSWORD = "p@ssw0rd"  # the emulator's default: Faspay's public sandbox example
TIMEOUT = 60

_MARKER = re.compile(r"^<!--\s*(excerpt|tested-by|output|runs)\s*(?::\s*(.*?))?\s*-->\s*$")
_VOLATILE = [
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"/tmp/[\w.-]+"), "/tmp/TMP"),
    (re.compile(r"\b[0-9a-f]{40}\b"), "HEX"),
    (re.compile(r"\d{6,}"), "N"),
]
_HINT = (
    "mark it on the line before its fence with <!-- excerpt: why --> (not runnable as shown), "
    "<!-- runs --> (a shell block the test can run) or <!-- tested-by: path::test -->"
)


def language(block: Block) -> str:
    return block.info.split()[0].lower() if block.info else ""


def marked_blocks() -> Iterator[tuple[Path, Block, str, str]]:
    """(file, block, marker kind, marker argument) for every block; kind "" when unmarked."""
    for path in FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        for block in parse(path).blocks:
            before = lines[block.line - 2] if block.line > 1 else ""
            match = _MARKER.match(before.strip())
            kind, argument = (match.group(1), match.group(2) or "") if match else ("", "")
            yield path, block, kind, argument


def where(path: Path, block: Block) -> str:
    return f"{path.relative_to(ROOT)}:{block.line}"


def normalise(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(tmp: Path, emulator_url: str) -> dict[str, str]:
    config = tmp / "gateway-test.toml"
    config.write_text(
        f'[ledger]\nurl = "sqlite:///{tmp}/ledger.db"\n\n[providers.dana]\n'
        f'provider = "faspay_dana"\nmerchant_id = "99999"\nmerchant_name = "Sophia Store"\n'
        f'base_url = "{emulator_url}"\n',
        encoding="utf-8",
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GATEWAY_", "FASPAY_", "PYTEST_"))
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        GATEWAY_CONFIG=str(config),
        FASPAY_PASSWORD=PASSWORD,
    )
    return env


class Server:
    """A shell block's long-running command, started with a free port."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        command = re.sub(r"--port \d+", f"--port {free_port()}", command)
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        data = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and b"Ctrl-C" not in data:
            if selector.select(timeout=0.5):
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
        selector.close()
        self.banner = data.decode()
        found = re.search(r"listening on (http://\S+)", self.banner)
        assert found, f"{command!r} printed no banner:\n{self.banner}"
        self.url = found.group(1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


def run(argv: list[str], cwd: Path, env: dict[str, str], label: str) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0, (
        f"{label} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    )
    return result.stdout


def check_tested_by(path: Path, block: Block, argument: str) -> None:
    test_file, _, test_name = argument.partition("::")
    source = (ROOT / test_file).read_text(encoding="utf-8")
    assert f"def {test_name}(" in source, f"{where(path, block)}: no test {argument}"
    if "test_web_frameworks" in test_file:
        examples = [p.read_text(encoding="utf-8") for p in (ROOT / "docs/examples").glob("*.py")]
        assert any(block.text in text for text in examples), (
            f"{where(path, block)}: not a verbatim slice of a docs/examples file"
        )
    if "example_test_in_emulator_md" in test_name:
        assert block.heading == "Example test"


def gateway_toml_before(path: Path, block: Block, emulator_url: str) -> str | None:
    """The doc's ``# gateway.toml`` block (the last before ``block``, else the first after),
    pointed at the emulator."""
    found = None
    for other in parse(path).blocks:
        if language(other) == "toml" and other.text.startswith("# gateway.toml"):
            if other.line > block.line:
                found = found or other.text  # none before the block: the README shows it after
                break
            found = other.text
    if found is None:
        return None
    return re.sub(
        r"(\[providers\.dana\]\n)", rf'\1base_url = "{emulator_url}"\n', found, count=1
    ).replace("sqlite:////var/lib/shop/payments.db", "sqlite:///ledger.db")


def check_toml(path: Path, block: Block, tmp: Path) -> None:
    data = tomllib.loads(block.text)
    if "providers" in data or "ledger" in data or "service" in data:
        config = tmp / f"{path.stem}-{block.line}.toml"
        config.write_text(block.text, encoding="utf-8")
        Settings.load(str(config))


def test_every_doc_block_runs_or_is_marked(tmp_path: Path) -> None:
    blocks = list(marked_blocks())
    assert len(blocks) > 60
    problems: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    emulator: Server | None = None
    servers: list[Server] = []
    emulator_block: Block | None = None
    previous_output: str | None = None
    # the emulator every Python block runs against: the one emulator.md starts
    for path, block, kind, _ in blocks:
        if path.name == "emulator.md" and kind == "runs" and language(block) == "sh":
            env = environment(tmp_path, "http://127.0.0.1:1")
            emulator = Server(block.text.strip(), tmp_path, env)
            emulator_block = block
            servers.append(emulator)
            break
    assert emulator is not None, (
        "emulator.md: the emulator command is not marked <!-- runs: server -->"
    )
    try:
        for number, (path, block, kind, argument) in enumerate(blocks):
            label = where(path, block)
            lang = language(block)
            work = tmp_path / f"block{number}"
            work.mkdir()
            env = environment(work, emulator.url)
            output: str | None = None
            verdict = "run"
            try:
                if kind == "excerpt":
                    verdict = "excerpt"
                    if not argument:
                        problems.append(f"{label}: an excerpt needs a reason")
                elif kind == "tested-by":
                    check_tested_by(path, block, argument)
                elif kind == "output":
                    if previous_output is None:
                        problems.append(f"{label}: <!-- output --> follows no block that ran")
                    elif normalise(previous_output) != normalise(block.text):
                        problems.append(
                            f"{label}: the output differs from the doc (normalised):\n"
                            f"--- doc\n{normalise(block.text)}\n--- actual\n"
                            f"{normalise(previous_output)}"
                        )
                elif kind == "runs" and lang in {"sh", "bash"} and argument == "server":
                    if block is emulator_block:
                        server = emulator
                    else:
                        server = Server(block.text.strip().replace("\\\n", " "), work, env)
                        servers.append(server)
                    output = server.banner
                elif kind == "runs" and lang in {"sh", "bash"}:
                    output = run(["bash", "-e", "-c", block.text], work, env, label)
                elif kind:
                    problems.append(f"{label}: marker {kind!r} does not apply to a {lang!r} block")
                elif lang == "python":
                    script = work / "block.py"
                    script.write_text(block.text, encoding="utf-8")
                    gateway_toml = gateway_toml_before(path, block, emulator.url)
                    if gateway_toml is not None:
                        (work / "gateway.toml").write_text(gateway_toml, encoding="utf-8")
                    output = run([sys.executable, str(script)], work, env, label)
                elif lang == "toml":
                    check_toml(path, block, work)
                else:
                    problems.append(f"{label}: unmarked {lang or 'plain'!r} block; {_HINT}")
                    verdict = "unmarked"
            except Exception as error:  # reported with its file:line
                problems.append(f"{label}: {type(error).__name__}: {error}")
            previous_output = output
            per_file = counts.setdefault(str(path.relative_to(ROOT)), {})
            per_file[verdict] = per_file.get(verdict, 0) + 1
    finally:
        for server in servers:
            server.stop()
    summary = "\n".join(f"  {name}: {tally}" for name, tally in counts.items())
    assert not problems, "\n\n".join(problems) + f"\n\nper file:\n{summary}"
    ran = {
        str(path.relative_to(ROOT))
        for path, block, kind, _ in blocks
        if kind in {"", "runs", "tested-by", "output"}
    }
    assert {"README.md", "docs/quickstart.md", "docs/frameworks.md"} <= ran


@pytest.mark.parametrize(
    ("doc", "expected"),
    [("quickstart.md", {"python", "sh"}), ("frameworks.md", {"python"}), ("README.md", {"python"})],
)
def test_quickstart_readme_and_frameworks_blocks_are_among_those_run(
    doc: str, expected: set[str]
) -> None:
    path = ROOT / doc if doc == "README.md" else ROOT / "docs" / doc
    run_languages = {
        language(block)
        for p, block, kind, _ in marked_blocks()
        if p == path and kind in {"", "runs", "tested-by"}
    }
    assert expected <= run_languages, run_languages


def test_readme_example_runs_unchanged_on_midtrans_by_configuration(tmp_path: Path) -> None:
    """Swapped per configuration: the README's example, byte for byte, with a ``gateway.toml``
    whose ``dana`` gateway is a Midtrans Snap one (``provider = "midtrans_snap"``, the server key
    from ``MIDTRANS_SERVER_KEY``) pointed at the Midtrans emulator: it starts the payment there."""
    from gateway_midtrans_snap.emulator import Merchant, MidtransEmulator, MidtransServer

    readme = ROOT / "README.md"
    (block,) = [
        b
        for b in parse(readme).blocks
        if language(b) == "python" and b.heading == "A short example"
    ]
    key = "SB-Mid-server-Readme-Swap-Key-01"
    server = MidtransServer(MidtransEmulator(Merchant(server_key=key))).start()
    try:
        (tmp_path / "gateway.toml").write_text(
            f'[ledger]\nurl = "sqlite:///ledger.db"\n\n[providers.dana]\n'
            f'provider = "midtrans_snap"\nenvironment = "sandbox"\nbase_url = "{server.url}"\n',
            encoding="utf-8",
        )
        (tmp_path / "block.py").write_text(block.text, encoding="utf-8")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GATEWAY_", "FASPAY_", "MIDTRANS_", "PYTEST_"))
        }
        env["MIDTRANS_SERVER_KEY"] = key
        output = run([sys.executable, "block.py"], tmp_path, env, "README example on Midtrans")
        assert key not in output
        (session,) = server.app.sessions()
        assert session["order_id"].startswith("ORDER-1001-")
        assert session["gross_amount"] == 2000
        assert session["state"] == "active"  # the customer's Snap page is waiting
    finally:
        server.stop()
    from gateway_core.ledger import SQLiteLedger

    ledger = SQLiteLedger(str(tmp_path / "ledger.db"))
    try:
        (record,) = ledger.payments_for_order("dana", "ORDER-1001")
        assert (record.provider, record.status.value) == ("midtrans_snap", "pending")
    finally:
        ledger.close()
