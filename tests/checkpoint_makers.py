"""Checkpoints as other code writes them, for the import tests (tests/test_weights_import.py, hostile/).

``akamaster_checkpoint`` writes what akamaster/pytorch_resnet_cifar10 publishes: the old (non-zip)
``torch.save`` format, ``{'best_prec1', 'state_dict'}``, keys with DataParallel's ``module.`` prefix
and the classifier named ``linear``. The weights are random but with non-trivial BN statistics, so a
tensor that lands in the wrong place changes the outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

StateDict = dict[str, torch.Tensor]


def cifar_state_dict(depth: int = 20, shortcut: str = "A", num_classes: int = 10, seed: int = 0) -> StateDict:
    """A CifarResNet's state dict (registry names), random but with non-trivial BN statistics."""
    from resnet_gui.core.cifar_resnet import CifarResNet

    torch.manual_seed(seed)
    model = CifarResNet(depth, shortcut=shortcut, num_classes=num_classes)  # type: ignore[arg-type]
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return {k: v.clone() for k, v in model.state_dict().items()}


def akamaster_names(state_dict: StateDict) -> StateDict:
    """Registry names as akamaster's checkpoints have them: ``module.`` prefix, ``linear`` classifier, no
    ``num_batches_tracked`` (saved with an older torch)."""
    renamed = {}
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        key = "linear." + key.removeprefix("fc.") if key.startswith("fc.") else key
        renamed[f"module.{key}"] = value
    return renamed


def akamaster_checkpoint(
    path: Path,
    depth: int = 20,
    *,
    num_classes: int = 10,
    change: Callable[[StateDict], StateDict] | None = None,
    seed: int = 0,
) -> Path:
    """Write an akamaster-style checkpoint of a random option-A CIFAR ResNet-``depth``."""
    state = akamaster_names(cifar_state_dict(depth, "A", num_classes, seed))
    if change is not None:
        state = change(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"best_prec1": 91.5, "state_dict": state}, path, _use_new_zipfile_serialization=False)
    return path


def without_block(stage: int, block: int) -> Callable[[StateDict], StateDict]:
    """Drop one residual block (e.g. ``layer2.2``): the stages then have unequal depths (a "ResNet-18")."""
    prefix = f"module.layer{stage}.{block}."
    return lambda state: {k: v for k, v in state.items() if not k.startswith(prefix)}


class _RunsCode:
    """Unpickling this would call ``print`` with a message: a stand-in for ``os.system``."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("this checkpoint ran code while being loaded",))


def pickle_with_code(path: Path) -> Path:
    """A checkpoint whose unpickling would run code (refused by weights_only)."""
    torch.save({"state_dict": cifar_state_dict(), "hook": _RunsCode()}, path)
    return path


def unknown_architecture(path: Path) -> Path:
    """The weights of something that is no ResNet (a small MLP)."""
    torch.save(
        {
            "encoder.weight": torch.zeros(8, 4),
            "encoder.bias": torch.zeros(8),
            "head.weight": torch.zeros(2, 8),
        },
        path,
    )
    return path
