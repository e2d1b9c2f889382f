"""Real documents of every extracted format, and hostile ones, written to disk.

Tests and benchmarks build their inputs here instead of checking in binary
fixtures: every writer makes a genuine file with the library a user's tools
would use (reportlab for PDFs, python-docx, python-pptx, the stdlib `email`
package, Pillow for scanned pages), so the extractors meet the same bytes
they meet in production.

`write_corpus(folder, count, seed)` writes a deterministic mix of formats,
each file carrying a unique marker word and topic sentences, for indexing
and search tests at any scale.
"""

from __future__ import annotations

import email
import email.policy
import io
import random
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import docx
import pptx
from PIL import Image, ImageDraw, ImageFont
from pptx.util import Inches
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

# ---------------------------------------------------------------- single files

# (level, text): level 0 is a body paragraph, 1..9 a heading of that level,
# -1 the document title ("Title" style in DOCX, <title> in HTML).
Block = tuple[int, str]

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def write_text(path: Path, text: str, *, encoding: str = "utf-8", bom: bool = False) -> Path:
    """Text in `encoding`; `bom` prefixes its byte order mark (utf-8, utf-16-le/be)."""
    marks = {
        "utf-8": b"\xef\xbb\xbf",
        "utf-16-le": b"\xff\xfe",
        "utf-16-be": b"\xfe\xff",
    }
    data = text.encode(encoding)
    path.write_bytes((marks[encoding] if bom else b"") + data)
    return path


def write_markdown(path: Path, blocks: Sequence[Block]) -> Path:
    lines: list[str] = []
    for level, text in blocks:
        lines.append(f"{'#' * max(level, 1)} {text}" if level != 0 else text)
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def html_document(blocks: Sequence[Block], *, noise: bool = True) -> str:
    """An HTML page of `blocks`; `noise` adds script, style, noscript and template."""
    title = next((text for level, text in blocks if level == -1), None)
    head = f"<title>{_escape(title)}</title>" if title is not None else ""
    if noise:
        head += "<style>body { color: red }</style><script>var hiddenScript = 1;</script>"
    body: list[str] = []
    for level, text in blocks:
        if level == 0:
            body.append(f"<p>{_escape(text)}</p>")
        elif level > 0:
            body.append(f"<h{min(level, 6)}>{_escape(text)}</h{min(level, 6)}>")
    if noise:
        body.append("<noscript>hiddenNoscript</noscript><template><p>hiddenTemplate</p></template>")
        body.append("<script>document.write('hiddenInline')</script>")
    return f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(body)}</body></html>"


def write_html(path: Path, blocks: Sequence[Block], *, noise: bool = True) -> Path:
    path.write_text(html_document(blocks, noise=noise), encoding="utf-8")
    return path


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def pdf_bytes(pages: Sequence[str], *, outline: Sequence[tuple[int, str, int]] = ()) -> bytes:
    """A PDF with a text layer: one page per string (lines split on newlines).

    `outline` entries are (level from 0, title, 1-based page) bookmarks.
    """
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, invariant=1)
    _, height = A4
    by_page: dict[int, list[tuple[int, str]]] = {}
    for level, title, page in outline:
        by_page.setdefault(page, []).append((level, title))
    for number, text in enumerate(pages, start=1):
        for index, (level, title) in enumerate(by_page.get(number, [])):
            key = f"p{number}-{index}"
            pdf.bookmarkPage(key)
            pdf.addOutlineEntry(title, key, level=level)
        y = height - 72
        for line in text.split("\n"):
            pdf.setFont("Helvetica", 12)
            pdf.drawString(72, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def write_pdf(
    path: Path, pages: Sequence[str], *, outline: Sequence[tuple[int, str, int]] = ()
) -> Path:
    path.write_bytes(pdf_bytes(pages, outline=outline))
    return path


def write_encrypted_pdf(
    path: Path, pages: Sequence[str], *, user_password: str, owner_password: str = "owner"
) -> Path:
    """An AES-256 encrypted PDF; with `user_password=""` anyone may open it."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(pages))))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    with path.open("wb") as out:
        writer.write(out)
    return path


def text_image(text: str, *, font_size: int = 64, dpi: int = 150) -> Image.Image:
    """A white A4 page at `dpi` with `text` in black, one line per newline."""
    width, height = int(8.27 * dpi), int(11.69 * dpi)
    image = Image.new("L", (width, height), color=255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size)
    y = dpi
    for line in text.split("\n"):
        draw.text((dpi, y), line, fill=0, font=font)
        y += int(font_size * 1.6)
    return image


def write_scanned_pdf(path: Path, pages: str | Sequence[str], *, dpi: int = 150) -> Path:
    """A PDF of page images with no text layer, as a scanner makes them."""
    texts = [pages] if isinstance(pages, str) else list(pages)
    images = [text_image(text, dpi=dpi) for text in texts]
    images[0].save(path, "PDF", resolution=float(dpi), save_all=True, append_images=images[1:])
    return path


def write_mixed_pdf(path: Path, pages: Sequence[str | None], *, scanned_text: str) -> Path:
    """Text pages, with a scanned page (no text layer) wherever `pages` has None."""
    scan = io.BytesIO()
    text_image(scanned_text).save(scan, "PDF", resolution=150.0)
    scanned_page = PdfReader(io.BytesIO(scan.getvalue())).pages[0]
    text_reader = PdfReader(io.BytesIO(pdf_bytes([p or "" for p in pages])))
    writer = PdfWriter()
    for number, text in enumerate(pages):
        writer.add_page(scanned_page if text is None else text_reader.pages[number])
    with path.open("wb") as out:
        writer.write(out)
    return path


def docx_bytes(blocks: Sequence[Block], *, tables: Sequence[Sequence[Sequence[str]]] = ()) -> bytes:
    document = docx.Document()
    for level, text in blocks:
        if level == 0:
            document.add_paragraph(text)
        else:
            document.add_heading(text, level=max(level, 0))
    for rows in tables:
        table = document.add_table(rows=len(rows), cols=max(len(row) for row in rows))
        for row, cells in zip(table.rows, rows, strict=False):
            for cell, text in zip(row.cells, cells, strict=False):
                cell.text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def write_docx(
    path: Path,
    headings_and_paragraphs: Sequence[Block],
    *,
    tables: Sequence[Sequence[Sequence[str]]] = (),
) -> Path:
    """`headings_and_paragraphs`: (level, text), level 0 a paragraph, -1 or 0..9 headings
    (-1 writes the "Title" style)."""
    path.write_bytes(docx_bytes(headings_and_paragraphs, tables=tables))
    return path


@dataclass(frozen=True)
class Slide:
    title: str
    lines: Sequence[str] = ()
    notes: str = ""
    table: Sequence[Sequence[str]] = ()


def pptx_bytes(slides: Sequence[Slide]) -> bytes:
    presentation = pptx.Presentation()
    layout = presentation.slide_layouts[1]  # "Title and Content"
    for spec in slides:
        slide = presentation.slides.add_slide(layout)
        title = slide.shapes.title
        assert title is not None
        title.text = spec.title
        body = slide.placeholders[1]
        body.text_frame.text = "\n".join(spec.lines)  # type: ignore[attr-defined]
        if spec.table:
            rows, cols = len(spec.table), max(len(row) for row in spec.table)
            frame = slide.shapes.add_table(rows, cols, Inches(1), Inches(5), Inches(6), Inches(1))
            for r, cells in enumerate(spec.table):
                for c, text in enumerate(cells):
                    frame.table.cell(r, c).text = text
        if spec.notes:
            notes_frame = slide.notes_slide.notes_text_frame
            assert notes_frame is not None
            notes_frame.text = spec.notes
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def write_pptx(path: Path, slides: Sequence[Slide]) -> Path:
    path.write_bytes(pptx_bytes(slides))
    return path


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    mime_type: str = "application/octet-stream"
    # Attached mails are embedded as MIME parts; True base64-encodes them instead,
    # which RFC 2046 forbids but some mail clients do.
    base64: bool = False


def eml_bytes(
    subject: str,
    body: str,
    *,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    sender: str = "Alice Example <alice@example.com>",
    to: str = "Bob Example <bob@example.com>",
) -> bytes:
    """A MIME message; `html` adds an HTML alternative, `body=""` with `html` an HTML-only one."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = "Tue, 04 Mar 2025 10:00:00 +0000"
    if body or html is None:
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
    else:
        message.set_content(html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        if attachment.mime_type == "message/rfc822" and not attachment.base64:
            inner = email.message_from_bytes(attachment.data, policy=email.policy.default)
            message.add_attachment(inner, filename=attachment.filename)
        else:
            message.add_attachment(
                attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
            )
    return message.as_bytes()


def write_eml(
    path: Path,
    subject: str,
    body: str,
    *,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> Path:
    path.write_bytes(eml_bytes(subject, body, html=html, attachments=attachments))
    return path


# ------------------------------------------------------------------- hostile


def write_corrupt_pdf(path: Path) -> Path:
    """A PDF header and then noise: no objects, no cross-reference table."""
    noise = random.Random(7).randbytes(4096)
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + noise.replace(b"obj", b"xxx"))
    return path


def write_truncated_pdf(path: Path, pages: Sequence[str]) -> Path:
    """A real PDF cut off in the middle."""
    data = pdf_bytes(pages)
    path.write_bytes(data[: len(data) // 3])
    return path


def _rezip(original: bytes, extra: Sequence[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(original)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            target.writestr(info, source.read(info.filename))
        for name, data in extra:
            target.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return out.getvalue()


def write_zip_bomb(path: Path, *, kind: str = "docx", unpacked_mib: int = 64) -> Path:
    """A valid DOCX/PPTX carrying `unpacked_mib` MiB of zeros (about 1000:1 deflated)."""
    base = (
        docx_bytes([(1, "Bomb"), (0, "harmless text")])
        if kind == "docx"
        else pptx_bytes([Slide("Bomb", ["harmless text"])])
    )
    media = "word/media" if kind == "docx" else "ppt/media"
    path.write_bytes(_rezip(base, [(f"{media}/zeros.bin", bytes(unpacked_mib << 20))]))
    return path


def write_many_entries_zip(path: Path, *, kind: str = "docx", entries: int = 20_000) -> Path:
    """A valid DOCX/PPTX with `entries` extra tiny files in its archive."""
    base = docx_bytes([(0, "many entries")]) if kind == "docx" else pptx_bytes([Slide("Many")])
    path.write_bytes(_rezip(base, [(f"customXml/x{n}.xml", b"<x/>") for n in range(entries)]))
    return path


def write_incompressible_docx(path: Path, *, payload_bytes: int) -> Path:
    """A valid DOCX with `payload_bytes` of random (incompressible) media: large unpacked,
    ordinary ratio."""
    base = docx_bytes([(0, "large media")])
    payload = random.Random(11).randbytes(payload_bytes)
    path.write_bytes(_rezip(base, [("word/media/noise.bin", payload)]))
    return path


def write_lying_zip_docx(path: Path) -> Path:
    """A DOCX whose central directory claims its document.xml unpacks to 3 GiB."""
    data = bytearray(docx_bytes([(0, "lying sizes")]))
    name = b"word/document.xml"
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_length]) == name:
            struct.pack_into("<I", data, at + 24, 3 << 30)  # uncompressed size
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    return path


def write_binary_as_text(path: Path) -> Path:
    """Bytes of an executable-like file under a text extension."""
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8)
    return path


def write_latin1_text(path: Path, text: str = "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e") -> Path:
    """Latin-1 bytes (not valid UTF-8) under a text extension."""
    path.write_bytes(text.encode("latin-1"))
    return path


# -------------------------------------------------------------------- corpus

TOPICS: dict[str, Sequence[str]] = {
    "astronomy": (
        "The telescope tracked a faint comet across the northern sky.",
        "Astronomers measured the redshift of a distant galaxy cluster.",
        "A solar eclipse darkened the valley for almost three minutes.",
    ),
    "cooking": (
        "Knead the dough until it is smooth, then let it rise for an hour.",
        "Roast the vegetables with olive oil, garlic and fresh rosemary.",
        "The soup simmered slowly while the bread baked in the oven.",
    ),
    "finance": (
        "The quarterly report showed revenue growth of twelve percent.",
        "Interest rates rose again, and bond prices fell in response.",
        "The auditors reviewed every invoice before the annual filing.",
    ),
    "gardening": (
        "Plant the tomato seedlings after the last spring frost.",
        "Compost improves the soil and keeps the roots moist in summer.",
        "Prune the roses in late winter to encourage new growth.",
    ),
    "medicine": (
        "The patient recovered quickly after the minor knee surgery.",
        "Vaccination campaigns reduced measles cases across the region.",
        "The clinical trial compared the new drug with a placebo.",
    ),
    "networking": (
        "The router dropped packets whenever the link was saturated.",
        "TLS certificates must be renewed before they expire.",
        "The load balancer spread requests evenly across three servers.",
    ),
    "sailing": (
        "The crew reefed the mainsail as the wind rose to a gale.",
        "At dawn the harbour was calm and the boats rocked gently.",
        "Navigate by the lighthouse until the channel markers appear.",
    ),
    "history": (
        "The treaty was signed in the great hall after months of talks.",
        "Archaeologists uncovered a Roman road beneath the market square.",
        "The old castle walls survived three sieges in one century.",
    ),
}

CORPUS_FORMATS = ("txt", "md", "html", "pdf", "docx", "pptx", "eml")


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    format: str
    marker: str  # a word found in this file's text only
    topic: str
    sentences: tuple[str, ...]  # every topic sentence written into the file


def corpus_marker(seed: int, index: int) -> str:
    """A unique, analyser-friendly word: letters and digits only."""
    return f"marker{seed}x{index:06d}"


def write_corpus(
    folder: Path,
    count: int,
    seed: int = 0,
    *,
    formats: Sequence[str] = CORPUS_FORMATS,
    scanned_every: int = 0,
) -> list[CorpusFile]:
    """Writes `count` files cycling through `formats`, deterministic for a `seed`.

    Each file holds its marker word and 2-4 sentences of one topic, so exact
    (marker) and semantic (topic) queries both have known answers. Files go
    into a few subfolders. `scanned_every` > 0 makes every n-th PDF a scanned
    one (text as an image only; slow to extract with OCR).
    """
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    written: list[CorpusFile] = []
    pdf_count = 0
    for index in range(count):
        fmt = formats[index % len(formats)]
        topic = rng.choice(topics)
        sentences = tuple(rng.sample(list(TOPICS[topic]), rng.randint(2, 3)))
        marker = corpus_marker(seed, index)
        title = f"{topic.title()} note {index}"
        body = [f"Reference {marker}.", *sentences]
        sub = folder / f"part{index % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"doc{index:06d}.{fmt}"
        if fmt == "txt":
            write_text(path, "\n\n".join([title, *body]) + "\n")
        elif fmt == "md":
            write_markdown(path, [(1, title), *[(0, s) for s in body]])
        elif fmt == "html":
            write_html(path, [(-1, title), (1, title), *[(0, s) for s in body]])
        elif fmt == "pdf":
            pdf_count += 1
            if scanned_every and pdf_count % scanned_every == 0:
                write_scanned_pdf(path, "\n".join([marker, *sentences]))
            else:
                write_pdf(path, [title, "\n".join(body)], outline=[(0, title, 1)])
        elif fmt == "docx":
            write_docx(path, [(1, title), *[(0, s) for s in body]], tables=[[["key", marker]]])
        elif fmt == "pptx":
            write_pptx(path, [Slide(title, body[:1]), Slide("Details", body[1:])])
        elif fmt == "eml":
            note = Attachment(f"note{index}.txt", f"attached {topic} note".encode(), "text/plain")
            write_eml(path, title, "\n\n".join(body) + "\n", attachments=[note])
        else:
            raise ValueError(f"unknown corpus format {fmt!r}")
        written.append(CorpusFile(path, fmt, marker, topic, sentences))
    return written
