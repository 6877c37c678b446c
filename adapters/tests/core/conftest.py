from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_distributions import EXAMPLE_PLUGIN_DIR


@pytest.fixture
def example_plugin_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put the Acme Pay example distribution (package + .dist-info) on sys.path."""
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_DIR))
    yield EXAMPLE_PLUGIN_DIR
    for name in [m for m in sys.modules if m == "acme_pay" or m.startswith("acme_pay.")]:
        del sys.modules[name]
