"""A second import of a changed folder, through the real mesh: only what
changed is embedded again, moved and touched files keep their vectors, and
removed files leave the index (search and metadata)."""

from __future__ import annotations

import os
from pathlib import Path

from semantik.v1 import collection_pb2, document_pb2, operation_pb2, search_pb2
from tests import documents
from tests.e2e.conftest import Api

COLLECTION = "sync"


def _import(api: Api, root: Path) -> operation_pb2.Operation:
    operation = api.documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(
            parent=f"collections/{COLLECTION}", source_path=str(root)
        ),
        timeout=30,
    )
    done: operation_pb2.Operation = api.wait_done(operation.name, timeout_s=120)
    assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED, done.error.message
    return done


def _best(api: Api, query: str) -> search_pb2.SearchResult | None:
    results = api.search.Search(
        search_pb2.SearchRequest(
            collection=f"collections/{COLLECTION}",
            query=query,
            top_k=1,
            mode=search_pb2.SEARCH_MODE_SPARSE,
        ),
        timeout=30,
    ).results
    return results[0] if results else None


def test_a_changed_folder_syncs_without_embedding_again(api: Api, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "archive").mkdir(parents=True)
    documents.write_text(root / "kept.txt", "The lighthouse keeper logs every ship.\n")
    documents.write_text(root / "moving.txt", "Saffron threads colour the paella.\n")
    documents.write_text(root / "leaving.txt", "The tramway closes for the winter.\n")
    mail = documents.Attachment("plan.txt", b"Mulberry jam recipe for the fair.", "text/plain")
    documents.write_eml(root / "note.eml", "Fair", "Bring jars.\n", attachments=[mail])
    api.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id=COLLECTION, collection=collection_pb2.Collection()
        ),
        timeout=30,
    )
    try:
        first = _import(api, root)
        assert first.progress.documents_done == 5  # 4 files and the attachment
        before = _best(api, "saffron")
        assert before is not None

        (root / "moving.txt").rename(root / "archive" / "moved.txt")
        (root / "leaving.txt").unlink()
        later = (root / "kept.txt").stat().st_mtime_ns + 10_000_000_000
        os.utime(root / "kept.txt", ns=(later, later))
        (root / "note.eml").rename(root / "archive" / "note.eml")
        second = _import(api, root)

        assert second.progress.documents_unchanged == 4  # kept, moved, the mail, its attachment
        assert second.progress.documents_removed == 1
        assert second.progress.chunks_done == 0  # nothing embedded again
        moved = _best(api, "saffron")
        assert moved is not None and moved.source_path == str(root / "archive" / "moved.txt")
        assert moved.text == before.text
        attachment = _best(api, "mulberry")
        assert attachment is not None
        assert attachment.source_path.startswith(str(root / "archive" / "note.eml#attachments/"))
        assert _best(api, "tramway") is None
        listed = api.documents.ListDocuments(
            document_pb2.ListDocumentsRequest(parent=f"collections/{COLLECTION}"), timeout=30
        ).documents
        paths = {d.source_path for d in listed}
        assert str(root / "leaving.txt") not in paths
        assert str(root / "moving.txt") not in paths
        kept = next(d for d in listed if d.source_path == str(root / "kept.txt"))
        assert kept.modify_time.ToNanoseconds() == later // 1000 * 1000
        in_archive = api.search.Search(
            search_pb2.SearchRequest(
                collection=f"collections/{COLLECTION}",
                query="saffron paella",
                filter=search_pb2.SearchFilter(path_prefix=str(root / "archive") + "/"),
            ),
            timeout=30,
        ).results
        assert any(r.source_path.endswith("moved.txt") for r in in_archive)
    finally:
        api.collections.DeleteCollection(
            collection_pb2.DeleteCollectionRequest(name=f"collections/{COLLECTION}"), timeout=30
        )
