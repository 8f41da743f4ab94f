"""The bundle's calibration where photos are classified: every runtime applies its temperature, and
the app marks a photo that looks unlike the training photos."""

from __future__ import annotations

import numpy as np
import pytest
from gui.helpers import WAIT_MS, make_window, wait_predictions
from PIL import Image

from resnet_gui.core.engine import Classifier


def _batch(classifier, sample_images) -> np.ndarray:
    return classifier.preprocessing.prepare_batch([Image.open(path).convert("RGB") for path in sample_images])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_a_bundles_temperature_is_read_and_applied(tiny_model, sample_images) -> None:
    tiny_model.metadata["metrics"] = '{"temperature": 2.5, "ood_threshold": -1e4}'
    classifier = Classifier(tiny_model, "cpu")
    assert classifier.temperature == 2.5 and classifier.ood_threshold == -1e4
    batch = _batch(classifier, sample_images)
    logits = classifier.logits(batch)
    assert np.allclose(classifier.probabilities(batch), _softmax(logits / 2.5), atol=1e-6)
    assert not np.allclose(classifier.probabilities(batch), _softmax(logits), atol=1e-4)
    assert classifier.unusual(logits).all()  # every photo is above a threshold this low


def test_onnxruntime_applies_the_same_temperature(tiny_model, sample_images, isolated_dirs) -> None:
    pytest.importorskip("onnxruntime")
    from resnet_gui.core.runtime import make_classifier

    tiny_model.metadata["metrics"] = '{"temperature": 2.5}'
    torch_side = Classifier(tiny_model, "cpu")
    ort_side = make_classifier(tiny_model, "onnxruntime", "cpu")
    assert ort_side.backend == "onnxruntime" and ort_side.temperature == 2.5
    batch = _batch(torch_side, sample_images)
    assert np.allclose(ort_side.probabilities(batch), torch_side.probabilities(batch), atol=1e-4)


def test_the_app_says_when_a_photo_looks_unlike_the_training_photos(
    qtbot, tmp_path, tiny_model, sample_images
) -> None:
    from resnet_gui.gui.predictions import UNUSUAL

    classifier = Classifier(tiny_model, "cpu")
    classifier.ood_threshold = -1e9  # a threshold every photo is above
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    window.controller.open_paths([sample_images[0]])
    wait_predictions(qtbot, window)
    qtbot.waitUntil(lambda: window.predictions.hint.text() == UNUSUAL, timeout=WAIT_MS)
    assert window.predictions.hint.isVisible()
    classifier.ood_threshold = 1e9  # now none is: the usual hint
    window.controller.open_paths([sample_images[1]])
    wait_predictions(qtbot, window, sample_images[1].name)
    assert window.predictions.hint.text() != UNUSUAL
