"""Acceptance tests of fine-tuning on real photos: hymenoptera (ants vs bees, 245 train / 153 val).

From the imported ImageNet ResNet-50 (Keras weights): head mode must reach >= 93 % validation
accuracy and partial mode >= 94 %; the same head run from random weights (a control: it shows
the accuracy comes from the pretrained features, not from the data being trivial) must stay
below 80 %; and the saved bundle must give the same validation accuracy through ``evaluate`` and
work with ``resnet-gui classify``. Each run happens once per module (fixtures); wall times are
printed, not asserted (the machine may be shared).

The data is read from ``shared/data/hymenoptera`` beside the repository (never copied into it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from resnet_gui.core.training import (
    TrainConfig,
    TrainResult,
    evaluate,
    make_split,
    run_training,
    scan_dataset,
)

pytestmark = [pytest.mark.real_model, pytest.mark.slow]


@pytest.fixture(scope="module")
def split(hymenoptera: Path):
    split = make_split(scan_dataset(hymenoptera))
    assert (len(split.train), len(split.val)) == (245, 153) and split.method == "folders"
    return split


def _timed_run(model, split, out: Path, config: TrainConfig) -> tuple[TrainResult, float]:
    began = time.perf_counter()
    result = run_training(model, split, out, config)
    return result, time.perf_counter() - began


def _report(request: pytest.FixtureRequest, what: str, result: TrainResult, seconds: float) -> None:
    """Print the measurement on the terminal even when output is captured."""
    line = (
        f"\n[finetune] {what}: val accuracy {result.val_accuracy * 100:.2f} % (best: {result.best_stage} "
        f"epoch {result.best_epoch}, {len(result.history)} epochs), wall {seconds:.0f} s, "
        f"of which frozen features {result.feature_seconds:.0f} s"
    )
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(line)
    else:
        print(line)


@pytest.fixture(scope="module")
def head_run(hymenoptera_head_run):
    return hymenoptera_head_run  # trained once per session (conftest), shared with export and calibration


def test_head_mode_from_imagenet_features(head_run, request: pytest.FixtureRequest) -> None:
    result, seconds = head_run
    _report(request, "head mode, imported ImageNet ResNet-50", result, seconds)
    assert result.status in ("finished", "stopped_early")
    assert result.val_accuracy >= 0.93


def test_bundle_reloads_with_the_same_accuracy(head_run, hymenoptera: Path, capsys) -> None:
    result, _ = head_run
    report = evaluate(str(result.bundle), hymenoptera / "val")
    assert report.count == 153 and report.classes == ("ants", "bees")
    assert report.accuracy == pytest.approx(result.val_accuracy, abs=1e-9)
    assert report.per_class[0].support + report.per_class[1].support == 153

    from resnet_gui.cli import main

    photo = sorted((hymenoptera / "val" / "bees").glob("*.jpg"))[0]
    assert main(["classify", str(photo), "--model", str(result.bundle), "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)["results"][0]["predictions"]
    assert [p["label"] for p in predictions] in (["bees", "ants"], ["ants", "bees"])


def test_partial_mode_from_imagenet_features(real_resnet50, split, tmp_path_factory, request) -> None:
    out = tmp_path_factory.mktemp("partial") / "hymenoptera-partial.safetensors"
    result, seconds = _timed_run(real_resnet50, split, out, TrainConfig(mode="partial", epochs=3))
    _report(request, "partial mode (layer4 + classifier), imported ImageNet ResNet-50", result, seconds)
    assert result.val_accuracy >= 0.94
    assert any(e.stage == "train" for e in result.history)  # layer4 did train (it may not win)


def test_random_weights_control(split, tmp_path_factory, request) -> None:
    """The same head run on a randomly initialised ResNet-50 v1: features, not the task, do the work."""
    import torch

    from resnet_gui.core.models import (
        KERAS_WEIGHTS,
        RESNET50_V1,
        LoadedModel,
        get_model_spec,
        imagenet_categories,
    )

    spec = get_model_spec(RESNET50_V1)
    torch.manual_seed(0)
    random_model = LoadedModel(
        model=spec.build(num_classes=1000).eval(),
        name="resnet50_v1 (random weights)",
        architecture=RESNET50_V1,
        preprocessing=spec.get_weights(KERAS_WEIGHTS).preprocessing,
        categories=imagenet_categories(),
        weights_description="random",
    )
    out = tmp_path_factory.mktemp("random") / "hymenoptera-random.safetensors"
    result, seconds = _timed_run(random_model, split, out, TrainConfig(mode="head"))
    _report(request, "head mode, random weights (control)", result, seconds)
    assert result.val_accuracy < 0.80
