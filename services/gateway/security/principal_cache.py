"""A short-lived cache of resolved principals, so a search does not pay a
metadata round trip for its caller on every call.

What it holds is metadata's `ResolvePrincipalResponse` for one credential
(a user's sign-in, or an API key id), for `ttl_s` seconds. Everything that
checks the credential still runs on every call (token signature and expiry,
token version, key hash and expiry); only the database read is reused.

Staleness is bounded two ways:
- locally, every RPC that changes who may do what (`Rule.changes_access`:
  logout, password change, grants, keys, users, collections) forgets the
  whole cache when it finishes, so on one gateway a revocation takes effect
  on the next call;
- across gateway replicas, an entry lives at most `ttl_s` (2 s by default),
  which is how long another replica may still honour a revoked credential.

An answer that was being fetched while the cache was cleared is not stored
(a generation counter), so a read that raced a revocation cannot bring the
old grants back. Not cachetools' TTLCache: that guard is the point, and the
rest is a dict with expiry.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from semantik.internal.v1 import metadata_pb2

DEFAULT_TTL_S = 2.0
MAX_ENTRIES = 10_000

Resolve = Callable[[], Awaitable[metadata_pb2.ResolvePrincipalResponse]]


class PrincipalCache:
    def __init__(
        self,
        ttl_s: float = DEFAULT_TTL_S,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[bytes, tuple[float, metadata_pb2.ResolvePrincipalResponse]] = {}
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(
        self, request: metadata_pb2.ResolvePrincipalRequest, resolve: Resolve
    ) -> metadata_pb2.ResolvePrincipalResponse:
        """The cached answer for `request`, or `resolve()`'s (stored unless cleared meanwhile)."""
        if self._ttl_s <= 0:
            return await resolve()
        key = request.SerializeToString(deterministic=True)
        now = self._clock()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        response = await resolve()
        if generation == self._generation:
            if len(self._entries) >= self._max_entries:
                self._evict(now)
            self._entries[key] = (now + self._ttl_s, response)
        return response

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def _evict(self, now: float) -> None:
        live = {k: v for k, v in self._entries.items() if v[0] > now}
        if len(live) >= self._max_entries:
            # Still full of live entries: drop the older half (dicts keep insertion order).
            live = dict(list(live.items())[len(live) // 2 :])
        self._entries = live
