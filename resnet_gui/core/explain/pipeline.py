"""Explain a photo end to end: prepare it, compute the maps, put them on the photo, score them.

The CLI's ``explain`` command and the GUI both call :func:`explain_photo`, so what a user sees
in the window and what the command writes to disk are computed the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from resnet_gui.core.engine import Classifier
from resnet_gui.core.explain.base import Explanation, ExplanationCancelled
from resnet_gui.core.explain.maps import (
    DeletionResult,
    RoadResult,
    deletion_score,
    map_to_image,
    normalize_maps,
    prepare_whole,
)
from resnet_gui.core.explain.methods import DEFAULT_METHOD, explain
from resnet_gui.core.explain.targets import TargetSpec


@dataclass
class ExplainedClass:
    """One class's explanation, ready to show: the raw map, its display map on the photo, its score."""

    explanation: Explanation
    map_on_image: np.ndarray = field(repr=False)  # (H, W) float32 in 0..1, NaN where the model saw nothing
    deletion: DeletionResult | None = None  # with score="deletion"
    road: RoadResult | None = None  # with score="road" (what score=True means)

    @property
    def faithfulness(self) -> RoadResult | DeletionResult | None:
        """The faithfulness result that was asked for, if any."""
        return self.road if self.road is not None else self.deletion

    @property
    def label(self) -> str:
        return self.explanation.target_label

    @property
    def probability(self) -> float:
        return self.explanation.probability

    def to_dict(self) -> dict[str, Any]:
        """The class as plain JSON values: see :meth:`PhotoExplanation.to_dict`."""
        faithfulness = self.faithfulness
        if isinstance(faithfulness, DeletionResult):
            scored: dict[str, object] | None = faithfulness.to_dict(self.label)
        else:
            scored = None if faithfulness is None else faithfulness.to_dict()
        return {
            "label": self.label,
            "index": int(self.explanation.target_index),
            "probability": float(self.probability),
            "faithfulness": scored,
        }


@dataclass
class PhotoExplanation:
    """Every class explained on one photo, with one shared display scale across them."""

    image: Image.Image = field(repr=False)
    method: str
    fit: str
    classes: list[ExplainedClass]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """What ``explain --json`` prints (the README's *explain --json* lists every field).

        ``classes`` in rank order, each with its ``label``, ``index``, ``probability`` and
        ``faithfulness``: None without a score, else :meth:`RoadResult.to_dict` or
        :meth:`DeletionResult.to_dict` (their ``score`` member tells which).
        """
        return {
            "method": self.method,
            "fit": self.fit,
            "seconds": round(self.seconds, 3),
            "classes": [explained.to_dict() for explained in self.classes],
        }


def prepare_for_fit(classifier: Classifier, image: Image.Image, fit: str) -> np.ndarray:
    """The (3, h, w) model input: the centre crop (``crop``) or the whole photo squeezed (``whole``)."""
    if fit == "whole":
        return prepare_whole(image, classifier.preprocessing)
    if fit == "crop":
        return classifier.preprocessing.prepare(image)
    raise ValueError(f"fit must be 'crop' or 'whole', not {fit!r}")


def explain_photo(
    classifier: Classifier,
    image: Image.Image,
    *,
    method: str = DEFAULT_METHOD,
    targets: TargetSpec = None,
    top_k: int = 1,
    fit: str = "crop",
    shared_scale: bool = True,
    score: bool | str = False,
    params: dict[str, Any] | None = None,
    progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> PhotoExplanation:
    """Explain ``image`` for ``targets`` (or its ``top_k`` predictions) with ``method``.

    Maps are normalised with one shared scale (``shared_scale``) so a weak class looks weak, then
    mapped back through the crop geometry onto the full-resolution photo. With ``score`` each map
    also gets a faithfulness score: a key of :data:`~resnet_gui.core.explain.scores.SCORES`
    (``"road"``, ``"deletion"``), or True for the default (ROAD).
    """
    from resnet_gui.core.explain.scores import DEFAULT_SCORE, SCORES

    score_key = DEFAULT_SCORE if score is True else (score or None)
    if score_key is not None and score_key not in SCORES:
        raise ValueError(f"unknown faithfulness score {score_key!r}; choose one of {', '.join(SCORES)}")
    began = time.perf_counter()
    prepared = prepare_for_fit(classifier, image, fit)
    explanations = explain(
        classifier, prepared[None], targets, top_k, method, progress=progress, cancel=cancel, **(params or {})
    )
    display = normalize_maps([e.heatmap for e in explanations], shared=shared_scale)
    classes = []
    for explanation, map01 in zip(explanations, display, strict=True):
        deletion = road = None
        if score_key is not None and cancel is not None and cancel():
            raise ExplanationCancelled("The explanation was cancelled.")
        if score_key == "deletion":
            deletion = deletion_score(classifier, prepared, explanation.heatmap, explanation.target_index)
        elif score_key == "road":
            from resnet_gui.core.explain.road import road_score

            road = road_score(
                classifier,
                prepared,
                explanation.heatmap,
                explanation.target_index,
                method=explanation.method,
                label=explanation.target_label,
                cancel=cancel,
            )
        on_image = map_to_image(map01, image.size, classifier.preprocessing, fit=fit)
        classes.append(ExplainedClass(explanation, on_image, deletion, road))
    return PhotoExplanation(
        image, explanations[0].method if explanations else method, fit, classes, time.perf_counter() - began
    )
