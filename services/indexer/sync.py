"""What changed in a source folder since its last sync.

This module owns the diff between a fresh `Scan` of the folder and the
documents the index knows (from metadata): which files to embed, which only
need their stored state updated, and which to rename or remove. It decides;
it does not read documents, embed or write anything.

Reading is kept to a minimum, since the content hash is the only thing that
proves two versions equal:

* a known path whose size and mtime_ns are both unchanged is `unchanged`
  and is not read;
* a known path whose size changed is `changed` and is not read either (the
  import hashes what it reads anyway);
* a known path with the same size and another mtime is hashed: equal content
  makes it `touched` (update the stored mtime, embed nothing), other content
  `changed`;
* a new path is hashed: when its content is that of a known path that is
  gone, it is a move (rename, embed nothing), otherwise `added`. One gone
  path pairs with one new path, so two copies of a moved file are a move
  and an add.

A known path the scan could not look at (a problem such as "larger than N
MiB" or "cannot stat", or a file in a folder that could not be listed) is
`kept`, not deleted: the index keeps the version it has, and the problem says
why. A file that cannot be hashed (it vanished or became unreadable
mid-sync) is a problem too: kept when known, left out when new; the next
sync sees it as it then is.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from services.indexer.sources import Scan, content_hash

HashFile = Callable[[str], str]


@dataclass(frozen=True)
class Known:
    """A document as the index last stored it."""

    content_hash: str
    size: int
    mtime_ns: int


@dataclass
class ChangeSet:
    """The work a sync has to do. Paths are sorted; `moved` holds (old, new)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _under(path: str, folders: Iterable[str]) -> bool:
    return any(path.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)


def _pair_moves(gone: list[str], new: list[str]) -> list[tuple[str, str]]:
    """Pairs gone and new paths of one content: same file name first, then in order."""
    gone, new = sorted(gone), sorted(new)
    pairs: list[tuple[str, str]] = []
    for old in list(gone):
        name = os.path.basename(old)
        match = next((path for path in new if os.path.basename(path) == name), None)
        if match is not None:
            pairs.append((old, match))
            gone.remove(old)
            new.remove(match)
    pairs.extend(zip(gone, new, strict=False))
    return pairs


def diff(
    scan: Scan,
    known: Mapping[str, Known],
    hash_file: HashFile = content_hash,
) -> ChangeSet:
    """What to do to bring the index (`known`, by path) to the folder (`scan`)."""
    changes = ChangeSet(problems=list(scan.problems))
    unreachable = {path for path, _reason in scan.problems}

    def hashed(path: str) -> str | None:
        try:
            digest = hash_file(path)
        except OSError as exc:
            changes.problems.append((path, f"cannot read: {exc.strerror or exc}"))
            return None
        return digest

    new_paths: list[str] = []
    for path in sorted(scan.files):
        state = scan.files[path]
        before = known.get(path)
        if before is None:
            new_paths.append(path)
        elif state.size == before.size and state.mtime_ns == before.mtime_ns:
            changes.unchanged.append(path)
        elif state.size != before.size:
            changes.changed.append(path)
        else:
            digest = hashed(path)
            if digest is None:
                changes.kept.append(path)
            elif digest == before.content_hash:
                changes.touched.append(path)
            else:
                changes.changed.append(path)

    gone_by_hash: dict[str, list[str]] = defaultdict(list)
    for path in sorted(known.keys() - scan.files.keys()):
        if path in unreachable or _under(path, scan.unlisted):
            changes.kept.append(path)
        else:
            gone_by_hash[known[path].content_hash].append(path)

    # A new path can only be a move of a gone document of its size: only
    # those are hashed here (the import reads and hashes the rest anyway).
    gone_sizes = {known[path].size for paths in gone_by_hash.values() for path in paths}
    new_by_hash: dict[str, list[str]] = defaultdict(list)
    unmatched: list[str] = []
    for path in new_paths:
        if scan.files[path].size not in gone_sizes:
            unmatched.append(path)
        elif (digest := hashed(path)) is not None:
            new_by_hash[digest].append(path)

    moved_new: set[str] = set()
    moved_old: set[str] = set()
    for digest, paths in new_by_hash.items():
        for old, new in _pair_moves(gone_by_hash.get(digest, []), paths):
            changes.moved.append((old, new))
            moved_old.add(old)
            moved_new.add(new)
    changes.added = [
        *unmatched,
        *(p for paths in new_by_hash.values() for p in paths if p not in moved_new),
    ]
    changes.deleted = [p for paths in gone_by_hash.values() for p in paths if p not in moved_old]

    changes.added.sort()
    changes.deleted.sort()
    changes.moved.sort()
    changes.kept.sort()
    changes.problems.sort()
    return changes
