"""Uploaded files: a client stream of parts becomes files in a collection's upload area.

People whose documents are not on the server send them (the gateway's
`UploadDocuments` forwards the stream to `WriteUpload`, then imports the
folder). This process is the only one that touches the filesystem, so it
alone turns a stream of parts into files. Why each rule exists:

* **The area** is `<INDEXER_DATA_DIR>/uploads/<collection_id>`: one folder per
  collection, in the one subfolder of the data directory that imports may
  read besides `sources/` (`source_paths.PathGuard`). Its real path must be
  exactly that folder (neither `uploads` nor the collection's folder a
  symlink), so that no link planted on the shared disk makes the service
  write its users' bytes among the deployment's secrets or elsewhere.
* **A file** is a run of messages: the first names it, `last` ends it. A new
  name while a file is still open, or a stream that ends with one open, is
  the client's mistake and refused, never guessed at.
* **File names** come from any user allowed to write the collection, so they
  are checked from the string alone first: relative posix paths, no empty,
  `.` or `..` names, no backslash (a Windows path would become one odd name),
  bounded (1024 characters, 255 per name: NAME_MAX), plain text, and a suffix
  the indexer reads (any other file would only be skipped by the import).
  Then, before anything is written, the target folder's real path must lie
  inside the area's (by path components, as in `source_paths`), and the
  folder is opened without following a link (and, on Linux, where it was
  opened checked again by its descriptor); the temporary file is created in
  it (O_EXCL, O_NOFOLLOW) and renamed in it, by that folder's descriptor, so
  a link swapped in later changes nothing.
* **Atomic files**: the bytes go to a hidden temporary file next to the
  target, with a suffix the scan ignores (`.part`), renamed onto the target
  only once the last part arrived, the size was within the limit and the
  SHA-256, when given, matched. So a reader (an import, a watch) never sees
  half a file, and a file uploaded before is replaced in one step.
* **Resumable by document**: on any error or cancellation the open file's
  temporary file is removed, but files completed earlier in the stream stay;
  a client sends the rest again.
* **Bounds**: one file at most `max_file_bytes` (the import's own limit, 64
  MiB, or less when the caller asks), one stream at most
  `INDEXER_UPLOAD_MAX_BYTES` and 10,000 files, checked before each part is
  written, so a stream over a limit stops at once.
* Disk work runs on a worker thread, one part at a time, so a large upload
  never blocks the event loop. Each step on a thread runs to its end even
  when the stream is cancelled meanwhile (`_on_thread`; the cancellation is
  raised once it returned): a step dropped from the thread pool's queue, or
  a temporary file created after its stream gave up, would leave a `.part`
  file behind. gRPC may cancel a handler more than once, so the removal of
  the temporary file is such a step too.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import shutil
import stat
import string
import uuid
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TypeVar

from semantik.internal.v1 import indexer_pb2
from services.indexer.extraction import supported_suffixes
from services.indexer.extraction.limits import mib, too_large
from services.indexer.ingest import MAX_FILE_BYTES
from services.indexer.source_paths import (
    MAX_NAME_CHARS,
    PathGuard,
    SourcePathError,
    text_problem,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

UPLOADS_FOLDER = "uploads"
GIB = 1024 * 1024 * 1024
DEFAULT_MAX_STREAM_BYTES = GIB
MAX_FILES = 10_000
MAX_FILE_NAME_CHARS = 1024
PART_SUFFIX = ".part"
# Bytes of the file's own name kept in its temporary file's name.
_TEMP_NAME_BYTES = 100
_SHOWN_CHARS = 80

NO_DATA_DIR = "uploads need INDEXER_DATA_DIR"
NOT_RELATIVE = "must be a relative path"
BACKSLASH = "must not contain a backslash (names are posix paths: notes/a.md)"
BAD_NAMES = "must not hold empty, '.' or '..' names"
TOO_LONG = f"must be at most {MAX_FILE_NAME_CHARS} characters"
NAME_TOO_LONG = f"must hold names of at most {MAX_NAME_CHARS} characters"
OUTSIDE = "leads out of the upload area"
EXISTING_FOLDER = "is an existing folder"
FILE_IN_PATH = "has an existing file where a folder should be"
NAME_TOO_LONG_ON_DISK = "is too long for the filesystem"
REQUIRED_FIRST = "is required on a file's first part"
SHA256_FORMAT = "must be 64 hexadecimal digits"


class UploadError(SourcePathError):
    """A refused stream: the request field and what is wrong (INVALID_ARGUMENT)."""


class UploadAreaError(Exception):
    """The upload area cannot be used: no data directory, or a folder that is
    not where it should be (FAILED_PRECONDITION)."""


class UploadSpaceError(Exception):
    """The disk is full or over quota (RESOURCE_EXHAUSTED)."""


@dataclass(frozen=True)
class UploadSettings:
    """Where uploads go and how much one stream may write."""

    data_dir: str = ""  # empty: no uploads
    max_stream_bytes: int = DEFAULT_MAX_STREAM_BYTES
    max_files: int = MAX_FILES


@dataclass
class UploadResult:
    """What a stream wrote: the area's real path, the files completed (in
    order, each name once), and their bytes."""

    folder: str
    file_names: list[str] = field(default_factory=list)
    bytes_written: int = 0


def shown(name: str) -> str:
    """`name` for a message: quoted, escaped, cut when long."""
    if len(name) <= _SHOWN_CHARS:
        return repr(name)
    return f"{name[:_SHOWN_CHARS]!r}... ({len(name)} characters)"


def _suffix_problem(base: str) -> str | None:
    suffixes = supported_suffixes()
    if os.path.splitext(base)[1].lower() in suffixes:
        return None
    return f"must end in a supported suffix ({', '.join(sorted(suffixes))})"


def name_problem(name: str) -> str | None:
    """What is wrong with a file name, from the string alone; None: nothing."""
    if (problem := text_problem(name, MAX_FILE_NAME_CHARS)) is not None:
        return problem
    if name.startswith("/"):
        return NOT_RELATIVE
    if "\\" in name:
        return BACKSLASH
    names = name.split("/")
    if any(part in ("", ".", "..") for part in names):
        return BAD_NAMES
    if any(len(part) > MAX_NAME_CHARS for part in names):
        return NAME_TOO_LONG
    return _suffix_problem(names[-1])


def check_file_name(name: str) -> tuple[str, ...]:
    """The names (folders, then the file) of `name`; `UploadError` naming
    `file_name` otherwise."""
    if (problem := name_problem(name)) is not None:
        raise UploadError("file_name", f"{shown(name)} {problem}")
    return tuple(name.split("/"))


def file_limit(max_file_bytes: int) -> int:
    """The per-file limit a stream asked for: at most the import's."""
    if max_file_bytes < 0:
        raise UploadError("max_file_bytes", "must not be negative (0: the indexer's limit)")
    return min(max_file_bytes, MAX_FILE_BYTES) if max_file_bytes > 0 else MAX_FILE_BYTES


def check_sha256(value: str) -> str:
    """A hex SHA-256, lower-cased; `UploadError` naming `sha256` otherwise."""
    digest = value.lower()
    if len(digest) != 64 or any(char not in string.hexdigits for char in digest):
        raise UploadError("sha256", SHA256_FORMAT)
    return digest


def _inside(real: str, area: str, guard: PathGuard) -> bool:
    path = PurePosixPath(real)
    return path.is_relative_to(PurePosixPath(area)) and not guard.refuses(path)


def _check_area(path: str, expected: PurePosixPath, guard: PathGuard, *, strict: bool) -> str:
    real = os.path.realpath(path, strict=strict)
    if PurePosixPath(real) != expected or guard.refuses(real):
        raise UploadAreaError(
            f"the upload area {path} must be the folder {expected} itself, not a symbolic link"
        )
    return real


def open_area(settings: UploadSettings, collection_id: str, guard: PathGuard) -> str:
    """The real path of the collection's upload area, created when missing
    (blocking: run it on a thread)."""
    if not settings.data_dir:
        raise UploadAreaError(NO_DATA_DIR)
    expected = PurePosixPath(os.path.realpath(settings.data_dir)) / UPLOADS_FOLDER / collection_id
    area = os.path.join(settings.data_dir, UPLOADS_FOLDER, collection_id)
    try:
        _check_area(area, expected, guard, strict=False)  # before creating anything
        os.makedirs(area, exist_ok=True)
        return _check_area(area, expected, guard, strict=True)
    except UploadAreaError:
        raise
    except OSError as exc:
        _raise_if_no_space(exc)
        raise UploadAreaError(f"the upload area {area} cannot be used: {exc.strerror}") from None


def remove_area(settings: UploadSettings, collection_id: str) -> bool:
    """Deletes the collection's upload area, if any (blocking: run it on a
    thread). A deleted collection's files must not outlive it: a new
    collection of the same id would import them with its first upload."""
    if not settings.data_dir:
        return False
    area = os.path.join(settings.data_dir, UPLOADS_FOLDER, collection_id)
    if os.path.islink(area):
        os.unlink(area)  # never follow a link planted in place of the area
        return True
    if not os.path.isdir(area):
        return False
    shutil.rmtree(area)
    return True


def _raise_if_no_space(error: OSError) -> None:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        raise UploadSpaceError(f"no space left for uploads: {error.strerror}") from None


def _refusal(error: OSError, name: str) -> UploadError | None:
    """The refusal an OS error on the user's file name stands for; None for
    the server's own trouble (a full disk, an I/O error)."""
    _raise_if_no_space(error)
    problem = {
        errno.EEXIST: FILE_IN_PATH,
        errno.ENOTDIR: FILE_IN_PATH,
        errno.EISDIR: EXISTING_FOLDER,
        errno.ENOTEMPTY: EXISTING_FOLDER,
        errno.ELOOP: OUTSIDE,
        errno.ENAMETOOLONG: NAME_TOO_LONG_ON_DISK,
    }.get(error.errno or 0)
    return None if problem is None else UploadError("file_name", f"{shown(name)} {problem}")


def _open_folder(area: str, folders: tuple[str, ...], name: str, guard: PathGuard) -> int:
    """A descriptor of the folder `folders` names in the area, created as
    needed, once its real path is known to lie inside the area."""
    target = os.path.join(area, *folders)
    if not _inside(os.path.realpath(target), area, guard):  # before creating anything
        raise UploadError("file_name", f"{shown(name)} {OUTSIDE}")
    os.makedirs(target, exist_ok=True)
    real = os.path.realpath(target, strict=True)
    if not _inside(real, area, guard):  # swapped for a link meanwhile
        raise UploadError("file_name", f"{shown(name)} {OUTSIDE}")
    fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    if not _inside(_opened_path(fd, real), area, guard):
        os.close(fd)
        raise UploadError("file_name", f"{shown(name)} {OUTSIDE}")
    return fd


def _opened_path(fd: int, fallback: str) -> str:
    """Where an open folder is. Linux says it in /proc, after the open, so a
    link swapped in since the check above cannot fool this one; elsewhere
    the path that was opened."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return fallback


def _temp_name(base: str) -> str:
    """A hidden name the scan skips (`.part` is no supported suffix), short
    enough for any base name of at most 255 characters."""
    head = base.encode("utf-8")[:_TEMP_NAME_BYTES].decode("utf-8", errors="ignore")
    return f".{head}.{uuid.uuid4().hex}{PART_SUFFIX}"


def _refuse_existing_folder(folder_fd: int, base: str, name: str) -> None:
    try:
        mode = os.lstat(base, dir_fd=folder_fd).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise UploadError("file_name", f"{shown(name)} {EXISTING_FOLDER}")


class PartialFile:
    """One file being received: a temporary file in its target's folder,
    written part by part, then renamed onto the target or removed.

    Blocking methods: call them on a worker thread, one at a time."""

    def __init__(self, name: str, folder_fd: int, base: str, temp: str, fd: int) -> None:
        self.name = name
        self.size = 0
        self._folder_fd = folder_fd
        self._base = base
        self._temp = temp
        self._fd = fd
        self._digest = hashlib.sha256()
        self._closed = False

    @classmethod
    def create(cls, area: str, name: str, guard: PathGuard) -> PartialFile:
        """The temporary file of `name` (checked by `check_file_name`) in the
        area's real path `area`."""
        *folders, base = check_file_name(name)
        try:
            folder_fd = _open_folder(area, tuple(folders), name, guard)
        except OSError as exc:
            raise _refusal(exc, name) or exc from None
        try:
            _refuse_existing_folder(folder_fd, base, name)
            temp = _temp_name(base)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(temp, flags, 0o644, dir_fd=folder_fd)
        except BaseException as exc:
            os.close(folder_fd)
            if isinstance(exc, OSError) and (refusal := _refusal(exc, name)) is not None:
                raise refusal from None
            raise
        return cls(name, folder_fd, base, temp, fd)

    def write(self, data: bytes) -> None:
        self._require_open()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            _raise_if_no_space(exc)
            raise
        self._digest.update(data)
        self.size += len(data)

    def complete(self, sha256: str) -> None:
        """Renames the file onto its target, once its SHA-256 (when given)
        matched; otherwise it stays open for `discard`."""
        self._require_open()
        actual = self._digest.hexdigest()
        if sha256 and sha256 != actual:
            raise UploadError(
                "sha256", f"{sha256} does not match {shown(self.name)}, whose is {actual}"
            )
        try:
            os.fsync(self._fd)
            os.replace(
                self._temp, self._base, src_dir_fd=self._folder_fd, dst_dir_fd=self._folder_fd
            )
        except OSError as exc:
            raise _refusal(exc, self.name) or exc from None
        self._close()

    def discard(self) -> None:
        """Removes the temporary file (a no-op once completed or discarded)."""
        if self._closed:
            return
        try:
            os.unlink(self._temp, dir_fd=self._folder_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:  # never hide why the stream stopped
            log.warning("cannot remove the partial upload %s: %s", self._temp, exc)
        finally:
            self._close()

    def _require_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.name}: the file is no longer open")

    def _close(self) -> None:
        self._closed = True
        os.close(self._fd)
        os.close(self._folder_fd)


async def _on_thread(func: Callable[..., T], /, *args: object) -> T:
    """`func(*args)` on a worker thread (`asyncio.to_thread`), run to its end:
    a cancellation that comes meanwhile, even several, is raised once it
    returned, so a step is never dropped or left running unseen."""
    task = asyncio.ensure_future(asyncio.to_thread(func, *args))
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        task.exception()  # retrieved: the cancellation is what the caller sees
        raise asyncio.CancelledError
    return task.result()


class _Receiver:
    """The state of one stream: the open file, the limits, what was written."""

    def __init__(self, collection_id: str, settings: UploadSettings, guard: PathGuard) -> None:
        self.collection_id = collection_id
        self.settings = settings
        self.guard = guard
        self.result = UploadResult(folder="")
        self.file: PartialFile | None = None
        self.sha256 = ""
        self.limit = MAX_FILE_BYTES
        self.messages = 0
        self.files_started = 0
        self.bytes_received = 0

    async def open_area(self) -> None:
        self.result.folder = await _on_thread(
            open_area, self.settings, self.collection_id, self.guard
        )

    async def take(self, message: indexer_pb2.WriteUploadRequest) -> None:
        self.messages += 1
        if self.messages == 1:
            self.limit = file_limit(message.max_file_bytes)
        self._check_collection(message.collection_id)
        file = await self._file_of(message)
        if file is None:
            return  # nothing but the stream's fields
        if message.sha256:
            self._take_sha256(message.sha256)
        if message.data:
            await self._write(file, message.data)
        if message.last:
            await self._complete(file)

    def end(self) -> None:
        """The stream ended: no file may be left open."""
        if self.file is not None:
            raise UploadError("last", f"{self.file.name} ended before its last part")

    async def discard(self) -> None:
        file, self.file = self.file, None
        if file is not None:
            await _on_thread(file.discard)

    def _check_collection(self, collection_id: str) -> None:
        if collection_id and collection_id != self.collection_id:
            raise UploadError(
                "collection_id",
                f"must be the same on every message: {self.collection_id}, "
                f"then {shown(collection_id)}",
            )

    async def _file_of(self, message: indexer_pb2.WriteUploadRequest) -> PartialFile | None:
        """The file this message is a part of, opened by its first part."""
        name = message.file_name
        if self.file is not None:
            if name and name != self.file.name:
                raise UploadError(
                    "file_name",
                    f"{shown(name)} started before {shown(self.file.name)} got its last part",
                )
            return self.file
        if not name:
            if message.data or message.last or message.sha256:
                raise UploadError("file_name", REQUIRED_FIRST)
            return None
        self.files_started += 1
        if self.files_started > self.settings.max_files:
            limit = self.settings.max_files
            raise UploadError("file_name", f"an upload holds at most {limit} files")
        self.sha256 = ""
        await _on_thread(self._create, name)
        return self.file

    def _create(self, name: str) -> None:
        # Recorded on the thread: a stream cancelled meanwhile still knows
        # the file it has to remove.
        self.file = PartialFile.create(self.result.folder, name, self.guard)

    def _take_sha256(self, value: str) -> None:
        digest = check_sha256(value)
        if self.sha256 and digest != self.sha256:
            raise UploadError("sha256", "must be the same on every part of a file")
        self.sha256 = digest

    async def _write(self, file: PartialFile, data: bytes) -> None:
        size = file.size + len(data)
        if size > self.limit:
            raise UploadError("data", f"{shown(file.name)}: {too_large(size, self.limit)}")
        total = self.bytes_received + len(data)
        if total > self.settings.max_stream_bytes:
            limit = mib(self.settings.max_stream_bytes)
            raise UploadError("data", f"an upload writes at most {limit} in all")
        await _on_thread(file.write, data)
        self.bytes_received = total

    async def _complete(self, file: PartialFile) -> None:
        await _on_thread(file.complete, self.sha256)
        self.file = None
        if file.name not in self.result.file_names:
            self.result.file_names.append(file.name)
        self.result.bytes_written += file.size


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "done"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    if isinstance(error, UploadError | UploadAreaError | UploadSpaceError):
        return f"stopped: {error}"
    return f"stopped: {type(error).__name__}"  # the interceptor logs it


async def write_upload(
    messages: AsyncIterable[indexer_pb2.WriteUploadRequest],
    collection_id: str,
    settings: UploadSettings,
    guard: PathGuard,
) -> UploadResult:
    """Writes the files of a `WriteUpload` stream into the upload area of
    `collection_id` (already checked). Raises `UploadError`,
    `UploadAreaError` or `UploadSpaceError`; whatever ends the stream, its
    open file's temporary file is removed and completed files stay."""
    receiver = _Receiver(collection_id, settings, guard)
    error: BaseException | None = None
    try:
        await receiver.open_area()
        async for message in messages:
            await receiver.take(message)
        receiver.end()
    except BaseException as exc:
        error = exc
        raise
    finally:
        await receiver.discard()
        log.info(
            "upload to %s: %d files, %d bytes (%s)",
            collection_id,
            len(receiver.result.file_names),
            receiver.result.bytes_written,
            _outcome(error),
        )
    return receiver.result
