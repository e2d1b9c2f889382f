"""Hostile and broken files: each is one clean ExtractionError with a short reason."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest

from services.indexer.chunking import split_sentences
from services.indexer.extraction import ExtractionError, Limits, Ocr, extract
from services.indexer.reading import read_file
from tests import documents

NO_OCR = Ocr.unavailable("OCR off in this test")


def reason(path: Path, limits: Limits | None = None) -> str:
    """Why the indexer's reader refuses the file (it stats before reading)."""
    source, *_ = read_file(path, limits or Limits(), NO_OCR)
    message = source.error
    assert message and "\n" not in message and len(message) <= 200
    return message


def test_corrupt_pdf(tmp_path: Path) -> None:
    assert reason(documents.write_corrupt_pdf(tmp_path / "a.pdf")).startswith("corrupt PDF: ")


def test_truncated_pdf(tmp_path: Path) -> None:
    path = documents.write_truncated_pdf(tmp_path / "a.pdf", ["one", "two", "three"])
    assert reason(path).startswith("corrupt PDF: ")


def test_encrypted_pdf_needs_a_password(tmp_path: Path) -> None:
    path = documents.write_encrypted_pdf(tmp_path / "a.pdf", ["secret"], user_password="s3cret")
    assert reason(path) == "encrypted PDF: a password is needed"


@pytest.mark.parametrize("kind", ["docx", "pptx"])
def test_zip_bomb_by_compression_ratio(tmp_path: Path, kind: str) -> None:
    path = documents.write_zip_bomb(tmp_path / f"bomb.{kind}", kind=kind, unpacked_mib=16)
    media = "word" if kind == "docx" else "ppt"
    assert reason(path).startswith(f"zip bomb suspected: {media}/media/zeros.bin is compressed ")
    assert reason(path).endswith(":1, over the limit of 100:1")


def test_zip_bomb_by_total_unpacked_size(tmp_path: Path) -> None:
    path = documents.write_incompressible_docx(tmp_path / "big.docx", payload_bytes=2 << 20)
    limits = Limits(max_unzipped_bytes=1 << 20)
    assert reason(path, limits) == "zip bomb suspected: the DOCX unpacks to more than 1 MiB"


def test_zip_bomb_by_declared_size_in_the_central_directory(tmp_path: Path) -> None:
    path = documents.write_lying_zip_docx(tmp_path / "lying.docx")
    assert reason(path) == "zip bomb suspected: the DOCX unpacks to more than 256 MiB"


def test_zip_bomb_by_entry_count(tmp_path: Path) -> None:
    path = documents.write_many_entries_zip(tmp_path / "many.pptx", kind="pptx", entries=300)
    limits = Limits(max_zip_entries=200)
    assert reason(path, limits) == (
        "zip bomb suspected: 3" + reason(path, limits).split(": 3", 1)[1]
    )
    assert reason(path, limits).endswith(" files in the archive, over the limit of 200")


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as file:
        file.truncate(8 << 30)  # sparse: 8 GiB by stat(), nothing on disk
    # Reading 8 GiB would exhaust memory or the test's timeout long before an answer.
    assert reason(path) == "file too large: 8192 MiB, over the limit of 64 MiB"


def test_data_over_the_size_limit(tmp_path: Path) -> None:
    with pytest.raises(
        ExtractionError, match=r"^file too large: 200 bytes, over the limit of 100 bytes$"
    ):
        extract("a.txt", b"x" * 200, limits=Limits(max_bytes=100))


def test_text_that_is_not_utf8(tmp_path: Path) -> None:
    path = documents.write_latin1_text(tmp_path / "a.txt")
    assert reason(path) == "not valid UTF-8 text: invalid byte at offset 3"
    bom_path = tmp_path / "bom.md"
    bom_path.write_bytes(b"\xef\xbb\xbfok \xff")
    assert reason(bom_path) == "not valid UTF-8 text: invalid byte at offset 6"


def test_binary_content_with_a_text_extension(tmp_path: Path) -> None:
    assert reason(documents.write_binary_as_text(tmp_path / "a.txt")) == (
        "binary content in a .txt file"
    )
    controls = tmp_path / "b.md"
    controls.write_bytes(b"text\x01\x02\x03\x04\x05\x06" * 10)
    assert reason(controls) == "binary content in a .md file"
    html = tmp_path / "c.htm"
    html.write_bytes(b"<p>\x00\x00\x00</p>")
    assert reason(html) == "binary content in a .htm file"


def test_unknown_extension(tmp_path: Path) -> None:
    (tmp_path / "a.xyz").write_bytes(b"data")
    assert reason(tmp_path / "a.xyz") == "unsupported file type .xyz"
    (tmp_path / "Makefile").write_bytes(b"all:")
    assert reason(tmp_path / "Makefile") == "unsupported file type (no extension)"


def _plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hi")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.pdf", b"just some text", "not a PDF file (no %PDF header)"),
        ("a.docx", b"just some text", "not a DOCX file (not a zip archive)"),
        ("a.docx", documents.pdf_bytes(["x"]), "not a DOCX file (it is a PDF)"),
        ("a.docx", documents.pptx_bytes([documents.Slide("x")]),
         "not a DOCX file (it is a PPTX presentation)"),
        ("a.pptx", documents.docx_bytes([(0, "x")]), "not a PPTX file (it is a DOCX document)"),
        ("a.pptx", _plain_zip(), "not a PPTX file (a zip archive, but not an Office document)"),
        ("a.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512),
         "not a DOCX file: an encrypted (password-protected) or legacy Office file"),
    ],
)  # fmt: skip
def test_renamed_files(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    (tmp_path / name).write_bytes(content)
    assert reason(tmp_path / name) == expected


def test_deeply_nested_html(tmp_path: Path) -> None:
    path = tmp_path / "deep.html"
    path.write_text("<div>" * 50_000 + "x" + "</div>" * 50_000, encoding="utf-8")
    assert reason(path) == "HTML nested too deeply: about 50000 elements, over the limit of 5000"


def test_unreadable_paths(tmp_path: Path) -> None:
    assert reason(tmp_path / "missing.txt") == "cannot read: No such file or directory"
    (tmp_path / "folder.txt").mkdir()
    assert reason(tmp_path / "folder.txt") == "cannot read: Is a directory"


def _samples() -> dict[str, bytes]:
    html = documents.html_document([(-1, "T"), (1, "Head"), (0, "para")]).encode()
    return {
        ".pdf": documents.pdf_bytes(["first page", "second page"], outline=[(0, "A", 1)]),
        ".docx": documents.docx_bytes([(1, "Head"), (0, "para")], tables=[[["a", "b"]]]),
        ".pptx": documents.pptx_bytes([documents.Slide("Title", ["line"], notes="n")]),
        ".eml": documents.eml_bytes(
            "Subject",
            "body",
            attachments=[
                documents.Attachment("a.pdf", documents.pdf_bytes(["x"]), "application/pdf")
            ],
        ),
        ".html": html,
        ".md": b"# Head\n\ntext\n",
    }


@pytest.mark.parametrize("suffix", [".pdf", ".docx", ".pptx", ".eml", ".html", ".md"])
def test_damaged_files_extract_or_fail_cleanly(suffix: str) -> None:
    """Random byte damage and truncation: an Extracted or an ExtractionError, nothing else."""
    original = _samples()[suffix]
    rng = random.Random(suffix)
    for attempt in range(25):
        data = bytearray(original)
        if attempt % 5 == 0:
            data = data[: rng.randrange(1, len(data))]
        else:
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            extract(f"damaged{suffix}", bytes(data), ocr=NO_OCR)
        except ExtractionError as exc:
            assert str(exc) and "\n" not in str(exc)


# Inputs that made a regular expression backtrack for minutes (71 s, 20 s and
# 24 s at these sizes before the patterns were fixed). The timeout is a guard
# against a hung worker, not a speed target: they now take milliseconds.
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("open-tags.html", b"<a " * 40_000),
        ("spaced-heading.md", b"# a" + b" " * 40_000 + b"b"),
    ],
)
def test_pathological_markup_extracts_without_stalling(name: str, data: bytes) -> None:
    extracted = extract(name, data)
    assert extracted.path == name
    if name.endswith(".md"):
        assert extracted.text.startswith("# a")


@pytest.mark.timeout(30)
def test_a_run_of_periods_splits_without_stalling() -> None:
    text = "." * 40_000 + "x"
    spans = split_sentences(text)
    assert spans and spans[-1][1] == len(text)


def test_zip_bomb_with_a_lying_entry_count() -> None:
    """The end record claims one entry; the directory holds 12,000 long names."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        for i in range(12_000):
            archive.writestr(f"word/{i:06d}-" + "n" * 290, b"")
    data = bytearray(buffer.getvalue())
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (1).to_bytes(2, "little") * 2  # entries on disk, in total
    with pytest.raises(ExtractionError) as error:
        extract("lying.docx", bytes(data))
    assert str(error.value).startswith("zip bomb suspected: a central directory of ")
