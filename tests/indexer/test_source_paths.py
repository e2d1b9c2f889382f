"""Where imports may read (`source_paths`), on real folders and symlinks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.indexer.source_paths import (
    CONTROL_CHARACTERS,
    FILESYSTEM_ROOT,
    MISSING_INSIDE,
    MISSING_ROOT,
    NAME_TOO_LONG,
    NOT_A_FOLDER,
    NOT_ABSOLUTE,
    NOT_UTF8,
    OUTSIDE,
    PROTECTED,
    REQUIRED,
    TOO_LONG,
    PathGuard,
    SourcePathError,
    resolve,
    resolve_import_folder,
    resolve_root,
)


@dataclass(frozen=True)
class Layout:
    """A source among the folders it must not lead to."""

    tmp: Path
    source: Path
    outside: Path
    data: Path
    vectors: Path
    guard: PathGuard


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    tmp = Path(os.path.realpath(tmp_path))
    source, outside, data, vectors = (tmp / n for n in ("source", "outside", "data", "vectors"))
    for folder in (
        source / "a" / "b",
        outside / "sub",
        data / "secrets",
        data / "sources" / "x",
        data / "uploads",
        vectors,
    ):
        folder.mkdir(parents=True)
    (source / "file.txt").write_text("x", encoding="utf-8")
    links = {
        "inner": source / "a" / "b",
        "chain-in": source / "chain-in-2",
        "chain-in-2": Path("a"),  # relative, still inside
        "escape": outside,
        "escape-missing": tmp / "missing",
        "chain-out": source / "chain-out-2",
        "chain-out-2": outside / "sub",
        "chain-out-missing": source / "chain-out-missing-2",
        "chain-out-missing-2": outside / "gone",
        "relative-out": Path("../outside"),
        "relative-out-missing": Path("../gone"),
        "to-secrets": data / "secrets",
        "to-secrets-missing": data / "secrets" / "gone",
        "to-data": data,
        "to-vectors": vectors,
        "to-vectors-missing": vectors / "gone",
        "to-proc": Path("/proc/self"),
        "to-proc-missing": Path("/proc/no-such-entry"),
        "to-root": Path("/"),
        "loop": source / "loop",
    }
    for name, target in links.items():
        (source / name).symlink_to(target, target_is_directory=True)
    guard = PathGuard.build(data_dir=str(data), vector_data_dir=str(vectors))
    return Layout(tmp, source, outside, data, vectors, guard)


def refusal(root: str, path: str, guard: PathGuard) -> SourcePathError:
    with pytest.raises(SourcePathError) as error:
        resolve(root, path, guard)
    return error.value


@pytest.mark.parametrize(
    ("path", "real"),
    [
        ("", "."),
        ("a", "a"),
        ("a/b", "a/b"),
        ("a/b/", "a/b"),
        ("./a//b", "a/b"),
        ("inner", "a/b"),
        ("chain-in", "a"),
    ],
)
def test_folders_inside_the_source_resolve_to_their_real_path(
    layout: Layout, path: str, real: str
) -> None:
    root, folder = resolve(str(layout.source), path, layout.guard)
    assert root == str(layout.source)
    assert folder == os.path.normpath(layout.source / real)


def test_a_symlinked_root_resolves_to_the_real_folder(layout: Layout) -> None:
    alias = layout.tmp / "alias"
    alias.symlink_to(layout.source, target_is_directory=True)
    assert resolve(str(alias), "inner", layout.guard) == (
        str(layout.source),
        str(layout.source / "a" / "b"),
    )


def test_the_data_directory_s_sources_and_uploads_are_readable(layout: Layout) -> None:
    source = layout.data / "sources" / "x"
    assert resolve(str(source), "", layout.guard) == (str(source), str(source))
    uploads = str(layout.data / "uploads")
    assert resolve(uploads, "", layout.guard) == (uploads, uploads)


# (existing target, missing target): both must get the one OUTSIDE answer.
LEADS_OUTSIDE = [
    ("..", "../gone"),
    ("a/../../outside", "a/../../gone"),
    ("a/b/../../../outside/sub", "a/b/../../../gone"),
    ("escape", "escape-missing"),
    ("escape/sub", "escape/gone"),
    ("chain-out", "chain-out-missing"),
    ("relative-out", "relative-out-missing"),
    ("to-secrets", "to-secrets-missing"),
    ("to-data", "to-data/gone"),
    ("to-vectors", "to-vectors-missing"),
    ("to-proc", "to-proc-missing"),
    ("to-root", "to-root/no-such-folder-here"),
    ("file.txt/..", "gone/.."),
]


@pytest.mark.parametrize(("existing", "missing"), LEADS_OUTSIDE)
def test_paths_leading_outside_get_one_answer_whether_or_not_the_target_exists(
    layout: Layout, existing: str, missing: str
) -> None:
    answers = {str(refusal(str(layout.source), path, layout.guard)) for path in (existing, missing)}
    assert answers == {f"path: {OUTSIDE}"}


def test_absolute_paths_get_the_same_answer(layout: Layout) -> None:
    for path in (str(layout.outside), str(layout.tmp / "gone"), str(layout.source / "a"), "/"):
        error = refusal(str(layout.source), path, layout.guard)
        assert (error.field, error.message) == ("path", OUTSIDE)


def test_a_symlink_loop_gets_the_same_answer(layout: Layout) -> None:
    error = refusal(str(layout.source), "loop", layout.guard)
    assert (error.field, error.message) == ("path", OUTSIDE)


def test_a_source_holding_the_data_directory_cannot_name_it(layout: Layout) -> None:
    guard = PathGuard.build(data_dir=str(layout.source / "a"))
    for path in ("a", "a/b", "a/gone", "inner", "chain-in"):
        error = refusal(str(layout.source), path, guard)
        assert (error.field, error.message) == ("path", OUTSIDE)


def test_a_missing_folder_or_a_file_inside_the_source_is_said_so(layout: Layout) -> None:
    root = str(layout.source)
    assert refusal(root, "gone", layout.guard).message == MISSING_INSIDE
    assert refusal(root, "a/gone/deeper", layout.guard).message == MISSING_INSIDE
    assert refusal(root, "file.txt", layout.guard).message == NOT_A_FOLDER
    assert refusal(root, "file.txt/x", layout.guard).message == MISSING_INSIDE


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("x" * 5000, TOO_LONG),
        ("a/" + "x" * 300, NAME_TOO_LONG),
        ("a\0b", CONTROL_CHARACTERS),
        ("a\nb", CONTROL_CHARACTERS),
        ("a\x1b[31m", CONTROL_CHARACTERS),
        ("a\x7f", CONTROL_CHARACTERS),
        ("caf\udce9", NOT_UTF8),  # b"caf\xe9" decoded with surrogateescape
        ("\ud800", NOT_UTF8),
    ],
)
def test_malformed_paths_are_refused_from_the_string(
    layout: Layout, path: str, message: str
) -> None:
    error = refusal(str(layout.source), path, layout.guard)
    assert (error.field, error.message) == ("path", message)


def test_a_non_utf8_name_on_disk_is_refused(layout: Layout) -> None:
    name = os.fsdecode(b"caf\xe9")
    os.mkdir(os.fsencode(layout.source) + b"/caf\xe9")
    assert (layout.source / name).is_dir()
    assert refusal(str(layout.source), name, layout.guard).message == NOT_UTF8


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("/", FILESYSTEM_ROOT),
        ("/tmp/..", FILESYSTEM_ROOT),
        ("/proc", PROTECTED),
        ("/proc/self", PROTECTED),
        ("/proc/no-such-entry", PROTECTED),
        ("/sys", PROTECTED),
        ("/dev", PROTECTED),
        ("/run", PROTECTED),
        ("", REQUIRED),
        ("relative/docs", NOT_ABSOLUTE),
        ("/" + "x" * 5000, TOO_LONG),
        ("/tmp/a\0b", CONTROL_CHARACTERS),
        ("/tmp/a\nb", CONTROL_CHARACTERS),
        ("/tmp/caf\udce9", NOT_UTF8),
    ],
)
def test_roots_that_are_refused_say_why(layout: Layout, root: str, message: str) -> None:
    error = refusal(root, "", layout.guard)
    assert (error.field, error.message) == ("root", message)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("data", PROTECTED),
        ("data/secrets", PROTECTED),
        ("data/sources/../secrets", PROTECTED),
        ("data/gone", PROTECTED),
        ("vectors", PROTECTED),
        ("source/to-secrets", PROTECTED),
        ("source/to-data", PROTECTED),
        ("source/to-root", FILESYSTEM_ROOT),
        ("gone", MISSING_ROOT),
        ("source/file.txt", NOT_A_FOLDER),
    ],
)
def test_roots_in_the_layout_that_are_refused(layout: Layout, name: str, message: str) -> None:
    error = refusal(str(layout.tmp / name), "", layout.guard)
    assert (error.field, error.message) == ("root", message)


def test_the_guard_compares_real_paths_by_component(layout: Layout) -> None:
    guard, data = layout.guard, layout.data
    assert guard.refuses(data)
    assert guard.refuses(data / "secrets" / "jwt-key")
    assert guard.refuses(layout.vectors / "books")
    assert guard.refuses("/proc/1/environ")
    assert not guard.refuses(data / "sources" / "x")
    assert not guard.refuses(data / "uploads" / "u1")
    assert guard.refuses(data / "sourcesx")  # not a string prefix
    assert not guard.refuses(str(data) + "-other")
    assert not guard.refuses("/procfs")
    assert not guard.refuses(layout.source)


def test_the_guard_resolves_its_configured_folders(layout: Layout) -> None:
    alias = layout.tmp / "data-alias"
    alias.symlink_to(layout.data, target_is_directory=True)
    guard = PathGuard.build(data_dir=str(alias), vector_data_dir="")
    assert guard.refuses(layout.data / "secrets")
    assert not guard.refuses(layout.data / "sources" / "x")


def test_an_allowed_subfolder_linked_elsewhere_in_the_data_opens_nothing(tmp_path: Path) -> None:
    data = Path(os.path.realpath(tmp_path)) / "data"
    (data / "secrets").mkdir(parents=True)
    (data / "sources").symlink_to(data / "secrets", target_is_directory=True)
    guard = PathGuard.build(data_dir=str(data))
    assert guard.refuses(data / "secrets")
    with pytest.raises(SourcePathError) as error:
        resolve_root(str(data / "sources"), guard)
    assert error.value.message == PROTECTED


def test_an_import_folder_must_lie_in_its_source_root(layout: Layout) -> None:
    root, guard = str(layout.source), layout.guard
    assert resolve_import_folder(root, f"{root}/a/b", guard) == (root, f"{root}/a/b")
    assert resolve_import_folder(root, root, guard) == (root, root)
    alias = layout.tmp / "alias"
    alias.symlink_to(layout.source, target_is_directory=True)
    # A root given through a link: the folder may be named under either.
    assert resolve_import_folder(str(alias), f"{alias}/inner", guard)[1] == f"{root}/a/b"
    assert resolve_import_folder(str(alias), f"{root}/inner", guard)[1] == f"{root}/a/b"
    (layout.tmp / "source2").mkdir()
    for outside in (
        str(layout.tmp / "source2"),  # shares the root's spelling, not its folder
        str(layout.outside),
        f"{root}/../outside",
        f"{root}/escape",
        f"{root}/escape-missing",
        f"{root}/to-secrets",
    ):
        with pytest.raises(SourcePathError) as error:
            resolve_import_folder(root, outside, guard)
        assert (error.value.field, error.value.message) == ("source_path", OUTSIDE)


def test_an_import_folder_s_own_refusals_name_their_field(layout: Layout) -> None:
    root, guard = str(layout.source), layout.guard
    cases = [
        (str(layout.data), f"{layout.data}/sources", "source_root", PROTECTED),
        ("/", "/etc", "source_root", FILESYSTEM_ROOT),
        (root, "", "source_path", REQUIRED),
        (root, "a/b", "source_path", NOT_ABSOLUTE),
        (root, f"{root}/gone", "source_path", MISSING_INSIDE),
        (root, f"{root}/a\0", "source_path", CONTROL_CHARACTERS),
    ]
    for source_root, source_path, field, message in cases:
        with pytest.raises(SourcePathError) as error:
            resolve_import_folder(source_root, source_path, guard)
        assert (error.value.field, error.value.message) == (field, message)
