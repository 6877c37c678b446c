"""``[plugins.<name>]`` tables and the ``gateway_configure`` hook: a hook plugin reads its own
settings, enables hook implementations only when configured, and a table nobody reads is an
error. Provider-neutral: the plugins here are made up for the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway_core import (
    ConfigurationError,
    EventKind,
    PaymentEvent,
    PluginConfig,
    PluginError,
    PluginHost,
    Settings,
    build_runtime,
    hookimpl,
)


class Sender:
    def __init__(self, target: str) -> None:
        self.target = target
        self.closed = False

    @hookimpl
    def gateway_payment_paid(self, event: PaymentEvent) -> None:
        raise AssertionError("not called in these tests")

    def close(self) -> None:
        self.closed = True


class SenderPlugin:
    def __init__(self) -> None:
        self.enabled: list[Sender] = []

    @hookimpl
    def gateway_configure(self, config: PluginConfig) -> None:
        if not config.has("sender") and not config.environ.get("SENDER_TARGET"):
            return
        read = config.reader(
            "sender", env_names={"target": "SENDER_TARGET"}, secrets=frozenset({"target"})
        )
        sender = Sender(read.text("target"))
        read.finish()
        self.enabled.append(sender)
        config.enable(sender, "sender.hooks")


def test_the_plugins_section_is_read_from_a_file_and_kept_out_of_reprs(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[plugins.sender]\ntarget = "s3cr3t-target"\n', encoding="utf-8")
    settings = Settings.load(config, environ={})
    assert settings.plugins == {"sender": {"target": "s3cr3t-target"}}
    assert "s3cr3t-target" not in repr(settings)
    with pytest.raises(ConfigurationError, match="table of tables"):
        Settings.from_mapping({"plugins": {"sender": "x"}})


def test_a_plugin_enables_its_hooks_only_when_configured() -> None:
    plugin = SenderPlugin()
    host = PluginHost(entry_points=False, plugins=[plugin])
    host.configure({}, {})
    assert not host.hooks.handles(EventKind.PAID)
    host.configure({}, {"SENDER_TARGET": "from-env"})
    assert host.hooks.handles(EventKind.PAID)
    assert "sender.hooks" in host.plugin_names()
    first = plugin.enabled[-1]
    host.configure({"sender": {"target": "from-table"}}, {})  # replaces the first
    assert first.closed
    assert host.hooks.implementations("gateway_payment_paid") == ["sender.hooks"]
    assert plugin.enabled[-1].target == "from-table"
    host.close_configured()
    assert plugin.enabled[-1].closed
    assert not host.hooks.handles(EventKind.PAID)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"sendr": {"target": "x"}}, r"no installed plugin reads \[plugins.sendr\]"),
        ({"sender": {"target": "x", "colour": "red"}}, "unknown setting 'colour'"),
        ({"sender": {}}, "'target' \\(or \\$SENDER_TARGET\\) is required"),
    ],
)
def test_configuration_mistakes_are_errors(tables: dict[str, Any], message: str) -> None:
    host = PluginHost(entry_points=False, plugins=[SenderPlugin()])
    with pytest.raises(ConfigurationError, match=message):
        host.configure(tables, {})
    assert not host.hooks.handles(EventKind.PAID)


def test_a_plugin_that_fails_to_configure_is_named() -> None:
    class Broken:
        @hookimpl
        def gateway_configure(self, config: PluginConfig) -> None:
            raise RuntimeError("boom")

    host = PluginHost(entry_points=False, plugins=[Broken()])
    with pytest.raises(PluginError, match="failed while reading its configuration"):
        host.configure({}, {})


def test_build_runtime_configures_and_close_unregisters(tmp_path: Path) -> None:
    plugin = SenderPlugin()
    host = PluginHost(entry_points=False, plugins=[plugin])
    settings = Settings(
        ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        plugins={"sender": {"target": "t"}},
    )
    runtime = build_runtime(settings, host=host, environ={})
    assert runtime.host.hooks.handles(EventKind.PAID)
    runtime.close()
    assert plugin.enabled[-1].closed
    assert not host.hooks.handles(EventKind.PAID)
