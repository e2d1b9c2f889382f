"""HTML: visible text with its block structure, and headings as sections.

selectolax's Lexbor backend (MIT) parses HTML the way browsers do (the
WHATWG algorithm, so broken markup is repaired, not refused), is well
maintained and is much faster than pure-Python parsers. Script, style,
noscript and template contents are dropped; block elements end lines;
whitespace collapses as it renders, except inside <pre>. <title> opens the
document as its outermost heading, <h1>-<h6> open nested sections. The tree
is walked without recursion, so deeply nested markup cannot exhaust the stack.

Bytes are decoded from a byte order mark, else a <meta> charset in the first
KiB, else as UTF-8; invalid UTF-8 is refused like in text files.
"""

from __future__ import annotations

import codecs
import re

# selectolax (MIT): fast, maintained WHATWG-conformant parser (Lexbor).
from selectolax.lexbor import LexborHTMLParser, LexborNode

from services.indexer.extraction.document import (
    Extracted,
    ExtractionError,
    HeadingPath,
    TextBuilder,
    short,
)
from services.indexer.extraction.limits import Limits
from services.indexer.extraction.text import SNIFF_BYTES, decode, looks_binary

MIME_TYPE = "text/html"

_DROPPED = frozenset({"script", "style", "noscript", "template", "head", "iframe", "object"})
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
        "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
        "form", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav", "ol",
        "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
        *_HEADINGS,
    }
)  # fmt: skip
_CELLS = frozenset({"td", "th"})
# Elements that never nest or may be closed implicitly: not counted in the depth estimate.
_UNNESTED = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td",
        "th", "thead", "tbody", "tfoot", "colgroup", "caption", "rb", "rt", "rp", "rtc",
        "html", "head", "body",
    }
)  # fmt: skip
# `[^<>]`, not `[^>]`: on a `<` without its `>` the scan stops at the next `<`
# (linear), where `[^>]*` would run to the end of the text for every `<`.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^<>]*?(/?)>")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def decode_html(data: bytes, suffix: str = ".html") -> str:
    """The text of an HTML file's bytes (see the module docstring)."""
    if not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        declared = _META_CHARSET.search(data[:1024])
        if declared:
            try:
                codec = codecs.lookup(declared.group(1).decode("ascii"))
            except LookupError:
                codec = None
            if codec is not None and codec.name not in ("utf-8", "utf-16", "utf-32"):
                if looks_binary(data[:SNIFF_BYTES]):
                    raise ExtractionError(f"binary content in a {suffix} file")
                return data.decode(codec.name, errors="replace")
    return decode(data, suffix)


def extract_html(path: str, data: bytes, limits: Limits, suffix: str = ".html") -> Extracted:
    return html_to_extracted(path, decode_html(data, suffix), limits)


def html_to_extracted(
    path: str, markup: str, limits: Limits, mime_type: str = MIME_TYPE
) -> Extracted:
    """The visible text of `markup`; sections per heading (page 0)."""
    depth = nesting_depth(markup)
    if depth > limits.max_html_depth:
        # The parser's cost grows with the square of the depth (100,000 nested
        # <div>s take about a minute), so a hostile page is refused first.
        raise ExtractionError(
            f"HTML nested too deeply: about {depth} elements, over the limit of "
            f"{limits.max_html_depth}"
        )
    try:
        tree = LexborHTMLParser(markup)
    except Exception as exc:  # the parser repairs markup; this is its last resort
        raise ExtractionError(f"unreadable HTML: {short(exc)}") from exc
    builder = TextBuilder(separator="\n")
    headings = HeadingPath()
    title_node = tree.css_first("title")
    if title_node is not None:
        title = " ".join(title_node.text(deep=True).split())
        if title:
            builder.add(title, heading=headings.enter(0, title))
    if tree.body is not None:
        _walk(tree.body, builder, headings)
    return builder.build(path, mime_type)


def nesting_depth(markup: str) -> int:
    """An upper estimate of the element nesting depth, from start and end tags alone."""
    depth = deepest = 0
    for match in _TAG.finditer(markup):
        if match.group(2).lower() in _UNNESTED or match.group(3):
            continue
        if match.group(1):
            depth = max(depth - 1, 0)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


class _Lines:
    """The text of the current block, whitespace collapsed as a browser renders it."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def inline(self, text: str, preformatted: bool) -> None:
        if preformatted:
            self.parts.append(text)
            return
        collapsed = re.sub(r"[ \t\r\n\f]+", " ", text)
        if collapsed.startswith(" ") and (not self.parts or self.parts[-1].endswith((" ", "\n"))):
            collapsed = collapsed[1:]
        self.parts.append(collapsed)

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts = []
        return "\n".join(line.strip() for line in text.split("\n")).strip("\n")


def _walk(root: LexborNode, builder: TextBuilder, headings: HeadingPath) -> None:
    lines = _Lines()
    heading = ""

    def flush() -> None:
        builder.add(lines.take(), heading=heading)

    # (node, entering): a node is visited on entry and, for elements, on exit.
    stack: list[tuple[LexborNode, bool]] = [(root, True)]
    preformatted = 0
    while stack:
        node, entering = stack.pop()
        tag = node.tag or ""
        if not entering:
            if tag in _HEADINGS:
                text = lines.take()
                heading = headings.enter(_HEADINGS[tag], text)
                builder.add(text, heading=heading)
            elif tag in _BLOCKS:
                flush()
            if tag == "pre":
                preformatted -= 1
            continue
        if tag == "-text":
            lines.inline(node.text_content or "", preformatted > 0)
            continue
        if tag.startswith("-") or tag in _DROPPED or "hidden" in node.attrs:
            continue
        if tag == "br":
            lines.parts.append("\n")
            continue
        if tag in _CELLS:
            lines.parts.append(" ")
        if tag in _BLOCKS:
            flush()
        if tag == "pre":
            preformatted += 1
        stack.append((node, False))
        children: list[LexborNode] = []
        child = node.first_child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((c, True) for c in reversed(children))
    flush()
