"""AIP-158 pagination: page sizes and opaque page tokens.

A token is the urlsafe base64 of a small JSON object holding the last sort key
of the page and whatever the request was scoped to, so a token is rejected
when replayed against another listing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from servicekit.errors import invalid_argument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int, field: str = "page_size") -> int:
    if requested < 0:
        raise invalid_argument({field: "must not be negative"})
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def encode_token(kind: str, **position: Any) -> str:
    raw = json.dumps({"kind": kind, **position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, kind: str, field: str = "page_token") -> dict[str, Any] | None:
    """The position a token holds; None for the empty token (first page)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise invalid_argument({field: "is not a token from a previous page"}) from exc
    if not isinstance(position, dict) or position.get("kind") != kind:
        raise invalid_argument({field: "is not a token from a previous page of this listing"})
    return position


def bad_token(field: str = "page_token") -> Exception:
    return invalid_argument({field: "is not a token from a previous page of this listing"})


def after_key(token: str, kind: str, listing: str) -> str | None:
    """The last sort key of the previous page of `listing`; None on the first page."""
    position = decode_token(token, kind)
    if position is None:
        return None
    after = position.get("after")
    if position.get("listing") != listing or not isinstance(after, str):
        raise bad_token()
    return after


R = TypeVar("R", bound=Mapping[str, Any])


def next_page(
    rows: Sequence[R], size: int, kind: str, listing: str, key: str
) -> tuple[Sequence[R], str]:
    """The page (rows were fetched with limit size + 1) and the token after it."""
    page = rows[:size]
    token = ""
    if len(rows) > size:
        token = encode_token(kind, listing=listing, after=page[-1][key])
    return page, token
