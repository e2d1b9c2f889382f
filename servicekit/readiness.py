"""Keeps `grpc.health.v1` in step with a service's own dependencies.

Liveness is the health service answering at all. Readiness is the status of
the empty service name (and of each served service): NOT_SERVING until the
check passes, and back to NOT_SERVING whenever it fails, so a lost database
or downstream shows without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from grpc_health.v1 import health, health_pb2

log = logging.getLogger(__name__)

LIVENESS = "liveness"

ReadinessCheck = Callable[[], Awaitable[None]]
"""Returns when the dependencies are usable; raises to say why they are not."""


class Readiness:
    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        service_names: Sequence[str],
        check: ReadinessCheck,
        interval_s: float,
    ) -> None:
        self._servicer = servicer
        self._names = ["", *service_names]
        self._check = check
        self._interval_s = interval_s
        self._serving: bool | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def _set(self, serving: bool, reason: str = "") -> None:
        if self._stopping or serving == self._serving:
            return
        self._serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names:
            await self._servicer.set(name, status)
        if serving:
            log.info("ready: SERVING")
        else:
            log.warning("not ready: NOT_SERVING (%s)", reason or "starting")

    async def _loop(self) -> None:
        # "liveness" answers SERVING for as long as the process serves at all,
        # for probes (Kubernetes gRPC probes) that must not restart a process
        # only because a dependency is down.
        await self._servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        await self._set(False, "starting")
        while not self._stopping:
            try:
                await asyncio.wait_for(self._check(), timeout=max(self._interval_s * 5, 2.0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of a dependency means not ready
                await self._set(False, f"{type(exc).__name__}: {exc}")
            else:
                await self._set(True)
            await asyncio.sleep(self._interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="readiness")

    async def stop(self) -> None:
        """NOT_SERVING for good: the first step of a graceful shutdown."""
        await self._set(False, "shutting down")
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # From here on the health service answers NOT_SERVING to every name.
        await self._servicer.enter_graceful_shutdown()
