"""Hugging Face model cards (YAML metadata + Markdown) for registered model versions.

The card states what a reviewer needs: the base model, the data it learnt from (dataset
version digests, never rows), the differential-privacy guarantee with every number needed
to recompute it, the training recipe, evaluation metrics, lineage, intended use and limits.
"""

from __future__ import annotations

import json
from typing import Any

import yaml


def _num(value: Any, digits: int = 6) -> Any:
    if isinstance(value, float):
        return float(format(value, f".{digits}g"))
    return value


def card_metadata(
    *,
    model_name: str,
    version_number: int,
    version_id: str,
    base_model: str,
    base_model_sha256: str,
    label_names: list[str],
    purposes: list[str],
    dataset_versions: list[dict[str, Any]],
    private: bool,
    privacy: dict[str, Any] | None,
    training: dict[str, Any],
    metrics: dict[str, Any],
    lineage: dict[str, Any],
) -> dict[str, Any]:
    """The YAML front matter (Hugging Face keys plus a `privet` block)."""
    summary = {k: _num(v) for k, v in metrics.items() if isinstance(v, int | float)}
    meta: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "base_model": base_model,
        "tags": ["text-classification", "privet"]
        + (["differential-privacy", "dp-sgd", "opacus"] if private else ["non-private"]),
        "model-index": [
            {
                "name": f"{model_name}-v{version_number}",
                "results": [
                    {
                        "task": {"type": "text-classification"},
                        "dataset": {
                            "name": d.get("name") or d["id"],
                            "type": "private",
                            "split": training.get("evaluated_on", "test"),
                            "revision": d.get("digest"),
                        },
                        "metrics": [
                            {"type": name, "value": value}
                            for name, value in sorted(summary.items())
                        ],
                    }
                    for d in dataset_versions[:1]
                ],
            }
        ],
        "privet": {
            "model": model_name,
            "version": version_number,
            "version_id": version_id,
            "base_model_sha256": base_model_sha256,
            "labels": label_names,
            "purposes": purposes,
            "dataset_versions": dataset_versions,
            "privacy": (
                {
                    "differentially_private": True,
                    **{k: _num(v, 10) for k, v in (privacy or {}).items()},
                }
                if private
                else {
                    "differentially_private": False,
                    "label": "non-private (no differential privacy)",
                }
            ),
            "training": {k: _num(v) for k, v in training.items()},
            "lineage": lineage,
        },
    }
    # Plain JSON types only (e.g. torch's version string is a str subclass YAML refuses).
    plain: dict[str, Any] = json.loads(json.dumps(meta))
    return plain


_PRIVACY_TABLE_KEYS = (
    "epsilon",
    "epsilon_training",
    "epsilon_selection",
    "delta",
    "target_epsilon",
    "accountant",
    "noise_multiplier",
    "max_grad_norm",
    "sample_rate",
    "steps",
    "grad_sample_mode",
    "secure_mode",
    "selection_noise_multiplier",
    "selection_releases",
)


def _privacy_lines(privacy: dict[str, Any]) -> list[str]:
    """The card's Privacy section body: the DP guarantee with every number needed to
    recompute it, or the non-private label."""
    if not privacy.get("differentially_private"):
        return [
            "**Non-private**: trained without differential privacy, allowed only "
            "because the training data is declared to hold no personal data."
        ]
    if privacy.get("post_processing_of"):
        return _distilled_lines(privacy)
    lines = [
        f"Trained with DP-SGD (Opacus): (ε = {privacy.get('epsilon')}, "
        f"δ = {privacy.get('delta')})-differential privacy at the level of one training "
        "example, accounted with the "
        f"`{privacy.get('accountant')}` accountant.",
        "",
        "| quantity | value |",
        "|---|---|",
    ]
    for key in _PRIVACY_TABLE_KEYS:
        if key in privacy:
            label = "clipping norm" if key == "max_grad_norm" else key.replace("_", " ")
            lines.append(f"| {label} | {privacy[key]} |")
    if privacy.get("selection_releases"):
        lines += [
            "",
            f"ε includes model selection: after each epoch the validation confusion matrix "
            f"was released with Gaussian noise (std {privacy.get('selection_noise_multiplier')}"
            f" counts, sensitivity 1; {privacy.get('selection_releases')} releases planned), "
            "composed with training in one accountant. The total is the full schedule's even "
            "when training stopped early. epsilon training is training alone; epsilon "
            "selection is what the releases add.",
        ]
    return [
        *lines,
        "",
        "ε can be recomputed independently from the noise multiplier, sample rate, steps "
        "and δ above, with the selection noise multiplier and releases when there are any "
        "(`privet.training.compute_epsilon`).",
        *_by_dataset_lines(privacy.get("epsilon_by_dataset")),
    ]


def _distilled_lines(privacy: dict[str, Any]) -> list[str]:
    """A distilled student: the teacher's guarantee, by post-processing."""
    teacher = privacy.get("post_processing_of")
    return [
        f"Distilled from the DP model version `{teacher}`: trained without DP-SGD on the "
        "teacher's soft labels over texts declared to hold no personal data. The teacher's "
        "outputs are post-processing of its DP training, so this version carries the "
        f"teacher's guarantee, (ε = {privacy.get('epsilon')}, δ = {privacy.get('delta')})-"
        "differential privacy for the teacher's training examples, and charged no budget. "
        "The distillation texts have no DP guarantee (they are declared non-personal).",
        *_by_dataset_lines(privacy.get("epsilon_by_dataset"), distilled=True),
    ]


def _by_dataset_lines(spent: Any, *, distilled: bool = False) -> list[str]:
    """A warm-started version: which dataset's budget paid which ε. Each budget is the
    dataset's own; training from released DP weights is post-processing, so the earlier
    datasets were not charged again."""
    if not spent:
        return []
    what = (
        "Distilled from an approved version: the teacher's outputs carry the ε earlier jobs "
        "spent on their own datasets (charged when they ran; distilling charges them nothing "
        "more). The last row is the distillation texts: no ε."
        if distilled
        else "Warm-started from an approved version: its weights carry the ε earlier jobs "
        "spent on their own datasets (charged to those datasets' budgets when they ran; "
        "starting from released DP weights is post-processing and charges them nothing "
        "more). This version's job spent the last row's ε on its own dataset only."
    )
    lines = [
        "",
        what,
        "",
        "| dataset | dataset versions | ε | δ | job |",
        "|---|---|---|---|---|",
    ]
    for entry in spent:
        versions = ", ".join(f"`{v}`" for v in entry.get("dataset_version_ids") or [])
        lines.append(
            f"| {entry.get('dataset_id')} | {versions} | {_num(entry.get('epsilon'))} "
            f"| {_num(entry.get('delta'))} | {entry.get('training_job')} |"
        )
    return lines


def _evaluated_on(training: dict[str, Any]) -> str:
    """Which split the metrics are from, and whether they are optimistic: a split model
    selection chose the kept epoch on (or that trained the model) is not held out."""
    split = training.get("evaluated_on", "test")
    where = f"On the dataset's recorded `{split}` split"
    if training.get("evaluation_seen_by_selection"):
        return (
            f"{where} (the version has no test split). Model selection chose the kept epoch "
            "by its scores on this same split, so these figures are optimistic, not a "
            "held-out estimate: "
        )
    if split == "validation":
        return f"{where} (the version has no test split; model selection did not use it): "
    if split == "train":
        return (
            f"{where} (the version has no held-out split): the model trained on these rows, "
            "so these figures are optimistic, not a held-out estimate: "
        )
    return f"{where}: "


def _data_and_training_lines(p: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """The Training data, Training procedure and Evaluation sections."""
    training = p["training"]
    lines = ["", "## Training data", ""]
    teacher = (p.get("lineage") or {}).get("distilled_from_model_version") or {}
    for d in p["dataset_versions"]:
        via = d.get("via_model_version")
        how = "distillation of" if via and via == teacher.get("id") else "warm start from"
        lines.append(
            f"- dataset version `{d['id']}` ({d.get('name') or 'dataset'}), digest "
            f"`{d.get('digest')}`, {d.get('rows', '?')} rows"
            + (f" (through the {how} model version `{via}`)" if via else "")
            + (" (unlabelled texts: distillation input)" if d.get("unlabelled") else "")
        )
    lines += ["", "## Training procedure", "", "| setting | value |", "|---|---|"]
    for key, value in training.items():
        lines.append(f"| {key.replace('_', ' ')} | {value} |")
    lines += ["", "## Evaluation", ""]
    summary = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    lines.append(
        _evaluated_on(training)
        + ", ".join(f"{k} = {_num(v, 4)}" for k, v in sorted(summary.items()))
    )
    if metrics.get("per_class"):
        lines += ["", *_per_class_table(metrics)]
    if "per_class" in metrics:
        lines += [
            "",
            "Per class:",
            "",
            "```json",
            json.dumps(metrics["per_class"], indent=1),
            "```",
        ]
    return lines


_LIMITATIONS = [
    "## Limitations",
    "",
    "- Trained on a small, organisation-specific dataset; it is not validated for other "
    "populations, languages or purposes (purpose limitation applies).",
    "- Differential privacy bounds what the weights reveal about any one training "
    "example; it does not make the predictions fair or correct. Differential privacy "
    "usually costs accuracy, more so for rare labels.",
    "- Evaluation figures come from a held-out split of the same data and may not hold "
    "after drift; monitor it in production.",
]


def render_card(meta: dict[str, Any], *, metrics: dict[str, Any]) -> str:
    """The README.md of a model version: YAML front matter and the text."""
    p = meta["privet"]
    lines = [
        "---",
        yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        f"# {p['model']} v{p['version']}",
        "",
        f"A text classifier fine-tuned from `{meta['base_model']}` (weights SHA-256 "
        f"`{p['base_model_sha256']}`) with privet, for the purpose(s): "
        f"{', '.join(p['purposes'])}. Labels: {', '.join(p['labels'])}.",
        "",
        "## Privacy",
        "",
        *_privacy_lines(p["privacy"]),
        *_data_and_training_lines(p, metrics),
        "",
        "## Intended use",
        "",
        f"Decision support for {', '.join(p['purposes'])} within the project it was trained "
        "in, served only by privet after approval by someone other than its trainer, with "
        "every prediction audited.",
        "",
        *_LIMITATIONS,
        "",
        "## Lineage",
        "",
    ]
    for key, value in p["lineage"].items():
        lines.append(f"- {key.replace('_', ' ')}: `{value}`")
    return "\n".join(lines) + "\n"


def _per_class_table(metrics: dict[str, Any]) -> list[str]:
    """Per-class F1 as a table, and the worst class: a rare class that matters can hide
    behind a good macro average (and DP usually costs rare classes most)."""
    rows = [c for c in metrics["per_class"] if isinstance(c, dict)]
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for c in rows:
        lines.append(
            f"| {c.get('label')} | {_num(c.get('precision'), 4)} | {_num(c.get('recall'), 4)} "
            f"| {_num(c.get('f1'), 4)} | {c.get('support')} |"
        )
    worst = metrics.get("worst_class")
    if not worst and rows:
        worst_row = min(rows, key=lambda c: float(c.get("f1") or 0.0))
        worst, worst_f1 = worst_row.get("label"), worst_row.get("f1")
    else:
        worst_f1 = metrics.get("worst_class_f1")
    if worst:
        lines += ["", f"Worst class: **{worst}** (F1 {_num(worst_f1, 4)})."]
    return lines


def parse_card(text: str) -> dict[str, Any]:
    """The YAML metadata of a card (tests and consumers)."""
    if not text.startswith("---\n"):
        raise ValueError("a model card starts with YAML front matter")
    end = text.index("\n---\n", 4)
    data: dict[str, Any] = yaml.safe_load(text[4:end])
    return data
