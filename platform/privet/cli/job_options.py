"""The long options of `privet train submit`, named: what each recipe choice means is
written once, here, and `jobs.submit` reads as a list of its options."""

from __future__ import annotations

from typing import Annotated

import typer

ClassBalanceOption = Annotated[
    str | None,
    typer.Option(
        help="auto, logit_adjust, on or none: logit adjustment (loss on logits + log "
        "prior) or per-class weights <= 1, from the label counts."
    ),
]

SelectionOption = Annotated[
    str | None,
    typer.Option(
        help="auto, on or none: keep the best epoch on DP validation releases (their ε is "
        "in the job's target), stop early."
    ),
]

InitFromOption = Annotated[
    str | None,
    typer.Option(
        help="Warm start: an approved model version id of the project (same base model "
        "and labels) to train from; only this job's dataset is charged."
    ),
]

DistillFromOption = Annotated[
    str | None,
    typer.Option(
        help="Distillation: an approved DP model version id of the project (the teacher) "
        "whose soft labels over the dataset version's texts (declared non-personal) train "
        "the --base-model student; implies --non-private; the student keeps the "
        "teacher's ε, nothing is charged."
    ),
]
