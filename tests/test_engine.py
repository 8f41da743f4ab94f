"""The inference engine with a tiny random model: plumbing, batching, devices, the lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_CATEGORIES
from PIL import Image

from resnet_gui.core.engine import (
    Classifier,
    DeviceError,
    ImageFailure,
    ImageResult,
    available_devices,
    select_device,
)


def test_predictions_are_sorted_probabilities_with_labels(tiny_model, sample_images: list[Path]) -> None:
    classifier = Classifier(tiny_model, device="cpu")
    image = Image.open(sample_images[0]).convert("RGB")
    (predictions,) = classifier.classify_images([image], top_k=3)
    assert [p.label for p in predictions] == [TINY_CATEGORIES[p.index] for p in predictions]
    probabilities = [p.probability for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    # Independent reference: the plain model on the plain preprocessed tensor.
    batch = torch.from_numpy(tiny_model.preprocessing.prepare(image))[None]
    with torch.inference_mode():
        expected = torch.softmax(tiny_model.model(batch), 1)[0].numpy()
    assert predictions[0].index == int(expected.argmax())
    assert probabilities[0] == pytest.approx(float(expected.max()), abs=1e-5)
    assert len(classifier.classify_images([image], top_k=99)[0]) == len(TINY_CATEGORIES)


def test_batch_and_single_image_give_the_same_result(tiny_model, sample_images: list[Path]) -> None:
    classifier = Classifier(tiny_model, device="cpu")
    images = [Image.open(p).convert("RGB") for p in sample_images]
    batched = classifier.probabilities(tiny_model.preprocessing.prepare_batch(images))
    singles = np.concatenate(
        [classifier.probabilities(tiny_model.preprocessing.prepare_batch([i])) for i in images]
    )
    np.testing.assert_allclose(batched, singles, atol=1e-5)


def test_channels_last_does_not_change_results(tiny_model, sample_images: list[Path]) -> None:
    batch = tiny_model.preprocessing.prepare_batch([Image.open(p).convert("RGB") for p in sample_images])
    fast = Classifier(tiny_model, device="cpu", channels_last=True).probabilities(batch)
    plain = Classifier(tiny_model, device="cpu", channels_last=False).probabilities(batch)
    np.testing.assert_allclose(fast, plain, atol=1e-5)


def test_classify_paths_keeps_order_and_reports_bad_files(
    tiny_model, sample_images: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_text("this is not a photo")
    paths = [sample_images[0], broken, sample_images[1], sample_images[2]]
    outcomes = list(Classifier(tiny_model, device="cpu").classify_paths(paths, top_k=2, batch_size=2))
    assert [o.source for o in outcomes] == [str(p) for p in paths]
    assert isinstance(outcomes[1], ImageFailure) and outcomes[1].reason
    good = [o for o in outcomes if isinstance(o, ImageResult)]
    assert len(good) == 3 and all(len(o.predictions) == 2 for o in good)
    assert good[1].image_size == (120, 200)


def test_device_selection() -> None:
    assert available_devices()[-1] == "cpu"
    assert select_device("cpu").type == "cpu"
    assert str(select_device("auto")) == available_devices()[0]
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="not available here"):
            select_device("cuda")
    with pytest.raises(DeviceError, match="not a device name"):
        select_device("gpu-please")


def test_one_lock_guards_the_model(tiny_model, sample_images: list[Path]) -> None:
    classifier = Classifier(tiny_model, device="cpu")
    image = Image.open(sample_images[0]).convert("RGB")
    finished = threading.Event()

    def classify() -> None:
        classifier.classify_images([image])
        finished.set()

    with classifier.lock:
        worker = threading.Thread(target=classify)
        worker.start()
        time.sleep(0.3)
        assert not finished.is_set(), "a forward pass ran while another thread held the model lock"
    worker.join(timeout=30)
    assert finished.is_set()


def test_reported_size_is_the_photos_not_the_draft_decoded_one(tiny_model, tmp_path: Path) -> None:
    photo = tmp_path / "big.jpg"
    Image.new("RGB", (2000, 1200), (200, 30, 30)).save(photo, quality=80)
    (result,) = Classifier(tiny_model, device="cpu").classify_paths([photo])
    assert isinstance(result, ImageResult)
    assert result.image_size == (2000, 1200)
    assert Classifier(tiny_model, device="cpu").load(photo).width < 2000  # decoded smaller
