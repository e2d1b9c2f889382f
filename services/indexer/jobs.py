"""The import job queue on Redis, with arq. The only module that imports arq.

arq was chosen for being asyncio-native (its worker runs on the indexer's own
event loop, next to the in-process Qdrant Edge shards) and small. It is in
maintenance mode upstream, so it stays behind this module's few functions:
`connect`, `enqueue_import`, `build_worker` and `InProcessWorker`.

A job's id is its operation id: enqueueing the same operation twice queues
one job (arq refuses an id whose job or result is still in Redis).
Interrupted jobs (worker stopped, Redis lost mid-job) run again; import runs
are idempotent, so that is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.worker import Retry, Worker, func
from redis.asyncio import ConnectionPool

from semantik.internal.v1 import indexer_pb2
from services.indexer.ingest import Importer, ImportSpec, TransientImportError

log = logging.getLogger(__name__)

Queue = ArqRedis
"""A Redis client that can enqueue jobs."""

QUEUE_NAME = "semantik:indexer:imports"
IMPORT_FUNCTION = "import_documents"
# A large import on a CPU-only embedder takes hours. arq also takes this as
# how long a crashed worker's job stays claimed before another worker runs it.
JOB_TIMEOUT_S = 6 * 3600
MAX_TRIES = 5
RETRY_DELAY_S = 5.0
POLL_DELAY_S = 0.25
# Enqueueing an operation again within this time is a no-op.
KEEP_RESULT_S = 24 * 3600

ImportRunner = Callable[[ImportSpec, bool], Awaitable[Any]]


def connect(redis_url: str) -> Queue:
    """A client that connects on first use, so a Redis that is down at start-up
    shows as not ready rather than as a crash."""
    pool = ConnectionPool.from_url(redis_url, socket_connect_timeout=2.0, socket_timeout=10.0)
    return ArqRedis(pool, default_queue_name=QUEUE_NAME)


async def enqueue_import(redis: Queue, request: indexer_pb2.StartImportRequest) -> str:
    """Queues the import of `request` under its operation id; returns the job id."""
    job = await redis.enqueue_job(
        IMPORT_FUNCTION,
        request.SerializeToString(),  # bytes, not a pickled message
        _job_id=request.operation_id,
        _queue_name=QUEUE_NAME,
    )
    if job is None:
        log.info("import %s is already queued or done", request.operation_id)
    return request.operation_id


async def _import_documents(ctx: dict[str, Any], payload: bytes) -> str:
    request = indexer_pb2.StartImportRequest.FromString(payload)
    runner: ImportRunner = ctx["run_import"]
    tries: int = ctx["job_try"]
    try:
        summary = await runner(ImportSpec.from_proto(request), tries >= MAX_TRIES)
    except TransientImportError as exc:
        raise Retry(defer=RETRY_DELAY_S * tries) from exc
    return str(getattr(summary, "state", ""))


def runner_for(importer: Importer) -> ImportRunner:
    async def run(spec: ImportSpec, final_try: bool) -> Any:
        return await importer.run(spec, final_try=final_try)

    return run


def build_worker(
    redis: Queue, run_import: ImportRunner, max_jobs: int, handle_signals: bool
) -> Worker:
    """The worker settings, in one place for the in-process and standalone workers."""
    return Worker(
        functions=[func(_import_documents, name=IMPORT_FUNCTION)],
        queue_name=QUEUE_NAME,
        redis_pool=redis,
        max_jobs=max_jobs,
        job_timeout=JOB_TIMEOUT_S,
        max_tries=MAX_TRIES,
        keep_result=KEEP_RESULT_S,
        poll_delay=POLL_DELAY_S,
        handle_signals=handle_signals,
        ctx={"run_import": run_import},
    )


async def run_standalone(redis_url: str, run_import: ImportRunner, max_jobs: int) -> None:
    """Runs a worker until SIGTERM/SIGINT (arq handles the signals)."""
    worker = build_worker(connect(redis_url), run_import, max_jobs, handle_signals=True)
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        pass
    finally:
        await worker.close()


async def release_orphans(redis: Queue) -> list[str]:
    """Frees queued jobs that a dead worker still claims; returns their ids.

    arq marks a running job in progress for JOB_TIMEOUT_S, so the job of a
    worker that was killed (SIGKILL, out of memory, power) would wait hours
    for another worker. Only a worker that knows it is the only one may call
    this: any claim it finds is then a dead process's.
    """
    released: list[str] = []
    for raw in await redis.zrange(QUEUE_NAME, 0, -1):
        job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        if await redis.delete(in_progress_key_prefix + job_id):
            released.append(job_id)
    return released


class InProcessWorker:
    """An arq worker on the running event loop, restarted when Redis is lost.

    `sole_worker`: this is the only worker of the queue (Qdrant Edge: the
    indexer process alone opens the shards), so at every start it frees jobs
    a killed predecessor left claimed, and they run again at once.
    """

    def __init__(
        self,
        redis_url: str,
        run_import: ImportRunner,
        max_jobs: int,
        restart_delay_s: float = 1.0,
        *,
        sole_worker: bool = False,
    ) -> None:
        self._redis_url = redis_url
        self._run_import = run_import
        self._max_jobs = max_jobs
        self._restart_delay_s = restart_delay_s
        self._sole_worker = sole_worker
        self._worker: Worker | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="import-worker")

    async def _supervise(self) -> None:
        while True:
            worker = build_worker(
                connect(self._redis_url), self._run_import, self._max_jobs, handle_signals=False
            )
            self._worker = worker
            try:
                if self._sole_worker:
                    # No job of this process runs now (the previous worker's
                    # tasks were awaited below), so every claim is orphaned.
                    for job_id in await release_orphans(worker.pool):
                        log.warning(
                            "import %s was left claimed by a stopped worker; running it again",
                            job_id,
                        )
                await worker.main()
            except Exception as exc:
                log.warning("import worker stopped (%s); restarting", exc)
            # Jobs already running go on without the polling loop; let them
            # end before a new worker takes jobs, to keep to max_jobs.
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            with contextlib.suppress(Exception):
                await worker.pool.aclose(close_connection_pool=True)
            await asyncio.sleep(self._restart_delay_s)

    async def stop(self) -> None:
        """Stops polling and cancels running jobs; arq runs them again later."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        worker, self._worker = self._worker, None
        if worker is None:
            return
        # Not Worker.close(): it re-raises the cancellation of the jobs it cancels.
        running = list(worker.tasks.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        try:
            await worker.pool.aclose(close_connection_pool=True)
        except Exception as exc:  # Redis gone: nothing left to tidy there
            log.warning("closing the import worker: %s", exc)
