"""The indexer (and the import worker inside it) killed with SIGKILL in the
middle of an import: once it is back, the job runs again and the collection
ends exactly as a clean import leaves it, with no chunk lost or duplicated."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from semantik.v1 import collection_pb2, document_pb2, operation_pb2, search_pb2
from semantik_runner.mesh import Mesh
from tests.e2e.conftest import Api

FILES = 120


def _write(root: Path) -> dict[str, str]:
    """One short file per marker word (each file's own), on a few shared topics."""
    root.mkdir()
    markers = {}
    for i in range(FILES):
        marker = f"killmark{i:04d}"
        text = f"Record {marker}. " + "The harbour crane lifts containers onto the ship. " * (i % 5)
        (root / f"doc{i:04d}.txt").write_text(text + "\n", encoding="utf-8")
        markers[marker] = str(root / f"doc{i:04d}.txt")
    return markers


def _create(api: Api, collection_id: str) -> None:
    api.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id=collection_id, collection=collection_pb2.Collection()
        ),
        timeout=30,
    )


def _start(api: Api, collection_id: str, root: Path) -> str:
    operation = api.documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(
            parent=f"collections/{collection_id}", source_path=str(root)
        ),
        timeout=30,
    )
    return str(operation.name)


def test_a_killed_worker_loses_and_duplicates_nothing(api: Api, mesh: Mesh, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    markers = _write(root)
    _create(api, "killed")
    _create(api, "clean")
    try:
        name = _start(api, "killed", root)
        # Kill it once part of the folder is in, and before all of it is.
        deadline = time.monotonic() + 120
        while True:
            progress = api.operations.GetOperation(
                operation_pb2.GetOperationRequest(name=name), timeout=30
            ).progress
            if progress.documents_done >= 10:
                break
            assert time.monotonic() < deadline, "the import never got going"
            time.sleep(0.05)
        assert progress.documents_done < FILES, "too fast to kill mid-job; add files"
        assert mesh.indexer.process is not None
        mesh.indexer.process.send_signal(signal.SIGKILL)
        mesh.indexer.process.wait(timeout=30)
        mesh.indexer.start()
        mesh.indexer.wait_serving(120)
        # The gateway has seen the indexer go; it serves again once it sees it back.
        mesh.gateway.wait_serving(60)

        killed = api.wait_done(name, timeout_s=300)
        assert killed.state == operation_pb2.OPERATION_STATE_SUCCEEDED, killed.error.message
        clean = api.wait_done(_start(api, "clean", root), timeout_s=300)
        assert clean.state == operation_pb2.OPERATION_STATE_SUCCEEDED

        def counts(collection_id: str) -> tuple[int, int]:
            got = api.collections.GetCollection(
                collection_pb2.GetCollectionRequest(name=f"collections/{collection_id}"),
                timeout=30,
            )
            return got.document_count, got.chunk_count

        assert counts("killed") == counts("clean")
        assert counts("killed")[0] == FILES
        # Every file's chunk is searchable once: its marker finds exactly it.
        for marker, path in list(markers.items())[:: FILES // 24]:
            results = api.search.Search(
                search_pb2.SearchRequest(
                    collection="collections/killed",
                    query=marker,
                    top_k=5,
                    mode=search_pb2.SEARCH_MODE_SPARSE,
                ),
                timeout=30,
            ).results
            assert [r.source_path for r in results] == [path]
    finally:
        if not mesh.indexer.serving():
            mesh.indexer.start()
            mesh.indexer.wait_serving(120)
        for collection_id in ("killed", "clean"):
            api.collections.DeleteCollection(
                collection_pb2.DeleteCollectionRequest(name=f"collections/{collection_id}"),
                timeout=30,
            )
