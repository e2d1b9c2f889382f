"""bench/ingest.py's pure parts: corpora, the ratio and the report (no mesh needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pypdf import PdfReader

from bench.ingest import (
    DEFAULT_FILES,
    OCR_PAGES,
    QUICK_CRANFIELD_DOCS,
    QUICK_FILES,
    QUICK_OCR_PAGES,
    SETS,
    TARGET_RATIO,
    EmbedderAlone,
    Ingest,
    Sample,
    batches,
    cranfield_file_text,
    format_table,
    parse_plan,
    rate,
    ratio,
    set_row,
    timeline,
    write_cranfield,
    write_mixed,
    write_scanned,
)
from tests.documents import CORPUS_FORMATS, corpus_marker


def test_cranfield_files_are_title_blank_line_text_and_skip_empty_documents(
    tmp_path: Path,
) -> None:
    docs = {
        "1": ("Wing flutter\r", "  The flutter of thin wings.\r\n"),
        "2": ("", ""),  # empty, like Cranfield 471 and 995
        "3": ("", "No title here."),
        "4": ("Last", "Cut by the limit."),
    }
    assert cranfield_file_text(*docs["1"]) == "Wing flutter\n\nThe flutter of thin wings."
    assert write_cranfield(tmp_path, docs, limit=2) == ["1", "3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.txt", "3.txt"]
    assert (tmp_path / "1.txt").read_text(encoding="utf-8") == (
        "Wing flutter\n\nThe flutter of thin wings."
    )
    assert (tmp_path / "3.txt").read_text(encoding="utf-8") == "No title here."
    assert write_cranfield(tmp_path / "all", docs) == ["1", "3", "4"]


def test_mixed_corpus_covers_every_format_deterministically_without_scans(
    tmp_path: Path,
) -> None:
    count = len(CORPUS_FORMATS) + 1
    formats = write_mixed(tmp_path / "a", count, seed=3)
    assert sum(formats.values()) == count
    assert set(formats) == set(CORPUS_FORMATS)
    write_mixed(tmp_path / "b", count, seed=3)
    first = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.txt"))
    assert first
    for relative in first:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()
    # scanned_every=0: every PDF has a text layer with its marker.
    (pdf,) = (tmp_path / "a").rglob("*.pdf")
    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert corpus_marker(3, int(pdf.stem.removeprefix("doc"))) in text


def test_scanned_pages_have_no_text_layer(tmp_path: Path) -> None:
    assert write_scanned(tmp_path, 1) == 1
    (pdf,) = tmp_path.rglob("*.pdf")
    assert "".join(page.extract_text() for page in PdfReader(pdf).pages).strip() == ""


def test_rate_and_ratio() -> None:
    assert rate(90, 2.0) == 45.0
    assert rate(5, 0.0) == 0.0
    assert ratio(45.0, 50.0) == 0.9
    assert ratio(1.0, 3.0) == 0.333
    assert ratio(10.0, 0.0) == 0.0


def test_timeline_splits_start_steady_and_tail() -> None:
    samples = [
        Sample(0.0, 0, 0, 0),
        Sample(0.5, 10, 0, 0),
        Sample(1.0, 10, 2, 20),
        Sample(3.0, 10, 8, 80),
    ]
    assert timeline(samples, 4.0) == {
        "scan_s": 0.5,
        "first_chunk_s": 1.0,
        "last_running_s": 3.0,
        "chunks_at_last_running": 80,
        "tail_s": 1.0,
        "steady_chunks_per_s": 30.0,
    }
    assert timeline([], 1.0) == {
        "scan_s": None,
        "first_chunk_s": None,
        "last_running_s": None,
        "chunks_at_last_running": None,
        "tail_s": None,
        "steady_chunks_per_s": None,
    }


def _row(chunks_per_s: float, alone_per_s: float) -> dict[str, object]:
    ingest = Ingest(
        documents=50,
        documents_failed=0,
        chunks=int(chunks_per_s * 10),
        bytes=1234,
        seconds=10.0,
        server_seconds=9.8,
        errors=[("/x/a.eml#note.txt", "indexed without something")],
        samples=[Sample(1.0, 50, 5, 10)],
    )
    alone = EmbedderAlone(texts=ingest.chunks, tokens=999, seconds=ingest.chunks / alone_per_s)
    return set_row("mixed", 40, ingest, alone)


def test_set_row_reports_rates_ratio_and_target() -> None:
    row = _row(45.0, 50.0)
    assert row["files"] == 40
    assert row["documents"] == 50
    assert row["chunks"] == 450
    assert row["docs_per_s"] == 5.0
    assert row["chunks_per_s"] == 45.0
    assert row["embedder_alone_chunks_per_s"] == 50.0
    assert row["ratio"] == 0.9
    assert row["meets_target"] is True
    assert row["errors"] == [
        {"source_path": "/x/a.eml#note.txt", "reason": "indexed without something"}
    ]
    below = _row(40.0, 50.0)
    assert below["ratio"] == 0.8
    assert below["meets_target"] is False
    assert TARGET_RATIO == 0.9


def test_table_has_a_line_per_set() -> None:
    table = format_table([_row(45.0, 50.0)])
    header, rule, line = table.splitlines()
    assert "ratio" in header and "embedder chunks/s" in header
    assert set(rule) == {"-"}
    assert line.split() == ["mixed", "40", "50", "450", "10.0", "5.0", "45.0", "50.0", "0.90x"]


def test_batches() -> None:
    assert batches(["a", "b", "c"], 2) == [["a", "b"], ["c"]]
    assert batches([], 32) == []


def test_plan_defaults_quick_and_bad_sets(tmp_path: Path) -> None:
    plan, out = parse_plan([])
    assert plan.sets == SETS
    assert (plan.files, plan.cranfield_docs, plan.ocr_pages, plan.quick) == (
        DEFAULT_FILES,
        None,
        OCR_PAGES,
        False,
    )
    assert out.name == "ingest.json"
    plan, out = parse_plan(["--quick", "--sets", "mixed", "--out", str(tmp_path / "q.json")])
    assert plan.sets == ("mixed",)
    assert (plan.files, plan.cranfield_docs, plan.ocr_pages) == (
        QUICK_FILES,
        QUICK_CRANFIELD_DOCS,
        QUICK_OCR_PAGES,
    )
    assert out == tmp_path / "q.json"
    plan, _ = parse_plan(["--quick", "--files", "7", "--ocr-pages", "0"])
    assert (plan.files, plan.ocr_pages) == (7, 0)
    with pytest.raises(SystemExit):
        parse_plan(["--sets", "cisi"])
    with pytest.raises(SystemExit):
        parse_plan(["--files", "0"])
