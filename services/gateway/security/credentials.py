"""The three credentials of the public API and how each is made and checked.

- Access tokens: JWTs (HS256, PyJWT: the maintained reference JWT library
  for Python) with `sub` (user id), `ver` (the user's token version: a
  password change bumps it, so older tokens die), `sid` (the sign-in they
  came from), `iat`, `exp`, `iss`, `typ` and a `kid` header.
- Refresh tokens: `smr_` + 32 random bytes; stored only as SHA-256.
- API keys: `smk_{id}_{secret}`; the id is public (the resource id), the
  whole key is stored only as SHA-256. Random 256-bit secrets need no slow
  hash: nothing can be guessed, and a fast hash keeps every call cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
import uuid
from dataclasses import dataclass

import jwt

from services.gateway.security.signing_keys import SigningKeys

ISSUER = "semantik"
ALGORITHM = "HS256"
REFRESH_PREFIX = "smr_"
API_KEY_PREFIX = "smk_"
API_KEY_ID_LENGTH = 16
_ID_ALPHABET = string.ascii_lowercase + string.digits


class InvalidCredential(ValueError):
    """A credential that is malformed, forged, expired or for another key."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    token_version: int
    session_id: str


def sha256(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def same_hash(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


class AccessTokens:
    def __init__(self, keys: SigningKeys, ttl_s: int) -> None:
        self._keys = keys
        self.ttl_s = ttl_s

    def issue(self, user_id: str, token_version: int, session_id: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "typ": "access",
            "sub": user_id,
            "ver": token_version,
            "sid": session_id,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(
            claims, self._keys.current, algorithm=ALGORITHM, headers={"kid": self._keys.current_kid}
        )

    def verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidCredential("malformed access token") from exc
        kid = header.get("kid")
        secret = self._keys.secrets_by_kid.get(kid) if isinstance(kid, str) else None
        if secret is None:
            raise InvalidCredential("access token signed with an unknown key")
        try:
            # The algorithm list is fixed: a token cannot choose `none` or RS/HS confusion.
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidCredential("access token expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidCredential("invalid access token") from exc
        user_id, version, session = claims.get("sub"), claims.get("ver"), claims.get("sid")
        if (
            claims.get("typ") != "access"
            or not isinstance(user_id, str)
            or not isinstance(version, int)
            or not isinstance(session, str)
        ):
            raise InvalidCredential("invalid access token")
        return AccessClaims(user_id, version, session)


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def new_api_key() -> tuple[str, str]:
    """(id, whole key)."""
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(API_KEY_ID_LENGTH))
    return key_id, f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def api_key_id(key: str) -> str:
    """The id inside an API key; InvalidCredential if it is not one."""
    if not key.startswith(API_KEY_PREFIX):
        raise InvalidCredential("not an API key")
    key_id, sep, secret = key[len(API_KEY_PREFIX) :].partition("_")
    if (
        not sep
        or len(key_id) != API_KEY_ID_LENGTH
        or not all(c in _ID_ALPHABET for c in key_id)
        or len(secret) < 32
    ):
        raise InvalidCredential("malformed API key")
    return key_id


def looks_like_api_key(value: str) -> bool:
    return value.startswith(API_KEY_PREFIX)
