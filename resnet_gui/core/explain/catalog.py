"""The explanation methods as users see them (key, name, one-line description, cost), without torch.

Each row also holds the method's cost rule (:class:`PassCost`: how many passes of the model it
runs for one class of one photo), from which :mod:`resnet_gui.core.explain.estimate` predicts its
time: adding a method is adding one row here (and its implementation in ``methods.py``).

This is the one copy of those texts. The torch-using registry
(:data:`resnet_gui.core.explain.methods.METHODS`) takes them from here, in this order, so that the
CLI's parser (``--method`` choices and help) and menus can list the methods without paying for
importing torch (seconds), and the two can never disagree. The colormap names are here for the
same reason (``maps.py``, which draws them, needs numpy and takes them from here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CATALOG",
    "COLORMAPS",
    "COSTS",
    "DEFAULT_METHOD",
    "FORWARD_SHARE",
    "MethodEntry",
    "PassCost",
    "fixed_passes",
    "passes_per",
]

#: A forward pass alone, as a share of a forward and backward pass.
FORWARD_SHARE = 1 / 3


@dataclass(frozen=True)
class PassCost:
    """A method's cost rule: about how many forward-and-backward passes it runs for one class of
    one photo.

    ``count(params, input_size)`` is that number, from the method's parameters and the side of the
    model's input; ``reads`` names the parameters it uses (their defaults are filled in for
    it, so it always gets them). ``batched``: the passes run in batches, which cost less per image.
    """

    count: Callable[[Mapping[str, Any], int], float]
    batched: bool = False
    reads: tuple[str, ...] = ()


def fixed_passes(passes: float) -> PassCost:
    """The same number of unbatched passes whatever the parameters (Grad-CAM: one)."""
    return PassCost(lambda params, input_size: passes)


def passes_per(parameter: str) -> PassCost:
    """One batched pass per unit of ``parameter`` (a path point, a noisy copy)."""
    return PassCost(lambda params, input_size: float(params[parameter]), batched=True, reads=(parameter,))


def _occlusion_passes(params: Mapping[str, Any], input_size: int) -> float:
    """One forward for the photo and one per position of the hidden square (a forward: FORWARD_SHARE)."""
    window = min(int(params["window"]), input_size)
    stride = min(int(params["stride"]), window)
    positions = (math.ceil((input_size - window) / stride) + 1) ** 2
    return (1 + positions) * FORWARD_SHARE


@dataclass(frozen=True)
class MethodEntry:
    """What a menu or ``--method`` shows about a method.

    ``cost`` is ``"fast"`` (one cheap pass: under a second on a CPU), ``"medium"`` (one or two full
    backward passes down to the pixels: seconds on a CPU) or ``"slow"`` (tens of passes). The app
    also shows a time estimate measured on the computer (:mod:`resnet_gui.core.explain.estimate`),
    from ``passes``, the method's cost rule.
    """

    key: str
    display_name: str
    description: str
    cost: str
    passes: PassCost


CATALOG: dict[str, MethodEntry] = {
    entry.key: entry
    for entry in (
        MethodEntry(
            "gradcam",
            "Grad-CAM",
            "Which regions the last convolutional layer found for this class (coarse, fast).",
            "fast",
            fixed_passes(1.0),
        ),
        MethodEntry(
            "gradcam++",
            "Grad-CAM++",
            "Like Grad-CAM, but better at showing every instance of the class (fast).",
            "fast",
            fixed_passes(1.0),
        ),
        MethodEntry(
            "saliency",
            "Saliency (gradients)",
            "Pixels whose change would change the score most (sharp but noisy; seconds on a CPU).",
            "medium",
            fixed_passes(1.0),
        ),
        MethodEntry(
            "guided_gradcam",
            "Guided Grad-CAM",
            "Fine edges and textures inside the Grad-CAM regions (two passes: seconds on a CPU).",
            "medium",
            fixed_passes(2.0),  # a plain pass for Grad-CAM, a guided one for the pixel detail
        ),
        MethodEntry(
            "integrated_gradients",
            "Integrated Gradients",
            "Each pixel's share of the score, compared with a black image (slow).",
            "slow",
            passes_per("n_steps"),
        ),
        MethodEntry(
            "smoothgrad",
            "SmoothGrad",
            "Saliency averaged over noisy copies of the photo: cleaner pixel detail (slow).",
            "slow",
            passes_per("nt_samples"),
        ),
        MethodEntry(
            "occlusion",
            "Occlusion",
            "How much the score drops when each part of the photo is hidden (slow).",
            "slow",
            PassCost(_occlusion_passes, batched=True, reads=("window", "stride")),
        ),
    )
}
"""Every method, cheapest first: the order of menus and of ``--method``'s choices."""

COSTS: tuple[str, ...] = ("fast", "medium", "slow")

DEFAULT_METHOD = "gradcam"

COLORMAPS: tuple[str, ...] = ("turbo", "jet", "viridis", "inferno")
"""The heat-map colormaps of :func:`resnet_gui.core.explain.maps.colorize`, default first."""
