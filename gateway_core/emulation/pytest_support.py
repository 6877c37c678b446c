"""The fixture pattern of an emulator's pytest plugin, as factories.

::

    # yourpkg/emulator/pytest_plugin.py  (registered with a ``pytest11`` entry point)
    from gateway_core.emulation.pytest_support import control_fixture, emulator_fixture

    def _app(request):
        from yourpkg.emulator import App         # imported only when a fixture runs
        return App(**request.getfixturevalue("my_emulator_options"))

    my_emulator = emulator_fixture(_app)
    my_emulator_control = control_fixture("my_emulator", "yourpkg.emulator:Control")

``emulator_fixture`` starts the application on :class:`~.http_server.HttpServer` on a free
loopback port (fresh per test unless ``scope`` says otherwise), yields the server (``.url``,
``.app``) and stops it; ``control_fixture`` yields a control client for it. Both import
nothing heavy until a fixture runs, so a pytest run that uses none of them pays only for this
module. :func:`running_emulator` is the same as a context manager, yielding the URL, the server
and a client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: Fixture scopes pytest accepts.
Scope = str


def _resolve(target: Callable[..., Any] | str) -> Callable[..., Any]:
    """``target`` itself, or the object a ``"module:attribute"`` string names."""
    if callable(target):
        return target
    module, _, attribute = target.partition(":")
    value: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return value


def _default_server(app: Any) -> Any:
    from gateway_core.emulation.http_server import HttpServer

    return HttpServer(app)


def start_server(app: Any, server: Callable[[Any], Any] | str | None = None) -> Any:
    """Start ``app`` on a server (``server(app)``, :class:`HttpServer` by default); the app is
    closed if the server cannot start."""
    factory = _resolve(server) if server is not None else _default_server
    running = factory(app)
    try:
        running.start()
    except BaseException:
        app.close()
        raise
    return running


@dataclasses.dataclass(frozen=True)
class RunningEmulator:
    """A started emulator: its base URL, its server and a control client."""

    url: str
    server: Any
    control: Any


@contextlib.contextmanager
def running_emulator(
    app: Any,
    control: Callable[[str], Any] | str | None = None,
    *,
    server: Callable[[Any], Any] | str | None = None,
) -> Iterator[RunningEmulator]:
    """Run ``app`` for the ``with`` block; ``control(url)`` builds the client (default
    :class:`~gateway_core.emulation.control.ControlClient`)."""
    running = start_server(app, server)
    try:
        if control is None:
            from gateway_core.emulation.control import ControlClient

            client: Any = ControlClient(running.url)
        else:
            client = _resolve(control)(running.url)
        try:
            yield RunningEmulator(running.url, running, client)
        finally:
            client.close()
    finally:
        running.stop()


def emulator_fixture(
    build_app: Callable[[pytest.FixtureRequest], Any],
    *,
    scope: Scope = "function",
    name: str | None = None,
    server: Callable[[Any], Any] | str | None = None,
) -> Any:
    """A fixture running ``build_app(request)`` on a server for its scope; yields the server.

    ``build_app`` gets the fixture request, so it can read override points with
    ``request.getfixturevalue("...")``.
    """

    @pytest.fixture(scope=scope, name=name)  # type: ignore[call-overload, untyped-decorator]
    def fixture(request: pytest.FixtureRequest) -> Iterator[Any]:
        running = start_server(build_app(request), server)
        try:
            yield running
        finally:
            running.stop()

    return fixture


def control_fixture(
    server_fixture: str,
    client: Callable[[str], Any] | str | None = None,
    *,
    scope: Scope = "function",
    name: str | None = None,
) -> Any:
    """A fixture yielding ``client(url)`` (default: ``ControlClient``) for the server that the
    fixture named ``server_fixture`` yields; the client is closed afterwards."""

    @pytest.fixture(scope=scope, name=name)  # type: ignore[call-overload, untyped-decorator]
    def fixture(request: pytest.FixtureRequest) -> Iterator[Any]:
        running = request.getfixturevalue(server_fixture)
        if client is None:
            from gateway_core.emulation.control import ControlClient

            made: Any = ControlClient(running.url)
        else:
            made = _resolve(client)(running.url)
        try:
            yield made
        finally:
            made.close()

    return fixture
