"""Public data sets for the recipe calibration benchmark (issue 22), as fixed-seed subsets.

Each loader returns (train, eval): `rows` training rows drawn stratified (class ratio kept,
at least 2 rows a class) with a fixed seed, and a fixed evaluation set that does not
depend on `rows` (so figures at different sizes are comparable):

- sst2: train.tsv subset; the GLUE dev set (872) as evaluation.
- sms: stratified 80/20 split of the whole collection (seed 0); train subset from the 80%,
  the 20% (1,115 rows, 149 spam) as evaluation.
- trec: train_5500.label subset (coarse labels); TREC_10 (499) as evaluation.
- waimai: stratified 80/20 split (seed 0); 20% (2,398 rows) as evaluation.
- sms_rare: sms with spam downsampled (seed 0) to 3% of the rows in both the training pool
  (3,862 ham + 119 spam) and the evaluation set (965 ham + 30 spam).
- sst2_rare: SST-2 with negatives downsampled (seed 0) to 5%: the training pool is train.tsv's
  37,569 positives + 1,977 negatives; evaluation is dev.tsv + test.tsv (the labelled SST-2
  test set: dev alone has too few positives to hold 30 negatives at 5%): 1,353 positives +
  71 negatives.

The rare sets (issue 22) calibrate class balance on a genuinely rare class without TREC.

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
CALIBRATE = ("sst2", "sms", "sms_rare", "sst2_rare")
RARE = {"sms_rare": ("spam", 0.03), "sst2_rare": ("0", 0.05)}
"""Rare calibration sets: (the rare label, its share of the rows after downsampling)."""
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


def downsample(
    labels: Sequence[str], ids: Sequence[int], rare: str, share: float, seed: int = 0
) -> list[int]:
    """`ids` with `rare`'s rows cut (a seeded draw) so they hold `share` of the result;
    every other row kept, in order."""
    others = [i for i in ids if labels[i] != rare]
    pool = [i for i in ids if labels[i] == rare]
    keep = min(len(pool), round(len(others) * share / (1 - share)))
    kept = set(random.Random(seed).sample(pool, keep))
    return [i for i in ids if labels[i] != rare or i in kept]


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


def _rare(name: str, rows: int, seed: int) -> tuple[LabelledTexts, LabelledTexts]:
    """A RARE set: its base set with the rare label downsampled in the training pool and the
    evaluation set alike (seed 0, whatever `seed`: the sets stay fixed)."""
    rare, share = RARE[name]
    if name == "sms_rare":
        texts, labels = sms_spam_collection()
        pool, test_ids = _split(labels, 0.2, seed=0)
        eval_texts, eval_labels = texts, labels
    else:
        texts, labels = label_first_tsv(SHARED_DATA / "sst2" / "train.tsv")
        pool = list(range(len(labels)))
        dev_texts, dev_labels = label_first_tsv(SHARED_DATA / "sst2" / "dev.tsv")
        test_texts, test_labels = label_first_tsv(SHARED_DATA / "sst2" / "test.tsv")
        eval_texts, eval_labels = dev_texts + test_texts, dev_labels + test_labels
        test_ids = list(range(len(eval_labels)))
    pool = downsample(labels, pool, rare, share)
    test_ids = downsample(eval_labels, test_ids, rare, share)
    ids = _stratified(labels, pool, rows, seed)
    return _pick(texts, labels, ids), _pick(eval_texts, eval_labels, test_ids)


def load(name: str, rows: int, seed: int = 0) -> tuple[LabelledTexts, LabelledTexts]:
    """(train subset of `rows`, fixed evaluation set) of a calibration data set."""
    if name in RARE:
        return _rare(name, rows, seed)
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
