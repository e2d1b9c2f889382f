"""Fixtures of the edge tests: a stub gateway and the descriptor set (per module)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from semantik_runner.envoy import DESCRIPTOR_PATH
from tests.envoy.stub import StubGateway, running_stub_gateway


@pytest.fixture(scope="module")
async def stub_gateway() -> AsyncIterator[StubGateway]:
    async with running_stub_gateway() as stub:
        yield stub


@pytest.fixture(scope="module")
def descriptor() -> Path:
    if not DESCRIPTOR_PATH.is_file():
        pytest.fail(f"{DESCRIPTOR_PATH} missing: run `make proto`")
    return DESCRIPTOR_PATH


@pytest.fixture
def calls(stub_gateway: StubGateway) -> Iterator[list[str]]:
    stub_gateway.calls.clear()
    stub_gateway.credentials.clear()
    yield stub_gateway.calls
