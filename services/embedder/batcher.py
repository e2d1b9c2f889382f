"""Dynamic batching of embedding requests onto the one model.

Requests enter one asyncio queue. A single worker task takes everything
queued, forms batches under a token budget (padded tokens: texts x longest
text), sorted by length so short texts are not padded to long ones, and runs
each forward pass in a dedicated thread so the event loop keeps serving. No
timer holds a batch open: a lone query is embedded as soon as the worker is
free, because search latency matters more than a slightly fuller batch.

Queries go ahead of documents: documents are planned in windows and the
worker looks for queries between any two forward passes, so a query waits for
at most the one document batch already running.

A forward pass that runs out of accelerator memory is split in halves and
retried, down to single texts; the batcher then plans smaller batches (half
the failed batch's padded tokens) for the rest of its life. Only a single
text that does not fit fails, with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
import numpy as np
import torch

from servicekit.errors import ServiceError, resource_exhausted
from services.embedder.model import EmbeddingModel, Embeddings, Encoded, Vectors

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


@dataclass(eq=False)
class _Request:
    encoded: list[Encoded]
    future: asyncio.Future[Embeddings]
    deadline: float | None
    vectors: Vectors | None = None
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
    ) -> None:
        self._model = model
        self._max_batch_tokens = max_batch_tokens
        self._max_queued_texts = max_queued_texts
        self._clock = clock
        self._inbox: asyncio.Queue[tuple[_Request, bool]] = asyncio.Queue()
        self._queries = _Lane()
        self._documents = _Lane()
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
        count = len(texts)
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
            if sum(len(text) for text in texts) <= INLINE_TOKENIZE_CHARS:
                encoded = self._model.encode(texts, query=query, task=task)
            else:
                encoded = await asyncio.to_thread(
                    lambda: self._model.encode(texts, query=query, task=task)
                )
            if check is not None:
                check(encoded)
            future: asyncio.Future[Embeddings] = asyncio.get_running_loop().create_future()
            request = _Request(encoded, future, deadline, remaining=count)
            self._inbox.put_nowait((request, query))
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
            if not (self._queries or self._documents):
                self._admit(*await self._inbox.get())
            while not self._inbox.empty():
                self._admit(*self._inbox.get_nowait())
            try:
                batch = self._next_batch()
                if batch:
                    await self._forward(batch)
            except Exception:
                # A bug here must not stop the one worker, or every later
                # request would hang; the affected callers get their errors.
                log.exception("embedding batcher step failed")

    def _admit(self, request: _Request, query: bool) -> None:
        lane = self._queries if query else self._documents
        lane.waiting.extend(
            _Item(request, index, len(encoded.ids)) for index, encoded in enumerate(request.encoded)
        )

    def _next_batch(self) -> list[_Item]:
        lane = self._queries if self._queries else self._documents
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
            return []
        # Checked again when the batch runs: callers may have left since planning.
        return [item for item in lane.planned.popleft() if self._alive(item.request, now)]

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

    async def _forward(self, batch: list[_Item]) -> None:
        ids = [item.request.encoded[item.index].ids for item in batch]
        loop = asyncio.get_running_loop()
        started = self._clock()
        try:
            results = await loop.run_in_executor(self._executor, self._forward_splitting, ids)
        except Exception as exc:
            log.exception("forward pass over %d texts failed", len(batch))
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

    def _forward_splitting(self, ids: list[list[int]]) -> list[Vectors | ServiceError]:
        """One vector per row, or the error of a row that alone does not fit.

        Runs on the forward thread; an out-of-memory pass is split in halves
        (the rows are sorted longest first, so the first half is the larger).
        """
        try:
            vectors = self._model.forward(ids)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            _release_cached_memory()
            padded = len(ids) * max(len(row) for row in ids)
            if len(ids) == 1:
                log.warning("one text of %d tokens does not fit in memory", padded)
                return [
                    resource_exhausted(
                        f"a text of {padded} tokens does not fit in the accelerator's memory",
                        retry_after_s=1.0,
                    )
                ]
            # Plan smaller batches from now on, so the next ones fit first time.
            self._max_batch_tokens = max(1, min(self._max_batch_tokens, padded // 2))
            log.warning(
                "out of memory on %d texts (%d padded tokens): splitting; budget now %d tokens",
                len(ids),
                padded,
                self._max_batch_tokens,
            )
            half = (len(ids) + 1) // 2
            return self._forward_splitting(ids[:half]) + self._forward_splitting(ids[half:])
        return list(vectors)

    def _deliver(self, item: _Item, vector: Vectors) -> None:
        request = item.request
        if request.future.done():
            return
        if request.vectors is None:
            request.vectors = np.empty((len(request.encoded), vector.shape[0]), dtype=np.float32)
        request.vectors[item.index] = vector
        request.remaining -= 1
        if request.remaining == 0:
            request.future.set_result(
                Embeddings(
                    request.vectors,
                    [len(e.ids) for e in request.encoded],
                    [e.truncated for e in request.encoded],
                )
            )
