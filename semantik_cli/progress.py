"""The CLI's progress bar for an operation: one line, redrawn in place.

    [###########-------------------]  38%  412/1,093 documents
    2,051/2,051 chunks  3 failed  12.4/32.8 MB  ETA 1m05s  RUNNING

(on one line).
The bar follows bytes finished when the operation knows its total (files
are of very different sizes, and the estimate is made from bytes), and
documents otherwise.
"""

from __future__ import annotations

from typing import Any

from semantik.v1 import operation_pb2

BAR_WIDTH = 30
MB = 1_000_000


def fraction_done(progress: Any) -> float:
    if progress.bytes_total > 0:
        return min(1.0, progress.bytes_done / progress.bytes_total)
    if progress.documents_total > 0:
        done = progress.documents_done + progress.documents_failed
        return min(1.0, done / progress.documents_total)
    return 0.0


def format_duration(seconds: float) -> str:
    """`45s`, `1m05s`, `2h03m`."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def progress_line(operation: operation_pb2.Operation) -> str:
    progress = operation.progress
    fraction = fraction_done(progress)
    if operation.state == operation_pb2.OPERATION_STATE_SUCCEEDED:
        fraction = 1.0
    filled = int(BAR_WIDTH * fraction)
    parts = [
        f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {fraction:4.0%}",
        f"{progress.documents_done + progress.documents_failed:,}/"
        f"{progress.documents_total:,} documents",
        f"{progress.chunks_done:,}/{progress.chunks_total:,} chunks",
        f"{progress.documents_failed:,} failed",
    ]
    if progress.bytes_total:
        parts.append(f"{progress.bytes_done / MB:.1f}/{progress.bytes_total / MB:.1f} MB")
    if progress.HasField("eta"):
        parts.append("ETA " + format_duration(progress.eta.ToNanoseconds() / 1e9))
    state = operation_pb2.OperationState.Name(operation.state).removeprefix("OPERATION_STATE_")
    if operation.cancel_requested and not operation.done:
        state += " (cancelling)"
    parts.append(state)
    return "  ".join(parts)
