"""Secrets of integrations (webhook signing keys, robot secrets) encrypted at rest with a
key derived from the instance's secret key (Fernet: AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from kefu.config import get_settings, secret_key


def _fernet() -> Fernet:
    raw = hashlib.sha256(b"kefu.channels.secretbox\x00" + secret_key(get_settings()).encode())
    return Fernet(base64.urlsafe_b64encode(raw.digest()))


def seal(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def open_(sealed: str) -> str:
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("the secret was sealed with another secret key") from exc
