"""A job's training history: loss and cumulative ε per step, and a summary per epoch.

The worker feeds every progress event to a `HistoryRecorder` and saves it with the job's
end (success, failure or cancellation) in the same transaction. A long job keeps at most
`MAX_POINTS` points: the first step, every `stride`-th and the last, so the curve is
evenly sampled and always ends at the ε the job reports. Per-epoch summaries are built
from every step, not only the kept ones.

What is stored is what the job's progress already shows step by step (the mean training
loss of each Poisson batch and the accountant's ε of the training steps). With model
selection (privet.training.selection) each epoch's summary also holds the validation
accuracy and macro-F1 computed from that epoch's DP release of the confusion matrix (its
ε is in the job's total, charged to the same budget), and whether it was a new best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from privet.jobs.records import finite
from privet.jobs.schemas import EpochSummary, HistoryPoint, TrainingJobHistoryPublic
from privet.jobs.tables import TrainingJob, TrainingJobHistory
from privet.kit.ids import utcnow
from privet.training.progress import ProgressEvent

if TYPE_CHECKING:
    from privet.training import TrainingResult

MAX_POINTS = 1000


def stride_for(total_steps: int, limit: int = MAX_POINTS) -> int:
    """Keep every stride-th step (plus the first and the last): at most `limit` points."""
    return max(1, math.ceil(total_steps / max(1, limit - 2)))


@dataclass
class _Epoch:
    steps: int = 0
    loss_sum: float = 0.0
    losses: int = 0
    epsilon: float | None = None
    last_step: int = 0


@dataclass
class HistoryRecorder:
    """Collects a run's progress events (one thread: the training loop's)."""

    limit: int = MAX_POINTS
    total_steps: int = 0
    points: list[dict[str, Any]] = field(default_factory=list)
    last: dict[str, Any] | None = None
    epochs: dict[int, _Epoch] = field(default_factory=dict)
    validation: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Per epoch: the DP validation release's metrics (model selection only)."""

    def add_selection(self, result: TrainingResult) -> None:
        """The run's per-epoch validation releases (nothing without model selection)."""
        for r in result.selection.epochs if result.selection is not None else ():
            self.validation[r.epoch] = {
                "validation_accuracy": finite(r.accuracy),
                "validation_macro_f1": finite(r.macro_f1),
                "best": r.best,
            }

    def add(self, event: ProgressEvent) -> None:
        self.total_steps = event.total_steps
        point = {
            "step": event.step,
            "epoch": event.epoch,
            "loss": finite(event.loss),
            "epsilon": finite(event.epsilon),
            "examples": event.examples,
        }
        stride = stride_for(event.total_steps, self.limit)
        if event.step == 1 or event.step % stride == 0 or event.step == event.total_steps:
            self.points.append(point)
        self.last = point
        epoch = self.epochs.setdefault(event.epoch, _Epoch())
        epoch.steps += 1
        epoch.last_step = event.step
        epoch.epsilon = point["epsilon"]
        if point["loss"] is not None:
            epoch.loss_sum += point["loss"]
            epoch.losses += 1

    def curve(self) -> list[dict[str, Any]]:
        """The kept points, ending with the last step taken (a stopped run's too)."""
        if self.last is not None and (not self.points or self.points[-1] is not self.last):
            return [*self.points, self.last]
        return list(self.points)

    def epoch_summaries(self) -> list[dict[str, Any]]:
        return [
            {
                "epoch": number,
                "steps": e.steps,
                "last_step": e.last_step,
                "mean_loss": e.loss_sum / e.losses if e.losses else None,
                "epsilon": e.epsilon,
                **self.validation.get(number, {}),
            }
            for number, e in sorted(self.epochs.items())
        ]


def save(session: Session, *, job: TrainingJob, recorder: HistoryRecorder) -> None:
    """Store the recorder's history as the job's (nothing when no step was taken)."""
    if recorder.last is None:
        return
    row = session.get(TrainingJobHistory, job.id) or TrainingJobHistory(
        job_id=job.id,
        project_id=job.project_id,
        total_steps=0,
        stride=1,
        points=[],
        epochs=[],
        updated_at=utcnow(),
    )
    row.total_steps = recorder.total_steps
    row.stride = stride_for(recorder.total_steps, recorder.limit)
    row.points = recorder.curve()
    row.epochs = recorder.epoch_summaries()
    row.updated_at = utcnow()
    session.add(row)


def history_public(session: Session, *, job: TrainingJob) -> TrainingJobHistoryPublic:
    """The job's history (empty until the job has ended: `progress` shows a running one)."""
    row = session.get(TrainingJobHistory, job.id)
    privacy = (job.result or {}).get("privacy") or {}
    selection = ((job.result or {}).get("training") or {}).get("selection")
    if selection is not None:
        split = ("epsilon", "epsilon_training", "epsilon_selection", "selection_noise_multiplier")
        selection = {**selection, **{k: privacy.get(k) for k in split}}
    return TrainingJobHistoryPublic(
        job_id=job.id,
        state=job.state,
        total_steps=row.total_steps if row else None,
        stride=row.stride if row else None,
        max_points=MAX_POINTS,
        epsilon=privacy.get("epsilon"),
        points=[HistoryPoint.model_validate(p) for p in row.points] if row else [],
        epochs=[EpochSummary.model_validate(e) for e in row.epochs] if row else [],
        selection=selection,
    )
