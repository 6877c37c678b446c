"""What users install: three wheels, ``gateway-core`` (import name ``gateway_core``),
``gateway-faspay-dana`` (import name ``gateway_faspay_dana``, its own ``pyproject.toml`` in
``adapters/faspay_dana/``) and ``gateway-midtrans-snap`` (import name
``gateway_midtrans_snap``, in ``adapters/midtrans_snap/``). None ships tests, example
plugins, fake metadata, or a top-level ``adapters`` package (a name another distribution on
the index owns); and the emulator's pytest plugin costs nothing in a pytest run that does not
use it.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _wheel(source: Path, out: Path) -> list[str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    base = tmp_path_factory.mktemp("wheels")
    return {
        "core": _wheel(ROOT, base / "core"),
        "faspay": _wheel(ROOT / "adapters" / "faspay_dana", base / "faspay"),
        "midtrans": _wheel(ROOT / "adapters" / "midtrans_snap", base / "midtrans"),
        "relay": _wheel(ROOT / "adapters" / "rabbitmq_relay", base / "relay"),
    }


def _tops(names: list[str]) -> set[str]:
    return {name.split("/", 1)[0] for name in names}


def test_the_core_wheel_holds_gateway_core_and_its_metadata_only(
    wheels: dict[str, list[str]],
) -> None:
    tops = _tops(wheels["core"])
    assert tops == {"gateway_core", "gateway_core-0.1.0.dist-info"}, tops
    assert "gateway_core/py.typed" in wheels["core"]


def test_the_faspay_wheel_holds_its_plugin_and_its_metadata_only(
    wheels: dict[str, list[str]],
) -> None:
    tops = _tops(wheels["faspay"])
    assert tops == {"gateway_faspay_dana", "gateway_faspay_dana-0.1.0.dist-info"}, tops
    assert "gateway_faspay_dana/py.typed" in wheels["faspay"]
    entry_points = [n for n in wheels["faspay"] if n.endswith("entry_points.txt")]
    assert entry_points, "the plugin is found through its entry point"


def test_the_midtrans_wheel_holds_its_plugin_and_its_metadata_only(
    wheels: dict[str, list[str]],
) -> None:
    tops = _tops(wheels["midtrans"])
    assert tops == {"gateway_midtrans_snap", "gateway_midtrans_snap-0.1.0.dist-info"}, tops
    assert "gateway_midtrans_snap/py.typed" in wheels["midtrans"]
    (entry_points,) = [n for n in wheels["midtrans"] if n.endswith("entry_points.txt")]
    assert entry_points, "the plugin is found through its entry point"


def test_the_relay_wheel_holds_its_plugin_and_pins_pika(wheels: dict[str, list[str]]) -> None:
    """The optional RabbitMQ relay (``gateway-rabbitmq-relay``, ``adapters/rabbitmq_relay/``)."""
    tops = _tops(wheels["relay"])
    assert tops == {"gateway_rabbitmq_relay", "gateway_rabbitmq_relay-0.1.0.dist-info"}, tops
    assert "gateway_rabbitmq_relay/py.typed" in wheels["relay"]
    metadata = (ROOT / "adapters" / "rabbitmq_relay" / "pyproject.toml").read_text()
    assert '"pika>=1.3"' in metadata
    assert 'rabbitmq_relay = "gateway_rabbitmq_relay.plugin"' in metadata


def test_discovering_the_relay_imports_neither_pika_nor_the_publisher() -> None:
    code = (
        "import sys\n"
        "from gateway_core import EventKind, PluginHost\n"
        "host = PluginHost()\n"
        "assert 'rabbitmq_relay' in host.plugin_names(), host.plugin_names()\n"
        "assert not any(host.hooks.handles(kind) for kind in EventKind)\n"
        "assert 'pika' not in sys.modules\n"
        "assert 'gateway_rabbitmq_relay._relay' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_no_wheel_ships_tests_examples_or_fake_metadata(wheels: dict[str, list[str]]) -> None:
    for names in wheels.values():
        assert not [n for n in names if n.startswith("adapters/")]
        assert not [n for n in names if "/tests/" in n or n.split("/")[-1].startswith("test_")]
        assert not [n for n in names if "conftest" in n or "acme" in n.lower()]
        dist_infos = {n.split("/", 1)[0] for n in names if ".dist-info/" in n}
        assert len(dist_infos) == 1, dist_infos


def test_the_emulator_pytest_plugin_imports_nothing_of_the_emulator() -> None:
    code = (
        "import sys, gateway_faspay_dana.emulator.pytest_plugin\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('gateway_faspay_dana'))\n"
        "assert loaded == ['gateway_faspay_dana', 'gateway_faspay_dana.emulator',"
        " 'gateway_faspay_dana.emulator.pytest_plugin'], loaded\n"
        "assert 'requests' not in sys.modules and 'defusedxml' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
