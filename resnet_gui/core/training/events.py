"""What the training steps report while they run: plain, immutable data.

The generators of this package (health check, feature extraction, training, evaluation) yield
these objects, so a CLI draws a progress bar from them and a Qt wizard forwards them as signals
without either knowing how the work is done.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from resnet_gui.core.errors import Cancelled, ResNetGuiError

__all__ = ["Cancelled", "Progress", "TrainingError", "forward_progress"]

T = TypeVar("T")


class TrainingError(ResNetGuiError):
    """A training or evaluation run cannot go on (bad settings, a checkpoint that does not match…)."""

    exit_code = 1


@dataclass(frozen=True)
class Progress:
    """Progress of a phase measured in images: ``health``, ``features``, ``evaluate``…"""

    phase: str
    done: int
    total: int
    message: str = ""
    started: float = field(default_factory=time.perf_counter, repr=False, compare=False)
    elapsed: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far (``None`` before the first image)."""
        if self.done <= 0 or self.elapsed <= 0:
            return None
        return (self.total - self.done) * self.elapsed / self.done

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    def advanced(self, done: int, message: str | None = None) -> Progress:
        """The same phase with ``done`` images done, timed from when it started."""
        return dataclasses.replace(
            self,
            done=done,
            elapsed=time.perf_counter() - self.started,
            message=self.message if message is None else message,
        )


def forward_progress(steps: Iterable[Progress | T]) -> Generator[Progress, None, T | None]:
    """Pass on a step's :class:`Progress` events and return its result (its last other item).

    The steps of this package yield progress, then their result; a generator that runs one as
    part of its own work writes ``result = yield from forward_progress(step(...))``. ``None``
    when the step ended without a result (it was cancelled).
    """
    result = None
    for item in steps:
        if isinstance(item, Progress):
            yield item
        else:
            result = item
    return result
