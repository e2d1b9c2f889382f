"""Uploads on a real filesystem: parts to files, names, limits, links, cleanup."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from semantik.internal.v1 import indexer_pb2
from servicekit.config import ConfigError
from services.indexer.config import IndexerConfig
from services.indexer.extraction.limits import too_large
from services.indexer.ingest import MAX_FILE_BYTES
from services.indexer.source_paths import CONTROL_CHARACTERS, NOT_UTF8, PathGuard
from services.indexer.uploads import (
    BACKSLASH,
    BAD_NAMES,
    EXISTING_FOLDER,
    FILE_IN_PATH,
    NAME_TOO_LONG,
    NO_DATA_DIR,
    NOT_RELATIVE,
    OUTSIDE,
    PART_SUFFIX,
    TOO_LONG,
    UploadAreaError,
    UploadError,
    UploadResult,
    UploadSettings,
    check_file_name,
    file_limit,
    remove_area,
    write_upload,
)

COLLECTION = "books"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def area(data_dir: Path) -> Path:
    return data_dir / "uploads" / COLLECTION


@pytest.fixture
def settings(data_dir: Path) -> UploadSettings:
    return UploadSettings(data_dir=str(data_dir))


@pytest.fixture
def guard(tmp_path: Path) -> PathGuard:
    return PathGuard.build(data_dir=str(tmp_path / "data"), vector_data_dir=str(tmp_path / "vec"))


@pytest.fixture(autouse=True)
def no_part_files_left(tmp_path: Path) -> Iterable[None]:
    """Whatever a test does, no temporary file outlives its stream."""
    yield
    assert [str(p) for p in tmp_path.rglob(f"*{PART_SUFFIX}")] == []


def part(file_name: str = "", data: bytes = b"", *, last: bool = False, **fields: Any) -> Any:
    fields.setdefault("collection_id", COLLECTION)
    return indexer_pb2.WriteUploadRequest(file_name=file_name, data=data, last=last, **fields)


def whole(file_name: str, data: bytes, **fields: Any) -> Any:
    return part(file_name, data, last=True, **fields)


async def messages(parts: Iterable[Any]) -> AsyncIterator[Any]:
    for message in parts:
        yield message


async def upload(
    settings: UploadSettings, guard: PathGuard, *parts: Any, collection: str = COLLECTION
) -> UploadResult:
    return await write_upload(messages(parts), collection, settings, guard)


async def refused(settings: UploadSettings, guard: PathGuard, *parts: Any) -> UploadError:
    with pytest.raises(UploadError) as error:
        await upload(settings, guard, *parts)
    return error.value


def real(path: Path) -> str:
    return os.path.realpath(path)


def make_folder(folder: Path) -> None:
    folder.mkdir(parents=True)


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


async def test_several_files_in_parts_nested_and_empty(
    settings: UploadSettings, guard: PathGuard, area: Path
) -> None:
    result = await upload(
        settings,
        guard,
        part("a.md", b"# Title\n"),
        part("a.md", b"first "),  # later parts may repeat the name...
        part("", b"second", last=True),  # ...or leave it empty
        whole("notes/deep/b.TXT", b"plain"),  # suffixes are case-insensitive
        whole("empty.txt", b""),
    )
    assert result.folder == real(area)
    assert result.file_names == ["a.md", "notes/deep/b.TXT", "empty.txt"]
    assert result.bytes_written == len(b"# Title\nfirst second") + len(b"plain")
    assert files_under(area) == {
        "a.md": b"# Title\nfirst second",
        "notes/deep/b.TXT": b"plain",
        "empty.txt": b"",
    }


async def test_a_stream_of_stream_fields_only_writes_nothing(
    settings: UploadSettings, guard: PathGuard, area: Path
) -> None:
    result = await upload(settings, guard, part())
    assert result == UploadResult(folder=real(area))
    assert names_in(area) == []


async def test_an_uploaded_file_replaces_the_one_before(
    settings: UploadSettings, guard: PathGuard, area: Path
) -> None:
    await upload(settings, guard, whole("notes/a.md", b"old and longer"))
    result = await upload(
        settings, guard, whole("notes/a.md", b"new"), whole("notes/a.md", b"newest")
    )
    assert result.file_names == ["notes/a.md"]  # each name once
    assert files_under(area) == {"notes/a.md": b"newest"}


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("/etc/passwd.txt", NOT_RELATIVE),
        ("../escape.md", BAD_NAMES),
        ("a/../b.md", BAD_NAMES),
        ("./a.md", BAD_NAMES),
        ("a//b.md", BAD_NAMES),
        ("notes/", BAD_NAMES),
        ("a\\b.md", BACKSLASH),
        ("x" * 300 + ".md", NAME_TOO_LONG),
        ("abcdefghi/" * 110 + "b.md", TOO_LONG),
        ("a\x00b.md", CONTROL_CHARACTERS),
        ("a\nb.md", CONTROL_CHARACTERS),
        ("a\x7fb.md", CONTROL_CHARACTERS),
        ("tool.exe", "must end in a supported suffix (.docx, .eml,"),
        ("README", "must end in a supported suffix"),
        (".md", "must end in a supported suffix"),
    ],
)
async def test_bad_file_names_are_refused_before_anything_is_written(
    settings: UploadSettings, guard: PathGuard, area: Path, name: str, problem: str
) -> None:
    with pytest.raises(UploadError) as checked:
        check_file_name(name)
    assert checked.value.field == "file_name" and problem in checked.value.message
    error = await refused(settings, guard, whole("ok.md", b"kept"), whole(name, b"x"))
    assert (error.field, error.message) == (checked.value.field, checked.value.message)
    assert files_under(area.parent.parent) == {"uploads/books/ok.md": b"kept"}


def test_a_name_that_is_no_utf8_is_refused() -> None:
    # Protobuf refuses such a string (the server answers INVALID_ARGUMENT
    # naming `request`); the check stands for callers in this process.
    with pytest.raises(UploadError) as error:
        check_file_name("\udcffa.md")
    assert error.value.message == f"'\\udcffa.md' {NOT_UTF8}"


async def test_a_long_name_is_cut_in_the_message(
    settings: UploadSettings, guard: PathGuard
) -> None:
    error = await refused(settings, guard, whole("abcdefghi/" * 110 + "b.md", b"x"))
    assert "(1104 characters)" in error.message and len(error.message) < 200


async def test_an_existing_folder_is_no_file_name(
    settings: UploadSettings, guard: PathGuard, area: Path
) -> None:
    make_folder(area / "notes.md")
    error = await refused(settings, guard, whole("notes.md", b"x"))
    assert error.field == "file_name" and error.message == f"'notes.md' {EXISTING_FOLDER}"
    assert names_in(area / "notes.md") == []


async def test_a_file_where_a_folder_should_be(settings: UploadSettings, guard: PathGuard) -> None:
    error = await refused(settings, guard, whole("a.md", b"x"), whole("a.md/b.md", b"y"))
    assert error.field == "file_name" and FILE_IN_PATH in error.message


async def test_sha256_is_checked_at_the_last_part(
    settings: UploadSettings, guard: PathGuard, area: Path
) -> None:
    digest = hashlib.sha256(b"hello world").hexdigest()
    result = await upload(
        settings,
        guard,
        part("a.md", b"hello "),
        part("", b"world", last=True, sha256=digest.upper()),
        part("b.md", b"same", sha256=hashlib.sha256(b"same").hexdigest()),
        part("", b"", last=True),
    )
    assert result.file_names == ["a.md", "b.md"]

    error = await refused(
        settings,
        guard,
        whole("c.md", b"kept"),
        whole("a.md", b"tampered", sha256=digest),
    )
    assert error.field == "sha256" and "does not match 'a.md'" in error.message
    assert files_under(area) == {"a.md": b"hello world", "b.md": b"same", "c.md": b"kept"}


@pytest.mark.parametrize("value", ["abc", "g" * 64, "0" * 63 + " "])
async def test_sha256_must_be_hex(settings: UploadSettings, guard: PathGuard, value: str) -> None:
    error = await refused(settings, guard, whole("a.md", b"x", sha256=value))
    assert (error.field, error.message) == ("sha256", "must be 64 hexadecimal digits")


async def test_sha256_may_not_change_within_a_file(
    settings: UploadSettings, guard: PathGuard
) -> None:
    error = await refused(
        settings,
        guard,
        part("a.md", b"x", sha256="a" * 64),
        part("", b"y", last=True, sha256="b" * 64),
    )
    assert error.field == "sha256"


async def test_the_file_limit_stops_the_stream_at_once(
    settings: UploadSettings, guard: PathGuard, area: Path
) -> None:
    error = await refused(
        settings,
        guard,
        whole("small.md", b"12345", max_file_bytes=10),
        part("big.md", b"123456"),
        part("", b"789012", last=True),
    )
    assert error.field == "data"
    assert error.message == f"'big.md': {too_large(12, 10)}"
    assert files_under(area) == {"small.md": b"12345"}


def test_the_file_limit_is_at_most_the_imports() -> None:
    assert file_limit(0) == MAX_FILE_BYTES
    assert file_limit(10) == 10
    assert file_limit(MAX_FILE_BYTES + 1) == MAX_FILE_BYTES
    with pytest.raises(UploadError) as error:
        file_limit(-1)
    assert error.value.field == "max_file_bytes"


async def test_the_stream_limit_counts_every_file(data_dir: Path, guard: PathGuard) -> None:
    settings = UploadSettings(data_dir=str(data_dir), max_stream_bytes=10)
    error = await refused(settings, guard, whole("a.md", b"123456"), whole("b.md", b"123456"))
    assert (error.field, error.message) == ("data", "an upload writes at most 10 bytes in all")
    assert files_under(data_dir / "uploads" / COLLECTION) == {"a.md": b"123456"}


async def test_the_stream_limit_on_files(data_dir: Path, guard: PathGuard) -> None:
    settings = UploadSettings(data_dir=str(data_dir), max_files=2)
    error = await refused(
        settings, guard, whole("a.md", b""), whole("b.md", b""), whole("c.md", b"")
    )
    assert (error.field, error.message) == ("file_name", "an upload holds at most 2 files")


async def test_a_new_name_while_a_file_is_open(
    settings: UploadSettings, guard: PathGuard, area: Path
) -> None:
    error = await refused(
        settings, guard, whole("a.md", b"kept"), part("b.md", b"half"), part("c.md", b"x")
    )
    assert error.field == "file_name"
    assert error.message == "'c.md' started before 'b.md' got its last part"
    assert files_under(area) == {"a.md": b"kept"}


async def test_a_stream_ending_mid_file_keeps_the_files_before(
    settings: UploadSettings, guard: PathGuard, area: Path
) -> None:
    error = await refused(
        settings, guard, whole("a.md", b"kept"), part("b/c.md", b"half"), part("", b"more")
    )
    assert (error.field, error.message) == ("last", "b/c.md ended before its last part")
    assert files_under(area) == {"a.md": b"kept"}


async def test_data_needs_a_file_name_first(settings: UploadSettings, guard: PathGuard) -> None:
    error = await refused(settings, guard, part("", b"orphan", last=True))
    assert (error.field, error.message) == ("file_name", "is required on a file's first part")


async def test_the_collection_may_not_change(settings: UploadSettings, guard: PathGuard) -> None:
    error = await refused(
        settings, guard, whole("a.md", b"x"), whole("b.md", b"y", collection_id="other")
    )
    assert error.field == "collection_id" and "books, then 'other'" in error.message
    # Leaving it empty on later messages is fine.
    await upload(settings, guard, whole("a.md", b"x"), whole("b.md", b"y", collection_id=""))


@pytest.mark.parametrize("cancellations", [1, 3])
async def test_a_cancelled_stream_removes_its_open_file(
    settings: UploadSettings, guard: PathGuard, area: Path, cancellations: int
) -> None:
    second_asked = asyncio.Event()

    async def stalled() -> AsyncIterator[Any]:
        yield whole("a.md", b"kept")
        yield part("b.md", b"half")
        second_asked.set()  # b.md's first part is on disk
        await asyncio.Event().wait()
        yield part("", b"never", last=True)

    task = asyncio.create_task(write_upload(stalled(), COLLECTION, settings, guard))
    await second_asked.wait()
    (temp,) = [name for name in names_in(area) if name.endswith(PART_SUFFIX)]
    assert temp.startswith(".b.md.")
    # gRPC may cancel a handler again while it cleans up.
    for _ in range(cancellations):
        task.cancel()
        await asyncio.sleep(0)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(area) == {"a.md": b"kept"}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the data directory, holding one file."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.md").write_bytes(b"secret")
    return folder


def plant_links(area: Path, outside: Path) -> None:
    area.mkdir(parents=True)
    (area / "out").symlink_to(outside, target_is_directory=True)
    (area / "link.md").symlink_to(outside / "secret.md")


def is_link(path: Path) -> bool:
    return path.is_symlink()


async def test_a_symlink_out_of_the_area_is_not_followed(
    settings: UploadSettings, guard: PathGuard, area: Path, outside: Path
) -> None:
    plant_links(area, outside)
    for name in ("out/x.md", "out/new/x.md"):
        error = await refused(settings, guard, whole(name, b"x"))
        assert (error.field, error.message) == ("file_name", f"{name!r} {OUTSIDE}")
    assert names_in(outside) == ["secret.md"]  # no file, no folder made
    # A link as the file's own name is replaced, its target untouched.
    await upload(settings, guard, whole("link.md", b"mine"))
    assert not is_link(area / "link.md")
    assert files_under(area) == {"link.md": b"mine"}
    assert files_under(outside) == {"secret.md": b"secret"}


def link_area(data_dir: Path, target: Path) -> None:
    (data_dir / "uploads").mkdir()
    (data_dir / "uploads" / COLLECTION).symlink_to(target, target_is_directory=True)


def link_uploads(data_dir: Path, target: Path) -> None:
    target.mkdir()
    (data_dir / "uploads").symlink_to(target, target_is_directory=True)


async def test_a_symlinked_area_is_refused(
    settings: UploadSettings, guard: PathGuard, data_dir: Path, outside: Path
) -> None:
    link_area(data_dir, outside)
    with pytest.raises(UploadAreaError, match="not a symbolic link"):
        await upload(settings, guard, whole("a.md", b"x"))
    assert names_in(outside) == ["secret.md"]


async def test_uploads_linked_into_the_data_directory_are_refused(
    settings: UploadSettings, guard: PathGuard, data_dir: Path
) -> None:
    link_uploads(data_dir, data_dir / "secrets")
    with pytest.raises(UploadAreaError, match="not a symbolic link"):
        await upload(settings, guard, whole("a.md", b"x"))
    assert names_in(data_dir / "secrets") == []


async def test_no_data_directory(guard: PathGuard) -> None:
    with pytest.raises(UploadAreaError, match=NO_DATA_DIR):
        await upload(UploadSettings(), guard, whole("a.md", b"x"))


def test_the_stream_limit_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INDEXER_UPLOAD_MAX_BYTES", raising=False)
    assert IndexerConfig.from_env().upload_max_bytes == 1024 * 1024 * 1024
    monkeypatch.setenv("INDEXER_UPLOAD_MAX_BYTES", "2048")
    assert IndexerConfig.from_env().upload_max_bytes == 2048
    monkeypatch.setenv("INDEXER_UPLOAD_MAX_BYTES", "0")
    with pytest.raises(ConfigError, match="INDEXER_UPLOAD_MAX_BYTES"):
        IndexerConfig.from_env()


def test_removing_an_area_deletes_its_files_and_never_follows_a_link(
    data_dir: Path, area: Path, settings: UploadSettings, tmp_path: Path
) -> None:
    (area / "sub").mkdir(parents=True)
    (area / "sub" / "a.md").write_text("a", "utf-8")
    assert remove_area(settings, COLLECTION)
    assert not area.exists()
    assert not remove_area(settings, COLLECTION)  # nothing left to remove
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.md").write_text("keep", "utf-8")
    area.symlink_to(elsewhere, target_is_directory=True)
    assert remove_area(settings, COLLECTION)
    assert not area.exists() and (elsewhere / "keep.md").is_file()
    assert not remove_area(UploadSettings(), COLLECTION)  # no data directory: no uploads
