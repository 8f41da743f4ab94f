"""Calibration on real photos: the session's ants-vs-bees model (head mode, from the imported
ImageNet ResNet-50; conftest's ``hymenoptera_head_run``) and photos unlike anything it was trained on.

* On the 153 validation photos (through ``evaluate``, as a user gets them): the ECE before and
  after the fitted temperature, the share marked *not sure*, the share flagged as unlike the
  training photos (about 5 % by construction).
* Unrelated photos: the ImageNet samples shipped in ``assets/samples/`` and the real photos of
  scikit-image's ``skimage.data`` (public domain or CC0, read from the installed package, never
  copied), and 20 photos of each CIFAR-10 class from ``shared/data/cifar10_train_500`` (32x32,
  upscaled by the preprocessing): the share flagged.

The numbers are printed (README, "Confidence you can trust"); the assertions are what must hold
whatever the machine: the fit lowers the validation NLL (what it minimises), the calibration error
stays small, and unrelated photos are flagged far more often than validation photos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shared_data import shared_data_dir

from resnet_gui.core.calibration import calibration_summary, ood_scores
from resnet_gui.core.engine import Classifier
from resnet_gui.core.metadata import metadata_ood_threshold, metadata_temperature
from resnet_gui.core.models import load_model
from resnet_gui.core.training import evaluate, read_bundle_info

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
#: Real photographs of skimage.data (see each function's docstring for its licence): no drawings,
#: no synthetic images; chelsea, coffee and rocket are the ones in assets/samples already.
SKIMAGE_PHOTOS = (
    "astronaut.png",  # NASA, public domain
    "brick.png",  # CC0
    "camera.png",  # CC0 (grey)
    "cell.png",  # CC0 (microscope)
    "clock_motion.png",  # public domain (grey)
    "coins.png",  # no known copyright restrictions (grey)
    "grass.png",  # CC0
    "gravel.png",  # CC0
    "hubble_deep_field.jpg",  # NASA, public domain
    "ihc.png",  # no known copyright restrictions (microscope)
    "moon.png",  # grey
    "retina.jpg",  # CC0
)
CIFAR_PER_CLASS = 20


def _say(request: pytest.FixtureRequest, text: str) -> None:
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\n[calibration] {text}")
    else:
        print(f"\n[calibration] {text}")


def _unrelated_photos() -> dict[str, list[Path]]:
    import skimage

    skimage_data = Path(skimage.__file__).parent / "data"
    sets = {
        "assets/samples + skimage.data": [
            *sorted((REPO / "assets" / "samples").glob("*.jpg")),
            *(skimage_data / name for name in SKIMAGE_PHOTOS if (skimage_data / name).is_file()),
        ]
    }
    cifar = shared_data_dir() / "cifar10_train_500"
    if cifar.is_dir():
        sets["CIFAR-10"] = [
            path
            for folder in sorted(cifar.iterdir())
            for path in sorted(folder.glob("*.jpg"))[:CIFAR_PER_CLASS]
        ]
    return sets


def _logits(classifier: Classifier, paths: list[Path]) -> np.ndarray:
    import torch

    rows = []
    for start in range(0, len(paths), 16):
        batch = np.stack(
            [classifier.preprocessing.prepare(classifier.load(p)) for p in paths[start : start + 16]]
        )
        with torch.inference_mode():
            rows.append(classifier.model(classifier.to_tensor(batch)).float().numpy())
    return np.concatenate(rows)


def test_calibration_and_out_of_distribution_on_ants_and_bees(
    hymenoptera_head_run, hymenoptera: Path, request: pytest.FixtureRequest
) -> None:
    result, _ = hymenoptera_head_run
    metrics = read_bundle_info(result.bundle).metrics
    fit = metrics["calibration"]
    _say(request, " ".join(calibration_summary(metrics)))
    assert fit["photos"] == 153
    assert fit["nll_after"] <= fit["nll_before"]  # what the temperature minimises
    assert metrics["ece_after"] <= 0.05 and abs(metrics["ece_after"] - metrics["ece_before"]) <= 0.02

    report = evaluate(str(result.bundle), hymenoptera / "val")
    c = report.calibration
    assert c is not None and c.temperature == pytest.approx(metrics["temperature"])
    # The app's path (decode, preprocess, Classifier) gives the fit's numbers again.
    assert c.ece_before == pytest.approx(metrics["ece_before"], abs=1e-4)
    assert c.ece_after == pytest.approx(metrics["ece_after"], abs=1e-4)
    assert c.ood_share == pytest.approx(fit["ood_validation_flagged"], abs=1 / 153 + 1e-9)
    assert c.unsure_share == pytest.approx(1.0 - fit["unsure_coverage"], abs=1e-9)  # the same photos
    _say(
        request,
        f"val (153 photos): ECE {c.ece_before * 100:.2f} % before, {c.ece_after * 100:.2f} % after "
        f"(T = {c.temperature:.3f}; NLL {fit['nll_before']:.4f} -> {fit['nll_after']:.4f}); "
        f"not sure {c.unsure_share * 100:.1f} % (under {c.unsure_threshold * 100:.1f} %, "
        f"accuracy on the rest {c.sure_accuracy * 100:.1f} %); "
        f"flagged unlike the training photos {c.ood_share * 100:.1f} %",
    )

    loaded = load_model(str(result.bundle))
    classifier = Classifier(loaded, device="cpu")
    temperature = metadata_temperature(loaded.metadata)
    threshold = metadata_ood_threshold(loaded.metadata)
    assert threshold is not None
    for name, paths in _unrelated_photos().items():
        flagged = ood_scores(_logits(classifier, paths), temperature) > threshold
        _say(request, f"{name} ({len(paths)} photos): flagged {flagged.mean() * 100:.1f} %")
        assert len(paths) >= 10
        assert flagged.mean() >= 3 * c.ood_share  # unrelated photos stand out
