"""Team API key material: generation, hashing and display prefixes.

Keys are 256-bit random tokens, so a single SHA-256 is the right hash: a slow password hash
buys nothing against brute force of that much entropy and would cost milliseconds per call.
Imported keys (``secret: env:…`` in gateway.yaml) may be weaker; they are the admin's choice.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "agw-"
DISPLAY_PREFIX_LENGTH = 12  # "agw-" + 8 characters: enough to tell keys apart, useless to guess


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def display_prefix(raw_key: str) -> str:
    return raw_key[:DISPLAY_PREFIX_LENGTH]
