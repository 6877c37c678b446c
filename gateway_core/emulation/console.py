"""Running an emulator from the command line: start its server, print a banner, serve until
Ctrl-C or SIGTERM, stop cleanly. Each emulator's own ``_cli`` parses its options, builds its
app and the banner's lines, and calls :func:`serve_until_stopped`."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any


def serve_until_stopped(
    app: Any,
    start: Callable[[], Any],
    banner: Callable[[Any], Sequence[str]],
    *,
    name: str,
    address: str,
) -> int:
    """Start the server (``start()``, which returns it started), print ``banner(server)`` and
    "Press Ctrl-C to stop.", serve until Ctrl-C or SIGTERM, then stop the server and print
    "``name`` stopped.". Exit code 1 (one line on stderr) when ``address`` cannot be bound."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_signal)
    try:
        server = start()
    except OSError as exc:
        app.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        print(f"error: cannot listen on {address}: {exc}", file=sys.stderr)
        return 1
    try:
        print("\n".join([*banner(server), "Press Ctrl-C to stop."]), flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        print(f"{name} stopped.", flush=True)
    return 0
