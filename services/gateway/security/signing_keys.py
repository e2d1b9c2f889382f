"""JWT signing keys from `JWT_SECRET_KEY`, with `kid` rotation.

The value is either one secret, or `kid:secret` pairs separated by commas:
the first pair signs new tokens, every pair verifies, so a key is rotated by
putting the new one first and dropping the old one once its tokens expired.
Secrets are at least 32 bytes (HS256 wants a key as long as its hash).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

MIN_SECRET_BYTES = 32
_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SigningKeyError(ValueError):
    """JWT_SECRET_KEY is malformed or too weak."""


@dataclass(frozen=True)
class SigningKeys:
    current_kid: str
    secrets_by_kid: dict[str, bytes]

    @property
    def current(self) -> bytes:
        return self.secrets_by_kid[self.current_kid]

    @classmethod
    def parse(cls, raw: str) -> SigningKeys:
        raw = raw.strip()
        if not raw:
            raise SigningKeyError("JWT_SECRET_KEY is empty")
        pairs: list[tuple[str, str]] = []
        if ":" in raw:
            for part in raw.split(","):
                kid, sep, secret = part.strip().partition(":")
                if not sep or not _KID.match(kid):
                    raise SigningKeyError(
                        "JWT_SECRET_KEY: expected kid:secret[,kid:secret...] with kids of "
                        "letters, digits, '.', '_' or '-'"
                    )
                pairs.append((kid, secret))
        else:
            pairs.append((hashlib.sha256(raw.encode()).hexdigest()[:12], raw))
        found: dict[str, bytes] = {}
        for kid, secret in pairs:
            encoded = secret.encode()
            if len(encoded) < MIN_SECRET_BYTES:
                raise SigningKeyError(
                    f"JWT_SECRET_KEY: the secret of kid {kid!r} has {len(encoded)} bytes; "
                    f"at least {MIN_SECRET_BYTES} are needed"
                )
            if kid in found:
                raise SigningKeyError(f"JWT_SECRET_KEY: kid {kid!r} appears twice")
            found[kid] = encoded
        return cls(current_kid=pairs[0][0], secrets_by_kid=found)

    @classmethod
    def generate(cls) -> SigningKeys:
        """A random key for a development process (tokens die with it)."""
        return cls.parse(secrets.token_urlsafe(48))
