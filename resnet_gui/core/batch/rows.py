"""The plain records a batch run produces: one row per file, and progress.

Kept free of torch (the engine's ``Prediction`` is only needed for type hints here) so that the
writers, the sorter and the CLI's argument parser can use them without loading the model stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from resnet_gui.core.confidence import is_not_sure
from resnet_gui.core.errors import ImageFailureKind

if TYPE_CHECKING:
    from resnet_gui.core.engine import Prediction

__all__ = ["BatchProgress", "BatchRow"]


@dataclass(frozen=True)
class BatchRow:
    """The outcome for one file: its top-k predictions, or the reason it could not be classified.

    ``kind`` says why for code (``"too_large"``: the user may raise the size limit); it is
    ``None`` for a classified file and ``"unreadable"`` for a failure given no kind. Results files
    keep only ``error``, so a row read back from one is ``"unreadable"``.

    ``unusual``: whether the photo looks unlike the model's training photos (None: the model
    cannot tell). ``recorded_not_sure``: the ``not_sure`` a results file holds for a row read back
    from it (None for a new row, decided by the run's threshold: see :meth:`not_sure`).
    """

    path: Path
    predictions: tuple[Prediction, ...] = ()
    error: str | None = None
    kind: ImageFailureKind | None = None
    unusual: bool | None = None
    recorded_not_sure: bool | None = None

    def __post_init__(self) -> None:
        if self.error is None and self.kind is not None:
            raise ValueError(f"a classified row has no failure kind, got {self.kind!r}")
        if self.error is not None and self.kind is None:
            object.__setattr__(self, "kind", "unreadable")
        if self.error is not None and (self.unusual is not None or self.recorded_not_sure is not None):
            raise ValueError("a failed row has no not-sure or unlike-training flag")

    def not_sure(self, threshold: float | None) -> bool | None:
        """Whether the top-1 prediction is *not sure* under ``threshold``
        (:func:`resnet_gui.core.confidence.is_not_sure`), or what the results file it was read from
        says; None for a file that could not be classified."""
        if not self.ok:
            return None
        if self.recorded_not_sure is not None:
            return self.recorded_not_sure
        top1 = self.top1
        return is_not_sure(top1.probability if top1 is not None else None, threshold)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(p.label for p in self.predictions)

    @property
    def probabilities(self) -> tuple[float, ...]:
        return tuple(p.probability for p in self.predictions)

    @property
    def top1(self) -> Prediction | None:
        return self.predictions[0] if self.predictions else None


@dataclass(frozen=True)
class BatchProgress:
    """Where a run stands, yielded once before the first batch and after every batch."""

    done: int
    total: int
    failed: int
    elapsed_seconds: float
    cancelled: bool = False

    @property
    def images_per_second(self) -> float:
        return self.done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the average speed so far; ``None`` until there is a speed."""
        rate = self.images_per_second
        return (self.total - self.done) / rate if rate > 0 else None

    @property
    def finished(self) -> bool:
        return self.done >= self.total
