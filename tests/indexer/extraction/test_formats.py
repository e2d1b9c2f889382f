"""Each format on real files: the text, its pages and headings, and section offsets."""

from __future__ import annotations

import codecs
from pathlib import Path

import docx
import pytest

from services.indexer.extraction import (
    AttachmentError,
    Extracted,
    ExtractionError,
    Limits,
    Ocr,
    extract,
    mime_type_for,
    section_at,
    supported_suffixes,
)
from tests import documents
from tests.indexer.extraction.helpers import check_sections, extract_path, section_texts

NO_OCR = Ocr.unavailable("OCR off in this test")


def run(path: Path, **kwargs: object) -> Extracted:
    extracted = extract_path(path, ocr=NO_OCR, **kwargs)  # type: ignore[arg-type]
    check_sections(extracted)
    return extracted


# ------------------------------------------------------------------ dispatch


def test_suffixes_and_mime_types() -> None:
    assert supported_suffixes() == frozenset(
        {".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".pptx", ".eml"}
    )
    assert mime_type_for("/a/B.PDF") == "application/pdf"
    assert mime_type_for("notes.md") == "text/markdown"
    assert mime_type_for("mail.eml") == "message/rfc822"
    assert mime_type_for("x.xyz") is None
    assert mime_type_for("README") is None


@pytest.mark.parametrize("suffix", sorted(supported_suffixes()))
def test_an_empty_file_is_an_empty_document(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    extracted = run(path)
    assert (extracted.text, extracted.sections, extracted.skipped) == ("", (), ())
    assert extracted.mime_type == mime_type_for(path.name)


def test_section_at_finds_the_section_of_an_offset_and_none_in_gaps(tmp_path: Path) -> None:
    extracted = run(documents.write_pdf(tmp_path / "a.pdf", ["first page", "second page"]))
    assert extracted.text == "first page\n\nsecond page"
    first, second = section_at(extracted.sections, 0), section_at(extracted.sections, 12)
    assert first is not None and first.page == 1
    assert section_at(extracted.sections, 10) is None  # the separator between pages
    assert second is not None and second.page == 2
    assert section_at(extracted.sections, len(extracted.text)) is None
    assert section_at(extracted.sections, -1) is None


# ---------------------------------------------------------------------- text


def test_utf8_text_with_a_bom(tmp_path: Path) -> None:
    extracted = run(documents.write_text(tmp_path / "a.txt", "héllo\nwörld\n", bom=True))
    assert extracted.text == "héllo\nwörld\n"
    assert extracted.mime_type == "text/plain"
    assert section_texts(extracted) == [(0, "", "héllo\nwörld")]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_text_with_a_bom(tmp_path: Path, encoding: str) -> None:
    path = documents.write_text(tmp_path / "a.txt", "grüße 日本", encoding=encoding, bom=True)
    assert run(path).text == "grüße 日本"


def test_terminal_escapes_are_text_not_binary(tmp_path: Path) -> None:
    log = "\x1b[32mok\x1b[0m build passed\n" * 50
    assert run(documents.write_text(tmp_path / "build.txt", log)).text == log


def test_markdown_headings_become_sections(tmp_path: Path) -> None:
    text = (
        "Preamble line\n\n"
        "# Guide\n\nIntro text\n\n"
        "## Install\n\nRun it.\n\n"
        "```\n# a comment, not a heading\n```\n\n"
        "Usage\n-----\n\nCall it.\n\n"
        "# Appendix #\n\nEnd.\n"
    )
    extracted = run(documents.write_text(tmp_path / "guide.md", text))
    assert extracted.text == text
    assert extracted.mime_type == "text/markdown"
    assert [
        (s.heading, extracted.text[s.start : s.end].split("\n")[0]) for s in extracted.sections
    ] == [
        ("", "Preamble line"),
        ("Guide", "# Guide"),
        ("Guide > Install", "## Install"),
        ("Guide > Usage", "Usage"),
        ("Appendix", "# Appendix #"),
    ]
    # The whole file is covered: sections abut.
    assert extracted.sections[0].start == 0 and extracted.sections[-1].end == len(text)


# ---------------------------------------------------------------------- html


def test_html_visible_text_blocks_and_headings(tmp_path: Path) -> None:
    path = documents.write_html(
        tmp_path / "page.html",
        [(-1, "Field Guide"), (1, "Field Guide"), (0, "Birds & bees."), (2, "Owls"),
         (0, "Owls hunt at night."), (3, "Barn owl"), (0, "Pale face."), (2, "Hawks"),
         (0, "Hawks hunt by day.")],
    )  # fmt: skip
    extracted = run(path)
    assert extracted.mime_type == "text/html"
    for hidden in ("hiddenScript", "hiddenNoscript", "hiddenTemplate", "hiddenInline", "color"):
        assert hidden not in extracted.text
    assert extracted.text.split("\n") == [
        "Field Guide", "Field Guide", "Birds & bees.", "Owls", "Owls hunt at night.",
        "Barn owl", "Pale face.", "Hawks", "Hawks hunt by day.",
    ]  # fmt: skip
    assert section_texts(extracted) == [
        (0, "Field Guide", "Field Guide\nField Guide\nBirds & bees."),
        (0, "Field Guide > Owls", "Owls\nOwls hunt at night."),
        (0, "Field Guide > Owls > Barn owl", "Barn owl\nPale face."),
        (0, "Field Guide > Hawks", "Hawks\nHawks hunt by day."),
    ]


def test_html_whitespace_inline_elements_tables_and_pre(tmp_path: Path) -> None:
    markup = (
        "<html><body><div>Hello,\n   <b>bold</b>  world<br>next line</div>"
        "<ul><li>one</li><li>two</li></ul>"
        "<table><tr><th>Name</th><td>Ada</td></tr></table>"
        "<div hidden>not shown</div><pre>keep\n  this</pre>"
        "<h2>No title</h2><p>after</p></body></html>"
    )
    path = tmp_path / "page.htm"
    path.write_text(markup, encoding="utf-8")
    extracted = run(path)
    assert (
        extracted.text
        == "Hello, bold world\nnext line\none\ntwo\nName Ada\nkeep\nthis\nNo title\nafter"
    )
    assert [s.heading for s in extracted.sections] == ["", "No title"]


def test_html_meta_charset_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "legacy.html"
    path.write_bytes(
        b'<html><head><meta charset="windows-1252"></head><body><p>caf\xe9 \x93quoted\x94</p>'
    )
    assert run(path).text == "café “quoted”"


def test_html_without_a_charset_must_be_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.html"
    path.write_bytes(b"<p>caf\xe9</p>")
    with pytest.raises(ExtractionError, match=r"^not valid UTF-8 text: invalid byte at offset 6$"):
        extract_path(path)


# ----------------------------------------------------------------------- pdf


def test_pdf_pages_and_outline_headings(tmp_path: Path) -> None:
    path = documents.write_pdf(
        tmp_path / "report.pdf",
        ["Cover page", "Methods used\nsecond line", "Results table", "More results"],
        outline=[(0, "Introduction", 1), (0, "Study", 2), (1, "Methods", 2), (1, "Results", 3)],
    )
    extracted = run(path)
    assert extracted.mime_type == "application/pdf"
    assert section_texts(extracted) == [
        (1, "Introduction", "Cover page"),
        (2, "Study", "Methods used\nsecond line"),
        (3, "Study > Results", "Results table"),
        (4, "Study > Results", "More results"),
    ]
    assert extracted.skipped == ()


def test_pdf_blank_page_is_not_reported(tmp_path: Path) -> None:
    extracted = run(documents.write_pdf(tmp_path / "a.pdf", ["one", "", "three"]))
    assert [s.page for s in extracted.sections] == [1, 3]
    assert extracted.skipped == ()


def test_pdf_pages_over_the_limit_are_skipped(tmp_path: Path) -> None:
    path = documents.write_pdf(tmp_path / "a.pdf", ["one", "two", "three", "four"])
    extracted = run(path, limits=Limits(max_pages=2))
    assert extracted.text == "one\n\ntwo"
    assert extracted.skipped == ("pages 3-4: over the limit of 2 pages",)


def test_pdf_encrypted_with_an_empty_password_opens(tmp_path: Path) -> None:
    path = documents.write_encrypted_pdf(tmp_path / "a.pdf", ["open to all"], user_password="")
    assert run(path).text == "open to all"


# ---------------------------------------------------------------------- docx


def test_docx_headings_paragraphs_and_tables(tmp_path: Path) -> None:
    path = documents.write_docx(
        tmp_path / "spec.docx",
        [(-1, "Product Spec"), (0, "Summary text."), (1, "Scope"), (0, "In scope."),
         (2, "Limits"), (0, "Few."), (1, "Plan"), (0, "Soon.")],
        tables=[[["Phase", "Date"], ["Beta", "May"]]],
    )  # fmt: skip
    extracted = run(path)
    assert extracted.mime_type.endswith("wordprocessingml.document")
    assert section_texts(extracted) == [
        (0, "Product Spec", "Product Spec\nSummary text."),
        (0, "Product Spec > Scope", "Scope\nIn scope."),
        (0, "Product Spec > Scope > Limits", "Limits\nFew."),
        (0, "Product Spec > Plan", "Plan\nSoon.\nPhase\tDate\nBeta\tMay"),
    ]


def test_docx_merged_and_nested_table_cells(tmp_path: Path) -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    merged = table.cell(0, 0).merge(table.cell(0, 1))
    merged.text = "wide cell"
    table.cell(0, 2).text = "right"
    table.cell(1, 0).text = "a"
    inner = table.cell(1, 1).add_table(rows=1, cols=2)
    inner.cell(0, 0).text = "inner one"
    inner.cell(0, 1).text = "inner two"
    path = tmp_path / "tables.docx"
    document.save(str(path))
    # The merged cell once; a row's empty trailing cells trimmed; the nested table after its row.
    assert run(path).text == "wide cell\tright\na\ninner one\tinner two"


# ---------------------------------------------------------------------- pptx


def test_pptx_slides_are_pages_with_title_headings(tmp_path: Path) -> None:
    path = documents.write_pptx(
        tmp_path / "deck.pptx",
        [
            documents.Slide("Quarterly Review", ["Revenue up", "Costs down"], notes="Say thanks"),
            documents.Slide("Next Steps", ["Hire two engineers"], table=[["Owner", "Due"]]),
        ],
    )
    extracted = run(path)
    assert extracted.mime_type.endswith("presentationml.presentation")
    assert section_texts(extracted) == [
        (1, "Quarterly Review", "Quarterly Review\n\nRevenue up\nCosts down\n\nSay thanks"),
        (2, "Next Steps", "Next Steps\n\nHire two engineers\n\nOwner\tDue"),
    ]


# ----------------------------------------------------------------------- eml


def test_eml_with_pdf_and_txt_attachments(tmp_path: Path) -> None:
    pdf = documents.pdf_bytes(["Invoice total 420 euros", "Terms"])
    path = documents.write_eml(
        tmp_path / "mail.eml",
        "Invoice for March",
        "Hello Bob,\nthe invoice is attached.\n",
        attachments=[
            documents.Attachment("invoice.pdf", pdf, "application/pdf"),
            documents.Attachment("notes.txt", b"Pay by Friday", "text/plain"),
        ],
    )
    extracted = run(path)
    assert extracted.mime_type == "message/rfc822"
    assert extracted.text.startswith(
        "Invoice for March\n\nFrom: Alice Example <alice@example.com>\n"
    )
    assert extracted.text.endswith("Hello Bob,\nthe invoice is attached.")
    assert {s.heading for s in extracted.sections} == {"Invoice for March"}
    first, second = extracted.attachments
    assert isinstance(first, Extracted) and isinstance(second, Extracted)
    assert first.path == f"{path}#attachments/1/invoice.pdf"
    assert first.mime_type == "application/pdf"
    assert section_texts(first) == [(1, "", "Invoice total 420 euros"), (2, "", "Terms")]
    assert (second.path, second.text) == (f"{path}#attachments/2/notes.txt", "Pay by Friday")


def test_eml_attachment_failures_are_per_attachment(tmp_path: Path) -> None:
    path = documents.write_eml(
        tmp_path / "mail.eml",
        "Mixed bag",
        "See attached.",
        attachments=[
            documents.Attachment("broken.pdf", b"%PDF-1.7\nnot really", "application/pdf"),
            documents.Attachment("photo.png", b"\x89PNG\r\n", "image/png"),
            documents.Attachment("ok.txt", b"fine", "text/plain"),
        ],
    )
    extracted = run(path)
    assert extracted.text.endswith("See attached.")
    broken, ok = extracted.attachments
    assert isinstance(broken, AttachmentError)
    assert broken.path == f"{path}#attachments/1/broken.pdf"
    assert broken.reason.startswith("corrupt PDF: ")
    assert isinstance(ok, Extracted) and ok.text == "fine"
    assert extracted.skipped == ("attachment 2 photo.png: unsupported file type .png",)


def test_eml_html_only_body_goes_through_the_html_extractor(tmp_path: Path) -> None:
    path = documents.write_eml(
        tmp_path / "news.eml",
        "Newsletter",
        "",
        html="<html><body><h1>News</h1><p>Launch day</p><script>track()</script></body></html>",
    )
    assert run(path).text.endswith("\n\nNews\nLaunch day")


def test_eml_prefers_the_plain_text_body(tmp_path: Path) -> None:
    path = documents.write_eml(tmp_path / "a.eml", "Both", "plain body", html="<p>html body</p>")
    extracted = run(path)
    assert "plain body" in extracted.text and "html body" not in extracted.text


def test_eml_attached_mail_is_extracted_and_depth_is_bounded(tmp_path: Path) -> None:
    inner = documents.eml_bytes("Inner", "inner body")
    middle = documents.eml_bytes(
        "Middle",
        "middle body",
        attachments=[documents.Attachment("inner.eml", inner, "message/rfc822")],
    )
    path = documents.write_eml(
        tmp_path / "outer.eml",
        "Outer",
        "outer body",
        attachments=[documents.Attachment("middle.eml", middle, "message/rfc822")],
    )
    (middle_extracted,) = run(path).attachments
    assert isinstance(middle_extracted, Extracted)
    assert middle_extracted.path == f"{path}#attachments/1/middle.eml"
    assert middle_extracted.text.startswith("Middle") and "middle body" in middle_extracted.text
    (inner_extracted,) = middle_extracted.attachments
    assert isinstance(inner_extracted, Extracted) and inner_extracted.text.endswith("inner body")

    (shallow,) = extract_path(path, limits=Limits(max_depth=1), ocr=NO_OCR).attachments
    assert isinstance(shallow, Extracted)
    (too_deep,) = shallow.attachments
    assert too_deep == AttachmentError(
        f"{path}#attachments/1/middle.eml#attachments/1/inner.eml",
        "mail nested deeper than 1 level",
    )


def test_extract_takes_bytes_and_a_name(tmp_path: Path) -> None:
    data = documents.docx_bytes([(1, "Heading"), (0, "Body")])
    extracted = extract("in/memory.docx", data, ocr=NO_OCR)
    assert (extracted.path, extracted.text) == ("in/memory.docx", "Heading\nBody")
    assert codecs.BOM_UTF8 not in extract("a.txt", codecs.BOM_UTF8 + b"x").text.encode()


def test_eml_base64_encoded_attached_mail(tmp_path: Path) -> None:
    inner = documents.eml_bytes("Forwarded", "forwarded body")
    path = documents.write_eml(
        tmp_path / "fwd.eml",
        "Fwd",
        "see below",
        attachments=[documents.Attachment("fwd.eml", inner, "message/rfc822", base64=True)],
    )
    assert b"Content-Transfer-Encoding: base64" in path.read_bytes()
    (forwarded,) = run(path).attachments
    assert isinstance(forwarded, Extracted)
    assert forwarded.text.startswith("Forwarded\n\nFrom: ")
    assert forwarded.text.endswith("forwarded body")


def test_eml_attachments_over_the_limit_are_skipped(tmp_path: Path) -> None:
    notes = [
        documents.Attachment(f"n{i}.txt", f"note {i}".encode(), "text/plain") for i in (1, 2, 3)
    ]
    path = documents.write_eml(tmp_path / "a.eml", "Notes", "three notes", attachments=notes)
    extracted = extract_path(path, limits=Limits(max_attachments=1), ocr=NO_OCR)
    assert [a.text for a in extracted.attachments if isinstance(a, Extracted)] == ["note 1"]
    assert extracted.skipped == ("attachments 2-3: over the limit of 1 attachment",)
