"""The whole mesh on real components, once per test session (per xdist worker).

Real PostgreSQL 16, real Redis, Qdrant Edge, the real Envoy binary and the
MiniLM model, on free ports in a temporary directory. The first admin is
created with the mesh's bootstrap token, as a user would.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from semantik.v1 import auth_pb2, auth_pb2_grpc
from semantik_runner.envoy import EdgeSettings
from semantik_runner.mesh import Mesh, MeshPorts
from tests.embedder.tiny_rerankers import build_cross_encoder

ADMIN_USER = "admin"
ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def mesh() -> Iterator[Mesh]:
    # Not under pytest's tmp_path: pytest makes that 0700 at every session
    # start, and PostgreSQL runs as its own system user when we are root.
    root = Path(tempfile.mkdtemp(prefix="semantik-mesh-"))
    # Production rate limits would throttle the suite (the fuzzer sends >10,000
    # requests); tests/envoy checks the limits on their own Envoy.
    unlimited = 1_000_000
    edge = EdgeSettings(
        rate_limit_per_address=unlimited,
        rate_limit_per_address_burst=unlimited,
        rate_limit_per_key=unlimited,
        rate_limit_per_key_burst=unlimited,
    )
    # No reranker weights ship offline: a tiny random cross-encoder stands in,
    # so the reranking path runs end to end (its scores, not its quality).
    reranker = build_cross_encoder(root / "reranker")
    running = Mesh(root, MeshPorts.free(), edge=edge, extra_env={"RERANKER_MODEL": str(reranker)})
    running.start(timeout_s=300)
    running.bootstrap_admin(ADMIN_USER, ADMIN_PASSWORD)
    yield running
    running.stop()
    shutil.rmtree(root, ignore_errors=True)


def login(target: str, user_id: str, password: str) -> auth_pb2.AuthTokens:
    with grpc.insecure_channel(target) as channel:
        tokens: auth_pb2.AuthTokens = auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(user_id=user_id, password=password), timeout=30
        )
    return tokens


@pytest.fixture(scope="session")
def admin_token(mesh: Mesh) -> str:
    """An access token of the bootstrap admin."""
    return login(mesh.grpc_target, ADMIN_USER, ADMIN_PASSWORD).access_token
