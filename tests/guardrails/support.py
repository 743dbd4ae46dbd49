"""The guardrail detector corpus (tests/guardrails/corpus/*.jsonl) and its loader.

Each line is ``{"text": ..., "expect": [detector names]}`` (``[]`` for a near miss). Key-
shaped values are never written in the files, so secret scanners have nothing to flag: the
text says ``{{openai_key}}`` and the loader puts a freshly built (seeded, so stable) value
there, assembled from parts such as ``"sk-" + "proj-" + body``. AWS's documented example
key id is split the same way (tests/observability/test_redaction.py does it too).
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
BASE62 = string.ascii_letters + string.digits
URLSAFE = BASE62 + "-_"
BASE64 = BASE62 + "+/"
BASE32 = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class Case:
    source: str  # file:line
    text: str
    expect: frozenset[str]


def _body(rng: random.Random, alphabet: str, size: int) -> str:
    # At least one of each class a real key has: a random key lacking one is that unlucky.
    while True:
        body = "".join(rng.choice(alphabet) for _ in range(size))
        if all(any(test(c) for c in body) for test in (str.isupper, str.islower, str.isdigit)):
            return body


def _b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _pem(rng: random.Random, kind: str, lines: int, *, end: bool = True, headers: str = "") -> str:
    label = f"{kind} PRIVATE KEY".strip()
    body = "\n".join(_body(rng, BASE64, 64) for _ in range(lines)) + "\n" + _body(rng, BASE64, 24)
    block = "-----" + "BEGIN " + label + "-----\n" + headers + body
    return block + ("\n-----" + "END " + label + "-----" if end else "")


def _cert(rng: random.Random) -> str:
    body = "\n".join(_body(rng, BASE64, 64) for _ in range(4))
    return "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----"


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "openai_key": lambda r: "sk-" + _body(r, BASE62, 48),
    "openai_proj_key": lambda r: "sk-" + "proj-" + _body(r, URLSAFE, 156),
    "openai_placeholder": lambda r: "sk-" + "x" * 48,
    "anthropic_key": lambda r: "sk-" + "ant-api03-" + _body(r, URLSAFE, 93) + "AA",
    "aigateway_key": lambda r: "agw-" + _body(r, URLSAFE, 43),
    "aigateway_pat": lambda r: "agw-" + "pat-" + _body(r, URLSAFE, 43),
    "stripe_live": lambda r: "sk_" + "live_" + _body(r, BASE62, 99),
    "stripe_restricted": lambda r: "rk_" + "live_" + _body(r, BASE62, 99),
    "stripe_test": lambda r: "sk_" + "test_" + _body(r, BASE62, 24),
    "github_ghp": lambda r: "gh" + "p_" + _body(r, BASE62, 36),
    "github_gho": lambda r: "gh" + "o_" + _body(r, BASE62, 36),
    "github_fine": lambda r: "github_" + "pat_" + _body(r, BASE62, 22) + "_" + _body(r, BASE62, 59),
    "slack_bot": lambda r: (
        "xo"
        + "xb-"
        + "".join(r.choice(string.digits) for _ in range(12))
        + "-"
        + "".join(r.choice(string.digits) for _ in range(13))
        + "-"
        + _body(r, BASE62, 24)
    ),
    "slack_user": lambda r: (
        "xo"
        + "xp-"
        + "".join(r.choice(string.digits) for _ in range(12))
        + "-"
        + "".join(r.choice(string.digits) for _ in range(12))
        + "-"
        + _body(r, BASE62, 32)
    ),
    "google_api_key": lambda r: "AI" + "za" + _body(r, URLSAFE, 35),
    "aws_example_id": lambda r: "AKIA" + "IOSFODNN7EXAMPLE",  # AWS's documented example
    "aws_key_id": lambda r: "AKIA" + "".join(r.choice(BASE32) for _ in range(16)),
    "aws_sts_id": lambda r: "ASIA" + "".join(r.choice(BASE32) for _ in range(16)),
    "aws_example_secret": lambda r: "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY",
    "aws_secret": lambda r: _body(r, BASE64, 40),
    "jwt": lambda r: (
        _b64url({"alg": "HS256", "typ": "JWT"})
        + "."
        + _b64url({"sub": "1234567890", "name": "Jane Doe", "iat": 1516239022})
        + "."
        + _body(r, URLSAFE, 43)
    ),
    "jwt_rs256": lambda r: (
        _b64url({"alg": "RS256", "kid": "k1"})
        + "."
        + _b64url({"iss": "https://auth.example.com", "exp": 1893456000})
        + "."
        + _body(r, URLSAFE, 342)
    ),
    "opaque_token": lambda r: _body(r, URLSAFE, 40),
    "rsa_key": lambda r: _pem(r, "RSA", 12),
    "pkcs8_key": lambda r: _pem(r, "", 10),
    "ec_key": lambda r: _pem(r, "EC", 3),
    "openssh_key": lambda r: _pem(r, "OPENSSH", 6),
    "encrypted_key": lambda r: _pem(
        r, "RSA", 8, headers="Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F2A1B0C9D8E7F60\n\n"
    ),
    "pgp_key": lambda r: _pem(r, "PGP", 8, headers="Version: GnuPG v2\n\n").replace(
        "KEY-----", "KEY BLOCK-----"
    ),
    "truncated_key": lambda r: _pem(r, "RSA", 3, end=False),
    "certificate": _cert,
    "begin_marker": lambda r: "-----" + "BEGIN PRIVATE " + "KEY-----",
    "hex32": lambda r: "".join(r.choice("0123456789abcdef") for _ in range(32)),
    "hex_sha": lambda r: "".join(r.choice("0123456789abcdef") for _ in range(40)),
}

_SLOT = re.compile(r"\{\{(\w+)\}\}")


def expand(text: str, seed: str) -> str:
    rng = random.Random(seed)
    return _SLOT.sub(lambda m: GENERATORS[m.group(1)](rng), text)


def load_corpus() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            source = f"{path.name}:{number}"
            data = json.loads(line)
            cases.append(Case(source, expand(data["text"], source), frozenset(data["expect"])))
    return cases
