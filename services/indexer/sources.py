"""What a local source folder holds: the files a collection would index.

This module owns the scan of one folder: which files count (a suffix filter,
include and exclude globs, a size limit), how symlinks are treated, and the
cheap per-file state (size, mtime, inode) that lets a sync skip unchanged
files without reading them. It also owns `content_hash`, the streamed
sha256 a document's content is known by. It reads the filesystem only; what
to do with the result (diff against the index, embed) lives elsewhere
(`services.indexer.sync`).

Rules of the scan:

* Paths are matched relative to the root, posix style (`notes/a.md`).
  A file counts when its suffix is supported, no exclude glob matches it and,
  if include globs are given, one of them does. An exclude glob that matches
  a folder (`drafts`, `drafts/**`, `**/node_modules`) excludes the whole
  folder, which is not entered, as in `.gitignore`. Hidden files and folders
  count like any other unless excluded. Globs are case-sensitive; suffixes
  are not.
* A file over the size limit is not dropped silently: it is a problem
  ("file too large: ...").
* Symlinks, to files and to folders, are followed only when their target
  resolves inside the root; others are problems ("symlink leading outside
  the source", the target unsaid). A folder is entered once: its real path
  wins over any link to it, a link back to a folder it sits in is a
  "symlink loop", a second link to an already scanned folder is refused
  too. Files keep the name they have in the folder (the link's path, not its
  target), since that is where the user sees them.
* Protected folders (`source_paths.PathGuard`: system folders, the data
  directory, the vector store) are left out silently, like an excluded
  folder: a folder whose real path the guard refuses is not entered, and a
  symlink (to a file or a folder) into one is not followed, so a source that
  holds the data directory, or a link to it, never indexes its secrets. A
  root that is `/` or protected raises `SourceRootError`.
* A folder that cannot be listed is a problem, and its path is in
  `Scan.unlisted` so that a sync does not mistake its files for deleted ones.
  A root that is missing, not a folder or cannot be listed raises
  `SourceRootError`: there is no scan to sync against.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from wcmatch import glob as wcglob

# wcmatch, not fnmatch: Python 3.11's fnmatch has no `**` (its `*` crosses
# `/`), and pathlib's match has no `**` either before 3.13; wcmatch gives
# gitignore-like globs (`**/*.md`, `drafts/**`, `{a,b}`) matched as plain
# strings, without touching the filesystem.
from services.indexer.extraction.limits import MIB, too_large
from services.indexer.source_paths import PathGuard

HASH_BLOCK_BYTES = MIB

# GLOBSTAR: `**` spans folders. DOTGLOB: `*` and `**` match hidden names, so
# hidden files count unless excluded. BRACE: `*.{md,txt}`. FORCEUNIX: posix
# semantics (case-sensitive, `/` only) on any platform, since the relative
# paths given to the matcher are posix.
GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.DOTGLOB | wcglob.BRACE | wcglob.FORCEUNIX


class SourceRootError(Exception):
    """The root cannot be scanned at all; the message says why."""


@dataclass(frozen=True)
class FileState:
    """What a scan knows of a file without reading it."""

    size: int
    mtime_ns: int
    inode: int | None = None


@dataclass
class Scan:
    """The files of a source folder, keyed by absolute path under `root`."""

    root: str  # the absolute root the file paths are under
    real_root: str  # `root` with symlinks resolved
    files: dict[str, FileState] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    unlisted: list[str] = field(default_factory=list)  # folders that could not be listed


def content_hash(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


class _Matcher:
    def __init__(self, patterns: Iterable[str]) -> None:
        self._patterns = [p for p in patterns if p]
        self._compiled = (
            wcglob.compile(self._patterns, flags=GLOB_FLAGS) if self._patterns else None
        )

    def __bool__(self) -> bool:
        return self._compiled is not None

    def match(self, relative: str) -> bool:
        return self._compiled is not None and self._compiled.match(relative)

    def match_folder(self, relative: str) -> bool:
        # `drafts/**` matches "drafts/" but not "drafts"; `drafts` matches both.
        return self.match(relative) or self.match(relative + "/")


def _root_paths(root: str | os.PathLike[str], guard: PathGuard | None = None) -> tuple[Path, Path]:
    given = Path(root).absolute()
    try:
        real = given.resolve(strict=True)
    except FileNotFoundError:
        raise SourceRootError(f"{given}: no such folder") from None
    except (OSError, RuntimeError) as exc:
        raise SourceRootError(f"{given}: cannot resolve: {exc}") from None
    if guard is not None and guard.refuses_root(real):
        raise SourceRootError(f"{given}: a protected folder, never imported")
    if not real.is_dir():
        raise SourceRootError(f"{given}: not a folder")
    # Names stay under the root as given (a symlinked root keeps its name),
    # except that `..` is resolved: `/data/../docs/a.md` is no name for a file.
    base = real if ".." in given.parts else given
    return base, real


def _identity(result: os.stat_result) -> tuple[int, int]:
    return (result.st_dev, result.st_ino)


@dataclass
class _Walker:
    real_root: Path
    suffixes: frozenset[str]
    include: _Matcher
    exclude: _Matcher
    max_file_bytes: int | None
    scan: Scan
    guard: PathGuard | None = None
    # Folders entered, by (device, inode): the path they were entered as.
    entered: dict[tuple[int, int], str] = field(default_factory=dict)
    # Symlinked folders, walked after every real folder so that real names win:
    # (link path, relative name, real path of the folder holding the link).
    links: list[tuple[Path, str, Path]] = field(default_factory=list)

    def walk(self, folder: Path, relative: str, real: Path) -> None:
        """Scans `folder` (named `relative` under the root, really at `real`)
        and the real folders under it; symlinked folders are queued."""
        pending = [(folder, relative, real)]
        while pending:
            folder, relative, real = pending.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda entry: entry.name)
            except OSError as exc:
                self.scan.problems.append((str(folder), f"cannot list: {exc.strerror or exc}"))
                self.scan.unlisted.append(str(folder))
                continue
            subfolders: list[tuple[Path, str, Path]] = []
            for entry in entries:
                path = Path(entry.path)
                child = f"{relative}/{entry.name}" if relative else entry.name
                try:
                    is_link = entry.is_symlink()
                    is_folder = entry.is_dir(follow_symlinks=False)
                except OSError as exc:
                    self.scan.problems.append((str(path), f"cannot stat: {exc.strerror or exc}"))
                    continue
                if is_link:
                    self._link(path, child, real)
                elif is_folder:
                    # Only a folder can be protected here: a file is inside a
                    # folder already entered, so never inside a protected one.
                    protected = self._protected(real / entry.name)
                    if not protected and not self.exclude.match_folder(child):
                        subfolders.append((path, child, real / entry.name))
                else:
                    self._file(path, child)
            # Reversed so that the stack pops them in name order.
            for sub in reversed(subfolders):
                if self._enter(*sub):
                    pending.append(sub)

    def walk_links(self) -> None:
        while self.links:
            link, relative, holder = self.links.pop(0)
            target = Path(os.path.realpath(link))
            if self._protected(target):  # swapped since `_link` looked
                continue
            if holder.is_relative_to(target):
                self.scan.problems.append((str(link), f"symlink loop: {link} -> {target}"))
                continue
            if self._enter(link, relative, target):
                self.walk(link, relative, target)

    def _enter(self, folder: Path, relative: str, real: Path) -> bool:
        """Marks a folder as entered; False (and a problem) when it was already."""
        try:
            identity = _identity(os.stat(folder))
        except OSError as exc:
            self.scan.problems.append((str(folder), f"cannot stat: {exc.strerror or exc}"))
            self.scan.unlisted.append(str(folder))
            return False
        first = self.entered.setdefault(identity, str(folder))
        if first == str(folder):
            return True
        self.scan.problems.append(
            (str(folder), f"symlink to {real}, a folder already scanned as {first}")
        )
        return False

    def _protected(self, real: Path) -> bool:
        """Whether the guard keeps the scan out of `real` (a real path)."""
        return self.guard is not None and self.guard.refuses(real)

    def _wanted(self, relative: str) -> bool:
        if os.path.splitext(relative)[1].lower() not in self.suffixes:
            return False
        if self.exclude.match(relative):
            return False
        return not self.include or self.include.match(relative)

    def _link(self, link: Path, relative: str, holder: Path) -> None:
        """A symlink: followed when it resolves inside the root."""
        try:
            target = Path(os.path.realpath(link, strict=True))
        except OSError as exc:
            if not self._wanted(relative):
                return
            if exc.errno == errno.ELOOP:
                reason = "symlink loop"
            elif exc.errno == errno.ENOENT:
                reason = "broken symlink"
            else:
                reason = f"cannot resolve symlink: {exc.strerror or exc}"
            self.scan.problems.append((str(link), reason))
            return
        if self._protected(target):
            return  # silently, like an excluded folder: not even its name is told
        is_folder = target.is_dir()
        if is_folder and self.exclude.match_folder(relative):
            return
        if not is_folder and not self._wanted(relative):
            return
        if not target.is_relative_to(self.real_root):
            # The target stays unsaid: the reason reaches users of the source,
            # who may not learn what lies outside it.
            self.scan.problems.append((str(link), "symlink leading outside the source"))
            return
        if is_folder:
            self.links.append((link, relative, holder))
        else:
            self._file(link, relative)

    def _file(self, path: Path, relative: str) -> None:
        if not self._wanted(relative):
            return
        try:
            result = os.stat(path)
        except OSError as exc:
            self.scan.problems.append((str(path), f"cannot stat: {exc.strerror or exc}"))
            return
        if not stat.S_ISREG(result.st_mode):
            self.scan.problems.append((str(path), "not a regular file"))
            return
        if self.max_file_bytes is not None and result.st_size > self.max_file_bytes:
            self.scan.problems.append((str(path), too_large(result.st_size, self.max_file_bytes)))
            return
        self.scan.files[str(path)] = FileState(result.st_size, result.st_mtime_ns, result.st_ino)


def scan_folder(
    root: str | os.PathLike[str],
    suffixes: Collection[str],
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    max_file_bytes: int | None = None,
    guard: PathGuard | None = None,
) -> Scan:
    """The files under `root` that a collection would index.

    `suffixes` are the supported ones, dot included (".md"), matched
    case-insensitively. `include` and `exclude` are globs on the path relative
    to the root; no include globs means every file. `guard`: folders and
    files whose real path it refuses are left out. Raises `SourceRootError`
    when the root is missing, not a folder, cannot be listed, or is `/` or
    protected by `guard`.
    """
    base, real = _root_paths(root, guard)
    scan = Scan(root=str(base), real_root=str(real))
    walker = _Walker(
        real_root=real,
        suffixes=frozenset(suffix.lower() for suffix in suffixes),
        include=_Matcher(include),
        exclude=_Matcher(exclude),
        max_file_bytes=max_file_bytes,
        scan=scan,
        guard=guard,
    )
    try:
        walker.entered[_identity(os.stat(base))] = str(base)
        # Fails early, rather than as a problem: a root that cannot be
        # listed is no folder of zero files.
        os.scandir(base).close()
    except OSError as exc:
        raise SourceRootError(f"{base}: cannot list: {exc.strerror or exc}") from None
    walker.walk(base, "", real)
    walker.walk_links()
    scan.problems.sort()
    scan.unlisted.sort()
    return scan
