"""The images hold what the services import, and pass hadolint.

A service that imports a first-party package its image leaves out crashes at
start; this finds every first-party package the services import (following
imports through those packages) and checks that each Dockerfile copies it and
that its `.dockerignore` lets it into the build context.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(
    path
    for path in (REPO / "deploy" / "docker").glob("Dockerfile*")
    if not path.name.endswith(".dockerignore")
)
# Where first-party top-level packages live (gen/python: the generated code).
PACKAGE_ROOTS = (REPO, REPO / "gen" / "python")
ENTRY_PACKAGE = "services"


def _package_dir(name: str) -> Path | None:
    """The folder of a first-party package (namespace packages included)."""
    for root in PACKAGE_ROOTS:
        folder = root / name
        if folder.is_dir() and any(folder.rglob("*.py")):
            return folder
    return None


class _StartImports(ast.NodeVisitor):
    """Top-level names a module imports when it loads: not those imported
    lazily inside functions (optional paths, e.g. the embedded run's
    PostgreSQL tools) nor under `if TYPE_CHECKING:`."""

    def __init__(self) -> None:
        self.found: set[str] = set()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        return None

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        return None

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found |= {alias.name.split(".")[0] for alias in node.names}

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.level == 0:
            self.found.add(node.module.split(".")[0])


def _imported_top_levels(folder: Path) -> set[str]:
    visitor = _StartImports()
    for path in folder.rglob("*.py"):
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return visitor.found


def first_party_packages() -> dict[str, Path]:
    """{top-level name: folder} of every first-party package the services need."""
    needed: dict[str, Path] = {}
    pending = [ENTRY_PACKAGE]
    while pending:
        name = pending.pop()
        folder = _package_dir(name)
        if folder is None or name in needed:
            continue
        needed[name] = folder
        pending += sorted(_imported_top_levels(folder) - needed.keys())
    return needed


def _copied(dockerfile: Path) -> set[str]:
    """Sources of the COPY instructions that take from the build context."""
    sources: set[str] = set()
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        sources |= {w.rstrip("/") for w in words[1:-1] if not w.startswith("--")}
    return sources


def _context_allows(dockerfile: Path, relative: str) -> bool:
    """Whether the Dockerfile's own .dockerignore (last matching rule wins)
    sends `relative` into the build context."""
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    allowed = True
    for line in ignore.read_text(encoding="utf-8").splitlines():
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        negated = rule.startswith("!")
        pattern = rule.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(relative, pattern) or re.fullmatch(re.escape(pattern), relative):
            allowed = negated
    return allowed


def test_the_services_need_the_packages_found() -> None:
    needed = first_party_packages()
    # The scan is not empty-handed: these are known imports of the services.
    assert {"services", "servicekit", "semantik", "textkit"} <= needed.keys()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_each_image_holds_every_package_the_services_import(dockerfile: Path) -> None:
    copied = _copied(dockerfile)
    missing = []
    for folder in sorted(first_party_packages().values()):
        relative = folder.relative_to(REPO).as_posix()
        # gen/python/semantik arrives with `COPY gen/`.
        if not any(relative == c or relative.startswith(c + "/") for c in copied):
            missing.append(f"{relative} is not copied")
        elif not _context_allows(dockerfile, relative.split("/")[0]):
            missing.append(f"{relative} is left out by {dockerfile.name}.dockerignore")
    assert not missing, missing


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "hadolint"), str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
