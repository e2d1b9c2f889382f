"""Password hashing with argon2id (argon2-cffi: the maintained binding of the
Password Hashing Competition winner, with RFC 9106 parameters by default).

Hashing costs tens of milliseconds of CPU by design, so it runs in a thread,
never on the event loop.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from servicekit.errors import FieldViolations

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024

_hasher = PasswordHasher()
# Verified when the user does not exist, so a wrong user id costs the same
# time as a wrong password and does not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def check_new_password(password: str, field: str, violations: FieldViolations) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        violations.add(field, f"at least {MIN_PASSWORD_CHARS} characters")
    elif len(password) > MAX_PASSWORD_CHARS:
        violations.add(field, f"at most {MAX_PASSWORD_CHARS} characters")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(encoded: str, password: str) -> bool:
    try:
        return _hasher.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(encoded: str | None, password: str) -> bool:
    """True if `password` matches; a missing hash still costs one verification."""
    if encoded is None:
        await asyncio.to_thread(_verify, _DUMMY_HASH, password)
        return False
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    return await asyncio.to_thread(_verify, encoded, password)
