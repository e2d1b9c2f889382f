"""Secrets the embedded run generates once and keeps with its data.

Each lives in `<data>/secrets/<name>` (directory 0700, file 0600) and is
reused on every restart, so the JWT signing key, the service token and the
bootstrap token survive `semantik-run` restarts over the same data.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRETS_DIR = "secrets"


def load_or_create(data_dir: Path, name: str, nbytes: int = 32) -> tuple[str, bool]:
    """(value, created): the secret stored under `data_dir`, made when absent."""
    path = path_of(data_dir, name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    try:
        value = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        value = ""
    if value:
        path.chmod(0o600)
        return value, False
    # Hex, not URL-safe base64: a value that starts with "-" is taken for an
    # option when pasted after `--token` (argparse), which happened in CI.
    value = secrets.token_hex(nbytes)
    # O_EXCL: two runs racing over a fresh directory cannot both write one.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create(data_dir, name, nbytes)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(value + "\n")
    return value, True


def path_of(data_dir: Path, name: str) -> Path:
    return data_dir / SECRETS_DIR / name
