"""Explanations on the real ImageNet ResNet-50: right place, sensitive to the model, faithful.

The composed photo has a cat (``skimage.data.chelsea``) on the left half and an espresso
(``skimage.data.coffee``) on the right half. The model sees the whole composition (``fit="whole"``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_gui.core.engine import Classifier
from resnet_gui.core.explain import explain
from resnet_gui.core.explain.maps import deletion_score
from resnet_gui.core.explain.pipeline import explain_photo, prepare_for_fit

CAT_CLASSES = ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat")
pytestmark = pytest.mark.real_model


def _square(array: np.ndarray, size: int) -> Image.Image:
    image = Image.fromarray(array)
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)


@pytest.fixture(scope="module")
def cat_and_coffee() -> Image.Image:
    from skimage import data

    composed = Image.new("RGB", (448, 224))
    composed.paste(_square(data.chelsea(), 224), (0, 0))
    composed.paste(_square(data.coffee(), 224), (224, 0))
    return composed


@pytest.fixture(scope="module")
def classifier(real_resnet50) -> Classifier:
    return Classifier(real_resnet50, device="cpu")


def _top_cat_class(classifier: Classifier, prepared: np.ndarray) -> str:
    probabilities = classifier.probabilities(prepared[None])[0]
    return max(CAT_CLASSES, key=lambda name: probabilities[classifier.categories.index(name)])


def _mass_left(map_on_image: np.ndarray) -> float:
    weights = np.nan_to_num(map_on_image)
    half = weights.shape[1] // 2
    return float(weights[:, :half].sum() / weights.sum())


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_maps_point_at_the_object_of_the_class(classifier, cat_and_coffee, method: str) -> None:
    prepared = prepare_for_fit(classifier, cat_and_coffee, "whole")
    cat = _top_cat_class(classifier, prepared)
    result = explain_photo(classifier, cat_and_coffee, method=method, targets=["espresso", cat], fit="whole")
    espresso_map, cat_map = (c.map_on_image for c in result.classes)
    assert espresso_map.shape == cat_map.shape == (224, 448)
    assert not np.isnan(espresso_map).any(), "fit=whole: the model saw every pixel"
    print(
        f"{method}: espresso mass on the right {1 - _mass_left(espresso_map):.2f}; "
        f"{cat} mass on the left {_mass_left(cat_map):.2f}"
    )
    assert 1 - _mass_left(espresso_map) > 0.6
    assert _mass_left(cat_map) > 0.6


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties broken by order: maps are continuous)."""
    ranks_a = np.argsort(np.argsort(a.ravel())).astype(np.float64)
    ranks_b = np.argsort(np.argsort(b.ravel())).astype(np.float64)
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


@pytest.mark.parametrize("method", ["gradcam", "saliency"])
def test_maps_depend_on_the_learned_weights(classifier, real_resnet50, cat_and_coffee, method: str) -> None:
    """Model-randomisation sanity check (Adebayo et al., 2018).

    A map that barely changes when every weight is re-initialised explains the input's edges, not
    the model. Threshold: a Spearman rank correlation below 0.5 between the trained and the
    randomised model's maps, i.e. the two orderings of pixel importance share less than a quarter
    of their variance (rho^2 < 0.25); an input-driven edge detector scores far above that.
    """
    random_model = copy.deepcopy(real_resnet50)
    torch.manual_seed(0)
    for module in random_model.model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    random_classifier = Classifier(random_model, device="cpu")
    prepared = prepare_for_fit(classifier, cat_and_coffee, "whole")
    espresso = classifier.categories.index("espresso")
    (trained,) = explain(classifier, prepared[None], targets=espresso, method=method)
    (randomised,) = explain(random_classifier, prepared[None], targets=espresso, method=method)
    rho = _rank_correlation(trained.heatmap, randomised.heatmap)
    print(f"{method}: rank correlation trained vs randomised = {rho:.3f}")
    assert rho < 0.5


def test_gradcam_deletes_faster_than_random_on_both_halves(classifier, cat_and_coffee) -> None:
    """Deleting the pixels Grad-CAM ranks highest lowers each half's class faster than random.

    On the composition the model's top class is 'espresso' (about 0.7) and the cat classes are
    weak (about 0.02), so the areas are compared as a ratio, which does not depend on the scale.
    The random yardstick deletes 16-pixel squares (see ``deletion_score``).
    """
    prepared = prepare_for_fit(classifier, cat_and_coffee, "whole")
    cat = _top_cat_class(classifier, prepared)
    for label in ("espresso", cat):
        (explanation,) = explain(classifier, prepared[None], targets=label, method="gradcam")
        result = deletion_score(classifier, prepared, explanation.heatmap, explanation.target_index)
        print(result.summary(label))
        assert result.auc < result.random_auc, label
