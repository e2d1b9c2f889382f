"""Dynamic batching of embedding and rerank requests onto the models.

Requests enter one asyncio queue. A single worker task takes everything
queued, forms batches under a token budget (padded tokens: texts x longest
text), sorted by length so short texts are not padded to long ones, and runs
each forward pass in a dedicated thread so the event loop keeps serving. No
timer holds a batch open: a lone query is embedded as soon as the worker is
free, because search latency matters more than a slightly fuller batch.

Work comes in three lanes, served in this order: query embeddings, rerank
pairs, document embeddings. Each lane is planned in windows and the worker
looks at the lanes again between any two forward passes, so a query waits for
at most the one batch already running, and a search's rerank does not wait
behind an indexing backlog. A lane holds one kind of work (embedding texts
or reranker pairs), so every batch runs on one model; a rerank pair counts
as one text in the queue bound and its whole pair's tokens in the budget.

A forward pass that runs out of accelerator memory is split in halves and
retried, down to single texts; the batcher then plans smaller batches (half
the failed batch's padded tokens) for the rest of its life. Only a single
text that does not fit fails, with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import numpy as np
import torch

from servicekit.errors import ServiceError, failed_precondition, resource_exhausted
from services.embedder.model import EmbeddingModel, Embeddings, Encoded
from services.embedder.reranker import Reranked, Reranker

log = logging.getLogger(__name__)

# Documents are sorted within windows of this many budgets' worth of tokens:
# wide enough to group similar lengths, narrow enough that the oldest request
# always finishes within a few batches (no starvation).
WINDOW_BUDGETS = 4


# Requests up to this many characters are tokenized on the event loop.
INLINE_TOKENIZE_CHARS = 2048


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's allocator failing (torch.OutOfMemoryError is torch.cuda's too)."""
    return isinstance(exc, torch.OutOfMemoryError)


def _release_cached_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


T = TypeVar("T")


class Lane(enum.IntEnum):
    """Priorities, served in this order (lowest value first). The RERANK lane
    runs on the reranker (a score per pair), the others on the embedding
    model (a vector per text), so a batch always runs on one model."""

    QUERY = 0
    RERANK = 1
    DOCUMENT = 2


@dataclass(eq=False)
class _Request:
    encoded: list[Encoded]
    future: asyncio.Future[Any]
    deadline: float | None
    # Turns the rows and their results, in order, into the caller's answer.
    finish: Callable[[list[Encoded], list[Any]], Any] = lambda _, results: results
    results: list[Any] = field(default_factory=list)
    remaining: int = 0


@dataclass(eq=False)
class _Item:
    """One text of a request, the unit that batches are made of."""

    request: _Request
    index: int
    length: int


@dataclass
class _Lane:
    """Items of one priority: unplanned in arrival order, then planned batches."""

    waiting: deque[_Item] = field(default_factory=deque)
    planned: deque[list[_Item]] = field(default_factory=deque)

    def __bool__(self) -> bool:
        return bool(self.waiting or self.planned)


def _embeddings(encoded: list[Encoded], vectors: list[Any]) -> Embeddings:
    return Embeddings(
        np.stack(vectors).astype(np.float32, copy=False),
        [len(e.ids) for e in encoded],
        [e.truncated for e in encoded],
    )


def _reranked(encoded: list[Encoded], scores: list[Any]) -> Reranked:
    return Reranked(np.array(scores, dtype=np.float32), [e.truncated for e in encoded])


def plan_batches(items: Sequence[_Item], max_batch_tokens: int) -> list[list[_Item]]:
    """Longest first; a batch grows while its padded size stays within the budget."""
    batches: list[list[_Item]] = []
    batch: list[_Item] = []
    for item in sorted(items, key=lambda i: i.length, reverse=True):
        # Sorted descending, so the batch's first item is its longest.
        if batch and (len(batch) + 1) * batch[0].length > max_batch_tokens:
            batches.append(batch)
            batch = []
        batch.append(item)
    if batch:
        batches.append(batch)
    return batches


class Batcher:
    def __init__(
        self,
        model: EmbeddingModel,
        *,
        max_batch_tokens: int,
        max_queued_texts: int,
        clock: Callable[[], float] = time.monotonic,
        executor: ThreadPoolExecutor | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self._model = model
        self._reranker = reranker
        self._max_batch_tokens = max_batch_tokens
        self._max_queued_texts = max_queued_texts
        self._clock = clock
        self._inbox: asyncio.Queue[tuple[_Request, Lane]] = asyncio.Queue()
        self._lanes = {lane: _Lane() for lane in Lane}
        self._queued_texts = 0
        # Seconds per text, smoothed: sizes the retry delay of a rejection.
        self._seconds_per_text = 0.005
        # One thread, because the model is not thread-safe and torch already
        # spreads one forward pass over TORCH_NUM_THREADS cores. Pass the
        # thread that loaded the model: OpenMP keeps one worker team per
        # calling thread, and a second team oversubscribes the cores (a query
        # took 11 ms instead of 5 once two threads had run the model).
        self._executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="embedder-forward"
        )
        self._worker: asyncio.Task[None] | None = None

    @property
    def queued_texts(self) -> int:
        return self._queued_texts

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="embedder-batcher")

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    @property
    def max_batch_tokens(self) -> int:
        """The token budget now: lowered after an out-of-memory split."""
        return self._max_batch_tokens

    async def embed(
        self,
        texts: Sequence[str],
        *,
        query: bool = False,
        deadline: float | None = None,
        task: str = "",
        check: Callable[[Sequence[Encoded]], None] | None = None,
    ) -> Embeddings:
        """Embeddings of `texts` in order. `deadline` is on this batcher's clock.

        Queries get the model's query prompt (with `task` where it takes
        one). `check` sees the encoded texts before they are queued and may
        raise to refuse them (strict mode). Raises RESOURCE_EXHAUSTED when
        the queue is full; an empty queue always admits, so a request larger
        than the bound can still run.
        """

        def encode() -> list[Encoded]:
            return self._model.encode(texts, query=query, task=task)

        return await self._submit(
            Lane.QUERY if query else Lane.DOCUMENT,
            count=len(texts),
            chars=sum(len(text) for text in texts),
            encode=encode,
            finish=_embeddings,
            deadline=deadline,
            check=check,
        )

    async def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        deadline: float | None = None,
        check: Callable[[Sequence[Encoded]], None] | None = None,
    ) -> Reranked:
        """Scores of (query, document) pairs in document order, on the reranker.

        The same queue, bound and deadlines as `embed`; pairs run in the rerank
        lane, after query embeddings and before document embeddings. Raises
        FAILED_PRECONDITION without a reranker, and QueryTooLong (from
        tokenizing) when the query leaves no room for a document.
        """
        reranker = self._reranker
        if reranker is None:
            raise failed_precondition(
                "no reranker is configured on this embedder (set RERANKER_MODEL)",
                subject="RERANKER_MODEL",
                violation_type="CONFIGURATION",
            )

        def encode() -> list[Encoded]:
            return reranker.encode(query, documents)

        return await self._submit(
            Lane.RERANK,
            count=len(documents),
            # Every pair carries the query.
            chars=len(query) * len(documents) + sum(len(document) for document in documents),
            encode=encode,
            finish=_reranked,
            deadline=deadline,
            check=check,
        )

    @property
    def reranker(self) -> Reranker | None:
        """The reranker this batcher runs, if one is configured."""
        return self._reranker

    async def _submit(
        self,
        lane: Lane,
        *,
        count: int,
        chars: int,
        encode: Callable[[], list[Encoded]],
        finish: Callable[[list[Encoded], list[Any]], T],
        deadline: float | None,
        check: Callable[[Sequence[Encoded]], None] | None,
    ) -> T:
        """Admits `count` rows (or refuses them: full queue), encodes them and
        waits for their forward passes."""
        if self._queued_texts and self._queued_texts + count > self._max_queued_texts:
            retry_s = min(max(self._queued_texts * self._seconds_per_text, 0.05), 30.0)
            raise resource_exhausted(
                f"embedder queue is full ({self._queued_texts} texts queued, "
                f"limit {self._max_queued_texts}); retry later",
                retry_after_s=retry_s,
            )
        self._queued_texts += count
        try:
            # Tokenizing runs beside the forward thread: the Rust tokenizer
            # releases the GIL, so it overlaps the model's work. A short
            # request (a search query) is tokenized in place: it takes tens
            # of microseconds, less than the hop to a thread and back.
            if chars <= INLINE_TOKENIZE_CHARS:
                encoded = encode()
            else:
                encoded = await asyncio.to_thread(encode)
            if check is not None:
                check(encoded)
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            request = _Request(
                encoded, future, deadline, finish, [None] * len(encoded), remaining=len(encoded)
            )
            self._inbox.put_nowait((request, lane))
            try:
                return await future
            finally:
                # A cancelled caller leaves its items queued; the worker
                # sees the cancelled future and skips them.
                future.cancel()
        finally:
            self._queued_texts -= count

    async def _run(self) -> None:
        while True:
            if not any(self._lanes.values()):
                self._admit(*await self._inbox.get())
            while not self._inbox.empty():
                self._admit(*self._inbox.get_nowait())
            try:
                lane, batch = self._next_batch()
                if batch:
                    await self._forward(lane, batch)
            except Exception:
                # A bug here must not stop the one worker, or every later
                # request would hang; the affected callers get their errors.
                log.exception("embedding batcher step failed")

    def _admit(self, request: _Request, lane: Lane) -> None:
        self._lanes[lane].waiting.extend(
            _Item(request, index, len(encoded.ids)) for index, encoded in enumerate(request.encoded)
        )

    def _next_batch(self) -> tuple[Lane, list[_Item]]:
        """The next batch of the busiest-priority lane; one kind of work."""
        priority = next((p for p in Lane if self._lanes[p]), Lane.DOCUMENT)
        lane = self._lanes[priority]
        now = self._clock()
        if not lane.planned:
            window: list[_Item] = []
            tokens = 0
            limit = self._max_batch_tokens * WINDOW_BUDGETS
            while lane.waiting and (not window or tokens + lane.waiting[0].length <= limit):
                item = lane.waiting.popleft()
                if self._alive(item.request, now):
                    window.append(item)
                    tokens += item.length
            lane.planned.extend(plan_batches(window, self._max_batch_tokens))
        if not lane.planned:
            return priority, []
        # Checked again when the batch runs: callers may have left since planning.
        return priority, [item for item in lane.planned.popleft() if self._alive(item.request, now)]

    @staticmethod
    def _alive(request: _Request, now: float) -> bool:
        """False for callers that gave up or whose deadline passed: they cost no forward pass."""
        if request.future.done():
            return False
        if request.deadline is not None and now >= request.deadline:
            request.future.set_exception(
                ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed while queued")
            )
            return False
        return True

    async def _forward(self, lane: Lane, batch: list[_Item]) -> None:
        rows = [item.request.encoded[item.index] for item in batch]
        loop = asyncio.get_running_loop()
        started = self._clock()
        try:
            results = await loop.run_in_executor(
                self._executor, self._forward_splitting, lane, rows
            )
        except Exception as exc:
            log.exception("%s forward pass over %d rows failed", lane.name.lower(), len(batch))
            for item in batch:
                if not item.request.future.done():
                    item.request.future.set_exception(exc)
            return
        elapsed = self._clock() - started
        self._seconds_per_text = 0.8 * self._seconds_per_text + 0.2 * elapsed / len(batch)
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                if not item.request.future.done():
                    item.request.future.set_exception(result)
            else:
                self._deliver(item, result)

    def _run_model(self, lane: Lane, rows: list[Encoded]) -> list[Any]:
        """One forward pass of `lane`'s model over `rows`: a vector or a score per row."""
        if lane is Lane.RERANK:
            assert self._reranker is not None  # rerank() admits nothing without one
            return list(self._reranker.forward(rows))
        return list(self._model.forward([row.ids for row in rows]))

    def _forward_splitting(self, lane: Lane, rows: list[Encoded]) -> list[Any]:
        """One result per row, or the error (ServiceError) of a row that alone
        does not fit.

        Runs on the forward thread; an out-of-memory pass is split in halves
        (the rows are sorted longest first, so the first half is the larger).
        """
        try:
            results = self._run_model(lane, rows)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            _release_cached_memory()
            padded = len(rows) * max(len(row.ids) for row in rows)
            if len(rows) == 1:
                what = "pair" if lane is Lane.RERANK else "text"
                log.warning("one %s of %d tokens does not fit in memory", what, padded)
                return [
                    resource_exhausted(
                        f"a {what} of {padded} tokens does not fit in the accelerator's memory",
                        retry_after_s=1.0,
                    )
                ]
            # Plan smaller batches from now on, so the next ones fit first time.
            self._max_batch_tokens = max(1, min(self._max_batch_tokens, padded // 2))
            log.warning(
                "out of memory on %d rows (%d padded tokens): splitting; budget now %d tokens",
                len(rows),
                padded,
                self._max_batch_tokens,
            )
            half = (len(rows) + 1) // 2
            return self._forward_splitting(lane, rows[:half]) + self._forward_splitting(
                lane, rows[half:]
            )
        return results

    def _deliver(self, item: _Item, result: Any) -> None:
        request = item.request
        if request.future.done():
            return
        request.results[item.index] = result
        request.remaining -= 1
        if request.remaining == 0:
            request.future.set_result(request.finish(request.encoded, request.results))
