"""Which folders an import may read: the rules, as pure functions and a guard.

Imports read only *sources*: folders an admin registered (metadata keeps
them, the gateway decides who may use which). The indexer is the only
process that reads the filesystem, so it alone turns a source's root and a
folder inside it into real paths, and it alone refuses. Why each rule exists:

* **Protected folders** (`PathGuard`): `/proc`, `/sys`, `/dev` and `/run` are
  the kernel's and the running system's, never documents (reading them can
  leak other processes' environments and secrets, or block on a device).
  The data directory (`INDEXER_DATA_DIR`) holds the deployment's secrets and
  databases; only its `sources/` and `uploads/` subfolders are readable, as
  they hold the default source and uploaded files. The vector store
  (`VECTOR_DATA_DIR`) is protected even inside an allowed subfolder. The
  guard compares real paths (symlinks resolved, configured folders too), so
  no spelling or link leads into them.
* **A root** (`resolve_root`) is absolute, bounded, plain text, resolved to
  its real path, not `/` (that would be every other rule's exception), not
  protected, and an existing readable folder. Roots come from admins or from
  registered sources, so their refusals say exactly what is wrong.
* **A path inside the root** (`resolve_inside`) comes from any user allowed
  the source, so it is relative, bounded (4096 characters, 255 per name:
  Linux's PATH_MAX and NAME_MAX), plain text (no NUL, no control characters,
  valid UTF-8) and has no `..`. Its real path must be the root or under it
  (compared by path components, never as string prefixes, so `/srv/docs2`
  is not inside `/srv/docs`) and not protected. Every refusal about *where*
  the path leads (out of the root through `..`, an absolute path or a
  symlink, into a protected folder, or a resolution that never ends) is the
  one message `OUTSIDE`, whether or not the target exists: otherwise the
  answers would tell a user which folders exist outside the source. Only
  once the real path is known to be inside the root do the messages differ
  (missing, not a folder, not readable): that is the source's own content.
* **An import's folder** (`resolve_import_folder`) is the gateway's absolute
  path under the source's root, checked by the same rules when the request
  comes and again when its job starts, since a symlink swapped in between
  could otherwise lead the import elsewhere.
* Strings that are not valid UTF-8 (surrogate escapes) and errors from the
  OS (`OSError`, `ValueError`) are refusals, never another exception.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

SYSTEM_FOLDERS = ("/proc", "/sys", "/dev", "/run")
# Subfolders of the data directory that sources may read.
READABLE_DATA_FOLDERS = ("sources", "uploads")

MAX_PATH_CHARS = 4096
MAX_NAME_CHARS = 255

# The one answer for a path that leads anywhere but a folder inside the root.
OUTSIDE = "must name a folder inside the source"
MISSING_INSIDE = "no such folder in the source"
MISSING_ROOT = "does not exist"
NOT_A_FOLDER = "is not a directory"
NOT_READABLE = "is not readable"
REQUIRED = "is required"
NOT_ABSOLUTE = "must be an absolute path"
FILESYSTEM_ROOT = "must not be the filesystem root"
PROTECTED = "must not be a system folder or the indexer's data directory"
TOO_LONG = f"must be at most {MAX_PATH_CHARS} characters"
NAME_TOO_LONG = f"must hold folder names of at most {MAX_NAME_CHARS} characters"
CONTROL_CHARACTERS = "must not contain NUL or other control characters"
NOT_UTF8 = "must be valid UTF-8 text"
UNRESOLVABLE = "cannot be resolved"


class SourcePathError(ValueError):
    """A refused root, path or file name: the request field and what is
    wrong with it (INVALID_ARGUMENT)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ProtectedFolder:
    """A folder no import reads, save its `exceptions` (real paths under it)."""

    folder: PurePosixPath
    exceptions: tuple[PurePosixPath, ...] = ()

    def covers(self, path: PurePosixPath) -> bool:
        if not path.is_relative_to(self.folder):
            return False
        return not any(path.is_relative_to(allowed) for allowed in self.exceptions)


def _real(path: str) -> PurePosixPath:
    return PurePosixPath(os.path.realpath(path))


def _data_folder(data_dir: str) -> ProtectedFolder:
    real = _real(data_dir)
    # An exception counts only where it really is that subfolder: a
    # `sources` symlinked to `secrets` must not open the secrets.
    exceptions = tuple(
        real / name
        for name in READABLE_DATA_FOLDERS
        if _real(os.path.join(data_dir, name)) == real / name
    )
    return ProtectedFolder(real, exceptions)


@dataclass(frozen=True)
class PathGuard:
    """The folders no import reads; build one with `PathGuard.build`."""

    protected: tuple[ProtectedFolder, ...]

    @classmethod
    def build(cls, *, data_dir: str = "", vector_data_dir: str = "") -> PathGuard:
        """System folders always; `data_dir` (save its readable subfolders)
        and `vector_data_dir` when set. Configured paths are resolved now."""
        protected = [ProtectedFolder(_real(folder)) for folder in SYSTEM_FOLDERS]
        if data_dir:
            protected.append(_data_folder(data_dir))
        if vector_data_dir:
            protected.append(ProtectedFolder(_real(vector_data_dir)))
        return cls(tuple(protected))

    def refuses(self, real_path: str | os.PathLike[str]) -> bool:
        """Whether `real_path` (symlinks already resolved) is a protected
        folder or lies inside one."""
        path = PurePosixPath(os.fspath(real_path))
        return any(folder.covers(path) for folder in self.protected)

    def refuses_root(self, real_path: str | os.PathLike[str]) -> bool:
        """Whether a folder may not be read as a whole: `/` or a protected one."""
        return PurePosixPath(os.fspath(real_path)) == PurePosixPath("/") or self.refuses(real_path)

    def describe(self) -> str:
        """The protected folders, for the log."""
        return ", ".join(
            f"{p.folder} (except {', '.join(map(str, p.exceptions))})"
            if p.exceptions
            else str(p.folder)
            for p in self.protected
        )


def text_problem(text: str, max_chars: int = MAX_PATH_CHARS) -> str | None:
    """What makes `text` no path at all, from the string alone."""
    if len(text) > max_chars:
        return (
            TOO_LONG if max_chars == MAX_PATH_CHARS else f"must be at most {max_chars} characters"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes of undecodable bytes
        return NOT_UTF8
    if any(unicodedata.category(char) == "Cc" for char in text):
        return CONTROL_CHARACTERS
    return None


@dataclass(frozen=True)
class _Lookup:
    """A path's real path, and the error that stopped a strict resolution
    (then `real` is where the path would lead, as far as it resolves)."""

    real: str
    error: OSError | None


def _look_up(path: str) -> _Lookup:
    try:
        return _Lookup(os.path.realpath(path, strict=True), None)
    except OSError as exc:
        return _Lookup(os.path.realpath(path), exc)


def _resolved(path: str, field: str, refusal: str) -> _Lookup:
    """`_look_up`, with what the OS could not even look at refused."""
    try:
        return _look_up(path)
    except (OSError, ValueError):
        raise SourcePathError(field, refusal) from None


def _folder_problem(lookup: _Lookup, missing: str) -> str | None:
    """Whether the looked-up path is an existing readable folder."""
    try:
        if lookup.error is not None:
            raise lookup.error
        mode = os.stat(lookup.real).st_mode
    except OSError as exc:
        return _os_problem(exc, missing)
    if not stat.S_ISDIR(mode):
        return NOT_A_FOLDER
    if not os.access(lookup.real, os.R_OK | os.X_OK):
        return NOT_READABLE
    return None


def _os_problem(error: OSError, missing: str) -> str:
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        return missing
    if error.errno in (errno.EACCES, errno.EPERM):
        return NOT_READABLE
    return f"{UNRESOLVABLE}: {error.strerror or error}"


def resolve_root(root: str, guard: PathGuard, field: str = "root") -> str:
    """`root`'s real path; `SourcePathError(field, ...)` saying what is wrong."""
    if not root:
        raise SourcePathError(field, REQUIRED)
    if (problem := text_problem(root)) is not None:
        raise SourcePathError(field, problem)
    if not root.startswith("/"):
        raise SourcePathError(field, NOT_ABSOLUTE)
    lookup = _resolved(root, field, UNRESOLVABLE)
    if PurePosixPath(lookup.real) == PurePosixPath("/"):
        raise SourcePathError(field, FILESYSTEM_ROOT)
    if guard.refuses(lookup.real):
        raise SourcePathError(field, PROTECTED)
    if (problem := _folder_problem(lookup, MISSING_ROOT)) is not None:
        raise SourcePathError(field, problem)
    return lookup.real


def _names(path: str, field: str) -> list[str]:
    """The folder names of a relative path, checked from the string alone."""
    if (problem := text_problem(path)) is not None:
        raise SourcePathError(field, problem)
    if path.startswith("/"):
        raise SourcePathError(field, OUTSIDE)
    names = [name for name in path.split("/") if name not in ("", ".")]
    if ".." in names:
        raise SourcePathError(field, OUTSIDE)
    if any(len(name) > MAX_NAME_CHARS for name in names):
        raise SourcePathError(field, NAME_TOO_LONG)
    return names


def _leads_outside(lookup: _Lookup, real_root: str, guard: PathGuard) -> bool:
    if lookup.error is not None and lookup.error.errno == errno.ELOOP:
        return True  # where a resolution that never ends leads is unknown
    real = PurePosixPath(lookup.real)
    return not real.is_relative_to(PurePosixPath(real_root)) or guard.refuses(real)


def resolve_inside(real_root: str, path: str, guard: PathGuard, field: str = "path") -> str:
    """The real path of the folder `path` names under `real_root` (a real
    path from `resolve_root`); empty: the root itself."""
    names = _names(path, field)
    lookup = _resolved(os.path.join(real_root, *names), field, OUTSIDE)
    if _leads_outside(lookup, real_root, guard):
        raise SourcePathError(field, OUTSIDE)
    if (problem := _folder_problem(lookup, MISSING_INSIDE)) is not None:
        raise SourcePathError(field, problem)
    return lookup.real


def resolve(root: str, path: str, guard: PathGuard) -> tuple[str, str]:
    """(real root, real folder) of `path` inside the source folder `root`;
    `SourcePathError` naming `root` or `path` otherwise."""
    real_root = resolve_root(root, guard)
    return real_root, resolve_inside(real_root, path, guard)


def _relative(source_path: str, roots: Iterable[str]) -> str | None:
    """`source_path` relative to the first of `roots` it lies under, by path
    components (no resolution: `..` stays, for `resolve_inside` to refuse)."""
    given = PurePosixPath(source_path)
    for root in roots:
        if given.is_relative_to(root):
            return given.relative_to(root).as_posix()
    return None


def resolve_import_folder(source_root: str, source_path: str, guard: PathGuard) -> tuple[str, str]:
    """(real root, real folder) of an import: `source_path`, absolute, must
    lie inside `source_root` by the rules of `resolve`. Errors name the
    fields `source_root` and `source_path`."""
    real_root = resolve_root(source_root, guard, field="source_root")
    if not source_path:
        raise SourcePathError("source_path", REQUIRED)
    if (problem := text_problem(source_path)) is not None:
        raise SourcePathError("source_path", problem)
    if not source_path.startswith("/"):
        raise SourcePathError("source_path", NOT_ABSOLUTE)
    relative = _relative(source_path, (source_root, real_root))
    if relative is None:
        raise SourcePathError("source_path", OUTSIDE)
    return real_root, resolve_inside(real_root, relative, guard, field="source_path")
