"""The CLI's progress line."""

from __future__ import annotations

from google.protobuf import duration_pb2

from semantik.v1 import operation_pb2
from semantik_cli.progress import format_duration, progress_line


def operation(**progress: object) -> operation_pb2.Operation:
    return operation_pb2.Operation(
        name="operations/x",
        state=operation_pb2.OPERATION_STATE_RUNNING,
        progress=operation_pb2.OperationProgress(**progress),  # type: ignore[arg-type]
    )


def test_the_bar_follows_bytes_and_shows_the_estimate() -> None:
    line = progress_line(
        operation(
            documents_total=1093,
            documents_done=400,
            documents_failed=12,
            chunks_done=2051,
            chunks_total=2100,
            bytes_done=12_400_000,
            bytes_total=32_800_000,
            eta=duration_pb2.Duration(seconds=65),
        )
    )
    # 12.4 of 32.8 MB is 37.8 %: 11 of 30 marks.
    assert line.startswith("[" + "#" * 11 + "-" * 19 + "]  38%")
    assert "412/1,093 documents" in line
    assert "2,051/2,100 chunks" in line
    assert "12 failed" in line
    assert "12.4/32.8 MB" in line
    assert "ETA 1m05s" in line
    assert line.endswith("RUNNING")


def test_without_bytes_the_bar_follows_documents() -> None:
    line = progress_line(operation(documents_total=4, documents_done=1, documents_failed=1))
    assert line.startswith("[" + "#" * 15 + "-" * 15 + "]  50%")
    assert "MB" not in line
    assert "ETA" not in line


def test_a_cancel_in_progress_and_a_finished_operation() -> None:
    cancelling = operation(documents_total=10)
    cancelling.cancel_requested = True
    assert progress_line(cancelling).endswith("RUNNING (cancelling)")
    done = operation()
    done.state = operation_pb2.OPERATION_STATE_SUCCEEDED
    done.done = True
    assert progress_line(done).startswith("[" + "#" * 30 + "] 100%")


def test_durations() -> None:
    assert [format_duration(s) for s in (0, 45.4, 65, 3599, 7380)] == [
        "0s",
        "45s",
        "1m05s",
        "59m59s",
        "2h03m",
    ]
