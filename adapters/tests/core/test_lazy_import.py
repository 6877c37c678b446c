"""``import gateway_core`` loads only what it needs; every public name still resolves.

The checks of what is imported run in fresh interpreters (``sys.modules`` of this test
process already holds everything), and print the offending modules when they fail.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import gateway_core

#: Modules that importing the package must not load: the HTTP stack, the retry library, the
#: ledger backends, XML parsing, the CLI, the web front ends, the conformance kit, entry-point
#: metadata and the plugins' implementations.
HEAVY = (
    "requests",
    "urllib3",
    "tenacity",
    "psycopg",
    "sqlite3",
    "_sqlite3",
    "xml.etree.ElementTree",
    "defusedxml",
    "prometheus_client",
    "importlib.metadata",
    "gateway_core._requests_transport",
    "gateway_core._retry",
    "gateway_core._service",
    "gateway_core._runtime",
    "gateway_core._conformance",
    "gateway_core.ledger",
    "gateway_core.cli",
    "gateway_core.web",
    "gateway_core.asgi",
    "gateway_core.metrics",
    "gateway_faspay_dana",
)

#: What plugin discovery (``PluginHost()``) must still not load: discovery registers the
#: provider by reference, so no transport, retry loop, ledger or provider implementation.
NOT_FOR_DISCOVERY = (
    "requests",
    "urllib3",
    "tenacity",
    "psycopg",
    "sqlite3",
    "gateway_core._requests_transport",
    "gateway_core._retry",
    "gateway_core.ledger",
    "gateway_faspay_dana._gateway",
    "gateway_faspay_dana._config",
    "gateway_faspay_dana._messages",
)


def _loaded_after(code: str, names: tuple[str, ...]) -> list[str]:
    """The ``names`` found in ``sys.modules`` of a fresh interpreter after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps([m for m in {list(names)!r} if m in sys.modules]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return loaded


def test_import_gateway_core_loads_no_heavy_module() -> None:
    assert _loaded_after("import gateway_core", HEAVY) == []


def test_import_gateway_core_loads_no_submodule_at_all() -> None:
    code = "import gateway_core, sys\nsubs = [m for m in sys.modules if m.startswith('gateway_')]"
    probe = f"{code}\nprint(sorted(subs))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == "['gateway_core']"


def test_plugin_discovery_imports_no_provider_implementation() -> None:
    code = (
        "import gateway_core\nhost = gateway_core.PluginHost()\n"
        "assert 'faspay_dana' in host.registry, sorted(i.name for i in host.registry)"
    )
    assert _loaded_after(code, NOT_FOR_DISCOVERY) == []


def test_configuring_a_gateway_loads_its_provider() -> None:
    # The counterpart of the test above, so that it can fail: using the provider imports it.
    code = (
        "import gateway_core\nhost = gateway_core.PluginHost()\n"
        "host.registry.get('faspay_dana').gateway_class"
    )
    assert _loaded_after(code, ("gateway_faspay_dana._gateway",)) == [
        "gateway_faspay_dana._gateway"
    ]


@pytest.mark.parametrize("module", sorted(set(gateway_core._LAZY.values())))
def test_public_names_resolve_first_thing_in_a_fresh_interpreter(module: str) -> None:
    # The names of one defining module, first thing after the import: none relies on another
    # module having been loaded before (one interpreter per module keeps this quick).
    names = sorted(n for n, m in gateway_core._LAZY.items() if m == module)
    code = "import gateway_core\n" + "".join(
        f"value = gateway_core.{name}\nfrom gateway_core import {name} as again\n"
        f"assert again is value, {name!r}\n"
        for name in names
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_every_public_name_resolves_here_and_is_the_defining_modules_object() -> None:
    import importlib

    for name in gateway_core.__all__:
        value = getattr(gateway_core, name)
        module = gateway_core._LAZY.get(name)
        if module is not None:
            assert getattr(importlib.import_module(module), name) is value, name
    star: dict[str, object] = {}
    exec("from gateway_core import *", star)  # noqa: S102 - the star import itself is tested
    assert set(gateway_core.__all__) <= set(star)


def test_unknown_names_still_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        gateway_core.no_such_name  # noqa: B018 - the attribute access is the test
    assert set(gateway_core.__all__) <= set(dir(gateway_core))
