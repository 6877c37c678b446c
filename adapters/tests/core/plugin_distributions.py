"""Helpers for plugin-loading tests: the example distribution's folder and a writer of tiny
installed distributions (importable as ``plugin_distributions``: a unique module name, unlike
``conftest``, of which the test tree has several)."""

from __future__ import annotations

from pathlib import Path

EXAMPLE_PLUGIN_DIR = Path(__file__).resolve().parent.parent / "example_plugin"


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
