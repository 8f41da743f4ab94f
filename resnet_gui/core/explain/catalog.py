"""The explanation methods as users see them (key, name, one-line description, cost), without torch.

This is the one copy of those texts. The torch-using registry
(:data:`resnet_gui.core.explain.methods.METHODS`) takes them from here, in this order, so that the
CLI's parser (``--method`` choices and help) and menus can list the methods without paying for
importing torch (seconds), and the two can never disagree. The colormap names are here for the
same reason (``maps.py``, which draws them, needs numpy and takes them from here).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOG", "COLORMAPS", "COSTS", "DEFAULT_METHOD", "MethodEntry"]


@dataclass(frozen=True)
class MethodEntry:
    """What a menu or ``--method`` shows about a method.

    ``cost`` is ``"fast"`` (one cheap pass: under a second on a CPU), ``"medium"`` (one or two full
    backward passes down to the pixels: seconds on a CPU) or ``"slow"`` (tens of passes). The app
    also shows a time estimate measured on the computer (:mod:`resnet_gui.core.explain.estimate`).
    """

    key: str
    display_name: str
    description: str
    cost: str


CATALOG: dict[str, MethodEntry] = {
    entry.key: entry
    for entry in (
        MethodEntry(
            "gradcam",
            "Grad-CAM",
            "Which regions the last convolutional layer found for this class (coarse, fast).",
            "fast",
        ),
        MethodEntry(
            "gradcam++",
            "Grad-CAM++",
            "Like Grad-CAM, but better at showing every instance of the class (fast).",
            "fast",
        ),
        MethodEntry(
            "saliency",
            "Saliency (gradients)",
            "Pixels whose change would change the score most (sharp but noisy; seconds on a CPU).",
            "medium",
        ),
        MethodEntry(
            "guided_gradcam",
            "Guided Grad-CAM",
            "Fine edges and textures inside the Grad-CAM regions (two passes: seconds on a CPU).",
            "medium",
        ),
        MethodEntry(
            "integrated_gradients",
            "Integrated Gradients",
            "Each pixel's share of the score, compared with a black image (slow).",
            "slow",
        ),
        MethodEntry(
            "smoothgrad",
            "SmoothGrad",
            "Saliency averaged over noisy copies of the photo: cleaner pixel detail (slow).",
            "slow",
        ),
        MethodEntry(
            "occlusion",
            "Occlusion",
            "How much the score drops when each part of the photo is hidden (slow).",
            "slow",
        ),
    )
}
"""Every method, cheapest first: the order of menus and of ``--method``'s choices."""

COSTS: tuple[str, ...] = ("fast", "medium", "slow")

DEFAULT_METHOD = "gradcam"

COLORMAPS: tuple[str, ...] = ("turbo", "jet", "viridis", "inferno")
"""The heat-map colormaps of :func:`resnet_gui.core.explain.maps.colorize`, default first."""
