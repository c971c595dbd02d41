"""The fixed, seeded, stratified train/validation/test split of a dataset version.

Algorithm ``hmac-sha256-rank-v1`` (a pure function of the seed, the labels and the row
order, so it is recorded by recording the seed and fractions):

1. For each label L with n rows, ``n_test = max(1, floor(n·test + 0.5))`` and
   ``n_validation = max(1, floor(n·validation + 0.5))``; the rest train (labels with
   fewer than 3 rows - possible only after an erasure - all train).
2. Each row of L gets the rank key ``HMAC-SHA256(key="privet-split-v1:<seed>",
   msg=<label UTF-8> 0x00 <ordinal of the row within L, decimal>)``.
3. Rows of L sorted by that key: the first ``n_test`` are test, the next
   ``n_validation`` validation, the others train.

An unlabelled version's rows form one stratum, ``NO_LABEL`` (the empty string, which no
label can be); its record's ``label_counts`` is empty and ``unlabelled`` is true.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from hashlib import sha256
from typing import Any

ALGORITHM = "hmac-sha256-rank-v1"
SPLITS = ("train", "validation", "test")
NO_LABEL = ""
"""The stratum of an unlabelled version's rows (ingest refuses an empty label)."""


def _round(x: float) -> int:
    return int(x + 0.5)


def split_counts(n: int, *, validation: float, test: float) -> dict[str, int]:
    if n < 3:
        return {"train": n, "validation": 0, "test": 0}
    n_test = max(1, _round(n * test))
    n_val = max(1, _round(n * validation))
    if n_test + n_val >= n:
        n_test, n_val = 1, 1
    return {"train": n - n_test - n_val, "validation": n_val, "test": n_test}


def split_record(
    label_counts: Mapping[str, int],
    *,
    seed: int,
    validation: float,
    test: float,
    unlabelled_rows: int | None = None,
) -> dict[str, Any]:
    """What a version records about its split: enough to recompute and check it
    (`unlabelled_rows`: the row count of an unlabelled version, one stratum)."""
    strata = label_counts if unlabelled_rows is None else {NO_LABEL: unlabelled_rows}
    per_label = {
        label: split_counts(n, validation=validation, test=test)
        for label, n in sorted(strata.items())
    }
    totals = {s: sum(c[s] for c in per_label.values()) for s in SPLITS}
    record = {
        "algorithm": ALGORITHM,
        "seed": seed,
        "fractions": {"validation": validation, "test": test},
        "counts": totals,
        "label_counts": per_label if unlabelled_rows is None else {},
    }
    if unlabelled_rows is not None:
        record["unlabelled"] = True
    return record


def assign(labels: Sequence[str], *, seed: int, validation: float, test: float) -> list[str]:
    """The split ('train' | 'validation' | 'test') of each row, in row order."""
    key = f"privet-split-v1:{seed}".encode()
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    out = ["train"] * len(labels)
    for label, indexes in by_label.items():
        counts = split_counts(len(indexes), validation=validation, test=test)
        prefix = label.encode() + b"\x00"
        ranked = sorted(
            range(len(indexes)),
            key=lambda o: hmac.new(key, prefix + str(o).encode(), sha256).digest(),
        )
        for pos, ordinal in enumerate(ranked):
            if pos < counts["test"]:
                out[indexes[ordinal]] = "test"
            elif pos < counts["test"] + counts["validation"]:
                out[indexes[ordinal]] = "validation"
    return out
