"""Training from scratch: which networks can, how one is built untrained, and when to suggest it.

A network pretrained on ImageNet learned from 224x224 photos; a folder of 32x32 thumbnails gives
it a few blurred pixels per feature, and upscaling them costs 50 times the compute. The CIFAR
ResNets of the 2015 paper (:mod:`resnet_gui.core.cifar_resnet`) are made for such photos and learn
them from random weights in minutes on a CPU, so ``scratch`` mode accepts only those (an ImageNet
ResNet from random weights needs millions of photos and a GPU: refused, in one sentence).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from resnet_gui.core.models import LoadedModel, get_model_spec, model_names, registry
from resnet_gui.core.modes import TRAINING_MODES
from resnet_gui.core.training.events import TrainingError
from resnet_gui.core.training.health import HealthReport

__all__ = [
    "DEFAULT_SCRATCH_MODEL",
    "SMALL_PHOTO_SIDE",
    "FromScratchError",
    "ScratchSuggestion",
    "scratch_architectures",
    "suggest_from_scratch",
    "untrained_from_reference",
    "untrained_model",
]

DEFAULT_SCRATCH_MODEL = "cifar_resnet20"
"""ResNet-20: the smallest of the paper's nets, the one that trains in minutes on a CPU."""
SMALL_PHOTO_SIDE = 64
"""Photos whose median longer side is at most this are "small": a network for 32x32 input fits."""
SCRATCH_MODE = next(key for key, mode in TRAINING_MODES.items() if mode.from_scratch)


class FromScratchError(TrainingError):
    """A network that cannot be trained from scratch here (made for large photos, or a weights file)."""


def scratch_architectures() -> list[str]:
    """The registry's networks made for small photos, in the registry's order (ResNet-20 first)."""
    specs = registry()
    return [name for name in model_names() if specs[name].small_images]


def check_scratch_architecture(name: str) -> None:
    """Raise :class:`FromScratchError` unless ``name`` is a registry network made for small photos."""
    spec = get_model_spec(name)
    if not spec.small_images:
        raise FromScratchError(
            f"{spec.display_name} cannot be trained from scratch here: it is made for large photos and "
            f"needs millions of them and a GPU; use a network made for small photos, such as "
            f"{DEFAULT_SCRATCH_MODEL}, cifar_resnet56_b or cifar_plain20."
        )


def untrained_model(name: str = DEFAULT_SCRATCH_MODEL, *, seed: int = 0) -> LoadedModel:
    """The registry network ``name`` with fresh random weights drawn from ``seed``.

    The global random state is left as it was, so two calls with one seed give the same weights
    (a resumed run checks that it starts from the same ones).
    """
    check_scratch_architecture(name)
    spec = get_model_spec(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = spec.build()
    return LoadedModel(
        model=network.eval(),
        name=f"{spec.name}:untrained",
        architecture=spec.name,
        preprocessing=spec.preprocessing,
        categories=tuple(f"class {index}" for index in range(spec.num_classes)),
        weights_description=f"untrained (random weights, seed {seed})",
        gradcam_layer=spec.gradcam_layer,
        layout=spec.layout,
    )


def untrained_from_reference(reference: str | Path | LoadedModel | None, *, seed: int = 0) -> LoadedModel:
    """The untrained network a ``--model`` (or the wizard's choice) names for training from scratch:
    a registry name (``cifar_resnet56``, weights part ignored), a loaded model's architecture, or
    :data:`DEFAULT_SCRATCH_MODEL` for None. A weights file is refused: its weights would be thrown away."""
    from resnet_gui.core.models import looks_like_a_file, parse_model_ref
    from resnet_gui.core.text import printable_path

    if isinstance(reference, LoadedModel):
        return untrained_model(reference.architecture, seed=seed)
    if reference is None:
        return untrained_model(DEFAULT_SCRATCH_MODEL, seed=seed)
    if isinstance(reference, Path) or looks_like_a_file(str(reference)):
        raise FromScratchError(
            "Training from scratch starts from random weights, so it takes a network's name (such as "
            f"{DEFAULT_SCRATCH_MODEL}), not the weights file '{printable_path(reference)}'."
        )
    return untrained_model(parse_model_ref(str(reference))[0], seed=seed)


@dataclass(frozen=True)
class ScratchSuggestion:
    """Train from scratch, with ``model``, because the photos are small: ``reason`` says so."""

    mode: str
    model: str
    reason: str
    median_side: int


def suggest_from_scratch(report: HealthReport) -> ScratchSuggestion | None:
    """Suggest ``scratch`` mode when the folder's photos are small (median longer side at most
    :data:`SMALL_PHOTO_SIDE`), else ``None``: a pretrained ImageNet model fits larger photos better."""
    sides = [max(size) for size in report.sizes.values()]
    if not sides:
        return None
    median = int(statistics.median(sides))
    if median > SMALL_PHOTO_SIDE:
        return None
    typical = statistics.mode(report.sizes.values())
    return ScratchSuggestion(
        mode=SCRATCH_MODE,
        model=DEFAULT_SCRATCH_MODEL,
        reason=(
            f"Your photos are small (typically {typical[0]}×{typical[1]}): a network trained from scratch "
            "for small photos fits them better than one made for large photos."
        ),
        median_side=median,
    )
