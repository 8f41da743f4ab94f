"""The faithfulness scores as users see them (key, name, description, cost), without torch.

Like :mod:`resnet_gui.core.explain.catalog` for the methods: the CLI's ``--score`` choices and
help, and the app's menus, read this table without importing torch or scipy. The scores
themselves are computed by :func:`resnet_gui.core.explain.road.road_score` (``road``, the
default) and :func:`resnet_gui.core.explain.maps.deletion_score` (``deletion``).

:data:`SUGGESTIONS` is the rule behind "try another method" when a map scores badly: for each
method of the catalog, the method to compare it with on the same photo.
"""

from __future__ import annotations

from dataclasses import dataclass

from resnet_gui.core.explain.catalog import CATALOG

__all__ = ["DEFAULT_SCORE", "SCORES", "SUGGESTIONS", "ScoreEntry", "suggest_method"]


@dataclass(frozen=True)
class ScoreEntry:
    """What a menu or ``--score`` shows about a faithfulness score.

    ``runs`` is about how many runs (forward passes) of the model it costs for one map; ``cost``
    says it in words for people.
    """

    key: str
    display_name: str
    description: str
    cost: str
    runs: int


SCORES: dict[str, ScoreEntry] = {
    entry.key: entry
    for entry in (
        ScoreEntry(
            "road",
            "ROAD (remove and debias)",
            "Removes the map's most and least important pixels (10 % to 90 %), fills them in from "
            "their neighbours so the photo still looks natural, and compares how much the model's "
            "confidence falls, against a random map on the same photo (Rong et al., ICML 2022).",
            "37 runs of the model and 36 fill-ins: seconds",
            37,
        ),
        ScoreEntry(
            "deletion",
            "Deletion (blur)",
            "Blurs the map's brightest pixels away first and compares with blurring random squares "
            "(Petsiuk et al. 2018). Blurred photos look unlike real ones, so good maps can fail it.",
            "20 runs of the model: about a second",
            20,
        ),
    )
}
"""Every faithfulness score, the default first: the order of menus and of ``--score``'s choices."""

DEFAULT_SCORE = "road"

#: The method to try next when a map of the key's method scores badly. Region maps (Grad-CAM
#: family) are compared with each other first, since ROAD removes regions; pixel maps (gradients)
#: with Grad-CAM++, whose regions survive the fill-in that erases scattered pixels.
SUGGESTIONS: dict[str, str] = {
    "gradcam": "gradcam++",
    "gradcam++": "integrated_gradients",
    "saliency": "gradcam++",
    "guided_gradcam": "gradcam++",
    "integrated_gradients": "gradcam++",
    "smoothgrad": "gradcam++",
    "occlusion": "gradcam++",
}


def suggest_method(method: str | None) -> str | None:
    """The catalog key of the method to compare with, or None for an unknown method."""
    if method is None:
        return None
    suggestion = SUGGESTIONS.get(method)
    return suggestion if suggestion in CATALOG else None
