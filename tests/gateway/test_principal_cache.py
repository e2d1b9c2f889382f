"""The principal cache: reuse within the TTL, expiry, clearing, and the guard
that keeps an answer fetched across a clear out of the cache."""

from __future__ import annotations

import asyncio

import pytest

from semantik.internal.v1 import metadata_pb2
from semantik.v1 import user_pb2
from services.gateway.security.principal_cache import PrincipalCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Metadata:
    """Counts resolves and answers with the current grants."""

    def __init__(self) -> None:
        self.calls = 0
        self.role = user_pb2.ROLE_ADMIN

    async def resolve(self) -> metadata_pb2.ResolvePrincipalResponse:
        self.calls += 1
        await asyncio.sleep(0)
        response = metadata_pb2.ResolvePrincipalResponse()
        response.user.user.role = self.role
        return response


def _request(user: str) -> metadata_pb2.ResolvePrincipalRequest:
    return metadata_pb2.ResolvePrincipalRequest(user_id=user, session_id="s1")


async def test_reuses_an_answer_until_it_expires() -> None:
    clock, metadata = Clock(), Metadata()
    cache = PrincipalCache(ttl_s=2.0, clock=clock)
    for _ in range(3):
        await cache.get(_request("alice"), metadata.resolve)
    assert metadata.calls == 1
    await cache.get(_request("bob"), metadata.resolve)
    assert metadata.calls == 2
    clock.now += 2.0
    await cache.get(_request("alice"), metadata.resolve)
    assert metadata.calls == 3


async def test_clear_makes_the_next_call_resolve_again() -> None:
    metadata = Metadata()
    cache = PrincipalCache(ttl_s=60.0, clock=Clock())
    admin, viewer = user_pb2.ROLE_ADMIN, user_pb2.ROLE_VIEWER
    assert (await cache.get(_request("alice"), metadata.resolve)).user.user.role == admin
    metadata.role = viewer
    assert (await cache.get(_request("alice"), metadata.resolve)).user.user.role == admin
    cache.clear()
    assert (await cache.get(_request("alice"), metadata.resolve)).user.user.role == viewer


async def test_an_answer_fetched_across_a_clear_is_not_kept() -> None:
    metadata = Metadata()
    cache = PrincipalCache(ttl_s=60.0, clock=Clock())
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_resolve() -> metadata_pb2.ResolvePrincipalResponse:
        started.set()
        await release.wait()
        return await metadata.resolve()  # read before the revocation committed

    pending = asyncio.create_task(cache.get(_request("alice"), slow_resolve))
    await started.wait()
    cache.clear()  # a grant was deleted meanwhile
    release.set()
    await pending
    assert len(cache) == 0
    await cache.get(_request("alice"), metadata.resolve)
    assert metadata.calls == 2


async def test_ttl_zero_always_resolves() -> None:
    metadata = Metadata()
    cache = PrincipalCache(ttl_s=0)
    for _ in range(3):
        await cache.get(_request("alice"), metadata.resolve)
    assert metadata.calls == 3
    assert len(cache) == 0


async def test_a_full_cache_stays_bounded() -> None:
    clock, metadata = Clock(), Metadata()
    cache = PrincipalCache(ttl_s=60.0, max_entries=10, clock=clock)
    for i in range(25):
        await cache.get(_request(f"user-{i}"), metadata.resolve)
        assert len(cache) <= 10
    # The newest entry is kept.
    calls = metadata.calls
    await cache.get(_request("user-24"), metadata.resolve)
    assert metadata.calls == calls


@pytest.mark.parametrize("ttl_s", [-1.0, 0.0])
async def test_non_positive_ttl_disables(ttl_s: float) -> None:
    metadata = Metadata()
    cache = PrincipalCache(ttl_s=ttl_s)
    await cache.get(_request("alice"), metadata.resolve)
    await cache.get(_request("alice"), metadata.resolve)
    assert metadata.calls == 2
