"""kefu.crypto, the one way secrets are kept in the database: values written by the two
schemes it replaced still decrypt, new values use the HKDF key of their purpose, and a
value of one purpose, another secret key or altered is refused."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet

from kefu import crypto
from kefu.channels import service as channels
from kefu.channels.schemas import WebhookIn
from kefu.config import Settings
from kefu.scope import SYSTEM

# Made with the code before the merge, under the tests' secret key "test-secret":
# kefu.channels.secretbox.seal("whsec 旧密钥 1") — key SHA-256(label + secret key) …
OLD_SECRETBOX = (
    "gAAAAABrB6ElYWdqmd67kwiGilFnKU8ItxL0S0KSjPk21Iipfc2DQGeBqwhvt85ZE5V9gBqAiCycC9yR78hi"
    "GN9VD4kKv2SJphglL1OtriZ6I-z6KF8kcpU="
)
# … and kefu.mail.crypto.encrypt("旧邮箱密码 p@ss") — HKDF, "kefu mailbox password v1".
OLD_MAIL_CRYPTO = (
    "gAAAAABrB6El0jz85vhal89IG1k74QcaSYnA0eH1Tc3wYic3967wmZn0sH4uFM-QQO6tm--EjbN64IHfcL_d"
    "xohbs-qK7YHoHlqNePVmoDXiYr4S59pPn-4="
)


def test_values_of_the_old_schemes_still_decrypt(settings: Settings) -> None:
    assert settings.secret_key == "test-secret"
    assert crypto.decrypt(OLD_SECRETBOX, crypto.INTEGRATION_SECRET) == "whsec 旧密钥 1"
    assert crypto.decrypt(OLD_MAIL_CRYPTO, crypto.MAILBOX_PASSWORD) == "旧邮箱密码 p@ss"


def test_new_values_use_the_hkdf_key_of_their_purpose(settings: Settings) -> None:
    token = crypto.encrypt("新密钥", crypto.INTEGRATION_SECRET)
    hkdf = Fernet(crypto._hkdf_key("test-secret", crypto.INTEGRATION_SECRET))
    assert hkdf.decrypt(token.encode()).decode() == "新密钥"
    legacy = Fernet(
        crypto._legacy_key("test-secret", crypto._LEGACY_SHA256_LABELS[crypto.INTEGRATION_SECRET])
    )
    with pytest.raises(Exception):  # noqa: B017 (InvalidToken): not the old derivation
        legacy.decrypt(token.encode())
    assert crypto.decrypt(token, crypto.INTEGRATION_SECRET) == "新密钥"


def test_refused_across_purposes_keys_and_alterations(settings: Settings) -> None:
    token = crypto.encrypt("秘密", crypto.MAILBOX_PASSWORD)
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(token, crypto.INTEGRATION_SECRET)
    with pytest.raises(crypto.SecretUnreadable):  # the legacy key is not the mailbox's
        crypto.decrypt(OLD_SECRETBOX, crypto.MAILBOX_PASSWORD)
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[-1] ^= 1
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(base64.urlsafe_b64encode(bytes(raw)).decode(), crypto.MAILBOX_PASSWORD)
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt("not a token ✗", crypto.MAILBOX_PASSWORD)
    settings.secret_key = "another-secret"
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(token, crypto.MAILBOX_PASSWORD)
    with pytest.raises(ValueError):  # callers that caught the old ValueError still do
        crypto.decrypt(OLD_SECRETBOX, crypto.INTEGRATION_SECRET)


def test_a_stored_webhook_secret_of_the_old_scheme_still_reads(db, settings: Settings) -> None:
    """A subscription row as the old code left it: its secret reads; rotated, the new one
    is written with the HKDF key."""
    sub, _secret = channels.create_webhook(
        db, SYSTEM, WebhookIn(name="旧", url="https://hooks.example.cn/kefu", topics=["*"])
    )
    sub.secret = OLD_SECRETBOX
    db.flush()
    assert channels.webhook_secret(sub) == "whsec 旧密钥 1"
    new = channels.rotate_webhook_secret(db, SYSTEM, sub.id)
    hkdf = Fernet(crypto._hkdf_key("test-secret", crypto.INTEGRATION_SECRET))
    assert hkdf.decrypt(sub.secret.encode()).decode() == new == channels.webhook_secret(sub)
