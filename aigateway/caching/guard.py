"""A word-level check before serving a semantic hit.

Embedding similarity cannot tell some different questions apart: direction swaps
("Celsius to Fahrenheit" / "Fahrenheit to Celsius" score 0.99), other numbers, negations
(docs/semantic-threshold.md). A wrong cached answer is worse than a miss, so a semantic hit
is served only when both prompts agree on these.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
NEGATIONS = {
    "not",
    "no",
    "never",
    "without",
    "none",
    "nor",
    "cannot",
    "don't",
    "doesn't",
    "isn't",
    "aren't",
    "can't",
    "won't",
    "shouldn't",
    "didn't",
    "wasn't",
    "except",
}
DIRECTION = {"to", "into", "from", "vs", "versus", "than"}
STOPWORDS = {
    "a",
    "an",
    "the",
    "my",
    "your",
    "our",
    "this",
    "that",
    "in",
    "on",
    "of",
    "for",
    "with",
    "how",
    "do",
    "i",
    "can",
    "what",
    "is",
    "are",
    "me",
    "please",
    "file",
}
# Words whose opposite a prefix makes: serialize/deserialize, advantages/disadvantages.
OPPOSITE_PREFIXES = ("de", "dis", "un", "in", "im", "non")
OPPOSITES = {
    frozenset(p)
    for p in (
        ("push", "pull"),
        ("upload", "download"),
        ("use", "avoid"),
        ("similarities", "differences"),
        ("similarity", "difference"),
        ("find", "delete"),
        ("add", "remove"),
        ("enable", "disable"),
        ("encrypt", "decrypt"),
        ("min", "max"),
        ("minimum", "maximum"),
        ("increase", "decrease"),
        ("import", "export"),
        ("buy", "sell"),
        ("before", "after"),
        ("first", "last"),
        ("largest", "smallest"),
        ("ascending", "descending"),
        ("open", "close"),
        ("start", "stop"),
    )
}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("->", " to ").replace("→", " to "))


def _content(words: list[str]) -> list[str]:
    return [w for w in words if w not in STOPWORDS and w not in DIRECTION]


def _opposed(a: set[str], b: set[str]) -> bool:
    """One prompt has a word the other has the opposite of."""
    for x in a - b:
        for y in b - a:
            if frozenset((x, y)) in OPPOSITES:
                return True
            if any(x == p + y or y == p + x for p in OPPOSITE_PREFIXES):
                return True
    return False


def same_question(a: str, b: str) -> bool:
    """False when the prompts differ in numbers, negations, or the order of what a
    direction word joins; True otherwise (similarity decides the rest)."""
    if sorted(_NUMBER.findall(a)) != sorted(_NUMBER.findall(b)):
        return False
    words_a, words_b = _words(a), _words(b)
    if sorted(w for w in words_a if w in NEGATIONS) != sorted(w for w in words_b if w in NEGATIONS):
        return False
    content_a, content_b = _content(words_a), _content(words_b)
    if _opposed(set(content_a), set(content_b)):
        return False
    has_direction = any(w in DIRECTION for w in words_a + words_b)
    # Same words around "to"/"from"/"than" in another order: a direction swap.
    same_words = sorted(content_a) == sorted(content_b)
    return not (has_direction and same_words and content_a != content_b)
