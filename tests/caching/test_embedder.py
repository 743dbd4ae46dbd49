"""The numpy all-MiniLM-L6-v2 embedder against sentence-transformers' own output.

The reference vectors (minilm_reference.json: 16 sentences, made with sentence-transformers and
torch, ``encode(normalize_embeddings=True)``) live in shared/data beside the repository; the
comparisons fail, naming where they looked, if that file is absent (it ships in tests/caching).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aigateway.caching.embedder import (
    DIMENSION,
    MAX_SEQ_LENGTH,
    LocalEmbedder,
    model_dir,
    model_version,
)

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [
    Path(os.environ.get("AIGATEWAY_MINILM_REFERENCE", "/nonexistent")),
    Path(__file__).with_name("minilm_reference.json"),
    ROOT.parent / "shared" / "data" / "minilm_reference.json",
]
ATOL = 1e-5

# The reference has no labels: its sentences by index. Checked against the file below.
PARAPHRASES = [(0, 1, 2), (4, 5), (7, 8)]
UNRELATED = (3, 6, 9, 10, 11)  # each unrelated to every other real sentence (0-11)
EMPTY, SHORT, UNICODE, LONG = 12, 13, 14, 15


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    path = next((p for p in CANDIDATES if p.is_file()), None)
    if path is None:
        pytest.fail(f"minilm_reference.json not found (looked in {[str(p) for p in CANDIDATES]})")
    data: dict[str, Any] = json.loads(path.read_text())
    assert data["max_seq_length"] == MAX_SEQ_LENGTH
    assert len(data["sentences"]) == len(data["embeddings"]) == 16
    assert data["sentences"][EMPTY] == "" and data["sentences"][SHORT] == "a"
    assert "Hamlet" in data["sentences"][7] and "Hamlet" in data["sentences"][8]
    return data


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture(scope="module")
def batch(embedder: LocalEmbedder, reference: dict[str, Any]) -> np.ndarray:
    return embedder.embed(reference["sentences"])


@pytest.mark.parametrize("index", range(16))
def test_each_sentence_matches_sentence_transformers(
    index: int, batch: np.ndarray, reference: dict[str, Any]
) -> None:
    expected = np.asarray(reference["embeddings"][index], dtype=np.float64)
    np.testing.assert_allclose(batch[index], expected, rtol=0, atol=ATOL)


def test_whole_reference_within_tolerance(batch: np.ndarray, reference: dict[str, Any]) -> None:
    diff = np.abs(batch - np.asarray(reference["embeddings"], dtype=np.float64)).max()
    assert diff <= ATOL, f"max abs diff {diff:.2e}"  # measured: ~3e-7


def test_shape_dtype_unit_norm(batch: np.ndarray) -> None:
    assert batch.shape == (16, DIMENSION) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-6)


def test_paraphrases_are_closer_than_unrelated_sentences(batch: np.ndarray) -> None:
    cos = batch @ batch.T
    same = [cos[a, b] for group in PARAPHRASES for a in group for b in group if a < b]
    groups = [set(g) for g in PARAPHRASES] + [{i} for i in UNRELATED]
    different = [
        cos[a, b] for i, ga in enumerate(groups) for gb in groups[i + 1 :] for a in ga for b in gb
    ]
    assert min(same) > 0.7 > 0.3 > max(different)
    assert min(same) > max(different)


def test_empty_single_char_and_unicode(embedder: LocalEmbedder, batch: np.ndarray) -> None:
    for index, text in [
        (EMPTY, ""),
        (SHORT, "a"),
        (UNICODE, "Ünïcödé tëxt with emoji 🚀 and CJK 漢字"),
    ]:
        vector = embedder.embed_one(text)
        assert vector.shape == (DIMENSION,) and np.isfinite(vector).all()
        np.testing.assert_allclose(vector, batch[index], atol=1e-6)
    # The empty string is [CLS] [SEP]: a real, unit vector, not zeros or NaN.
    assert abs(float(np.linalg.norm(embedder.embed_one(""))) - 1.0) < 1e-6


def test_batch_equals_one_by_one(
    embedder: LocalEmbedder, batch: np.ndarray, reference: dict[str, Any]
) -> None:
    singles = np.stack([embedder.embed_one(s) for s in reference["sentences"]])
    np.testing.assert_allclose(singles, batch, rtol=0, atol=1e-6)
    # Any batch size and order gives the same rows, in the caller's order.
    small = LocalEmbedder(batch_size=3, batch_tokens=64)
    reordered = list(reversed(reference["sentences"]))
    np.testing.assert_allclose(small.embed(reordered), batch[::-1], rtol=0, atol=1e-6)


def test_long_input_is_truncated_to_256_tokens(
    embedder: LocalEmbedder, reference: dict[str, Any]
) -> None:
    long_text = reference["sentences"][LONG]
    encoding = LocalEmbedder.load().tokenizer.encode(long_text)
    assert len(encoding.ids) == MAX_SEQ_LENGTH  # [CLS] + 254 words + [SEP]
    longer = embedder.embed_one(long_text + " and then something else entirely" * 20)
    np.testing.assert_allclose(longer, embedder.embed_one(long_text), atol=1e-6)


def test_surrounding_whitespace_and_empty_list(embedder: LocalEmbedder) -> None:
    np.testing.assert_allclose(
        embedder.embed_one("  How do I reset my password?\n"),
        embedder.embed_one("How do I reset my password?"),
        atol=1e-6,
    )
    empty = embedder.embed([])
    assert empty.shape == (0, DIMENSION) and empty.dtype == np.float32


def test_lazy_load_happens_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalEmbedder, "_model", None)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(LocalEmbedder.load())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 4 and all(model is seen[0] for model in seen)


def test_offline_and_torch_free(reference: dict[str, Any], batch: np.ndarray) -> None:
    assert (model_dir() / "model.safetensors").is_file()
    assert (model_dir() / "tokenizer.json").is_file()
    assert model_version() in reference["model"]  # the weights the reference was made with
    assert "torch" not in sys.modules and "sentence_transformers" not in sys.modules
