"""Secrets kept in the database (mailbox passwords), encrypted with a key derived from the
instance's secret key.

Fernet (from `cryptography`) is authenticated encryption — AES-128-CBC with an
HMAC-SHA256 over a versioned, timestamped token — so a tampered or truncated value fails
loudly instead of decrypting to garbage, and the format is a stable, audited standard that
needs no nonce bookkeeping from us. Its key is not the secret key itself but one derived
from it with HKDF-SHA256 and a purpose label: the secret key also signs sessions and
tokens, and a key derived per purpose keeps those uses from sharing key material. Changing
`KEFU_SECRET_KEY` makes stored passwords unreadable; the mailbox then reports that its
password must be entered again (nothing else breaks).
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kefu.config import get_settings, secret_key

PURPOSE = b"kefu mailbox password v1"


class SecretUnreadable(Exception):
    """The value was encrypted with another secret key, or altered."""


@lru_cache(maxsize=8)
def _fernet(key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(
        key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _box() -> Fernet:
    return _fernet(secret_key(get_settings()))


def encrypt(plain: str) -> str:
    return _box().encrypt(plain.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _box().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable() from exc
