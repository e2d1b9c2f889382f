"""When to sync a source folder again: the trigger of continuous sync.

This module owns the timing, not the sync: a `SourceWatcher` yields a
`SyncSignal` each time a folder should be scanned and diffed again, saying
why. Two things trigger one:

* file events (`watchfiles.awatch`, on the OS's notifications through the
  Rust `notify` crate), debounced: a signal comes once the folder has been
  quiet for `debounce_s`, or `max_delay_s` after the first event of a burst
  when it never gets quiet (a file written to all the time);
* a periodic signal every `interval_s` without any other signal, the safety
  net for what events miss (network filesystems, symlinked folders, events
  lost while the watch was being set up or on queue overflow).

A signal carries the paths the events named, for logs; a sync must scan the
whole folder anyway, since events can be lost or coalesced. The iteration
ends when the `stop` event is set; it raises if the watch fails (the root
vanished, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import watchfiles

DEBOUNCE_S = 0.5
MAX_DELAY_S = 10.0
INTERVAL_S = 300.0

# How often the watch thread comes back when nothing happens: its first
# return proves the OS watch is in place (`wait_ready`), and it bounds how
# long stopping takes.
_IDLE_RETURN_MS = 250
# How long the watch thread waits for more events before passing a batch on;
# the quiet period itself is measured here, over batches.
_STEP_MS = 50

WatchFilter = Callable[[watchfiles.Change, str], bool]


class SignalReason(enum.StrEnum):
    EVENTS = "events"
    PERIODIC = "periodic"


@dataclass(frozen=True)
class SyncSignal:
    """Sync now; `paths` are the ones file events named (empty when periodic)."""

    reason: SignalReason
    paths: frozenset[str] = field(default_factory=frozenset)


class SourceWatcher:
    """Yields a `SyncSignal` whenever `root` should be synced, until `stop` is set.

    `watch_filter` drops events before they count (default: watchfiles'
    `DefaultFilter`, which ignores `.git`, editor swap files and the like;
    `None` keeps all). One iteration at a time; each `async for` starts a new
    watch.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        stop: asyncio.Event,
        *,
        debounce_s: float = DEBOUNCE_S,
        max_delay_s: float = MAX_DELAY_S,
        interval_s: float = INTERVAL_S,
        watch_filter: WatchFilter | None = watchfiles.DefaultFilter(),  # noqa: B008
    ) -> None:
        if debounce_s < 0 or max_delay_s < debounce_s or interval_s <= 0:
            raise ValueError("need 0 <= debounce_s <= max_delay_s and interval_s > 0")
        self.root = os.fspath(root)
        self._stop = stop
        self._debounce_s = debounce_s
        self._max_delay_s = max_delay_s
        self._interval_s = interval_s
        self._filter = watch_filter
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._pending: set[str] = set()
        self._first_at = 0.0
        self._last_at = 0.0

    async def wait_ready(self) -> None:
        """Returns once the OS watch is in place: later changes will be seen.

        A caller that syncs right after this misses nothing between its sync
        and the first event."""
        await self._ready.wait()

    def __aiter__(self) -> AsyncIterator[SyncSignal]:
        return self._signals()

    async def _pump(self, halt: asyncio.Event) -> None:
        """Feeds event paths to `_pending`; wakes `_signals` on each batch."""
        loop = asyncio.get_running_loop()
        try:
            async for changes in watchfiles.awatch(
                self.root,
                watch_filter=self._filter,
                debounce=max(_STEP_MS, round(self._debounce_s * 1000)),
                step=_STEP_MS,
                stop_event=halt,
                rust_timeout=_IDLE_RETURN_MS,
                yield_on_timeout=True,
            ):
                self._ready.set()
                if not changes:
                    continue
                now = loop.time()
                if not self._pending:
                    self._first_at = now
                self._last_at = now
                self._pending.update(path for _change, path in changes)
                self._wake.set()
        finally:
            self._wake.set()

    async def _wait(self, until: float) -> None:
        """Waits until `until` (loop time), or sooner if woken."""
        timeout = until - asyncio.get_running_loop().time()
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _signals(self) -> AsyncIterator[SyncSignal]:
        loop = asyncio.get_running_loop()
        halt = asyncio.Event()
        self._ready.clear()
        self._pending.clear()
        pump = asyncio.create_task(self._pump(halt), name=f"watch {self.root}")

        async def relay_stop() -> None:
            await self._stop.wait()
            self._wake.set()

        stopper = asyncio.create_task(relay_stop())
        try:
            next_periodic = loop.time() + self._interval_s
            while True:
                # Checks and the clear happen without a suspension in between,
                # so no wake-up is lost.
                if self._stop.is_set():
                    return
                if pump.done():
                    pump.result()  # raises the watch's failure
                    raise RuntimeError(f"watch of {self.root} ended")
                now = loop.time()
                if self._pending:
                    due = min(self._last_at + self._debounce_s, self._first_at + self._max_delay_s)
                    if now >= due:
                        paths = frozenset(self._pending)
                        self._pending.clear()
                        yield SyncSignal(SignalReason.EVENTS, paths)
                        next_periodic = loop.time() + self._interval_s
                        continue
                elif now >= next_periodic:
                    yield SyncSignal(SignalReason.PERIODIC)
                    next_periodic = loop.time() + self._interval_s
                    continue
                else:
                    due = next_periodic
                self._wake.clear()
                await self._wait(due)
        finally:
            halt.set()
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
            # The watch thread sees `halt` within a step and the pump ends.
            with contextlib.suppress(Exception):
                await pump
