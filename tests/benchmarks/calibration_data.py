"""Public data sets for the recipe calibration benchmark (issue 22), as fixed-seed subsets.

Each loader returns (train, eval): `rows` training rows drawn stratified (class ratio kept,
at least 2 rows a class) with a fixed seed, and a fixed evaluation set that does not
depend on `rows` (so figures at different sizes are comparable):

- sst2: train.tsv subset; the GLUE dev set (872) as evaluation.
- sms: stratified 80/20 split of the whole collection (seed 0); train subset from the 80%,
  the 20% (1,115 rows, 149 spam) as evaluation.
- trec: train_5500.label subset (coarse labels); TREC_10 (499) as evaluation.
- waimai: stratified 80/20 split (seed 0); 20% (2,398 rows) as evaluation.

Data comes from ../shared/data (override: PRIVET_SHARED_DATA). Read each SOURCE.txt there.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from privet.training.data import LabelledTexts

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("PRIVET_SHARED_DATA", REPO.parent / "shared" / "data"))
CALIBRATE = ("sst2", "sms")
CONFIRM = ("trec", "waimai")


def _pick(texts: Sequence[str], labels: Sequence[str], ids: Sequence[int]) -> LabelledTexts:
    return LabelledTexts([texts[i] for i in ids], [labels[i] for i in ids])


def by_label(labels: Sequence[str], ids: Iterable[int] | None = None) -> dict[str, list[int]]:
    """The `ids` (default: every row) of each label, in order."""
    groups: dict[str, list[int]] = {}
    for i in range(len(labels)) if ids is None else ids:
        groups.setdefault(labels[i], []).append(i)
    return groups


def _stratified(labels: Sequence[str], ids: Sequence[int], rows: int, seed: int) -> list[int]:
    """`rows` of `ids`, stratified by label, shuffled with `seed`."""
    rng = random.Random(seed)
    groups = by_label(labels, ids)
    total = len(ids)
    out: list[int] = []
    for label in sorted(groups):
        group = groups[label]
        rng.shuffle(group)
        out += group[: max(2, round(len(group) * rows / total))]
    rng.shuffle(out)
    return out


def _split(labels: Sequence[str], test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    groups = by_label(labels)
    train: list[int] = []
    test: list[int] = []
    for label in sorted(groups):
        group = groups[label]
        rng.shuffle(group)
        cut = round(len(group) * test_fraction)
        test += group[:cut]
        train += group[cut:]
    return train, test


def label_first_tsv(path: Path) -> tuple[list[str], list[str]]:
    """SST-2 style: header line, then `label<TAB>text`, LF or CRLF line ends: (texts, labels)."""
    with path.open(encoding="utf-8", newline="") as fh:
        lines = fh.read().splitlines()
    texts, labels = [], []
    for line in lines[1:]:
        if line.strip():
            label, _, text = line.partition("\t")
            labels.append(label.strip())
            texts.append(text.strip())
    return texts, labels


def _trec(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip():
            head, _, text = line.partition(" ")
            labels.append(head.split(":", 1)[0])
            texts.append(text.strip())
    return texts, labels


def sms_spam_collection() -> tuple[list[str], list[str]]:
    """Every row of the SMS Spam Collection: (texts, labels)."""
    texts: list[str] = []
    labels: list[str] = []
    raw = (SHARED_DATA / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8")
    for line in raw.splitlines():
        if "\t" in line:
            label, text = line.split("\t", 1)
            labels.append(label.strip())
            texts.append(text.strip())
    return texts, labels


def load(name: str, rows: int, seed: int = 0) -> tuple[LabelledTexts, LabelledTexts]:
    """(train subset of `rows`, fixed evaluation set) of a calibration data set."""
    if name == "sst2":
        texts, labels = label_first_tsv(SHARED_DATA / "sst2" / "train.tsv")
        dev_texts, dev_labels = label_first_tsv(SHARED_DATA / "sst2" / "dev.tsv")
        ids = _stratified(labels, range(len(labels)), rows, seed)
        return _pick(texts, labels, ids), LabelledTexts(dev_texts, dev_labels)
    if name == "trec":
        texts, labels = _trec(SHARED_DATA / "trec" / "train_5500.label")
        test_texts, test_labels = _trec(SHARED_DATA / "trec" / "TREC_10.en.label")
        ids = _stratified(labels, range(len(labels)), rows, seed)
        return _pick(texts, labels, ids), LabelledTexts(test_texts, test_labels)
    if name == "sms":
        texts, labels = sms_spam_collection()
    elif name == "waimai":
        with (SHARED_DATA / "waimai_10k" / "waimai_10k.csv").open(encoding="utf-8") as fh:
            reader = csv.reader(fh)
            next(reader)
            pairs = [(r[0], r[1]) for r in reader if len(r) >= 2]
        labels = [p[0] for p in pairs]
        texts = [p[1] for p in pairs]
    else:
        raise ValueError(f"unknown data set {name!r}")
    train_ids, test_ids = _split(labels, 0.2, seed=0)
    ids = _stratified(labels, train_ids, rows, seed)
    return _pick(texts, labels, ids), _pick(texts, labels, test_ids)
