"""One lock per model, whatever wraps it: a classifier that replaces another (another runtime, another
device) shares the model's lock, so a job still running on the old one never interleaves its passes
with the new one's explanation (Grad-CAM's hooks then saw two forward passes and failed)."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
from PIL import Image

from resnet_gui.core.engine import Classifier
from resnet_gui.core.explain import explain


def test_classifiers_of_one_model_share_its_lock(tiny_model) -> None:
    first, second = Classifier(tiny_model, "cpu"), Classifier(tiny_model, "cpu")
    assert first.lock is second.lock is tiny_model.lock


def test_an_onnx_runtime_classifier_shares_the_torch_models_lock(tiny_model, tmp_path) -> None:
    pytest.importorskip("onnxruntime", reason="the export extra (make test installs it)")
    from resnet_gui.core.runtime import make_classifier

    torch_classifier = Classifier(tiny_model, "cpu")
    ort_classifier = make_classifier(tiny_model, "onnxruntime", "cpu", cache=tmp_path)
    assert ort_classifier.backend == "onnxruntime"
    assert ort_classifier.lock is torch_classifier.lock


def test_an_explanation_waits_for_a_pass_of_the_classifier_it_replaced(tiny_model) -> None:
    """While the old classifier's job holds the model, the new one's Grad-CAM does not start; it
    finishes (one hook call per pass) once the old job lets go."""
    old, new = Classifier(tiny_model, "cpu"), Classifier(tiny_model, "cpu")
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    results: list[object] = []
    errors: list[BaseException] = []

    def run_explanation() -> None:
        try:
            results.extend(explain(new, photo, targets=[0], method="gradcam"))
        except BaseException as error:  # handed to the test thread
            errors.append(error)

    with old.lock:
        worker = threading.Thread(target=run_explanation)
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive(), "the explanation ran while another classifier of its model held it"
    worker.join(timeout=60)
    assert not worker.is_alive() and not errors, errors
    assert len(results) == 1 and np.isfinite(results[0].heatmap).all()


def test_a_deep_copy_is_another_model_with_its_own_lock_and_a_shallow_one_shares_it(tiny_model) -> None:
    deep = copy.deepcopy(tiny_model)
    assert deep.lock is not tiny_model.lock and deep.model is not tiny_model.model
    assert deep.categories == tiny_model.categories and deep.layout == tiny_model.layout
    took: list[bool] = []

    def take_the_copys_lock() -> None:
        if deep.lock.acquire(timeout=5):
            took.append(True)
            deep.lock.release()

    with tiny_model.lock:  # the original is busy; its copy is not
        worker = threading.Thread(target=take_the_copys_lock)
        worker.start()
        worker.join()
    assert took == [True]
    shallow = copy.copy(tiny_model)
    assert shallow.lock is tiny_model.lock and shallow.model is tiny_model.model
