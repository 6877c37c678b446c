"""An ``async`` facade of :class:`~gateway_core.PaymentService` for ``async def`` code.

The service underneath stays blocking: the provider calls go over ``requests``, the ledger
over ``sqlite3`` or ``psycopg``'s blocking API, the order-system hooks are plain functions.
Every method of :class:`AsyncPaymentService` therefore runs the blocking call in a bounded
:class:`~concurrent.futures.ThreadPoolExecutor` (``max_workers`` threads, 8 by default)
through ``loop.run_in_executor``: the event loop is never blocked, and at most ``max_workers``
service calls run at once (the rest wait, queued, for a free thread). Cancelling the awaiting
task does not stop a call already running in its thread; it finishes (and is recorded) there.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from gateway_core._inbound import InboundRequest
    from gateway_core._models import PaymentRequest
    from gateway_core._service import (
        DeliveryReport,
        NotificationOutcome,
        PaymentService,
        ReconcileReport,
        ReturnOutcome,
        StartedPayment,
    )
    from gateway_core.ledger import PaymentRecord

T = TypeVar("T")


class AsyncPaymentService:
    """``await``-able versions of the payment service's calls, each run in a bounded thread
    pool. ``service`` is the (blocking) :class:`~gateway_core.PaymentService`; the facade
    does not own it (closing the facade shuts its threads down, not the ledger)."""

    def __init__(self, service: PaymentService, max_workers: int = 8) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.service = service
        self.max_workers = max_workers
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="gateway-async")
        self._closed = False

    # -- the pool ------------------------------------------------------------------------------

    async def run(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking ``func(*args, **kwargs)`` in the facade's thread pool."""
        if self._closed:
            raise RuntimeError("AsyncPaymentService is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(func, *args, **kwargs))

    def close(self) -> None:
        """Stop taking calls; wait for the running ones to finish."""
        self._closed = True
        self._executor.shutdown(wait=True)

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self._executor.shutdown, wait=True)
        )

    async def __aenter__(self) -> AsyncPaymentService:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the service's calls -------------------------------------------------------------------

    @property
    def gateways(self) -> Any:
        """The configured gateways (a mapping; reading it does not block)."""
        return self.service.gateways

    async def start_payment(self, gateway_name: str, request: PaymentRequest) -> StartedPayment:
        return await self.run(self.service.start_payment, gateway_name, request)

    async def receive_notification(
        self, gateway_name: str, request: InboundRequest
    ) -> NotificationOutcome:
        return await self.run(self.service.receive_notification, gateway_name, request)

    async def handle_notification(
        self, gateway_name: str, body: bytes, headers: dict[str, str] | None = None
    ) -> NotificationOutcome:
        return await self.run(self.service.handle_notification, gateway_name, body, headers)

    async def receive_return(self, gateway_name: str, request: InboundRequest) -> ReturnOutcome:
        return await self.run(self.service.receive_return, gateway_name, request)

    async def inquire(self, gateway_name: str, merchant_reference: str) -> PaymentRecord:
        return await self.run(self.service.inquire, gateway_name, merchant_reference)

    async def cancel(
        self, gateway_name: str, merchant_reference: str, reason: str = ""
    ) -> PaymentRecord:
        return await self.run(self.service.cancel, gateway_name, merchant_reference, reason)

    async def payment(self, gateway_name: str, merchant_reference: str) -> PaymentRecord:
        return await self.run(self.service.payment, gateway_name, merchant_reference)

    async def reconcile(
        self,
        *,
        gateway_names: Iterable[str] | None = None,
        limit: int = 100,
        min_interval: float = 0.1,
        grace: timedelta | None = None,
        progress: Callable[[PaymentRecord, str], None] | None = None,
    ) -> ReconcileReport:
        """``progress`` is called from the pool's thread, not the event loop's."""
        return await self.run(
            self.service.reconcile,
            gateway_names=gateway_names,
            limit=limit,
            min_interval=min_interval,
            grace=grace,
            progress=progress,
        )

    async def deliver_events(
        self, *, limit: int = 100, due_by: datetime | None = None
    ) -> DeliveryReport:
        return await self.run(self.service.deliver_events, limit=limit, due_by=due_by)
