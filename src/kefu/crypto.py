"""Secrets kept in the database — mailbox passwords, webhook signing keys, robot secrets —
encrypted with keys derived from the instance's secret key. The one way Kefu does it.

Fernet (from `cryptography`) is authenticated encryption — AES-128-CBC with an
HMAC-SHA256 over a versioned, timestamped token — so a tampered or truncated value fails
loudly instead of decrypting to garbage, and the format is a stable, audited standard that
needs no nonce bookkeeping from us. Its key is not the secret key itself but one derived
from it with HKDF-SHA256 and a purpose label: the secret key also signs sessions and
tokens, and a key derived per purpose keeps those uses from sharing key material (a value
of one purpose does not decrypt as another). Changing `KEFU_SECRET_KEY` makes stored
secrets unreadable (`SecretUnreadable`): a mailbox then asks for its password again, a
webhook or robot for a new secret.

Integration secrets were once encrypted by `kefu.channels.secretbox`, whose key was a plain
SHA-256 of a label and the secret key. Values it wrote are still read (that key is a
fallback for decryption only); anything written now uses the HKDF key, and a secret that
is set again (a rotated webhook secret, an edited robot) is re-encrypted with it.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kefu.config import get_settings, secret_key

# Purposes (HKDF info labels). Never change one: what it encrypted would become unreadable.
MAILBOX_PASSWORD = b"kefu mailbox password v1"
INTEGRATION_SECRET = b"kefu integration secret v1"  # webhook signing keys, robot secrets

# Read-only fallbacks: the key derivation of the retired kefu.channels.secretbox.
_LEGACY_SHA256_LABELS = {INTEGRATION_SECRET: b"kefu.channels.secretbox\x00"}


class SecretUnreadable(ValueError):
    """The value was encrypted with another secret key, for another purpose, or altered."""


def _hkdf_key(key: str, purpose: bytes) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        key.encode()
    )
    return base64.urlsafe_b64encode(derived)


def _legacy_key(key: str, label: bytes) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(label + key.encode()).digest())


@lru_cache(maxsize=16)
def _box(key: str, purpose: bytes) -> MultiFernet:
    """Encrypts with the HKDF key; decrypts with it, then with any legacy key."""
    keys = [Fernet(_hkdf_key(key, purpose))]
    if purpose in _LEGACY_SHA256_LABELS:
        keys.append(Fernet(_legacy_key(key, _LEGACY_SHA256_LABELS[purpose])))
    return MultiFernet(keys)


def _current(purpose: bytes) -> MultiFernet:
    return _box(secret_key(get_settings()), purpose)


def encrypt(plain: str, purpose: bytes) -> str:
    return _current(purpose).encrypt(plain.encode()).decode("ascii")


def decrypt(token: str, purpose: bytes) -> str:
    try:
        return _current(purpose).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable() from exc
