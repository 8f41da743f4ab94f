"""How long a fine-tuning run will take, measured on this machine before it starts.

A wizard shows the time per epoch next to the settings, so a user sees that ``full`` mode on a
CPU costs minutes per epoch while ``head`` costs seconds once. Guessing from the model's size
would be wrong by a large factor across machines, so :func:`measure_costs` times the real pieces
(decoding a few of the user's photos, the frozen part's forward pass, the trained part's
forward-and-backward) on a small batch, and :func:`estimate_run` turns those per-image costs into
seconds for a mode and a dataset size. Measuring takes a few seconds for a ResNet-50 on a CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from resnet_gui.core.engine import select_device
from resnet_gui.core.models import LoadedModel
from resnet_gui.core.training.augment import decode
from resnet_gui.core.training.config import TrainConfig
from resnet_gui.core.training.events import Cancelled
from resnet_gui.core.training.features import fast_frozen, split_model

__all__ = ["CostModel", "RunEstimate", "describe_seconds", "estimate_run", "measure_costs"]

MEASURE_BATCH = 4
"""Images per timed batch: enough to amortise per-call overhead, small enough to take seconds."""


@dataclass(frozen=True)
class CostModel:
    """Seconds per image of each piece of a run, measured on one device with one model."""

    device: str
    decode: float
    """Decoding and resizing one photo (one worker thread)."""
    stem_forward: float
    """The layers up to ``layer3``, inference only (frozen in ``partial`` mode)."""
    layer4_forward: float
    layer4_step: float
    """``layer4`` + classifier, forward and backward (the trained part in ``partial`` mode)."""
    full_step: float
    """The whole network, forward and backward (``full`` mode)."""

    @property
    def backbone_forward(self) -> float:
        """The whole frozen backbone (``head`` mode's features)."""
        return self.stem_forward + self.layer4_forward


@dataclass(frozen=True)
class RunEstimate:
    """Expected seconds of a run: a one-time part, then each epoch."""

    mode: str
    setup_seconds: float
    """Frozen features of every training view and validation image, and the classifier-only stage."""
    epoch_seconds: float
    """One epoch of the trained stage, training and validation."""
    epochs: int

    @property
    def total_seconds(self) -> float:
        """If no epoch stops early: an upper bound, as early stopping only shortens the run."""
        return self.setup_seconds + self.epochs * self.epoch_seconds


def _timed(function: Callable[[], object], repeats: int = 2) -> float:
    """The fastest of ``repeats`` calls after one warm-up (the first call pays for allocation)."""
    function()
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - began)
    return best


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_costs(
    loaded: LoadedModel,
    sample_paths: Sequence[str | Path] = (),
    *,
    device: str = "auto",
    cancel: Callable[[], bool] | None = None,
) -> CostModel:
    """Time each piece of training ``loaded`` on ``device`` (on a private copy of the network).

    ``sample_paths``: a few of the photos to train on, to time decoding them (their size
    matters: a 12 MP photo takes ten times longer than a 1 MP one); none: decoding counts as 0.
    Raises :class:`Cancelled` when ``cancel()`` turns true between measurements.
    """
    import copy

    cancel = cancel or (lambda: False)
    target = select_device(device)
    network = copy.deepcopy(loaded.model).eval().to(target)
    network.requires_grad_(False)
    crop = loaded.preprocessing.crop_size
    images = torch.randn(MEASURE_BATCH, 3, crop, crop, device=target)
    images = images.contiguous(memory_format=torch.channels_last)

    def check() -> None:
        if cancel():
            raise Cancelled("The time estimate was cancelled.")

    decode_seconds = 0.0
    paths = [Path(p) for p in sample_paths][:MEASURE_BATCH]
    if paths:
        began = time.perf_counter()
        decoded = 0
        for path in paths:
            try:
                loaded.preprocessing.prepare(decode(path, loaded.preprocessing))
                decoded += 1
            except Exception:  # an unreadable photo says nothing about the others' cost
                continue
        decode_seconds = (time.perf_counter() - began) / decoded if decoded else 0.0
    check()

    parts = split_model(network, "partial", loaded.layout)
    stem = fast_frozen(parts.frozen).to(target)
    with torch.inference_mode():
        stem_output = stem(images)
    stem_output = stem_output.clone()
    layer4 = parts.trainable  # the last stage (+ neck), pooling and the classifier, of the model's layout

    def forward(module: nn.Module, inputs: torch.Tensor) -> Callable[[], object]:
        def run() -> None:
            with torch.inference_mode():
                module(inputs)
            _synchronise(target)

        return run

    def step(module: nn.Module, inputs: torch.Tensor) -> Callable[[], object]:
        labels = torch.zeros(len(inputs), dtype=torch.long, device=target)

        def run() -> None:
            module.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(module(inputs), labels)
            loss.backward()
            _synchronise(target)

        return run

    stem_forward = _timed(forward(stem, images)) / MEASURE_BATCH
    check()
    layer4_forward = _timed(forward(layer4, stem_output)) / MEASURE_BATCH
    check()
    layer4.requires_grad_(True)
    layer4_step = _timed(step(layer4, stem_output)) / MEASURE_BATCH
    check()
    network.requires_grad_(True)
    full_step = _timed(step(network, images), repeats=1) / MEASURE_BATCH
    return CostModel(
        device=str(target),
        decode=decode_seconds,
        stem_forward=stem_forward,
        layer4_forward=layer4_forward,
        layer4_step=layer4_step,
        full_step=full_step,
    )


def estimate_run(costs: CostModel, config: TrainConfig, train_images: int, val_images: int) -> RunEstimate:
    """Seconds for ``config`` on ``train_images`` + ``val_images``, from measured ``costs``.

    Decoding runs in ``config.workers`` threads beside the network, so a phase that decodes costs
    the slower of the two per image. The classifier-only stages (``head``'s epochs, the probe
    before ``partial``/``full``) run on cached features and are counted as free: they take well
    under a second per epoch.
    """
    config = config.resolved()
    workers = max(1, int(config.workers))
    decode = costs.decode / workers

    def decoding(compute: float) -> float:
        return max(compute, decode)

    views = 1 + int(config.cached_views or 0)
    if config.mode == "head":
        setup = (train_images * views + val_images) * decoding(costs.backbone_forward)
        epoch = 0.0
        if not config.cache_features:
            epoch = train_images * decoding(costs.backbone_forward)
    elif config.mode == "partial":
        setup = (train_images * views + val_images) * decoding(costs.stem_forward)
        if config.probe_epochs:
            setup += (train_images * views + val_images) * costs.layer4_forward
        if config.cache_features:
            epoch = train_images * costs.layer4_step + val_images * costs.layer4_forward
        else:
            epoch = train_images * decoding(costs.stem_forward + costs.layer4_step)
            epoch += val_images * costs.layer4_forward
    else:
        setup = 0.0
        if config.probe_epochs:
            setup = (train_images + val_images) * decoding(costs.backbone_forward)
        epoch = train_images * decoding(costs.full_step) + val_images * decoding(costs.backbone_forward)
    return RunEstimate(config.mode, float(setup), float(epoch), int(config.epochs))  # type: ignore[arg-type]


def describe_seconds(seconds: float) -> str:
    """ "under a second", "about 40 s", "about 3 min", "about 1 h 20 min": an estimate, rounded."""
    if not np.isfinite(seconds):
        return "unknown"
    if seconds < 1:
        return "under a second"
    if seconds < 60:
        return f"about {max(1, round(seconds))} s"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"
