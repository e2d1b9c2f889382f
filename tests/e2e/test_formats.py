"""Every supported format indexes through the real mesh and is found by search,
with pages and headings; every hostile file is a clean per-document error in
the operation and in metadata, and the run goes on."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from semantik.v1 import collection_pb2, document_pb2, operation_pb2, search_pb2
from services.indexer.extraction import Ocr
from tests import documents
from tests.e2e.conftest import Api

COLLECTION = "formats"
MAX_FILE_BYTES = 512 * 1024


@dataclass(frozen=True)
class Expected:
    """A marker word only one document holds, where it is, and what the hit says."""

    relative: str  # path of the document under the folder (attachments: with #...)
    page: int = 0
    heading: str = ""


FOUND = {
    "quillfeather": Expected("plain.txt"),
    "mossgrove": Expected("notes.md", heading="Garden > Ferns"),
    "lanternfish": Expected("page.html", heading="Ocean Life > Deep Sea"),
    "brassknuckle": Expected("report.pdf", page=2),
    "tidewater": Expected("memo.docx", heading="Budget > Harbour"),
    "glassblower": Expected("deck.pptx", page=2, heading="Workshop"),
    "snowlantern": Expected("mail.eml", heading="Winter plans"),
    "copperkettle": Expected("mail.eml#attachments/1/kettle.pdf", page=1),
}
SCANNED_MARKER = "SEMANTIK 4721 OCRWORD"

HOSTILE = {
    "corrupt.pdf": "corrupt PDF",
    "locked.pdf": "encrypted PDF: a password is needed",
    "bomb.docx": "zip bomb suspected",
    "huge.txt": "file too large",
    "latin1.txt": "not valid UTF-8",
    "binary.txt": "binary content in a .txt file",
    "renamed.docx": "not a DOCX file",
    "escape.txt": "outside",
}


def _write_folder(root: Path, outside: Path) -> None:
    root.mkdir()
    documents.write_text(root / "plain.txt", "Ink and the quillfeather pen of old scribes.\n")
    documents.write_markdown(
        root / "notes.md",
        [(1, "Garden"), (0, "Plants of the shade."), (2, "Ferns"), (0, "Ferns in mossgrove beds.")],
    )
    documents.write_html(
        root / "page.html",
        [
            (-1, "Ocean Life"),
            (1, "Deep Sea"),
            (0, "The lanternfish carries its own light into the dark water."),
        ],
    )
    documents.write_pdf(
        root / "report.pdf",
        ["Quarterly report on the foundry.", "The brassknuckle alloy failed at high heat."],
    )
    documents.write_docx(
        root / "memo.docx",
        [(1, "Budget"), (0, "Spending overview."), (2, "Harbour"), (0, "Dredging the tidewater.")],
    )
    documents.write_pptx(
        root / "deck.pptx",
        [
            documents.Slide("Overview", ["Agenda for the week."]),
            documents.Slide("Workshop", ["The glassblower shows the furnace."]),
        ],
    )
    attachment = documents.Attachment(
        "kettle.pdf",
        documents.pdf_bytes(["The copperkettle whistles on the stove."]),
        "application/pdf",
    )
    documents.write_eml(
        root / "mail.eml",
        "Winter plans",
        "Bring the snowlantern to the cabin.\n",
        attachments=[attachment],
    )
    documents.write_text(root / "empty.md", "")
    # Hostile files.
    documents.write_corrupt_pdf(root / "corrupt.pdf")
    documents.write_encrypted_pdf(root / "locked.pdf", ["secret"], user_password="pw")
    documents.write_zip_bomb(root / "bomb.docx")
    documents.write_text(root / "huge.txt", "word " * (MAX_FILE_BYTES // 4))
    documents.write_latin1_text(root / "latin1.txt")
    documents.write_binary_as_text(root / "binary.txt")
    shutil.copy(root / "report.pdf", root / "renamed.docx")
    outside.write_text("a secret outside the folder\n", encoding="utf-8")
    (root / "escape.txt").symlink_to(outside)


@pytest.fixture(scope="module")
def imported(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    base = tmp_path_factory.mktemp("formats")
    root = base / "docs"
    _write_folder(root, base / "outside.txt")
    ocr = Ocr.detect()
    if ocr.available:
        documents.write_scanned_pdf(root / "scan.pdf", SCANNED_MARKER)
    api.collections.CreateCollection(
        collection_pb2.CreateCollectionRequest(
            collection_id=COLLECTION,
            # Heading-aware: no chunk crosses a heading or a page, so each
            # marker's chunk has its own page and heading.
            collection=collection_pb2.Collection(
                chunking=collection_pb2.ChunkingConfig(
                    strategy=collection_pb2.CHUNKING_STRATEGY_MARKDOWN
                )
            ),
        ),
        timeout=30,
    )
    operation = api.documents.ImportDocuments(
        document_pb2.ImportDocumentsRequest(
            parent=f"collections/{COLLECTION}",
            source_path=str(root),
            max_file_bytes=MAX_FILE_BYTES,
        ),
        timeout=30,
    )
    done = api.wait_done(operation.name, timeout_s=300)
    yield root, done
    api.collections.DeleteCollection(
        collection_pb2.DeleteCollectionRequest(name=f"collections/{COLLECTION}"), timeout=30
    )


def _search(api: Api, query: str, mode: Any = search_pb2.SEARCH_MODE_SPARSE) -> Any:
    return api.search.Search(
        search_pb2.SearchRequest(
            collection=f"collections/{COLLECTION}", query=query, top_k=3, mode=mode
        ),
        timeout=30,
    )


def test_the_run_succeeds_and_counts_every_document(imported: tuple[Path, Any]) -> None:
    root, done = imported
    assert done.state == operation_pb2.OPERATION_STATE_SUCCEEDED, done.error.message
    # 8 marker documents (one an attachment), the empty file, the hostile files,
    # and the scanned PDF when tesseract is installed.
    scanned = 1 if (root / "scan.pdf").exists() else 0
    assert done.progress.documents_done == len(FOUND) + 1 + scanned
    assert done.progress.documents_failed == len(HOSTILE)
    assert done.progress.documents_total == len(FOUND) + 1 + scanned + len(HOSTILE)


@pytest.mark.parametrize("marker", sorted(FOUND))
def test_every_format_is_found_with_its_page_and_heading(
    api: Api, imported: tuple[Path, Any], marker: str
) -> None:
    root, _ = imported
    expected = FOUND[marker]
    best = _search(api, marker).results[0]
    assert best.source_path == f"{root}/{expected.relative}"
    assert marker in best.text.lower()
    assert best.page == expected.page
    assert best.heading == expected.heading
    lit = [best.text[h.start : h.end].lower() for h in best.highlights]
    assert marker in lit


def test_meaning_finds_a_pdf_page(api: Api, imported: tuple[Path, Any]) -> None:
    root, _ = imported
    hits = _search(api, "metal that broke when it got too hot", search_pb2.SEARCH_MODE_DENSE)
    assert hits.results[0].source_path == f"{root}/report.pdf"
    assert hits.results[0].page == 2


def test_a_scanned_page_is_read_by_ocr(api: Api, imported: tuple[Path, Any]) -> None:
    root, _ = imported
    if not (root / "scan.pdf").exists():
        pytest.skip("tesseract is not installed (apt-get install tesseract-ocr)")
    best = _search(api, "ocrword").results[0]
    assert best.source_path == f"{root}/scan.pdf"
    assert best.page == 1


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_hostile_file_is_a_clean_document_error(
    api: Api, imported: tuple[Path, Any], name: str
) -> None:
    root, done = imported
    path = f"{root}/{name}"
    reasons = {error.source_path: error.reason for error in done.document_errors}
    assert HOSTILE[name] in reasons[path], reasons[path]
    listed = api.documents.ListDocuments(
        document_pb2.ListDocumentsRequest(parent=f"collections/{COLLECTION}", page_size=100),
        timeout=30,
    ).documents
    document = next(d for d in listed if d.source_path == path)
    assert document.state == document_pb2.DOCUMENT_STATE_FAILED
    assert document.error == reasons[path]
    assert document.chunk_count == 0


def test_the_secret_behind_the_escaping_link_is_not_indexed(
    api: Api, imported: tuple[Path, Any]
) -> None:
    hits = _search(api, "secret outside the folder").results
    assert all("outside" not in hit.text for hit in hits)
