"""The whole mesh on real components, once per test session (per xdist worker).

Real PostgreSQL 16, real Redis, Qdrant Edge, the real Envoy binary and the
MiniLM model, on free ports in a temporary directory.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from semantik_runner.mesh import Mesh, MeshPorts


@pytest.fixture(scope="session")
def mesh() -> Iterator[Mesh]:
    # Not under pytest's tmp_path: pytest makes that 0700 at every session
    # start, and PostgreSQL runs as its own system user when we are root.
    root = Path(tempfile.mkdtemp(prefix="semantik-mesh-"))
    running = Mesh(root, MeshPorts.free())
    running.start(timeout_s=300)
    yield running
    running.stop()
    shutil.rmtree(root, ignore_errors=True)
