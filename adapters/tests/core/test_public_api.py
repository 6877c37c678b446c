"""The public surface: ``__all__`` complete and sorted; every hook documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import gateway_core
from gateway_core import hookspecs

DOCS = Path(__file__).resolve().parents[3] / "docs"


def test_all_is_sorted() -> None:
    assert gateway_core.__all__ == sorted(gateway_core.__all__)


def test_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(gateway_core).items()
        if not name.startswith("_")
        and name != "TYPE_CHECKING"  # typing's flag, for the lazily loaded names' annotations
        and not inspect.ismodule(value)
        and getattr(value, "__module__", "gateway_core").startswith("gateway_core")
    }
    assert public <= set(gateway_core.__all__), sorted(public - set(gateway_core.__all__))
    for name in gateway_core.__all__:
        assert hasattr(gateway_core, name), name  # lazily loaded names resolve too


def _hooks() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(func)
        for name, func in vars(hookspecs).items()
        if name.startswith("gateway_") and callable(func)
    }


def test_every_hook_is_documented_with_its_exact_signature() -> None:
    text = (DOCS / "hooks.md").read_text()
    for name, signature in _hooks().items():
        params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
        expected = f"def {name}({params}) -> None"
        assert expected in text, f"docs/hooks.md lacks `{expected}`"


def test_docs_document_no_hook_that_does_not_exist() -> None:
    text = (DOCS / "hooks.md").read_text()
    documented = set(re.findall(r"def (gateway_\w+)\(", text))
    assert documented == set(_hooks())
