from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLE_PLUGIN_DIR = Path(__file__).resolve().parent.parent / "example_plugin"


@pytest.fixture
def example_plugin_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put the Acme Pay example distribution (package + .dist-info) on sys.path."""
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_DIR))
    yield EXAMPLE_PLUGIN_DIR
    for name in [m for m in sys.modules if m == "acme_pay" or m.startswith("acme_pay.")]:
        del sys.modules[name]


def make_distribution(root: Path, name: str, modules: dict[str, str], entry_points: str) -> None:
    """Write a minimal installed distribution (modules + .dist-info) under ``root``."""
    for module, source in modules.items():
        path = root / (module.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
