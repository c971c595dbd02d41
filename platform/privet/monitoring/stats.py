"""Aggregates and drift scores: plain Python over small lists, no texts anywhere.

An aggregate (``Agg``) of a set of predictions is: predicted-label counts, a histogram
of the confidence (probability of the predicted label, 10 bins over [0, 1]), a histogram
of the input length (characters, log-spaced bins), and a sketch of the model's sentence
embedding (count, per-dimension sum and sum of squares of its first dimensions).
Aggregates add; drift compares a window's aggregate with the reference's.
"""

from __future__ import annotations

import bisect
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CONF_BINS = 10
LENGTH_EDGES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
"""Upper edges (exclusive) of the input-length bins; the last bin is open."""
EPS = 1e-4


def window_start(at: datetime, window_s: int) -> datetime:
    """The start of the ``window_s``-second window ``at`` falls in (aligned to the epoch)."""
    ts = int(at.timestamp())
    return datetime.fromtimestamp(ts - ts % window_s, UTC)


def conf_bin(p: float) -> int:
    return min(CONF_BINS - 1, max(0, int(p * CONF_BINS)))


def text_length(text: str) -> int:
    """A text's length in characters, the unit the length histogram counts: code points
    after NFC composition, so 中文 is 2 (not 6 UTF-8 bytes, not 1 whitespace token), and a
    Hangul syllable or an accented letter sent decomposed counts once, as typed."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return len(text)
    return len(unicodedata.normalize("NFC", text))


def length_bin(n: int) -> int:
    return bisect.bisect_right(LENGTH_EDGES, n)


@dataclass
class Agg:
    count: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    conf: list[int] = field(default_factory=lambda: [0] * CONF_BINS)
    length: list[int] = field(default_factory=lambda: [0] * (len(LENGTH_EDGES) + 1))
    emb_n: int = 0
    emb_sum: list[float] = field(default_factory=list)
    emb_sq: list[float] = field(default_factory=list)

    def add_prediction(self, label: str, confidence: float, chars: int) -> None:
        self.count += 1
        self.labels[label] = self.labels.get(label, 0) + 1
        self.conf[conf_bin(confidence)] += 1
        self.length[length_bin(chars)] += 1

    def add_embeddings(self, n: int, sums: Sequence[float], squares: Sequence[float]) -> None:
        if not self.emb_sum:
            self.emb_sum = [0.0] * len(sums)
            self.emb_sq = [0.0] * len(sums)
        k = min(len(self.emb_sum), len(sums))
        for i in range(k):
            self.emb_sum[i] += sums[i]
            self.emb_sq[i] += squares[i]
        self.emb_n += n

    def merge(self, other: Agg) -> Agg:
        self.count += other.count
        for k, v in other.labels.items():
            self.labels[k] = self.labels.get(k, 0) + v
        self.conf = [a + b for a, b in zip(self.conf, other.conf, strict=True)]
        self.length = [a + b for a, b in zip(self.length, other.length, strict=True)]
        if other.emb_n:
            self.add_embeddings(other.emb_n, other.emb_sum, other.emb_sq)
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": dict(self.labels),
            "conf": list(self.conf),
            "length": list(self.length),
            "emb_n": self.emb_n,
            "emb_sum": [round(x, 6) for x in self.emb_sum],
            "emb_sq": [round(x, 6) for x in self.emb_sq],
        }

    @classmethod
    def from_json(cls, count: int, data: Mapping[str, Any]) -> Agg:
        return cls(
            count=int(count),
            labels={str(k): int(v) for k, v in (data.get("labels") or {}).items()},
            conf=list(data.get("conf") or [0] * CONF_BINS),
            length=list(data.get("length") or [0] * (len(LENGTH_EDGES) + 1)),
            emb_n=int(data.get("emb_n") or 0),
            emb_sum=[float(x) for x in data.get("emb_sum") or []],
            emb_sq=[float(x) for x in data.get("emb_sq") or []],
        )

    @property
    def empty(self) -> bool:
        return self.count == 0 and self.emb_n == 0


def _dist(counts: Sequence[float]) -> list[float]:
    """Proportions with a small floor on empty bins (PSI and KL need no zeros)."""
    total = float(sum(counts))
    if total <= 0:
        return [1.0 / len(counts)] * len(counts)
    props = [max(c / total, EPS) for c in counts]
    s = sum(props)
    return [p / s for p in props]


def psi(reference: Sequence[float], live: Sequence[float]) -> float:
    """Population stability index of two histograms over the same bins."""
    r, q = _dist(reference), _dist(live)
    return float(sum((b - a) * math.log(b / a) for a, b in zip(r, q, strict=True)))


def js_divergence(reference: Mapping[str, float], live: Mapping[str, float]) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two label distributions."""
    keys = sorted(set(reference) | set(live))
    if not keys:
        return 0.0
    rt = float(sum(reference.values())) or 1.0
    lt = float(sum(live.values())) or 1.0
    p = [reference.get(k, 0) / rt for k in keys]
    q = [live.get(k, 0) / lt for k in keys]
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def kl(x: list[float]) -> float:
        return sum(a * math.log2(a / c) for a, c in zip(x, m, strict=True) if a > 0)

    return float(max(0.0, min(1.0, (kl(p) + kl(q)) / 2)))


def embedding_shift(reference: Agg, live: Agg) -> float | None:
    """Mean over the sketched dimensions of |mean_live - mean_ref| / sd_ref (standardised)."""
    if reference.emb_n < 2 or live.emb_n < 1:
        return None
    k = min(len(reference.emb_sum), len(live.emb_sum))
    if k == 0:
        return None
    total = 0.0
    for i in range(k):
        mr = reference.emb_sum[i] / reference.emb_n
        vr = max(reference.emb_sq[i] / reference.emb_n - mr * mr, 0.0)
        ml = live.emb_sum[i] / live.emb_n
        total += abs(ml - mr) / math.sqrt(vr + 1e-6)
    return total / k


def drift_scores(reference: Agg, live: Agg) -> dict[str, float | None]:
    """Drift of ``live`` against ``reference``: features → score (None: not comparable)."""
    both = reference.count > 0 and live.count > 0
    # A reference from the evaluation's confusion matrix has label counts only: its empty
    # histograms are not a population to compare with (they would read as uniform).
    has_conf = both and sum(reference.conf) > 0
    has_length = both and sum(reference.length) > 0
    return {
        "label_js": js_divergence(reference.labels, live.labels) if both else None,
        "confidence_psi": psi(reference.conf, live.conf) if has_conf else None,
        "length_psi": psi(reference.length, live.length) if has_length else None,
        "embedding_shift": embedding_shift(reference, live),
    }


# --- quality ------------------------------------------------------------------------------


def quality(
    rows: Iterable[tuple[str, str, float]], labels: Sequence[str]
) -> dict[str, float | int | None]:
    """Accuracy, macro-F1 and expected calibration error of (true, predicted, confidence)."""
    data = list(rows)
    n = len(data)
    if n == 0:
        return {"outcomes": 0, "accuracy": None, "macro_f1": None, "ece": None}
    correct = sum(1 for t, p, _c in data if t == p)
    names = list(labels) or sorted({t for t, _p, _c in data} | {p for _t, p, _c in data})
    f1s = []
    for name in names:
        tp = sum(1 for t, p, _c in data if t == name and p == name)
        fp = sum(1 for t, p, _c in data if t != name and p == name)
        fn = sum(1 for t, p, _c in data if t == name and p != name)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    bins: list[list[tuple[bool, float]]] = [[] for _ in range(CONF_BINS)]
    for t, p, c in data:
        bins[conf_bin(c)].append((t == p, c))
    ece = sum(
        len(b) / n * abs(sum(ok for ok, _c in b) / len(b) - sum(c for _ok, c in b) / len(b))
        for b in bins
        if b
    )
    return {
        "outcomes": n,
        "accuracy": correct / n,
        "macro_f1": sum(f1s) / len(f1s) if f1s else None,
        "ece": ece,
    }


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """A one-line trend; missing values are blanks."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    lo, hi = min(present), max(present)
    span = hi - lo or 1.0
    return "".join(
        " " if v is None else SPARKS[min(7, int((v - lo) / span * 7.999))] for v in values
    )
