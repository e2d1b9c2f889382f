"""MetadataService: cancelling, retry operations, dead letters, totals and
the time estimate, against a real PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from google.protobuf import duration_pb2

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import operation_pb2
from tests.metadata.conftest import field_violations, rpc_error
from tests.metadata.test_metadata_api import create_collection

RUNNING = operation_pb2.OPERATION_STATE_RUNNING
CANCELLED = operation_pb2.OPERATION_STATE_CANCELLED


async def new_operation(stub: Any, collection_id: str, **fields: Any) -> Any:
    fields.setdefault("kind", operation_pb2.OPERATION_KIND_IMPORT_DOCUMENTS)
    response = await stub.CreateOperation(
        metadata_pb2.CreateOperationRequest(
            operation=operation_pb2.Operation(
                collection=f"collections/{collection_id}", source_path="/corpus", **fields
            )
        )
    )
    return response.operation


async def update(stub: Any, name: str, **fields: Any) -> Any:
    response = await stub.UpdateOperation(metadata_pb2.UpdateOperationRequest(name=name, **fields))
    return response.operation


async def cancel(stub: Any, name: str) -> Any:
    response = await stub.CancelOperation(metadata_pb2.CancelOperationRequest(name=name))
    return response.operation


async def test_cancelling_a_pending_operation_ends_it(stub: Any) -> None:
    await create_collection(stub, "cancel-pending")
    created = await new_operation(stub, "cancel-pending")
    cancelled = await cancel(stub, created.name)
    assert cancelled.state == CANCELLED
    assert cancelled.done
    assert cancelled.cancel_requested
    assert cancelled.HasField("end_time")
    # Its worker, starting later, cannot move it back to RUNNING.
    late = await rpc_error(update(stub, created.name, state=RUNNING))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "CANCELLED" in (late.details() or "")
    again = await rpc_error(cancel(stub, created.name))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_cancelling_a_running_operation_asks_its_worker(stub: Any) -> None:
    await create_collection(stub, "cancel-running")
    created = await new_operation(stub, "cancel-running")
    await update(stub, created.name, state=RUNNING)
    asked = await cancel(stub, created.name)
    assert asked.state == RUNNING
    assert asked.cancel_requested
    assert not asked.done
    # The worker sees the request in its next report's answer, and ends it.
    seen = await update(
        stub, created.name, progress=operation_pb2.OperationProgress(documents_done=2)
    )
    assert seen.cancel_requested
    ended = await update(stub, created.name, state=CANCELLED)
    assert ended.done
    assert ended.HasField("end_time")
    assert ended.progress.documents_done == 2


async def test_cancelling_a_finished_or_unknown_operation_is_refused(stub: Any) -> None:
    await create_collection(stub, "cancel-done")
    created = await new_operation(stub, "cancel-done")
    await update(stub, created.name, state=operation_pb2.OPERATION_STATE_SUCCEEDED)
    done = await rpc_error(cancel(stub, created.name))
    assert done.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SUCCEEDED" in (done.details() or "")
    missing = await rpc_error(cancel(stub, f"operations/{uuid.uuid4()}"))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    bad = await rpc_error(cancel(stub, "operations/42"))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_dead_letters_totals_and_estimate_are_kept(stub: Any) -> None:
    await create_collection(stub, "dead-letters")
    created = await new_operation(stub, "dead-letters")
    running = await update(
        stub,
        created.name,
        state=RUNNING,
        progress=operation_pb2.OperationProgress(
            bytes_total=1000,
            bytes_done=250,
            chunks_total=40,
            chunks_done=10,
            eta=duration_pb2.Duration(seconds=12, nanos=500_000_000),
        ),
        dead_letters=[
            operation_pb2.DocumentError(source_path="/corpus/a", reason="boom", attempts=3)
        ],
    )
    assert running.progress.bytes_total == 1000
    assert running.progress.chunks_total == 40
    assert running.progress.eta.ToMilliseconds() == 12_500
    assert [(d.source_path, d.reason, d.attempts) for d in running.dead_letters] == [
        ("/corpus/a", "boom", 3)
    ]
    # Dead letters append; a report without progress keeps the estimate.
    running = await update(
        stub,
        created.name,
        dead_letters=[
            operation_pb2.DocumentError(source_path="/corpus/b", reason="crash", attempts=3)
        ],
    )
    assert [d.source_path for d in running.dead_letters] == ["/corpus/a", "/corpus/b"]
    assert running.progress.eta.ToMilliseconds() == 12_500
    # A progress report without an estimate clears it; so does the end.
    running = await update(
        stub, created.name, progress=operation_pb2.OperationProgress(bytes_total=1000)
    )
    assert not running.progress.HasField("eta")
    await update(
        stub,
        created.name,
        progress=operation_pb2.OperationProgress(eta=duration_pb2.Duration(seconds=3)),
    )
    done = await update(
        stub,
        created.name,
        state=operation_pb2.OPERATION_STATE_SUCCEEDED,
        progress=operation_pb2.OperationProgress(eta=duration_pb2.Duration(seconds=3)),
    )
    assert not done.progress.HasField("eta")
    # Attempts are kept as sent (0: not counted).
    errors = await update(
        stub,
        created.name,
        document_errors=[operation_pb2.DocumentError(source_path="/corpus/c", reason="x")],
    )
    assert errors.document_errors[0].attempts == 0
    negative = await rpc_error(
        update(
            stub,
            created.name,
            progress=operation_pb2.OperationProgress(bytes_total=-1),
            dead_letters=[operation_pb2.DocumentError(source_path="/x", reason="y", attempts=-2)],
        )
    )
    assert set(field_violations(negative)) >= {"progress.bytes_total", "dead_letters[0].attempts"}


async def test_a_retry_operation_names_its_original(stub: Any) -> None:
    await create_collection(stub, "retry-of")
    original = await new_operation(stub, "retry-of")
    retry = await new_operation(
        stub,
        "retry-of",
        kind=operation_pb2.OPERATION_KIND_RETRY_DOCUMENTS,
        retry_of=original.name,
        include_globs=["**/*.md", "notes/*"],
        exclude_globs=["drafts/**"],
        max_file_bytes=4096,
    )
    assert retry.kind == operation_pb2.OPERATION_KIND_RETRY_DOCUMENTS
    assert retry.retry_of == original.name
    assert list(retry.include_globs) == ["**/*.md", "notes/*"]
    assert list(retry.exclude_globs) == ["drafts/**"]
    assert retry.max_file_bytes == 4096
    assert not original.retry_of
    assert not original.include_globs
    assert original.max_file_bytes == 0
    unnamed = await rpc_error(
        new_operation(stub, "retry-of", kind=operation_pb2.OPERATION_KIND_RETRY_DOCUMENTS)
    )
    assert "operation.retry_of" in field_violations(unnamed)
    misplaced = await rpc_error(new_operation(stub, "retry-of", retry_of=original.name))
    assert "operation.retry_of" in field_violations(misplaced)
    negative = await rpc_error(new_operation(stub, "retry-of", max_file_bytes=-1))
    assert "operation.max_file_bytes" in field_violations(negative)
