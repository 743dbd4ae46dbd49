"""The log scan that runs around every test (tests/conftest.py) recognises secrets."""

from __future__ import annotations

import pytest

from auth.keys import generate_api_key
from providers.crypto import mask
from tests.conftest import SECRET_PATTERNS


@pytest.mark.parametrize(
    "line",
    [
        "calling with agw-FAKEfakeFAKEfakeFAKEfake0000",
        "upstream key sk-proj-abcdefghijklmnop",
        "Authorization: Bearer abcdefghijklmnopqrstuvwxyz",
        "form client_secret=entra-client-secret",
    ],
)
def test_secret_shapes_are_caught(line):
    assert SECRET_PATTERNS.search(line)


def test_a_generated_key_is_caught():
    assert SECRET_PATTERNS.search(f"calling with {generate_api_key()}")


@pytest.mark.parametrize(
    "line",
    [
        f"credential {mask('sk-proj-abcdefghijklmnop1234')} fingerprint 0a1b2c3d4e5f",
        "api key prefix agw-AbCd1234",
        "deployment 3 (openai) failed: rate_limited",
    ],
)
def test_masked_and_harmless_lines_pass(line):
    assert not SECRET_PATTERNS.search(line)
