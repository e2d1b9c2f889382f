"""`semantic`: chunks cut where the topic changes.

The text is split into sentences (`sentences.py`); a sentence longer than
`chunk_tokens` is first cut by `recursive` (without overlap). Each sentence is embedded
together with `semantic_buffer` sentences on either side (the window smooths
single odd sentences), through the caller's `embed` (in production the
embedder's batched RPC). Between neighbouring sentences the cosine distance of
their windows is taken, and the text is cut where the distance is above the
`semantic_percentile`-th percentile of all distances: at 90, at the 10% largest
drops in similarity. Groups are then bounded: one under `min_chunk_tokens`
joins the neighbour it is most similar to when the two fit in `chunk_tokens`;
one over `chunk_tokens` is split by `recursive` (with `overlap_tokens`, the
only overlap semantic chunks have). Sections (caller-given boundaries) are
never crossed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from services.indexer.chunking.base import Document, Section
from services.indexer.chunking.recursive import recursive_ranges
from services.indexer.chunking.sentences import sentence_starts

Embed = Callable[[Sequence[str]], Awaitable[Sequence[Sequence[float]]]]


@dataclass(frozen=True)
class Unit:
    """Tokens [first, stop) of one sentence (or piece of a long one) in a section."""

    first: int
    stop: int
    section: int


def sentence_units(document: Document, sections: Sequence[Section], budget: int) -> list[Unit]:
    """The sentences of each section as token ranges, none over `budget` tokens."""
    cuts = sorted({document.token_at(offset) for offset in sentence_starts(document.text)})
    units: list[Unit] = []
    position = 0  # into cuts
    for number, section in enumerate(sections):
        while position < len(cuts) and cuts[position] <= section.first:
            position += 1
        bounds = [section.first]
        while position < len(cuts) and cuts[position] < section.stop:
            bounds.append(cuts[position])
            position += 1
        bounds.append(section.stop)
        for first, stop in pairwise(bounds):
            if stop - first <= budget:
                units.append(Unit(first, stop, number))
            else:
                units.extend(
                    Unit(a, b, number)
                    for a, b in recursive_ranges(document, first, stop, budget, 0)
                )
    return units


def windows(document: Document, units: Sequence[Unit], buffer: int) -> list[str]:
    """Each unit's text with up to `buffer` units of its section either side."""
    texts: list[str] = []
    for index, unit in enumerate(units):
        low = index
        while low > 0 and index - low < buffer and units[low - 1].section == unit.section:
            low -= 1
        high = index
        while (
            high + 1 < len(units)
            and high - index < buffer
            and units[high + 1].section == unit.section
        ):
            high += 1
        texts.append(document.slice(units[low].first, units[high].stop))
    return texts


def cosine_distance(u: Sequence[float], v: Sequence[float]) -> float:
    if len(u) != len(v):
        raise ValueError(f"embed: vectors of {len(u)} and {len(v)} dimensions")
    dot = math.fsum(a * b for a, b in zip(u, v, strict=True))
    norms = math.sqrt(math.fsum(a * a for a in u)) * math.sqrt(math.fsum(b * b for b in v))
    return 1.0 - dot / norms if norms else 1.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated linearly between ranks (numpy's default)."""
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Group:
    first: int
    stop: int
    section: int
    distance_after: float | None  # to the next group in the same section; None at a section end

    @property
    def size(self) -> int:
        return self.stop - self.first


def groups(
    units: Sequence[Unit], distances: Sequence[float | None], percentile_q: float
) -> list[Group]:
    """Units joined between cuts; `distances[i]` lies between units i and i+1
    (None across sections)."""
    known = [distance for distance in distances if distance is not None]
    threshold = percentile(known, percentile_q) if known else math.inf
    out: list[Group] = []
    current: Group | None = None
    for index, unit in enumerate(units):
        if current is None:
            current = Group(unit.first, unit.stop, unit.section, None)
        else:
            current.stop = unit.stop
        distance = distances[index] if index < len(distances) else None
        if distance is None or distance > threshold:
            current.distance_after = distance
            out.append(current)
            current = None
    if current is not None:
        out.append(current)
    return out


def merge_small(parts: Sequence[Group], minimum: int, budget: int) -> list[Group]:
    """Groups under `minimum` tokens joined to their more similar neighbour
    (in the same section) where the two fit in `budget`."""
    out: list[Group] = []
    carried: Group | None = None
    for index, part in enumerate(parts):
        group = Group(part.first, part.stop, part.section, part.distance_after)
        if carried is not None:
            group.first = carried.first
            carried = None
        if group.size < minimum:
            previous = out[-1] if out else None
            following = parts[index + 1] if index + 1 < len(parts) else None
            left = (
                previous is not None
                and previous.section == group.section
                and previous.size + group.size <= budget
            )
            right = (
                following is not None
                and following.section == group.section
                and group.size + following.size <= budget
            )
            before = previous.distance_after if previous is not None else None
            after = group.distance_after
            if right and (not left or (after is not None and (before is None or after <= before))):
                carried = group
                continue
            if left and previous is not None:
                previous.stop = group.stop
                previous.distance_after = group.distance_after
                continue
        out.append(group)
    return out


async def semantic_ranges(
    document: Document,
    sections: Sequence[Section],
    embed: Embed,
    *,
    chunk_tokens: int,
    overlap_tokens: int,
    percentile_q: float,
    min_chunk_tokens: int,
    buffer: int,
    batch_size: int,
) -> list[tuple[int, int, str]]:
    """Token ranges (first, stop, heading) of the semantic chunks."""
    units = await asyncio.to_thread(sentence_units, document, sections, chunk_tokens)
    texts = windows(document, units, buffer)
    vectors: list[Sequence[float]] = []
    for first in range(0, len(texts), batch_size):
        batch = texts[first : first + batch_size]
        answer = await embed(batch)
        if len(answer) != len(batch):
            raise ValueError(f"embed: {len(answer)} vectors for {len(batch)} texts")
        vectors.extend(answer)

    def finish() -> list[tuple[int, int, str]]:
        distances: list[float | None] = [
            cosine_distance(vectors[i], vectors[i + 1])
            if units[i].section == units[i + 1].section
            else None
            for i in range(len(units) - 1)
        ]
        bounded = merge_small(
            groups(units, distances, percentile_q),
            min(min_chunk_tokens, chunk_tokens),
            chunk_tokens,
        )
        ranges: list[tuple[int, int, str]] = []
        for group in bounded:
            heading = sections[group.section].heading
            if group.size <= chunk_tokens:
                ranges.append((group.first, group.stop, heading))
            else:
                ranges.extend(
                    (a, b, heading)
                    for a, b in recursive_ranges(
                        document, group.first, group.stop, chunk_tokens, overlap_tokens
                    )
                )
        return ranges

    return await asyncio.to_thread(finish)
