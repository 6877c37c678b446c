"""The benchmark command (``adapters/tests/benchmarks/run.py``) works end to end: its row
registry names real functions, and one tiny row group (P4, both providers) produces numbers
and a rendered table. Not a timing test: nothing here compares a figure with a target."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_distributions import EXAMPLE_PLUGIN_DIR

from adapters.tests.benchmarks import run
from adapters.tests.benchmarks._harness import Context


@pytest.fixture
def example_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_DIR))
    yield
    for name in [m for m in sys.modules if m == "acme_pay" or m.startswith("acme_pay.")]:
        del sys.modules[name]


def test_every_registered_row_group_resolves_to_a_function() -> None:
    for group in run.ROWS:
        assert callable(run.row_function(group)), group
    assert run.select("p6,P1") == ["P5", "P1"]


def test_a_tiny_row_group_produces_numbers_for_both_providers(
    tmp_path: Path, example_plugin: None
) -> None:
    ctx = Context(quick=True, workdir=tmp_path, rounds=5, shrink=20)
    results, failures = run.run(["P4"], ctx)
    assert failures == []
    assert {r.provider for r in results} == {"faspay", "acme_pay"}
    for result in results:
        assert result.ratio is not None
        assert math.isfinite(result.ratio)
        assert result.ratio > 0
        assert isinstance(result.met, bool)
        assert "5 rounds" in result.spread
    table = run.render(results)
    assert table.splitlines()[0].startswith("| row ")
    assert "acme_pay" in table
