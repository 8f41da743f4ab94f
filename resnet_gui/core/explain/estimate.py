"""How long an explanation method will take on this computer, before running it.

The model's forward and backward pass (gradients down to the pixels) is timed once on a batch of
one and once on a batch of :data:`BATCH` (the methods that run the model many times feed it
batches, which cost less per image). Each method costs a known number of such passes with its
parameters (Integrated Gradients one per path point, SmoothGrad one per noisy copy, Occlusion one
forward per hidden square, a forward being about a third of a forward and backward): the rule is
in the method's row of :data:`~resnet_gui.core.explain.catalog.CATALOG`. The estimate is that
product: rough, but measured here, so a slow CPU gets honest numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from resnet_gui.core.explain.catalog import CATALOG, FORWARD_SHARE

__all__ = [
    "BATCH",
    "FORWARD_SHARE",
    "PassTimes",
    "describe_seconds",
    "estimate_seconds",
    "measure_pass_times",
    "method_passes",
]

#: The batch size of the second timing (the internal batch of Integrated Gradients and SmoothGrad).
BATCH = 8


@dataclass(frozen=True)
class PassTimes:
    """Seconds of one forward and backward pass: of a batch of one, and per image in a batch of BATCH."""

    single: float
    per_batched_image: float


def _defaults(method: str) -> dict[str, Any]:
    from resnet_gui.core.explain.methods import get_method_info

    return get_method_info(method).defaults


def method_passes(
    method: str, params: Mapping[str, Any] | None = None, input_size: int = 224
) -> tuple[float, bool]:
    """(About how many forward-and-backward passes ``method`` costs for one class of one photo,
    whether they run in batches), by the method's cost rule in the catalog.

    Raises ``KeyError`` for a method that is not in the catalog.
    """
    rule = CATALOG[method].passes
    # The defaults only where the rule reads parameters: they live with the torch-using registry.
    values = {**_defaults(method), **(params or {})} if rule.reads else dict(params or {})
    return float(rule.count(values, input_size)), rule.batched


def _time_pass(classifier: Any, batch: int) -> float:
    import torch

    size = classifier.preprocessing.crop_size
    inputs = torch.randn(batch, 3, size, size, device=classifier.device, requires_grad=True)
    began = time.perf_counter()
    with torch.enable_grad():
        logits = classifier.model(inputs.contiguous(memory_format=torch.channels_last))
        logits[:, 0].sum().backward()
    if classifier.device.type == "cuda":
        torch.cuda.synchronize(classifier.device)
    return time.perf_counter() - began


def measure_pass_times(classifier: Any, cancel: Callable[[], bool] | None = None) -> PassTimes:
    """Time ``classifier``'s model: a forward and backward pass at batch 1 and at batch BATCH.

    An untimed pass warms the model up first (allocations, kernel choice). Each pass holds the
    model's lock, like every other pass, and leaves no gradients behind. ``cancel()`` is checked between the
    passes (raises :class:`~resnet_gui.core.errors.Cancelled`): the app measures only when idle and
    gives way to the user's work.
    """
    from resnet_gui.core.errors import Cancelled

    def check() -> None:
        if cancel is not None and cancel():
            raise Cancelled("The timing of the model was cancelled.")

    def timed(batch: int) -> float:
        check()
        with classifier.lock:  # per pass, so the user's own work can go between them
            try:
                return _time_pass(classifier, batch)
            finally:
                classifier.model.zero_grad(set_to_none=True)

    timed(1)
    single = timed(1)
    batched = timed(BATCH) / BATCH
    return PassTimes(single, min(batched, single))


def estimate_seconds(
    method: str, times: PassTimes, params: Mapping[str, Any] | None = None, input_size: int = 224
) -> float:
    """The expected time of ``method`` on one class of one photo, from the measured pass times."""
    passes, batched = method_passes(method, params, input_size)
    return passes * max(times.per_batched_image if batched else times.single, 0.0)


def describe_seconds(seconds: float) -> str:
    """An estimate for people: "under a second", "about 4 s", "about 2 min"."""
    if seconds < 1.0:
        return "under a second"
    if seconds < 90:
        return f"about {round(seconds)} s"
    return f"about {round(seconds / 60)} min"
