"""Password hashing with Argon2id (argon2-cffi's tuned defaults).

Each check holds 64 MiB while it runs; a semaphore caps how many run at once in one
process, so a burst of sign-ins cannot balloon a web process's memory.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_slots = threading.BoundedSemaphore(2)


@lru_cache(maxsize=1)
def _dummy() -> str:
    """Verified against when the username is unknown, so timing does not reveal who exists.
    Made on first use, not at import, to keep start-up quick and small."""
    return _hasher.hash("kefu-dummy-password")


def hash_password(password: str) -> str:
    with _slots:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        with _slots:
            ok = _hasher.verify(password_hash or _dummy(), password)
        return ok and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
