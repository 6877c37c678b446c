"""``gateway serve``: the notification and return endpoints under waitress, bounded before
anything is read (waitress' ``max_request_body_size`` instead of its 1 GiB default, the app's
own cap and allow-list). The dispatch lives in :mod:`gateway_core.cli`."""

from __future__ import annotations

import argparse
import errno
from typing import TextIO

from gateway_core._runtime import Runtime
from gateway_core.web import make_wsgi_app, server_body_limit


class ServeError(Exception):
    """``gateway serve`` cannot start (one line for the user)."""


def serve(rt: Runtime, args: argparse.Namespace, out: TextIO) -> None:
    """Serve ``rt``'s service until interrupted."""
    app = make_wsgi_app(
        rt.service,
        prefix=args.prefix,
        return_page=args.return_page or f"{args.prefix}/done",
        max_body=args.max_body,
        allowed_sources=args.allow or None,
        trusted_proxies=args.trusted_proxy,
    )
    try:
        import waitress
    except ImportError:
        raise ServeError(
            "`gateway serve` needs waitress: pip install 'gateway-core[serve]'"
        ) from None
    try:
        server = waitress.create_server(
            app,
            host=args.host,
            port=args.port,
            threads=args.threads,
            ident="gateway",
            max_request_body_size=server_body_limit(args.max_body),  # not waitress' 1 GiB
            # The app decides which X-Forwarded-For to believe (--trusted-proxy); waitress
            # would otherwise strip the header before the app sees it.
            clear_untrusted_proxy_headers=not args.trusted_proxy,
        )
    except OSError as exc:  # bound before announcing: a port in use is one line, not a banner
        reason = (exc.strerror or type(exc).__name__).lower()
        in_use = exc.errno == errno.EADDRINUSE
        hint = ": pick another --port, or stop what listens there" if in_use else ""
        raise ServeError(f"cannot listen on {args.host}:{args.port}: {reason}{hint}") from None
    port = getattr(server, "effective_port", args.port)  # the real one, with --port 0
    for name in sorted(rt.gateways):
        out.write(
            f"{name}: notifications POST http://{args.host}:{port}{args.prefix}"
            f"/notify/{name}  returns GET .../return/{name}\n"
        )
    out.flush()
    try:
        server.run()
    finally:
        server.close()
