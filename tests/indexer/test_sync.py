"""The diff of a folder against the index, on real files, counting reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.indexer.sources import FileState, Scan, content_hash, scan_folder
from services.indexer.sync import ChangeSet, Known, diff

SUFFIXES = frozenset({".txt", ".md"})


class CountingHash:
    """`content_hash` that remembers which paths it read."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, path: str) -> str:
        self.calls.append(path)
        return content_hash(path)


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def index(root: Path) -> dict[str, Known]:
    """What the index knows after syncing the folder as it is now."""
    scan = scan_folder(root, SUFFIXES)
    return {
        path: Known(content_hash(path), state.size, state.mtime_ns)
        for path, state in scan.files.items()
    }


def sync(root: Path, known: dict[str, Known]) -> tuple[ChangeSet, CountingHash]:
    hashing = CountingHash()
    return diff(scan_folder(root, SUFFIXES), known, hashing), hashing


def bump_mtime(path: str) -> None:
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    write(folder / "a.md", "alpha")
    write(folder / "b.md", "beta")
    write(folder / "sub" / "c.txt", "gamma")
    return folder


def test_nothing_changed_reads_nothing(root: Path) -> None:
    known = index(root)
    changes, hashing = sync(root, known)
    assert changes.unchanged == sorted(known)
    assert hashing.calls == []


def test_first_sync_adds_everything_without_reading_it(root: Path) -> None:
    changes, hashing = sync(root, {})
    assert changes.added == sorted(str(p) for p in root.rglob("*.*"))
    # Nothing is gone, so nothing new can be a move: the import reads them.
    assert hashing.calls == []


def test_touched_file_is_hashed_once_and_not_reembedded(root: Path) -> None:
    known = index(root)
    a = str(root / "a.md")
    bump_mtime(a)

    changes, hashing = sync(root, known)

    assert changes.touched == [a]
    assert hashing.calls == [a]  # only the touched one; unchanged ones are not read
    assert changes.changed == changes.added == []


def test_changed_content_of_same_size_is_detected(root: Path) -> None:
    known = index(root)
    a = write(root / "a.md", "ALPHA")
    bump_mtime(a)

    changes, hashing = sync(root, known)

    assert changes.changed == [a]
    assert hashing.calls == [a]
    assert len(changes.unchanged) == 2


def test_changed_size_is_changed_without_reading(root: Path) -> None:
    known = index(root)
    b = write(root / "b.md", "beta, longer")

    changes, hashing = sync(root, known)

    assert changes.changed == [b]
    assert hashing.calls == []


def test_deleted_file_is_detected(root: Path) -> None:
    known = index(root)
    (root / "sub" / "c.txt").unlink()

    changes, hashing = sync(root, known)

    assert changes.deleted == [str(root / "sub" / "c.txt")]
    assert hashing.calls == []


def test_moved_file_is_a_rename(root: Path) -> None:
    known = index(root)
    old, new = root / "a.md", root / "sub" / "renamed.md"
    old.rename(new)

    changes, hashing = sync(root, known)

    assert changes.moved == [(str(old), str(new))]
    assert changes.added == changes.deleted == []
    assert hashing.calls == [str(new)]


def test_two_copies_of_a_moved_file_are_a_move_and_an_add(root: Path) -> None:
    known = index(root)
    (root / "a.md").unlink()
    first = write(root / "x" / "a.md", "alpha")
    second = write(root / "y" / "other.md", "alpha")

    changes, _ = sync(root, known)

    # The copy that kept the file name is the move.
    assert changes.moved == [(str(root / "a.md"), first)]
    assert changes.added == [second]
    assert changes.deleted == []


def test_new_file_with_the_content_of_a_present_one_is_added(root: Path) -> None:
    known = index(root)
    copy = write(root / "copy.md", "alpha")

    changes, _ = sync(root, known)

    assert changes.added == [copy]
    assert changes.moved == []


def test_file_vanishing_mid_sync_is_reported_not_raised(root: Path) -> None:
    known = index(root)
    a, new = str(root / "a.md"), write(root / "new.md", "new")
    bump_mtime(a)
    scan = scan_folder(root, SUFFIXES)
    os.unlink(a)
    os.unlink(new)

    changes = diff(scan, known)

    problems = dict(changes.problems)
    assert set(problems) == {a}
    assert problems[a].startswith("cannot read")
    assert changes.kept == [a]  # the next sync sees it gone
    # The new file is not read here (no gone file has its size); the import
    # finds it gone and records that.
    assert changes.added == [new]
    assert changes.touched == changes.deleted == []


def test_known_files_the_scan_could_not_see_are_kept(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    known = {
        str(root / "locked" / "a.md"): Known("h1", 1, 1),
        str(root / "big.md"): Known("h2", 2, 2),
        str(root / "gone.md"): Known("h3", 3, 3),
        str(root / "lockedness.md"): Known("h4", 4, 4),  # shares a prefix only
    }
    scan = Scan(
        root=str(root),
        real_root=str(root),
        files={str(root / "kept.md"): FileState(5, 5)},
        problems=[
            (str(root / "big.md"), "file too large: 1.0 MiB, over the limit of 1 MiB"),
            (str(root / "locked"), "cannot list: Permission denied"),
        ],
        unlisted=[str(root / "locked")],
    )

    changes = diff(scan, known, lambda _path: "h5")

    assert changes.kept == [str(root / "big.md"), str(root / "locked" / "a.md")]
    assert changes.deleted == [str(root / "gone.md"), str(root / "lockedness.md")]
    assert changes.added == [str(root / "kept.md")]
    assert changes.problems == sorted(scan.problems)
