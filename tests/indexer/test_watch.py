"""The continuous-sync trigger on a real folder: events, periodic, stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from services.indexer.watch import SignalReason, SourceWatcher, SyncSignal

# Generous: the signal comes ~debounce after the event on an idle machine.
SIGNAL_TIMEOUT_S = 5.0


class Running:
    """A watcher iterated in a task, its signals in a queue."""

    def __init__(self, watcher: SourceWatcher, stop: asyncio.Event) -> None:
        self.watcher = watcher
        self.stop = stop
        self.signals: asyncio.Queue[SyncSignal] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for signal in self.watcher:
            await self.signals.put(signal)

    async def next(self) -> SyncSignal:
        return await asyncio.wait_for(self.signals.get(), SIGNAL_TIMEOUT_S)

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, SIGNAL_TIMEOUT_S)


@pytest.fixture
async def watch(tmp_path: Path) -> AsyncIterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(
        *, debounce_s: float = 0.1, max_delay_s: float = 10.0, interval_s: float = 300.0
    ) -> Running:
        stop = asyncio.Event()
        watcher = SourceWatcher(
            tmp_path, stop, debounce_s=debounce_s, max_delay_s=max_delay_s, interval_s=interval_s
        )
        running = Running(watcher, stop)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.close()


async def test_file_changes_signal_after_a_quiet_period(
    tmp_path: Path, watch: Callable[..., Running]
) -> None:
    running = watch()
    await asyncio.wait_for(running.watcher.wait_ready(), SIGNAL_TIMEOUT_S)
    target = tmp_path / "note.md"

    target.write_text("one", encoding="utf-8")
    signal = await running.next()
    assert signal.reason is SignalReason.EVENTS
    assert str(target) in signal.paths

    target.write_text("two", encoding="utf-8")
    assert str(target) in (await running.next()).paths

    target.unlink()
    assert str(target) in (await running.next()).paths


async def test_a_burst_is_one_signal(tmp_path: Path, watch: Callable[..., Running]) -> None:
    running = watch(debounce_s=0.4)
    await asyncio.wait_for(running.watcher.wait_ready(), SIGNAL_TIMEOUT_S)

    for i in range(5):
        (tmp_path / f"{i}.md").write_text("x", encoding="utf-8")
        await asyncio.sleep(0.02)

    signal = await running.next()
    assert {str(tmp_path / f"{i}.md") for i in range(5)} <= signal.paths
    await asyncio.sleep(0.5)
    assert running.signals.empty()


async def test_endless_writes_still_signal_after_max_delay(
    tmp_path: Path, watch: Callable[..., Running]
) -> None:
    running = watch(debounce_s=0.3, max_delay_s=0.6)
    await asyncio.wait_for(running.watcher.wait_ready(), SIGNAL_TIMEOUT_S)
    target = tmp_path / "log.txt"

    started = time.monotonic()
    signalled: SyncSignal | None = None
    with target.open("w", encoding="utf-8") as log:
        while signalled is None and time.monotonic() - started < SIGNAL_TIMEOUT_S:
            log.write("line\n")
            log.flush()
            await asyncio.sleep(0.1)  # never quiet for debounce_s
            if not running.signals.empty():
                signalled = running.signals.get_nowait()

    assert signalled is not None
    assert str(target) in signalled.paths


async def test_periodic_signal(watch: Callable[..., Running]) -> None:
    running = watch(interval_s=0.2)

    assert await running.next() == SyncSignal(SignalReason.PERIODIC)
    assert await running.next() == SyncSignal(SignalReason.PERIODIC)


async def test_stop_ends_the_iteration(tmp_path: Path) -> None:
    stop = asyncio.Event()
    watcher = SourceWatcher(tmp_path, stop, debounce_s=0.05)
    seen: list[SyncSignal] = []

    async def consume() -> None:
        async for signal in watcher:
            seen.append(signal)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(watcher.wait_ready(), SIGNAL_TIMEOUT_S)
    stop.set()
    await asyncio.wait_for(task, SIGNAL_TIMEOUT_S)
    assert seen == []


async def test_missing_root_raises(tmp_path: Path) -> None:
    watcher = SourceWatcher(tmp_path / "missing", asyncio.Event())
    with pytest.raises(FileNotFoundError):
        async for _signal in watcher:
            pass


def test_rejects_bad_timings(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SourceWatcher(tmp_path, asyncio.Event(), debounce_s=2, max_delay_s=1)
    with pytest.raises(ValueError):
        SourceWatcher(tmp_path, asyncio.Event(), interval_s=0)
