"""Reading one file into its documents: the file, then every attachment."""

from __future__ import annotations

from pathlib import Path

from services.indexer.extraction import DEFAULT_LIMITS, Ocr
from services.indexer.reading import read_file
from tests import documents


def test_attachments_of_a_forwarded_mail_are_documents_too(tmp_path: Path) -> None:
    deep = documents.Attachment("deep.txt", b"The innermost note.", "text/plain")
    forwarded = documents.eml_bytes("Fwd: notes", "See below.\n", attachments=[deep])
    outer = documents.Attachment("fwd.eml", forwarded, "message/rfc822")
    path = documents.write_eml(
        tmp_path / "outer.eml", "Outer", "Forwarding.\n", attachments=[outer]
    )
    read = read_file(path, DEFAULT_LIMITS, Ocr.unavailable("not needed"))
    paths = [source.path for source in read]
    assert paths[0] == str(path)
    assert len(paths) == 3, paths
    assert paths[2].startswith(paths[1] + "#attachments/")
    assert paths[2].endswith("/deep.txt")
    assert "innermost" in read[2].text
    assert not any(source.error for source in read)
    # Each document's content hash is its own, and reading again gives the same ones.
    assert len({source.content_hash for source in read}) == 3
    assert [s.content_hash for s in read_file(path, DEFAULT_LIMITS, None)] == [
        s.content_hash for s in read
    ]


def test_control_characters_never_reach_headings(tmp_path: Path) -> None:
    path = documents.write_pdf(
        tmp_path / "a.pdf", ["Some text."], outline=[(0, "Bad\x00Title\x07", 1)]
    )
    (source,) = read_file(path, DEFAULT_LIMITS, Ocr.unavailable("not needed"))
    assert source.place(0) == (1, "BadTitle")
