"""Client streams read ahead: a server takes the first message (to check or
authorise it) and hands on the stream whole again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


async def chained(first: T, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    """`first`, then what is left of `rest`."""
    yield first
    async for message in rest:
        yield message
