"""Built-in detectors of secrets and personal data, custom detectors, and ``scan``.

    scan("mail jane@acme.io", BUILTIN_DETECTORS.values())
    # [Finding(detector='pii.email', category='pii', start=5, end=17)]

Every pattern is compiled once, at import (built-ins) or when a policy is loaded (custom
ones). Each built-in pairs a pattern with a check of the match (validators.py: checksums,
issuer ranges, "does this key look random", placeholders) so that near misses (an order
number, a placeholder key, a date, a version string) do not count. docs/guardrails.md lists
what each detector finds and its measured precision and recall; the injection heuristics
are in injection.py, stream scanning in stream.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import regex

from aigateway.guardrails import validators as v
from aigateway.guardrails.injection import INJECTION_DETECTORS
from aigateway.guardrails.patterns import (
    END_MARGIN,
    Detector,
    Finding,
    PatternDetector,
    default_replacement,
    redact,
    resolve,
)

__all__ = [
    "BUILTIN_DETECTORS",
    "CATEGORIES",
    "Detector",
    "Finding",
    "default_replacement",
    "redact",
    "regex_detector",
    "scan",
    "wordlist_detector",
]

MAX_PATTERN_LENGTH = 1000
MAX_MATCH_LEN = 65_536
MAX_WORDS = 10_000
PHRASE_SPACE = 8  # the most whitespace characters a space in a listed phrase stands for
# A custom pattern's scan may take this long (seconds, plus seconds per character) before it
# is stopped and the text counts as matched (patterns.PatternDetector.hits). An ordinary
# pattern needs well under a millisecond for a prompt.
CUSTOM_TIMEOUT = (0.05, 5e-6)
# Ten ``in`` tests cost ~1 µs on 2 KB; a scan for a digit by the regex engine ~10 µs.
_DIGITS = tuple("0123456789")
_BUILTINS: list[PatternDetector] = []


def _builtin(
    name: str,
    pattern: str,
    max_match_len: int,
    accept: Callable[[Any], v.Span] | None = None,
    **shortcuts: Any,  # hints=…, lower_hints=…, anchors=… (patterns.PatternDetector)
) -> None:
    category = name.split(".")[0]
    _BUILTINS.append(
        PatternDetector(
            name,
            category,
            pattern,
            max_match_len=max_match_len,
            accept=accept,
            priority=10 + len(_BUILTINS),
            **shortcuts,
        )
    )


# -- secrets, most specific first (it wins a tie over the same span) ------------------------

_PEM = r"-----{} (?:[A-Z0-9]+ ){{0,3}}PRIVATE KEY(?: BLOCK)?-----"
# A PEM or PGP block: header lines (Proc-Type: …), base64, END. Without END (a key cut off
# mid-paste) the base64 alone still counts; a bare BEGIN line does not. Header values and
# base64 come in possessive runs, so a block ends only where the base64 ends: never just
# before more of it or before an END line still arriving, and never earlier because the
# text stops (the stream scanner relies on that: a match must not change with more text).
_builtin(
    "secrets.private_key",
    _PEM.format("BEGIN")
    + r"(?:\s*[A-Za-z][A-Za-z0-9-]{1,30}:[^\r\n]{0,200}+)*+"
    + r"\s+[A-Za-z0-9+/=]{16,100}+(?:\s*[A-Za-z0-9+/=]{1,100}+){0,1000}+"
    + r"(?:\s*"
    + _PEM.format("END")
    + r"|(?!\s*(?:-----|[A-Za-z0-9+/=])))",
    102_400,
    hints=("-----BEGIN",),
)
# Ours (auth/keys.py: "agw-" + 43 url-safe characters; admin tokens "agw-pat-" + 43).
_builtin(
    "secrets.aigateway_key",
    r"(?<![\w-])agw-(?:pat-)?(?P<body>[A-Za-z0-9_-]{32,64})(?![\w-])",
    80, v.accept_random_key("body"), hints=("agw-",),
)  # fmt: skip
_builtin(
    "secrets.anthropic_key",
    r"(?<![\w-])sk-ant-(?:[a-z]{2,10}\d{2}-)?(?P<body>[A-Za-z0-9_-]{20,250})(?![\w-])",
    280, v.accept_random_key("body"), hints=("sk-ant-",),
)  # fmt: skip
_builtin(
    "secrets.openai_key",
    r"(?<![\w-])sk-(?!ant-)(?:(?:proj|svcacct|admin)-)?(?P<body>[A-Za-z0-9_-]{20,250})"
    r"(?![\w-])",
    270, v.accept_random_key("body"), hints=("sk-",),
)  # fmt: skip
_builtin(
    "secrets.stripe_key",
    r"(?<![\w])[sr]k_(?:live|test)_(?P<body>[0-9A-Za-z]{16,247})(?![\w])",
    260, v.accept_random_key("body"), hints=("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
)  # fmt: skip
_builtin(
    "secrets.github_token",
    r"(?<![\w])(?:gh[pousr]_(?P<body>[A-Za-z0-9]{36,251})"
    r"|github_pat_(?P<pat>[A-Za-z0-9_]{50,240}))(?![\w])",
    260, v.accept_random_key("body", "pat"),
    hints=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
)  # fmt: skip
_builtin(
    "secrets.slack_token",
    r"(?<![\w-])xox[abposre]-(?P<body>[A-Za-z0-9-]{10,250})(?![\w-])",
    260, v.accept_random_key("body"), hints=("xox",),
)  # fmt: skip
_builtin(
    "secrets.google_api_key",
    r"(?<![\w-])AIza(?P<body>[0-9A-Za-z_-]{35})(?![\w-])",
    40, v.accept_random_key("body"), hints=("AIza",),
)  # fmt: skip
_builtin(
    "secrets.aws_access_key",
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])",
    20, hints=("AKIA", "ASIA"),
)  # fmt: skip
# The secret access key is 40 base64 characters like any other: only next to its name.
_builtin(
    "secrets.aws_secret",
    r"(?<![A-Za-z0-9])(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?"
    r"\s*[:=]\s*[\"']?(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
    120, v.accept_random_key("value", whole=False), hints=("secret",), lower_hints=True,
)  # fmt: skip
_builtin(
    "secrets.jwt",
    r"(?<![\w-])(?P<header>eyJ[A-Za-z0-9_-]{8,1000})\.ey[A-Za-z0-9_-]{8,8000}"
    r"\.[A-Za-z0-9_-]{0,1000}(?![\w-])",
    10_100, v.accept_jwt, hints=("eyJ",),
)  # fmt: skip
# "Authorization: Bearer <anything but a placeholder>", or "Bearer <random-looking token>".
_builtin(
    "secrets.bearer_token",
    r"(?:(?<![\w-])(?i:(?:proxy-)?authorization)[\"']?\s*[:=]\s*[\"']?(?i:bearer)\s+"
    r"(?P<auth>[A-Za-z0-9._~+/-]{8,4096}=*)"
    r"|(?<![\w])Bearer\s+(?P<bare>[A-Za-z0-9._~+/-]{16,4096}=*))(?![\w.~+/=-])",
    4_200, v.accept_bearer, hints=("bearer",), lower_hints=True,
)  # fmt: skip
# password=…, "password": "…", --password=…, DB_PASSWORD=…, PGPASSWORD=… (but not
# userPassword), PASSWORD: … (alone on its line,
# not "Password: must be 8 characters"); also the generic names of secrets (api_key,
# client_secret, access_token …). The value is the finding.
_builtin(
    "secrets.password_assignment",
    r"(?<![a-z0-9])(?i:password|passwd|passphrase|secret_key|secret|api_key|apikey|"
    r"api-key|access_token|auth_token|private_token)[\"']?"
    r"\s*(?:=|:(?=\s*[\"']|[ \t]*[^\s\"',;]{4,200}[ \t]*(?:[\r\n]|$)))\s*"
    r"""(?:"(?P<dq>[^"\r\n]{4,200})"|'(?P<sq>[^'\r\n]{4,200})'|(?P<bare>[^\s"',;]{4,200}))""",
    300, v.accept_value("dq", "sq", "bare"),
    anchors=("pass", "secret", "api", "access_token", "auth_token", "private_token"),
)  # fmt: skip

# -- personal data ---------------------------------------------------------------------------

_builtin(
    "pii.card",
    r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])",
    40, v.accept_card, hints=_DIGITS,
)  # fmt: skip
_builtin(
    "pii.iban",
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,34}(?![A-Za-z0-9])",
    72, v.accept_iban, hints=_DIGITS,
)  # fmt: skip
_builtin(
    "pii.us_ssn",
    r"(?<![\d-])(?P<area>\d{3})-(?P<group>\d{2})-(?P<serial>\d{4})(?![\d-])",
    11, v.accept_ssn, hints=_DIGITS,
)  # fmt: skip
_builtin(
    "pii.email",
    # [^\W_] is a letter or digit of any script: müller@bäckerei.de is an address too.
    r"(?<![\w.%+/-])(?P<local>[^\W_](?:[\w.%+'-]{0,62}[\w%+-])?)@"
    r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.){1,8}(?P<tld>[^\W\d_]{2,24})(?![\w-]|\.[^\W_])",
    620, v.accept_email, hints=("@",),
)  # fmt: skip
_PHONE_WORDS = (
    r"phone|tel|telephone|mobile|cell|fax|whatsapp|telefon|handy|téléphone|portable|teléfono|"
    r"móvil|cellulare"
)
# Any 7-15 digits right after "phone:", "Tel.", "mobile" …; international (+44 20 7946 0958);
# national with a trunk 0 and separators (030 1234567, 01 23 45 67 89, (030) 12345678);
# North American ((415) 555-0132, 415.555.0132). Never inside a longer run of digit groups
# (dates, card numbers, IBANs). Every match starts at "+", "(" or a digit, the keyword is a
# lookbehind tried only where 7-15 digits start: the pattern is cheap on long text.
_builtin(
    "pii.phone",
    r"(?=[+(\d])(?:"
    r"(?=\+?\d{7,15}(?![\w]|[ ./-]?\d))(?<=(?i:\b(?:" + _PHONE_WORDS + r")"
    r"(?:\s*(?:no|nr|number|nummer|numéro|número)\.?)?)\s*[:.#]?\s*)(?P<ctx>\+?\d{7,15})"
    r"|(?<![\w+.,/:$-])(?<!\d[ .-])(?:"
    r"(?P<intl>\+[1-9]\d{0,2}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,6})){1,6})"
    r"|(?P<natl>(?:\(0\d{1,4}\)|0\d{1,4})(?:[ ./-]?\d{2,8}){1,4})"
    r"|(?P<nanp>(?:1[ .-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}))"
    r")(?![\w]|[ ./-]?\d)",
    80, v.accept_phone, hints=_DIGITS,
)  # fmt: skip

_ALL = (*_BUILTINS, *INJECTION_DETECTORS)
BUILTIN_DETECTORS: Mapping[str, Detector] = MappingProxyType({d.name: d for d in _ALL})
CATEGORIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        category: tuple(d.name for d in _ALL if d.category == category)
        for category in ("secrets", "pii", "injection")
    }
    | {"custom": ()}
)


def scan(text: str, detectors: Iterable[Detector]) -> list[Finding]:
    """Findings of all ``detectors`` in ``text``, in text order, overlaps resolved (the
    longer, then the earlier finding wins: patterns.resolve), ready for ``redact``."""
    if not text:
        return []
    chosen = list(detectors)
    lowered = text.lower() if any(getattr(d, "lower_hints", False) for d in chosen) else None
    found: list[Finding] = []
    ranks: dict[str, int] = {}
    for detector in chosen:
        if isinstance(detector, PatternDetector):
            found.extend(detector.find_fast(text, lowered))
            ranks[detector.name] = detector.priority
        else:
            found.extend(detector.find(text))
    return resolve(found, ranks)


def _custom_name(name: str) -> str:
    name = name if name.startswith("custom.") else f"custom.{name}"
    if len(name) == len("custom.") or not regex.fullmatch(r"custom\.[\w.-]{1,60}", name):
        raise ValueError(f"{name!r}: a custom detector is named custom.NAME (letters, digits, _ -)")
    return name


def regex_detector(
    name: str, pattern: str, *, max_match_len: int = 256, ignore_case: bool = False
) -> Detector:
    """A ``custom.<name>`` detector of one regular expression (``regex`` module syntax, a
    superset of Python's ``re``). Raises ValueError for a pattern that is empty, too long,
    invalid, or matches the empty string. A scan that runs past its time budget (a
    catastrophically backtracking pattern) stops and counts the rest of the text as
    matched: see docs/guardrails.md, "Custom detectors"."""
    full = _custom_name(name)
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError(f"{full}: the pattern is empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"{full}: the pattern is longer than {MAX_PATTERN_LENGTH} characters")
    if not 1 <= max_match_len <= MAX_MATCH_LEN:
        raise ValueError(f"{full}: max_match_len must be between 1 and {MAX_MATCH_LEN}")
    try:
        compiled = regex.compile(pattern, regex.IGNORECASE if ignore_case else 0)
    except (regex.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"{full}: invalid regular expression: {exc}") from None
    probe = "a0 A_.-@\n"
    if compiled.fullmatch("") or any(m.start() == m.end() for m in compiled.finditer(probe)):
        raise ValueError(f"{full}: the pattern matches the empty string")
    # settle: a complete match is final only this far from the end of a stream window; an
    # arbitrary pattern may have a longer match at the same place (an optional group, a
    # greedy .*) that more text would complete. At most 256 (+16): held text is capped.
    return PatternDetector(
        full, "custom", compiled, max_match_len=max_match_len, timeout=CUSTOM_TIMEOUT,
        settle=min(max_match_len, 256) + END_MARGIN,
    )  # fmt: skip


def wordlist_detector(name: str, words: Sequence[str], *, ignore_case: bool = True) -> Detector:
    """A ``custom.<name>`` detector of whole words or phrases (spaces in a phrase match any
    run of whitespace), compiled into one alternation shaped as a prefix tree so a long list
    costs little more than a short one."""
    full = _custom_name(name)
    if isinstance(words, str):
        raise ValueError(f"{full}: words must be a list of strings, not one string")
    cleaned = []
    for word in words:
        if not isinstance(word, str) or not word.strip():
            raise ValueError(f"{full}: every word must be a non-empty string")
        cleaned.append(" ".join(word.split()))
    if not cleaned or len(cleaned) > MAX_WORDS:
        raise ValueError(f"{full}: give between 1 and {MAX_WORDS} words")
    if ignore_case:
        cleaned = [w.lower() for w in cleaned]
    trie: dict[str, Any] = {}
    for word in cleaned:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    pattern = r"(?<!\w)(?:" + _trie_pattern(trie) + r")(?!\w)"
    longest = max(len(w) + (PHRASE_SPACE - 1) * w.count(" ") for w in cleaned)
    # A word may be the start of a longer phrase of the list ("acme", "acme widgets"): in a
    # stream it is final only once the longest phrase could have arrived after it.
    return PatternDetector(
        full, "custom", pattern, flags=regex.IGNORECASE if ignore_case else 0,
        max_match_len=longest, settle=longest + END_MARGIN,
    )  # fmt: skip


def _trie_pattern(node: dict[str, Any]) -> str:
    branches = [
        (rf"\s{{1,{PHRASE_SPACE}}}" if char == " " else regex.escape(char)) + _trie_pattern(child)
        for char, child in sorted(node.items())
        if char
    ]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:  # a word ends here and longer ones go on: try the longer first
        body = f"(?:{body})?" if len(branches) == 1 else body + "?"
    return body
