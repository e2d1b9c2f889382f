"""Zip-bomb checks for DOCX and PPTX, run on the central directory before parsing.

An Office Open XML file is a zip archive, and python-docx/python-pptx unpack
whatever parts it references. The central directory declares each entry's
packed and unpacked size, so a bomb is visible before a byte is inflated:
too many entries, too much in total, or one entry inflating by an absurd
ratio. The declared sizes can be trusted for this because the parsers read
entries through `zipfile`, which stops at the declared size and then fails
the CRC check, so an entry cannot inflate past what it declares.
"""

from __future__ import annotations

import io
import struct
import zipfile

from services.indexer.extraction.document import ExtractionError, short
from services.indexer.extraction.limits import Limits, mib

_END_OF_CENTRAL_DIRECTORY = b"PK\x05\x06"
_OLE_COMPOUND_FILE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def check_zip(data: bytes, limits: Limits, kind: str) -> list[str]:
    """The entry names of zip archive `data`; raises `ExtractionError` if it is not one,
    or not within `limits`.

    `kind` ("DOCX", "PPTX") names the format in messages.
    """
    if data.startswith(_OLE_COMPOUND_FILE):
        # Password-protected Office files are OLE containers, as are .doc/.ppt.
        raise ExtractionError(
            f"not a {kind} file: an encrypted (password-protected) or legacy Office file"
        )
    if data.startswith(b"%PDF-"):
        raise ExtractionError(f"not a {kind} file (it is a PDF)")
    declared = _declared_entries(data)
    if declared is not None and declared[0] > limits.max_zip_entries:
        raise _too_many(declared[0], limits)
    # The count can lie: zipfile lists whatever the directory holds. Each
    # listed entry costs 46 bytes and its name there, so a directory larger
    # than the entry limit's worth of entries (names up to 256 bytes) is refused
    # before an object is built for each of them.
    most = limits.max_zip_entries * (_CENTRAL_ENTRY_BYTES + _NAME_BYTES)
    if declared is not None and declared[1] > most:
        raise ExtractionError(
            f"zip bomb suspected: a central directory of {mib(declared[1])}, "
            f"over the limit of {mib(most)}"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ExtractionError(f"not a {kind} file (not a zip archive)") from exc
    except (zipfile.LargeZipFile, NotImplementedError, ValueError, EOFError, OSError) as exc:
        raise ExtractionError(f"not a {kind} file (broken zip archive: {short(exc)})") from exc
    if len(entries) > limits.max_zip_entries:
        raise _too_many(len(entries), limits)
    total = 0
    for entry in entries:
        total += entry.file_size
        if total > limits.max_unzipped_bytes:
            raise ExtractionError(
                f"zip bomb suspected: the {kind} unpacks to more than "
                f"{mib(limits.max_unzipped_bytes)}"
            )
        if entry.file_size >= limits.zip_ratio_min_bytes:
            ratio = entry.file_size / max(entry.compress_size, 1)
            if ratio > limits.max_zip_ratio:
                raise ExtractionError(
                    f"zip bomb suspected: {short(entry.filename, 60)} is compressed "
                    f"{ratio:.0f}:1, over the limit of {limits.max_zip_ratio:.0f}:1"
                )
    return [entry.filename for entry in entries]


def _too_many(count: int, limits: Limits) -> ExtractionError:
    return ExtractionError(
        f"zip bomb suspected: {count} files in the archive, over the limit of "
        f"{limits.max_zip_entries}"
    )


_CENTRAL_ENTRY_BYTES = 46
_NAME_BYTES = 256


def _declared_entries(data: bytes) -> tuple[int, int] | None:
    """(entry count, central directory bytes) of the end-of-central-directory
    record, read before `zipfile` builds an object per entry; None when not
    found or in a ZIP64 record."""
    at = data.rfind(_END_OF_CENTRAL_DIRECTORY, max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        return None
    count, size = struct.unpack_from("<HI", data, at + 10)
    return None if count == 0xFFFF else (int(count), int(size))
