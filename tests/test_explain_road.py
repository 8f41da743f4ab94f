"""ROAD (remove and debias): our re-implementation against pytorch-grad-cam's, and its behaviour.

The reference is ``pytorch_grad_cam.metrics.road`` (PyPI ``grad-cam``, a test dependency only).
With the imputer's noise set to 0 on both sides, the imputed inputs agree to 1e-5 (float32
rounding of the same sparse solve) and the scores to 1e-5 in probability.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_gui.core.engine import Classifier
from resnet_gui.core.explain import explain
from resnet_gui.core.explain.catalog import CATALOG
from resnet_gui.core.explain.maps import (
    ROAD_WEAK_BELOW,
    VERDICTS,
    faithfulness_curves,
    road_sentence,
    road_verdict,
)
from resnet_gui.core.explain.road import (
    ROAD_PERCENTILES,
    noisy_linear_impute,
    road_keep_masks,
    road_score,
)
from resnet_gui.core.explain.scores import DEFAULT_SCORE, SCORES, SUGGESTIONS, suggest_method
from resnet_gui.core.models import LoadedModel
from resnet_gui.core.preprocessing import Preprocessing

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    # pytorch-grad-cam hands torch tensors to numpy (its concern, not ours)
    pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning"),
]

SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"
IMPUTE_TOLERANCE = 1e-5
SCORE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def reference():
    return pytest.importorskip("pytorch_grad_cam.metrics.road")


@pytest.fixture()
def noiseless_reference(reference, monkeypatch: pytest.MonkeyPatch):
    """The reference with its imputer's noise at 0 (its metrics build ``NoisyLinearImputer()``)."""
    monkeypatch.setattr(
        reference.NoisyLinearImputer.__init__, "__defaults__", (0.0, reference.neighbors_weights)
    )
    return reference


@pytest.fixture(scope="module")
def photo_and_map(tiny_classifier: Classifier) -> tuple[np.ndarray, np.ndarray, int]:
    """The coffee photo as the tiny model's input, its Grad-CAM map and the class it explains."""
    with Image.open(SAMPLES / "coffee.jpg") as image:
        prepared = tiny_classifier.preprocessing.prepare(image.convert("RGB"))
    [explanation] = explain(tiny_classifier, prepared[None], method="gradcam")
    return prepared, explanation.heatmap.astype(np.float32), explanation.target_index


class _ReferenceModel(torch.nn.Module):
    """The classifier as a module for the reference: log-probabilities, so its softmax target is
    exactly the probability our score reads."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.from_numpy(np.asarray(self.classifier.probabilities(x.numpy()))).double())


def test_keep_masks_are_the_references(photo_and_map, reference) -> None:
    from pytorch_grad_cam.metrics.perturbation_confidence import (
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )

    prepared, heat, _ = photo_and_map
    seen: list[np.ndarray] = []

    def record(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        seen.append(mask.numpy().astype(bool))
        return image

    most, least = road_keep_masks(heat)
    for index, percentile in enumerate(ROAD_PERCENTILES):
        RemoveMostRelevantFirst(percentile, record)(torch.from_numpy(prepared), torch.from_numpy(heat))
        RemoveLeastRelevantFirst(percentile, record)(torch.from_numpy(prepared), torch.from_numpy(heat))
        np.testing.assert_array_equal(most[index], seen[-2])
        np.testing.assert_array_equal(least[index], seen[-1])
    # a lower percentile keeps fewer pixels (ties in the map make the steps uneven)
    assert all((~a).sum() >= (~b).sum() for a, b in itertools.pairwise(most))


def test_imputation_matches_the_reference(photo_and_map, reference) -> None:
    prepared, heat, _ = photo_and_map
    most, least = road_keep_masks(heat, (10, 50, 90))
    imputer = reference.NoisyLinearImputer(noise=0.0)
    for keep in [*most, *least]:
        ours = noisy_linear_impute(prepared, keep, noise=0.0)
        theirs = imputer(torch.from_numpy(prepared), torch.from_numpy(keep.astype(np.float32))).numpy()
        np.testing.assert_allclose(ours, theirs, atol=IMPUTE_TOLERANCE, rtol=0)
        np.testing.assert_array_equal(ours[:, keep], prepared[:, keep])  # kept pixels untouched
        assert not np.allclose(ours[:, ~keep], prepared[:, ~keep], atol=1e-3)  # removed ones changed


def test_scores_match_the_reference(photo_and_map, tiny_classifier: Classifier, noiseless_reference) -> None:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    prepared, heat, target = photo_and_map
    model = _ReferenceModel(tiny_classifier)
    tensor, cams, targets = (
        torch.from_numpy(prepared)[None],
        heat[None],
        [ClassifierOutputSoftmaxTarget(target)],
    )
    ours = road_score(tiny_classifier, prepared, heat, target, noise=0.0, random_maps=0)
    assert ours.random_score is None

    combined = noiseless_reference.ROADCombined(percentiles=list(ROAD_PERCENTILES))(
        tensor, cams, targets, model
    )
    assert ours.score == pytest.approx(float(combined[0]), abs=SCORE_TOLERANCE)
    for percentile in (20, 50, 90):
        at = int(np.flatnonzero(np.isclose(ours.removed, 1 - percentile / 100))[0])
        morf = noiseless_reference.ROADMostRelevantFirst(percentile)
        lerf = noiseless_reference.ROADLeastRelevantFirst(percentile)
        after_morf = morf(tensor, cams, targets, model, return_diff=False)[0]
        after_lerf = lerf(tensor, cams, targets, model, return_diff=False)[0]
        assert ours.morf[at] == pytest.approx(float(after_morf), abs=SCORE_TOLERANCE)
        assert ours.lerf[at] == pytest.approx(float(after_lerf), abs=SCORE_TOLERANCE)
    assert ours.original == pytest.approx(tiny_classifier.probabilities(prepared[None])[0, target], abs=1e-6)


def test_noise_is_seeded_and_of_the_references_size(photo_and_map) -> None:
    prepared, heat, _ = photo_and_map
    [keep], _ = road_keep_masks(heat, (30,))
    plain = noisy_linear_impute(prepared, keep, noise=0.0)
    first, again, other = (
        noisy_linear_impute(prepared, keep, rng=np.random.default_rng(seed)) for seed in (1, 1, 2)
    )
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(first[:, keep], prepared[:, keep])
    assert float(np.std(first[:, ~keep] - plain[:, ~keep])) == pytest.approx(0.01, rel=0.05)


def test_imputation_fills_a_hole_from_its_border() -> None:
    image = np.zeros((1, 9, 9), np.float32)
    image[0, :, 5:] = 1.0  # left dark, right bright
    keep = np.ones((9, 9), bool)
    keep[3:6, 3:6] = False
    filled = noisy_linear_impute(image, keep, noise=0.0)[0]
    assert 0.0 < filled[4, 3] < filled[4, 4] < filled[4, 5] < 1.0  # a smooth ramp across the hole
    with pytest.raises(ValueError, match="kept pixel"):
        noisy_linear_impute(image, np.zeros((9, 9), bool))


# --------------------------------------------------------------------------- behaviour

REGION = (slice(8, 16), slice(12, 20))  # the only pixels the cheating model looks at


class RegionModel(torch.nn.Module):
    """Class 0's logit is the mean of channel 0 over REGION: nothing else matters to it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = x[:, 0, REGION[0], REGION[1]].mean(dim=(1, 2)) - 0.5
        return torch.stack([6 * evidence, -6 * evidence], dim=1)


def _cheating_classifier() -> Classifier:
    loaded = LoadedModel(
        model=RegionModel(),
        name="region",
        architecture="region",
        preprocessing=Preprocessing(resize_size=32, crop_size=32),
        categories=("target", "other"),
        weights_description="hand-built",
    )
    return Classifier(loaded, device="cpu")


def _region_map() -> np.ndarray:
    """High on REGION, falling off with the distance from it: no ties, so every percentile cuts."""
    rows, cols = np.mgrid[0:32, 0:32]
    distance = np.hypot(rows - 11.5, cols - 15.5)
    return (1.0 / (1.0 + distance)).astype(np.float32)


def test_the_true_region_scores_well_and_its_inverse_badly() -> None:
    classifier = _cheating_classifier()
    prepared = np.zeros((3, 32, 32), np.float32)
    prepared[:, REGION[0], REGION[1]] = 1.0
    right = road_score(classifier, prepared, _region_map(), 0, method="gradcam", label="target")
    wrong = road_score(classifier, prepared, 1.0 - _region_map(), 0, method="gradcam", label="target")
    assert right.original == pytest.approx(1 / (1 + math.exp(-6)), abs=1e-5)
    assert right.score > ROAD_WEAK_BELOW and right.verdict == "faithful" and right.suggestion is None
    assert right.better_than_random and right.sentence.startswith("Faithful")
    assert right.random_score is not None and abs(right.random_score) < right.score / 2
    assert f"a random map scores {right.random_score:+.2f}" in right.sentence
    assert right.morf[-1] < 0.1 < 0.5 < right.lerf[0]  # removing the region kills it; the rest does not
    assert wrong.score < 0 and wrong.verdict == "not faithful" and not wrong.better_than_random
    assert wrong.suggestion == "gradcam++" and "Try Grad-CAM++" in wrong.sentence
    assert "'target'" in wrong.sentence
    np.testing.assert_allclose(right.removed, np.arange(1, 10) / 10)
    as_json = right.to_dict()
    assert as_json["removed"] == pytest.approx(list(right.removed))
    assert as_json["most_relevant_first"] == pytest.approx(list(right.morf))
    assert as_json["least_relevant_first"] == pytest.approx(list(right.lerf))
    assert as_json["value"] == right.score and as_json["verdict"] == "faithful"
    # The random maps' curves are kept and give the random score.
    assert right.random_morf is not None and right.random_lerf is not None
    gap = (np.mean(right.random_lerf) - np.mean(right.random_morf)) / 2
    assert gap == pytest.approx(right.random_score, abs=1e-12)
    # The chart's lines start at the untouched input and then follow the curves.
    important, unimportant = faithfulness_curves(right)
    np.testing.assert_allclose(important.removed, np.arange(0, 10) / 10)
    np.testing.assert_allclose(important.probability, [right.original, *right.morf])
    np.testing.assert_allclose(unimportant.probability, [right.original, *right.lerf])
    assert not important.yardstick and not unimportant.yardstick


def test_imputed_inputs_go_through_the_model_in_one_batch() -> None:
    calls: list[int] = []

    class Counting:
        def probabilities(self, batch: np.ndarray) -> np.ndarray:
            calls.append(len(batch))
            return np.tile([0.7, 0.3], (len(batch), 1))

    prepared = np.random.default_rng(0).random((3, 32, 32), dtype=np.float32)
    result = road_score(Counting(), prepared, _region_map(), 0, random_maps=0)
    assert calls == [1 + 2 * len(ROAD_PERCENTILES)]
    assert result.score == 0.0 and result.verdict == "not faithful"
    road_score(Counting(), prepared, _region_map(), 0, batch_size=8, random_maps=0)
    assert calls[1:] == [8, 8, 3]
    with_yardstick = road_score(Counting(), prepared, _region_map(), 0)  # + one random map: 37 inputs
    assert calls[4:] == [32, 5] and with_yardstick.random_score == 0.0
    assert result.random_morf is None and result.to_dict()["random_most_relevant_first"] is None


def test_bad_requests_are_refused() -> None:
    classifier = _cheating_classifier()
    prepared = np.zeros((3, 32, 32), np.float32)
    with pytest.raises(ValueError, match="does not match"):
        road_score(classifier, prepared, np.zeros((16, 16), np.float32), 0)
    with pytest.raises(ValueError, match="percentiles"):
        road_score(classifier, prepared, _region_map(), 0, percentiles=(0, 50))
    with pytest.raises(ValueError, match="class index"):
        road_score(classifier, prepared, _region_map(), 5)


def test_cancelling_stops_before_the_model_runs() -> None:
    from resnet_gui.core.explain.base import ExplanationCancelled

    with pytest.raises(ExplanationCancelled):
        road_score(
            _cheating_classifier(), np.zeros((3, 32, 32), np.float32), _region_map(), 0, cancel=lambda: True
        )


def test_verdicts_sentences_and_suggestions() -> None:
    assert [road_verdict(s) for s in (0.2, ROAD_WEAK_BELOW / 2, 0.0, -0.1)] == [
        "faithful",
        "weak",
        "not faithful",
        "not faithful",
    ]
    assert VERDICTS == ("faithful", "weak", "not faithful")
    assert (
        road_verdict(0.1, random_score=0.15) == "weak" and road_verdict(0.1, random_score=0.05) == "faithful"
    )
    curve = np.full(9, 0.5)
    weak, suggestion = road_sentence(0.01, curve, curve + 0.02, 0.6, "espresso", "saliency")
    assert weak.startswith("Weak (ROAD +0.01)") and "'espresso'" in weak and "Saliency" in weak
    assert suggestion == "gradcam++" and "Try Grad-CAM++" in weak
    assert road_sentence(0.3, curve, curve, 0.6, "espresso", None)[1] is None
    # every method has a suggestion, and it is another method of the catalog
    assert set(SUGGESTIONS) == set(CATALOG)
    assert all(suggest_method(key) in CATALOG and suggest_method(key) != key for key in CATALOG)
    assert suggest_method("no-such-method") is None
    assert DEFAULT_SCORE == "road" and list(SCORES) == ["road", "deletion"]


def test_explain_photo_scores_with_road_by_default(tiny_classifier: Classifier) -> None:
    from resnet_gui.core.explain.maps import DeletionResult, RoadResult
    from resnet_gui.core.explain.pipeline import explain_photo

    with Image.open(SAMPLES / "rocket.jpg") as image:
        photo = image.convert("RGB")
    [default] = explain_photo(tiny_classifier, photo, score=True).classes
    assert isinstance(default.road, RoadResult) and default.deletion is None
    assert default.faithfulness is default.road and default.road.method == "gradcam"
    assert default.road.label == default.label and f"'{default.label}'" in default.road.sentence
    [deletion] = explain_photo(tiny_classifier, photo, score="deletion").classes
    assert isinstance(deletion.deletion, DeletionResult) and deletion.road is None
    [plain] = explain_photo(tiny_classifier, photo).classes
    assert plain.faithfulness is None
    with pytest.raises(ValueError, match="road, deletion"):
        explain_photo(tiny_classifier, photo, score="blur")


# --------------------------------------------------------------------------- real model

REAL_PERCENTILES = (20, 50, 80)  # 3 of the 9 in the test, to keep it short; the benchmark uses all 9


@pytest.mark.real_model
@pytest.mark.slow
def test_road_tells_gradcam_from_a_random_map_on_the_sample_photos(real_resnet50) -> None:
    """On the shipped ImageNet photos, Grad-CAM's ROAD score beats its random-map yardstick.

    ``benchmarks/faithfulness.py --more`` measures the same on more photos with all 9 percentiles
    and 3 random maps each, and the deletion test alongside (see README)."""
    classifier = Classifier(real_resnet50, device="cpu")
    scores = {}
    for path in sorted(SAMPLES.glob("*.jpg")):
        with Image.open(path) as image:
            prepared = classifier.preprocessing.prepare(image.convert("RGB"))
        [explanation] = explain(classifier, prepared[None], method="gradcam")
        result = road_score(
            classifier,
            prepared,
            explanation.heatmap,
            explanation.target_index,
            percentiles=REAL_PERCENTILES,
            method="gradcam",
            label=explanation.target_label,
        )
        scores[path.name] = (result.score, result.random_score)
        assert result.removed.tolist() == [0.2, 0.5, 0.8]
        assert result.morf[-1] < result.lerf[-1]  # 80 % removed: what Grad-CAM marks matters more
    assert all(ours > chance for ours, chance in scores.values()), scores
