"""Scanning a source folder: filters, size limit, symlinks, on real files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from services.indexer.extraction.limits import MIB
from services.indexer.source_paths import PathGuard
from services.indexer.sources import SourceRootError, content_hash, scan_folder
from tests.indexer.conftest import make_unlistable

SUFFIXES = frozenset({".txt", ".md", ".pdf"})


def write(path: Path, text: str = "text") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def names(root: Path, paths: Iterable[str]) -> set[str]:
    return {Path(p).relative_to(root).as_posix() for p in paths}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    return folder


def test_recursive_suffixes_and_state(root: Path) -> None:
    a = write(root / "a.txt", "hello")
    write(root / "sub" / "deep" / "b.MD")
    write(root / "c.pdf")
    write(root / "image.png")
    write(root / "noext")

    scan = scan_folder(root, SUFFIXES)

    assert names(root, scan.files) == {"a.txt", "sub/deep/b.MD", "c.pdf"}
    assert scan.problems == []
    assert scan.root == str(root)
    state = scan.files[str(a)]
    stat = a.stat()
    assert (state.size, state.mtime_ns, state.inode) == (5, stat.st_mtime_ns, stat.st_ino)


def test_include_and_exclude_globs(root: Path) -> None:
    for name in ["top.md", "notes/a.md", "notes/x/b.md", "drafts/c.md", "drafts/x/d.md", "e.txt"]:
        write(root / name)
    write(root / "notes" / "drafts" / "f.md")

    scan = scan_folder(root, SUFFIXES, include=["**/*.md"], exclude=["drafts/**"])

    # `**/` matches zero folders too; `drafts/**` is anchored at the root.
    assert names(root, scan.files) == {"top.md", "notes/a.md", "notes/x/b.md", "notes/drafts/f.md"}


def test_excluded_folder_is_not_entered(root: Path, tmp_path: Path) -> None:
    outside = write(tmp_path / "secret.md")
    write(root / "node_modules" / "pkg" / "readme.md")
    (root / "node_modules" / "escape.md").symlink_to(outside)
    write(root / "keep.md")

    scan = scan_folder(root, SUFFIXES, exclude=["**/node_modules"])

    assert names(root, scan.files) == {"keep.md"}
    assert scan.problems == []  # nothing reported from inside an excluded folder


def test_hidden_files_count_unless_excluded(root: Path) -> None:
    write(root / ".hidden.md")
    write(root / ".obsidian" / "notes.md")
    write(root / "shown.md")

    assert names(root, scan_folder(root, SUFFIXES, include=["**/*.md"]).files) == {
        ".hidden.md",
        ".obsidian/notes.md",
        "shown.md",
    }
    assert names(root, scan_folder(root, SUFFIXES, exclude=[".*"]).files) == {"shown.md"}


def test_size_limit_is_reported(root: Path) -> None:
    write(root / "small.txt", "x" * 10)
    big = root / "big.txt"
    big.write_bytes(b"x" * (MIB + 1))

    scan = scan_folder(root, SUFFIXES, max_file_bytes=MIB)

    assert names(root, scan.files) == {"small.txt"}
    assert scan.problems == [(str(big), "file too large: 1.0 MiB, over the limit of 1 MiB")]


def test_symlinked_file_inside_root_is_followed_under_its_own_name(root: Path) -> None:
    target = write(root / "real" / "a.md", "content")
    link = root / "alias.md"
    link.symlink_to(target)

    scan = scan_folder(root, SUFFIXES)

    assert names(root, scan.files) == {"real/a.md", "alias.md"}
    assert scan.files[str(link)].size == 7
    assert scan.problems == []


def test_symlink_escaping_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    write(tmp_path / "outside" / "secret.md")
    (root / "secret.md").symlink_to(tmp_path / "outside" / "secret.md")
    (root / "outfolder").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "relative.md").symlink_to("../outside/secret.md")

    scan = scan_folder(root, SUFFIXES)

    assert scan.files == {}
    assert {path for path, _ in scan.problems} == {
        str(root / "secret.md"),
        str(root / "outfolder"),
        str(root / "relative.md"),
    }
    for _path, reason in scan.problems:
        assert reason == "symlink leading outside the source"  # where to is not said


def test_symlink_loop_is_refused(root: Path) -> None:
    write(root / "sub" / "a.md")
    (root / "sub" / "up").symlink_to("..", target_is_directory=True)
    (root / "self").symlink_to(".", target_is_directory=True)
    (root / "x.md").symlink_to("y.md")
    (root / "y.md").symlink_to("x.md")

    scan = scan_folder(root, SUFFIXES)

    assert names(root, scan.files) == {"sub/a.md"}
    reasons = dict(scan.problems)
    assert set(reasons) == {
        str(root / "sub" / "up"),
        str(root / "self"),
        str(root / "x.md"),
        str(root / "y.md"),
    }
    assert all(reason.startswith("symlink loop") for reason in reasons.values())


def test_symlinked_folder_inside_root_is_scanned_once(root: Path) -> None:
    write(root / "real" / "a.md")
    write(root / "real" / "deeper" / "b.md")
    # Sorts before "real": the real name still wins.
    (root / "alias").symlink_to("real", target_is_directory=True)

    scan = scan_folder(root, SUFFIXES)

    assert names(root, scan.files) == {"real/a.md", "real/deeper/b.md"}
    assert len(scan.problems) == 1
    path, reason = scan.problems[0]
    assert path == str(root / "alias")
    assert "already scanned" in reason


def test_symlinked_folder_to_an_excluded_one_is_scanned_under_its_name(root: Path) -> None:
    write(root / "drafts" / "ready" / "a.md")
    (root / "published").symlink_to("drafts/ready", target_is_directory=True)

    scan = scan_folder(root, SUFFIXES, exclude=["drafts/**"])

    assert names(root, scan.files) == {"published/a.md"}
    assert scan.problems == []


def test_broken_symlink_is_reported(root: Path) -> None:
    (root / "gone.md").symlink_to("nowhere.md")
    (root / "gone.png").symlink_to("nowhere.png")  # not a supported suffix: ignored

    scan = scan_folder(root, SUFFIXES)

    assert scan.problems == [(str(root / "gone.md"), "broken symlink")]


def test_root_must_be_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceRootError, match="no such folder"):
        scan_folder(tmp_path / "missing", SUFFIXES)
    file = write(tmp_path / "file.md")
    with pytest.raises(SourceRootError, match="not a folder"):
        scan_folder(file, SUFFIXES)


def test_root_with_dotdot_is_resolved(root: Path, tmp_path: Path) -> None:
    write(root / "a.md")
    (tmp_path / "other").mkdir()

    scan = scan_folder(tmp_path / "other" / ".." / "docs", SUFFIXES)

    assert scan.root == str(root.resolve())
    assert set(scan.files) == {str(root.resolve() / "a.md")}


def test_symlinked_root_keeps_its_name(root: Path, tmp_path: Path) -> None:
    write(root / "a.md")
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)

    scan = scan_folder(alias, SUFFIXES)

    assert scan.root == str(alias)
    assert scan.real_root == str(root.resolve())
    assert set(scan.files) == {str(alias / "a.md")}


def test_unlistable_folder_is_reported(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(root / "locked" / "a.md")
    write(root / "open" / "b.md")
    locked = str(root / "locked")
    make_unlistable(monkeypatch, locked)
    scan = scan_folder(root, SUFFIXES)

    assert names(root, scan.files) == {"open/b.md"}
    assert scan.unlisted == [locked]
    assert scan.problems == [(locked, "cannot list: Permission denied")]


def test_unlistable_root_raises(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def scandir(path: str) -> object:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr("services.indexer.sources.os.scandir", scandir)
    with pytest.raises(SourceRootError, match="cannot list"):
        scan_folder(root, SUFFIXES)


def test_content_hash_streams_the_whole_file(tmp_path: Path) -> None:
    data = os.urandom(MIB) * 2 + b"tail"
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert content_hash(path) == hashlib.sha256(data).hexdigest()
    assert content_hash(str(path)) == hashlib.sha256(data).hexdigest()


def test_protected_folders_are_left_out_silently(root: Path) -> None:
    data = root / "data"  # the data directory, inside the source
    write(data / "secrets" / "jwt-key.txt", "secret")
    # The data directory is not entered at all, even for its readable
    # `sources/`: those are sources of their own.
    write(data / "sources" / "default" / "shared.md")
    write(root / "notes" / "a.md")
    (root / "notes" / "keys").symlink_to(data / "secrets", target_is_directory=True)
    (root / "notes" / "key.txt").symlink_to(data / "secrets" / "jwt-key.txt")
    guard = PathGuard.build(data_dir=str(data), vector_data_dir=str(root / "vectors"))
    write(root / "vectors" / "books" / "segment.txt")

    scan = scan_folder(root, SUFFIXES, guard=guard)

    assert names(root, scan.files) == {"notes/a.md"}
    assert scan.problems == []  # not even named, like an excluded folder
    assert scan.unlisted == []


def test_a_symlink_into_a_protected_folder_outside_is_not_followed(
    root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    write(data / "secrets" / "token.txt", "secret")
    (root / "secrets").symlink_to(data / "secrets", target_is_directory=True)
    (root / "token.txt").symlink_to(data / "secrets" / "token.txt")
    (root / "proc").symlink_to("/proc/self", target_is_directory=True)
    write(root / "kept.md")

    scan = scan_folder(root, SUFFIXES, guard=PathGuard.build(data_dir=str(data)))

    assert names(root, scan.files) == {"kept.md"}
    assert scan.problems == []


def test_a_protected_root_is_not_scanned(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write(data / "secrets" / "token.txt")
    guard = PathGuard.build(data_dir=str(data))
    for root in (data, data / "secrets", Path("/proc"), Path("/")):
        with pytest.raises(SourceRootError, match="protected folder"):
            scan_folder(root, SUFFIXES, guard=guard)
    write(data / "sources" / "x" / "a.md")
    scan = scan_folder(data / "sources" / "x", SUFFIXES, guard=guard)
    assert names(data / "sources" / "x", scan.files) == {"a.md"}
