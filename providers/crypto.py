"""Encryption at rest for provider secrets (Fernet/MultiFernet).

``AIGATEWAY_ENCRYPTION_KEYS`` is a comma-separated list: the first key encrypts, every key
decrypts, so an operator rotates by putting a new key first and running
``manage.py gateway reencrypt``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretDecryptionError(Exception):
    """The ciphertext was not made with any configured key (wrong or missing key)."""


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.AIGATEWAY_ENCRYPTION_KEYS))


def encrypt_secret(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_secret(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError(
            "cannot decrypt a stored secret: AIGATEWAY_ENCRYPTION_KEYS does not hold its key"
        ) from exc


def reencrypt_secret(ciphertext: str) -> str:
    """Re-encrypt under the current primary key (MultiFernet.rotate keeps the timestamp)."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError("cannot re-encrypt: no configured key decrypts it") from exc


def fingerprint(secret: str) -> str:
    """A stable, non-reversible identifier for audit lines ("which key"), 12 hex chars."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def mask(secret: str) -> str:
    """``sk-…abcd``: enough to recognise a key, never enough to use it."""
    if len(secret) < 12:
        return "…" + secret[-2:] if len(secret) > 4 else "…"
    head = secret[:3] if not secret.startswith("sk-ant-") else secret[:7]
    return f"{head}…{secret[-4:]}"
