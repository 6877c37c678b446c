"""``gateway serve``: the notification and return endpoints under waitress, bounded before
anything is read (waitress' ``max_request_body_size`` instead of its 1 GiB default, the app's
own cap and allow-list). The dispatch lives in :mod:`gateway_core.cli`."""

from __future__ import annotations

import argparse
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
        return_page=args.return_page,
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
    for name in sorted(rt.gateways):
        out.write(
            f"{name}: notifications POST http://{args.host}:{args.port}{args.prefix}"
            f"/notify/{name}  returns GET .../return/{name}\n"
        )
    out.flush()
    waitress.serve(
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
