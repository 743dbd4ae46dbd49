"""The word-level check that stops near-identical but different questions from sharing a
semantic-cache answer (pairs from bench/semantic_pairs.jsonl's hard negatives)."""

from __future__ import annotations

import pytest

from aigateway.caching.guard import same_question


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Convert Celsius to Fahrenheit.", "Convert Fahrenheit to Celsius."),
        ("Convert a list to a string in Python.", "Convert a string to a list in Python."),
        ("What is 15% of 80?", "What is 15% of 90?"),
        ("Does this regex match digits?", "Does this regex not match digits?"),
        ("How do I serialize an object to JSON?", "How do I deserialize JSON into an object?"),
        ("Explain the advantages of microservices.", "Explain the disadvantages of microservices."),
        ("How do I push to a remote branch?", "How do I pull from a remote branch?"),
    ],
)
def test_different_questions_are_refused(a, b):
    assert not same_question(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I reverse a list in Python?", "How can I reverse a Python list?"),
        ("Nginx: how do I redirect HTTP to HTTPS?", "nginx - redirect HTTP to HTTPS, how?"),
        ("What is the capital of France?", "what's the capital of france"),
        ("Sort 3 numbers in Go", "In Go, sort 3 numbers"),
    ],
)
def test_paraphrases_pass(a, b):
    assert same_question(a, b)
