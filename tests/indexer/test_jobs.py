"""The job queue and the in-process worker, on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from arq.constants import in_progress_key_prefix

from semantik.internal.v1 import indexer_pb2
from semantik_runner.stores import RedisServer
from services.indexer import jobs
from services.indexer.ingest import ImportSpec, TransientImportError


@pytest.fixture
async def queue(redis_server: RedisServer) -> AsyncIterator[jobs.Queue]:
    redis = jobs.connect(redis_server.url)
    await redis.flushdb()
    yield redis
    await redis.aclose(close_connection_pool=True)


def request(operation_id: str) -> indexer_pb2.StartImportRequest:
    return indexer_pb2.StartImportRequest(
        operation_id=operation_id,
        collection_id="books",
        source_path="/srv/docs",
        chunk_tokens=256,
        overlap_tokens=32,
    )


class Recorder:
    def __init__(self, transient_failures: int = 0) -> None:
        self.calls: list[tuple[ImportSpec, bool]] = []
        self.transient_failures = transient_failures
        self.done = asyncio.Event()

    async def __call__(self, spec: ImportSpec, final_try: bool) -> str:
        self.calls.append((spec, final_try))
        if len(self.calls) <= self.transient_failures:
            raise TransientImportError("embedder down")
        self.done.set()
        return "ok"


async def test_enqueue_twice_queues_one_job(queue: jobs.Queue) -> None:
    assert await jobs.enqueue_import(queue, request("op-7")) == "op-7"
    assert await jobs.enqueue_import(queue, request("op-7")) == "op-7"
    assert await queue.zcard(jobs.QUEUE_NAME) == 1
    assert await jobs.enqueue_import(queue, request("op-8")) == "op-8"
    assert await queue.zcard(jobs.QUEUE_NAME) == 2


async def test_in_process_worker_runs_the_job_once(
    queue: jobs.Queue, redis_server: RedisServer
) -> None:
    recorder = Recorder()
    await jobs.enqueue_import(queue, request("op-1"))
    await jobs.enqueue_import(queue, request("op-1"))
    worker = jobs.InProcessWorker(redis_server.url, recorder, max_jobs=2)
    worker.start()
    try:
        await asyncio.wait_for(recorder.done.wait(), timeout=10)
        # Finished and its result kept: enqueueing it again is a no-op.
        await asyncio.sleep(0.3)
        await jobs.enqueue_import(queue, request("op-1"))
        await asyncio.sleep(0.6)
    finally:
        await worker.stop()
    assert len(recorder.calls) == 1
    spec, final_try = recorder.calls[0]
    assert spec == ImportSpec("op-1", "books", "/srv/docs", 256, 32)
    assert final_try is False
    assert await queue.zcard(jobs.QUEUE_NAME) == 0


async def test_transient_failure_is_retried(
    queue: jobs.Queue, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "RETRY_DELAY_S", 0.05)
    recorder = Recorder(transient_failures=1)
    await jobs.enqueue_import(queue, request("op-2"))
    worker = jobs.InProcessWorker(redis_server.url, recorder, max_jobs=1)
    worker.start()
    try:
        await asyncio.wait_for(recorder.done.wait(), timeout=10)
    finally:
        await worker.stop()
    assert len(recorder.calls) == 2


async def test_worker_survives_a_redis_restart(
    queue: jobs.Queue, redis_server: RedisServer
) -> None:
    recorder = Recorder()
    worker = jobs.InProcessWorker(redis_server.url, recorder, max_jobs=1, restart_delay_s=0.2)
    worker.start()
    try:
        await asyncio.sleep(0.5)
        redis_server.stop()
        await asyncio.sleep(1.0)
        redis_server.start()
        await jobs.enqueue_import(queue, request("op-3"))
        await asyncio.wait_for(recorder.done.wait(), timeout=15)
    finally:
        await worker.stop()
    assert [spec.operation_id for spec, _ in recorder.calls] == ["op-3"]


async def test_job_interrupted_by_stop_runs_again(
    queue: jobs.Queue, redis_server: RedisServer
) -> None:
    started = asyncio.Event()

    async def hangs(spec: ImportSpec, final_try: bool) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    await jobs.enqueue_import(queue, request("op-4"))
    first = jobs.InProcessWorker(redis_server.url, hangs, max_jobs=1)
    first.start()
    await asyncio.wait_for(started.wait(), timeout=10)
    await first.stop()
    assert await queue.zcard(jobs.QUEUE_NAME) == 1

    recorder = Recorder()
    second = jobs.InProcessWorker(redis_server.url, recorder, max_jobs=1)
    second.start()
    try:
        await asyncio.wait_for(recorder.done.wait(), timeout=10)
    finally:
        await second.stop()
    assert [spec.operation_id for spec, _ in recorder.calls] == ["op-4"]


async def test_a_sole_worker_reruns_a_job_a_killed_worker_left_claimed(
    queue: jobs.Queue, redis_server: RedisServer
) -> None:
    await jobs.enqueue_import(queue, request("op-9"))
    # What a worker killed mid-job leaves behind: its claim, for JOB_TIMEOUT_S.
    await queue.psetex(in_progress_key_prefix + "op-9", int(jobs.JOB_TIMEOUT_S * 1000), b"1")

    # One of several workers may not take it: the claim could be a live worker's.
    shared_recorder = Recorder()
    shared = jobs.InProcessWorker(redis_server.url, shared_recorder, max_jobs=1)
    shared.start()
    await asyncio.sleep(1.5)
    await shared.stop()
    assert shared_recorder.calls == []

    recorder = Recorder()
    sole = jobs.InProcessWorker(redis_server.url, recorder, max_jobs=1, sole_worker=True)
    sole.start()
    try:
        await asyncio.wait_for(recorder.done.wait(), timeout=10)
    finally:
        await sole.stop()
    assert [spec.operation_id for spec, _ in recorder.calls] == ["op-9"]
