"""EML (RFC 5322 / MIME) mail: headers, body, and each attachment as its own document.

The standard library's `email` package with `policy.default` parses MIME,
decodes encoded words and transfer encodings, and is maintained with Python
itself, so no third-party parser is needed. It never refuses a message: a
malformed one parses with defects, and what it yields is indexed.

The subject is the heading (and the first line of the text), followed by the
From/To/Cc/Date lines and the body: text/plain when the mail has it, else its
HTML through the HTML extractor. Attachments are extracted by their own
format (a PDF attachment as a PDF) into `attachments`, at
"{mail path}#attachments/{n}/{filename}" with n from 1; one that fails is an
`AttachmentError` there and the mail itself still succeeds. Attachments of
an unsupported type are listed in `skipped`.
"""

from __future__ import annotations

import base64
import email
import email.policy
import mimetypes
import quopri
import re
from collections.abc import Callable
from email.message import EmailMessage, Message

from services.indexer.extraction.document import (
    AttachmentError,
    Extracted,
    ExtractionError,
    TextBuilder,
    clean,
    short,
)
from services.indexer.extraction.html import html_to_extracted
from services.indexer.extraction.limits import Limits, plural

MIME_TYPE = "message/rfc822"

# (attachment path, its bytes, mail depth) -> its extraction; raises ExtractionError.
ExtractPart = Callable[[str, bytes, int], Extracted]

_HEADER_LINES = ("From", "To", "Cc", "Date")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]+")


class UnsupportedAttachment(ExtractionError):
    """An attachment of a type that is not extracted (listed in `skipped`)."""


def extract_eml(
    path: str, data: bytes, limits: Limits, depth: int, extract_part: ExtractPart
) -> Extracted:
    try:
        message = email.message_from_bytes(data, policy=email.policy.default)
    except Exception as exc:  # the parser is lenient; this is its last resort
        raise ExtractionError(f"unreadable mail: {short(exc)}") from exc
    assert isinstance(message, EmailMessage)
    builder = TextBuilder()
    subject = " ".join(_header(message, "Subject").split())
    builder.add(subject, heading=subject)
    meta = [f"{name}: {value}" for name in _HEADER_LINES if (value := _header(message, name))]
    builder.add("\n".join(meta), heading=subject)
    skipped: list[str] = []
    body = _body(path, message, limits, skipped)
    builder.add(body, heading=subject)
    attachments: list[Extracted | AttachmentError] = []
    try:
        parts = list(message.iter_attachments())
    except Exception as exc:
        skipped.append(f"attachments: unreadable ({short(exc, 80)})")
        parts = []
    if len(parts) > limits.max_attachments:
        skipped.append(
            f"attachments {limits.max_attachments + 1}-{len(parts)}: over the limit of "
            f"{plural(limits.max_attachments, 'attachment')}"
        )
    for number, part in enumerate(parts[: limits.max_attachments], start=1):
        filename = _filename(part, number)
        part_path = f"{path}#attachments/{number}/{filename}"
        try:
            content = _attachment_bytes(part)
            if content is None:
                raise ExtractionError("no content")
            attachments.append(extract_part(part_path, content, depth + 1))
        except UnsupportedAttachment as exc:
            skipped.append(f"attachment {number} {filename}: {exc}")
        except ExtractionError as exc:
            attachments.append(AttachmentError(part_path, str(exc)))
        except Exception as exc:  # one broken attachment must not fail its mail
            attachments.append(AttachmentError(part_path, f"unreadable: {short(exc)}"))
    return builder.build(path, MIME_TYPE, skipped=skipped, attachments=attachments)


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
        return clean(str(value)) if value is not None else ""
    except Exception:  # a malformed header costs itself, not the mail
        return ""


def _body(path: str, message: EmailMessage, limits: Limits, skipped: list[str]) -> str:
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except Exception as exc:
        skipped.append(f"body: unreadable ({short(exc, 80)})")
        return ""
    if part is None:
        return ""
    text = _part_text(part)
    if part.get_content_subtype() == "html":
        try:
            return html_to_extracted(path, text, limits).text
        except ExtractionError as exc:
            skipped.append(f"body: {exc}")
            return ""
    return text


def _part_text(part: Message) -> str:
    """The decoded text of a text part; an unknown or wrong charset degrades to
    replacement characters rather than failing."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _attachment_bytes(part: Message) -> bytes | None:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if not (isinstance(inner, list) and inner and isinstance(inner[0], Message)):
            return None
        encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        if encoding in ("base64", "quoted-printable"):
            # Forbidden for message/rfc822 (RFC 2046 5.2.1) but some clients send it:
            # the parser then sees a headerless message whose body is the encoded mail.
            encoded = inner[0].get_payload()
            if not isinstance(encoded, str):
                return None
            raw = encoded.encode("ascii", errors="ignore")
            if encoding == "base64":
                return base64.b64decode(raw)
            return quopri.decodestring(raw)
        return inner[0].as_bytes(policy=email.policy.default)
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else None


def _filename(part: Message, number: int) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    name = _UNSAFE_NAME.sub("_", name or "").strip(" .")
    if name:
        return name[:200]
    content_type = part.get_content_type()
    suffix = ".eml" if content_type == "message/rfc822" else mimetypes.guess_extension(content_type)
    return f"attachment-{number}{suffix or ''}"
