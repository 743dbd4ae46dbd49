"""Checks that turn a pattern match into a finding: checksums (Luhn, IBAN mod-97), number
ranges (card issuer prefixes, US SSN areas) and plausibility tests (does a key look random,
is a password value a placeholder, does a JWT header decode to JSON); then, at the end, the
match checks the built-in detectors use (``accept_*``: a match → the span to report, or
None when the match is a near miss).

Pure functions, no Django: the detectors call them once per candidate match, never per
character of the prompt, so they may be written for clarity.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any

Span = tuple[int, int] | None


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (``digits``: 0-9 only)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_issuer_valid(digits: str) -> bool:
    """An issuer identification number (IIN) in use, with a length that issuer uses.

    Visa, Mastercard, American Express, Discover, Diners, JCB, UnionPay and Maestro cover
    nearly all cards a user would paste; a number outside these ranges is more likely an
    order or account number that happens to pass Luhn (one in ten random numbers does)."""
    n = len(digits)
    if not 13 <= n <= 19 or not digits.isdigit():
        return False
    p2, p3, p4 = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if p4 == 6011 or 644 <= p3 <= 649 or p2 == 65 or p2 == 62:  # Discover, UnionPay
        return n >= 16
    if 3528 <= p4 <= 3589:  # JCB
        return n >= 16
    if 300 <= p3 <= 305 or p2 in (36, 38, 39):  # Diners Club
        return n >= 14
    return p2 in (50, 56, 57, 58, 63, 67)  # Maestro


def card_grouping_valid(text: str) -> bool:
    """Digits written as one run, or in the groups cards are printed in: fours (the last
    group may be shorter), or 4-6-5 / 4-6-4 (American Express, Diners). One separator kind.
    Rejects digit runs that merely contain spaces, like "1 2 3 4 5 6 7 8 9 0 1 2 3"."""
    if " " in text and "-" in text:
        return False
    groups = re.split(r"[ -]", text)
    if len(groups) == 1:
        return True
    sizes = [len(g) for g in groups]
    if sizes[:-1] == [4] * (len(sizes) - 1) and 1 <= sizes[-1] <= 4:
        return True
    return sizes in ([4, 6, 5], [4, 6, 4])


# Length of the IBAN of each country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """Country known, length right for it, and the ISO 7064 mod-97 check (remainder 1).
    ``iban``: letters and digits only, any case."""
    iban = iban.upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit() or not iban.isalnum():
        return False
    # Move the first four characters to the end, letters to numbers (A=10 … Z=35).
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """A US social security number the SSA could have issued: area not 000, 666 or 9xx,
    group not 00, serial not 0000; and not one of the numbers known from advertising."""
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return f"{area}-{group}-{serial}" not in ("078-05-1120", "219-09-9999", "123-45-6789")


def looks_random(body: str, *, min_classes: int = 2) -> bool:
    """Does a key body look machine-generated rather than typed? At least ``min_classes`` of
    lower case, upper case and digits, and no run of five equal characters: placeholders such
    as ``sk-xxxxxxxxxxxxxxxxxxxxxxxx`` or ``sk-my-test-key-for-the-demo`` fail, a random
    base62 key fails with a probability of about one in a million."""
    classes = (
        any(c.islower() for c in body)
        + any(c.isupper() for c in body)
        + any(c.isdigit() for c in body)
    )
    return classes >= min_classes and _RUN.search(body) is None


_RUN = re.compile(r"(.)\1{4}")


def jwt_header_valid(segment: str) -> bool:
    """The first part of a JWT decodes (base64url) to a JSON object naming its algorithm."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and ("alg" in header or "typ" in header)


# Values that stand for a secret without being one: template and environment references,
# masks, code (a call, an attribute, a subscript) and the usual stand-in words.
_PLACEHOLDER = re.compile(
    r"""(?ix)
    (.)\1{5}                   # xxxxxx, ******, sk-xxxxxxxxxxxxxxxx
    | ^(?: [*x.\-_\#]+ | none | null | nil | true | false | undefined | empty
       | password | passwd | secret | redacted | hidden | changeme | required | string
       | (?:your|my|the|some|a)[ _-].* | .*(?:placeholder|example|here)\b.* )$
    | [()\[\]{}<>$%]            # ${VAR}, {{ x }}, <password>, %s, getpass(), env["X"]
    | ^(?=.{1,40}$)[a-z_]\w*(?:\.[a-z_]\w*)+$  # self.password, settings.SECRET_KEY
    """
)


def placeholder_value(value: str) -> bool:
    """A password or secret value that is not one (see _PLACEHOLDER)."""
    return _PLACEHOLDER.search(value.strip()) is not None


# -- match checks of the built-in detectors ----------------------------------------------


def accept_random_key(*groups: str, whole: bool = True) -> Callable[[Any], Span]:
    """A key-shaped match whose body (the first of ``groups`` that matched) looks random;
    the whole match is reported, or only the body when ``whole`` is false."""

    def accept(match: Any) -> Span:
        group = next(g for g in groups if match.group(g) is not None)
        if not looks_random(match.group(group)):
            return None
        return match.span() if whole else match.span(group)

    return accept


def accept_value(*groups: str) -> Callable[[Any], Span]:
    """The value of a ``key = value`` match (the first of ``groups`` that matched), unless it
    is a placeholder."""

    def accept(match: Any) -> Span:
        group = next(g for g in groups if match.group(g) is not None)
        return None if placeholder_value(match.group(group)) else match.span(group)

    return accept


def accept_bearer(match: Any) -> Span:
    """After "Authorization: Bearer" any non-placeholder token; after a lone "Bearer" only a
    random-looking one ("Bearer instruments" is prose)."""
    group = "auth" if match.group("auth") is not None else "bare"
    token = match.group(group).rstrip(".")  # a sentence's full stop is not part of it
    if group == "auth" and placeholder_value(token):
        return None
    if group == "bare" and not looks_random(token):
        return None
    start = match.start(group)
    return start, start + len(token)


def accept_jwt(match: Any) -> Span:
    return match.span() if jwt_header_valid(match.group("header")) else None


def accept_card(match: Any) -> Span:
    """The longest prefix of the digit run, cut at a separator, that is a valid card: "4111
    1111 1111 1111 12/26" holds a card followed by an expiry month."""
    text, start = match.group(), match.start()
    cuts = [len(text)] + [i for i in range(len(text) - 1, 0, -1) if text[i] in " -"]
    for cut in cuts:
        candidate = text[:cut]
        digits = candidate.replace(" ", "").replace("-", "")
        if len(digits) < 13:
            break
        if card_grouping_valid(candidate) and luhn_valid(digits) and card_issuer_valid(digits):
            return start, start + cut
    return None


def accept_iban(match: Any) -> Span:
    """Country, length and mod-97; written as one run or in groups of four. The pattern may
    run on into following words ("… 0130 00 IS MINE"): the IBAN is its country's length."""
    text = match.group()
    length = IBAN_LENGTHS.get(text[:2])
    if length is None:
        return None
    chars: list[str] = []
    spaces: list[int] = []  # after how many characters each space comes
    cut = 0
    for index, char in enumerate(text):
        if char == " ":
            spaces.append(len(chars))
            continue
        chars.append(char)
        if len(chars) == length:
            cut = index + 1
            break
    if not cut or (spaces and spaces != list(range(4, length, 4))):
        return None
    if (cut < len(text) and text[cut] != " ") or not iban_valid("".join(chars)):
        return None
    return match.start(), match.start() + cut


# Not top-level domains an address would use: "icon@2x.png" names an image.
_FILE_EXTENSIONS = frozenset(
    ("png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "heic", "avif",
     "css", "js", "mjs", "ts", "tsx", "jsx", "map", "pdf", "doc", "docx", "xls", "xlsx", "ppt",
     "pptx", "txt", "csv", "zip", "gz", "tgz", "json", "yaml", "yml", "xml", "html", "htm",
     "java", "kt", "swift")
)  # fmt: skip


def accept_email(match: Any) -> Span:
    if ".." in match.group("local") or match.group("tld").lower() in _FILE_EXTENSIONS:
        return None
    return match.span()


_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}$")
# Digits each form of phone number may have (E.164 allows at most 15).
_PHONE_DIGITS = {"intl": (8, 15), "natl": (9, 12), "nanp": (10, 11), "ctx": (7, 15)}


def accept_phone(match: Any) -> Span:
    for group, (low, high) in _PHONE_DIGITS.items():
        number = match.group(group)
        if number is None:
            continue
        if not low <= sum(c.isdigit() for c in number) <= high:
            return None
        if group == "natl" and not any(c in number for c in " ./-()"):
            return None  # an unseparated number: an id as likely as a phone number
        if group == "natl" and _SSN_SHAPE.match(number):
            return None  # 078-05-1120 is written like a social security number
        return match.span(group)
    return None


def accept_ssn(match: Any) -> Span:
    return match.span() if ssn_valid(match["area"], match["group"], match["serial"]) else None
