"""What inference tells an observer of each predict request, and what it may ask back.

Inference declares this seam and calls it; it knows no observer. The runtime
(``privet.runtime.build_runtime``) wires monitoring in (its ``MonitorSlot.observe``:
decision rules, drift aggregates, alerts), so imports run monitoring → inference and
never back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from privet import ledger
from privet.config import Settings
from privet.crypto import KeyProvider
from privet.crypto.context import ServiceRuntime
from privet.inference.schemas import PredictionOut, PredictItem
from privet.inference.served import ServedModel
from privet.inference.versions import VersionInfo

if TYPE_CHECKING:  # torch loads on the first prediction, not at import
    from privet.inference.classifier import Scores


@dataclass
class PredictionBatch:
    """One predict request before it is written: ``rows`` (``predictions``), ``events``
    (``prediction.made``) and ``out`` (responses), one each per item. An observer may
    replace an event or a response (to add its decision); it keeps no text, except the
    sealed text of a prediction it refers or holds for review (``privet.inference.cases``)."""

    info: VersionInfo
    items: Sequence[PredictItem]
    scores: Sequence[Scores]
    rows: list[dict[str, Any]]
    events: list[ledger.EventSpec]
    out: list[PredictionOut]
    purpose: str
    caller: str


class ObservedService(Protocol):
    """What an observer may use of the inference service."""

    engine: Engine
    settings: Settings
    #: seals the text of the predictions the rules refer or hold (``privet.inference.cases``)
    key_provider: KeyProvider

    def served(self, info: VersionInfo) -> ServedModel: ...


class PredictionObserver(Protocol):
    """Called once per predict request, in its transaction, before anything is written."""

    def __call__(
        self, service: ObservedService, session: Session, batch: PredictionBatch
    ) -> None: ...


class ObservedRuntime(ServiceRuntime, Protocol):
    """What the inference service is built from (``InferenceService.from_runtime``): a
    ``privet.runtime.Runtime``, which plugs its monitor in as the observer."""

    @property
    def prediction_observer(self) -> PredictionObserver | None: ...
