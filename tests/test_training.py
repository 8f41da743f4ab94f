"""Fine-tuning engine, on tiny synthetic datasets (two coloured shapes) and the tiny ResNet-18.

Plumbing and guarantees: the scan, the health report, the split, training modes, cancel and
resume, determinism, the bundle round trip and evaluation metrics. Learning quality on real
photos is tested in test_training_real.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from resnet_gui.core.models import load_model
from resnet_gui.core.training import (
    DatasetError,
    EpochMetrics,
    FeatureCache,
    Progress,
    StepMetrics,
    TrainConfig,
    TrainingError,
    TrainResult,
    check_health,
    checkpoint_path,
    evaluate,
    iter_health,
    make_split,
    read_bundle_info,
    read_checkpoint_info,
    run_training,
    scan_dataset,
    sidecar_path,
    train,
)
from resnet_gui.core.training.augment import Augmentation, random_view, view_rng
from resnet_gui.core.training.bundle import normalise_bundle_path
from resnet_gui.core.training.evaluate import OTHER, compute_metrics
from resnet_gui.core.training.features import extract, split_model

SHAPES = ("circle", "square")


def shape_image(kind: str, seed: int, size: int = 72) -> Image.Image:
    """A red circle or a blue square at a random place and size, on a noisy background."""
    rng = np.random.default_rng(seed)
    background = rng.integers(90, 170, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    radius = int(rng.integers(size // 5, size // 3))
    cx, cy = (int(v) for v in rng.integers(radius, size - radius, 2))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if kind == "circle":
        draw.ellipse(box, fill=(int(rng.integers(200, 256)), 30, 30))
    else:
        draw.rectangle(box, fill=(30, 30, int(rng.integers(200, 256))))
    return image


def make_shapes(root: Path, counts: dict[str, int], *, seed: int = 0, split: str | None = None) -> Path:
    """``root/[split/]<class>/<n>.png`` with ``counts[class]`` images each."""
    for class_index, (name, count) in enumerate(counts.items()):
        folder = root / split / name if split else root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            shape_image(name, seed * 100_000 + class_index * 1000 + index).save(
                folder / f"{name}{index:03d}.png"
            )
    return root


@pytest.fixture()
def shapes(tmp_path: Path) -> Path:
    """Class-folder layout: 12 circles, 12 squares."""
    return make_shapes(tmp_path / "shapes", {"circle": 12, "square": 12})


@pytest.fixture()
def shapes_split(tmp_path: Path) -> Path:
    """train/val layout."""
    root = tmp_path / "shapes_split"
    make_shapes(root, {"circle": 10, "square": 10}, seed=1, split="train")
    make_shapes(root, {"circle": 4, "square": 4}, seed=2, split="val")
    return root


FAST = {"batch_size": 8, "workers": 0}


def _weights(bundle: Path) -> dict[str, torch.Tensor]:
    from resnet_gui.core.checkpoints import read_weights_file

    return read_weights_file(bundle)[0]


# --- scan --------------------------------------------------------------------------------------


def test_scan_class_folders(shapes: Path) -> None:
    (shapes / "loose.png").write_bytes((shapes / "circle" / "circle000.png").read_bytes())
    (shapes / ".hidden").mkdir()
    (shapes / "circle" / "notes.txt").write_text("not an image")
    dataset = scan_dataset(shapes)
    assert dataset.layout == "classes" and dataset.classes == SHAPES
    assert dataset.counts() == {"circle": 12, "square": 12}
    assert dataset.ignored == (shapes / "loose.png",)
    assert [s.path.name for s in dataset.samples[:2]] == ["circle000.png", "circle001.png"]


def test_scan_existing_split(shapes_split: Path) -> None:
    make_shapes(shapes_split, {"circle": 2, "square": 2}, seed=3, split="test")
    dataset = scan_dataset(shapes_split)
    assert dataset.layout == "splits" and dataset.splits == ("train", "val", "test")
    assert dataset.counts(dataset.of_split("val")) == {"circle": 4, "square": 4}


@pytest.mark.parametrize("setup", ["missing", "one_class", "empty"])
def test_scan_refuses_unusable_folders(tmp_path: Path, setup: str) -> None:
    root = tmp_path / "data"
    if setup == "one_class":
        make_shapes(root, {"circle": 3})
    elif setup == "empty":
        root.mkdir()
    with pytest.raises(DatasetError, match=r"does not exist|at least two classes"):
        scan_dataset(root)


# --- health ------------------------------------------------------------------------------------


def test_health_report_finds_every_kind_of_problem(shapes_split: Path) -> None:
    train, val = shapes_split / "train", shapes_split / "val"
    (train / "circle" / "truncated.jpg").write_bytes(
        _jpeg_bytes(shape_image("circle", 99))[:300]
    )  # a cut-off download
    (train / "square" / "text.png").write_text("this is not an image")
    shape_image("square", 5, size=20).save(train / "square" / "thumb.png")
    # An exact copy in the same class, a val image copied into train, and one image in both classes.
    (train / "circle" / "copy.png").write_bytes((train / "circle" / "circle000.png").read_bytes())
    (train / "circle" / "leak.png").write_bytes((val / "circle" / "circle001.png").read_bytes())
    (train / "square" / "mislabelled.png").write_bytes((train / "circle" / "circle002.png").read_bytes())
    make_shapes(shapes_split, {"triangle": 2}, seed=7, split="train")

    events = list(iter_health(scan_dataset(shapes_split)))
    assert all(isinstance(e, Progress) for e in events[:-1]) and events[-2].done == events[-2].total
    report = events[-1]

    unreadable = {i.path.name: i.reason for i in report.unreadable}
    assert set(unreadable) == {"truncated.jpg", "text.png"}
    assert "truncated or corrupt" in unreadable["truncated.jpg"]
    assert [(i.path.name, i.reason) for i in report.tiny] == [("thumb.png", "only 20x20 px")]
    groups = {frozenset(p.name for p in g.paths): g for g in report.duplicates}
    assert set(groups) == {
        frozenset({"circle000.png", "copy.png"}),
        frozenset({"leak.png", "circle001.png"}),
        frozenset({"circle002.png", "mislabelled.png"}),
    }
    assert [frozenset(p.name for p in g.paths) for g in report.leakage] == [
        frozenset({"leak.png", "circle001.png"})
    ]
    assert groups[frozenset({"circle002.png", "mislabelled.png"})].conflicting_labels
    assert report.counts["train"] == {"circle": 12, "square": 12, "triangle": 2}
    assert report.imbalance_ratio == pytest.approx(6.0)
    assert report.small_classes == ["triangle"]
    assert {p.name for p in report.suggested_exclude()} == {
        "truncated.jpg", "text.png", "thumb.png", "copy.png", "leak.png", "circle002.png", "mislabelled.png",
    }  # fmt: skip
    text = " ".join(report.warnings())
    for words in ("2 files cannot be read and are left out", "1 image of the validation/test split is also",
                  "1 image is filed under two different classes", "1 file is an exact copy",
                  "'triangle' has only 2", "imbalanced", "1 image is smaller than 32 px"):  # fmt: skip
        assert words in text
    data = json.loads(report.to_json())
    assert data["leakage"] == [["train/circle/leak.png", "val/circle/circle001.png"]] or data["leakage"] == [
        ["val/circle/circle001.png", "train/circle/leak.png"]
    ]
    assert data["imbalance_ratio"] == pytest.approx(6.0)
    assert "train/square/text.png" in data["suggested_exclude"]


def test_health_of_a_clean_dataset_has_no_warnings(shapes: Path) -> None:
    report = check_health(scan_dataset(shapes))
    assert report.warnings() == [] and report.suggested_exclude() == set()
    assert report.counts == {"all": {"circle": 12, "square": 12}} and len(report.fingerprint) == 24


def _jpeg_bytes(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# --- split -------------------------------------------------------------------------------------


def test_stratified_split_is_seeded_and_per_class(tmp_path: Path, shapes: Path) -> None:
    dataset = scan_dataset(shapes)
    first = make_split(dataset, val_fraction=0.25, seed=3)
    assert first.counts("val") == {"circle": 3, "square": 3} and first.counts("train") == {
        "circle": 9,
        "square": 9,
    }
    assert make_split(dataset, val_fraction=0.25, seed=3) == first
    assert make_split(dataset, val_fraction=0.25, seed=4).val != first.val
    # Adding squares does not reshuffle the circles.
    make_shapes(shapes, {"square": 4}, seed=9)  # overwrites square000-003 with other content: same names
    for index in range(12, 20):
        shape_image("square", 500 + index).save(shapes / "square" / f"square{index:03d}.png")
    grown = make_split(scan_dataset(shapes), val_fraction=0.25, seed=3)
    circles = [s.path for s in first.val if s.label == 0]
    assert [s.path for s in grown.val if s.label == 0] == circles
    # Stored and read back (paths relative to the root, so the folder may move).
    moved = tmp_path / "moved"
    shapes.rename(moved)
    again = type(first).from_dict(json.loads(first.to_json()), moved)
    assert [s.path.relative_to(moved) for s in again.val] == [s.path.relative_to(shapes) for s in first.val]
    assert again.classes == first.classes and again.seed == 3


def test_split_excludes_and_keeps_folder_splits(shapes_split: Path) -> None:
    dataset = scan_dataset(shapes_split)
    dropped = shapes_split / "train" / "circle" / "circle000.png"
    split = make_split(dataset, val_fraction=0.5, exclude={dropped})
    assert split.method == "folders" and len(split.val) == 8 and len(split.train) == 19
    assert dropped not in {s.path for s in split.train} and split.excluded == (dropped,)
    with pytest.raises(DatasetError, match="validation fraction"):
        make_split(dataset, val_fraction=1.0)


def test_small_class_keeps_a_training_image(tmp_path: Path) -> None:
    root = make_shapes(tmp_path / "d", {"circle": 2, "square": 1})
    split = make_split(scan_dataset(root), val_fraction=0.5)
    assert split.counts("train") == {"circle": 1, "square": 1} and split.counts("val") == {
        "circle": 1,
        "square": 0,
    }


# --- views -------------------------------------------------------------------------------------


def test_views_follow_the_model_preprocessing() -> None:
    from resnet_gui.core.preprocessing import KERAS_CAFFE

    image = shape_image("circle", 1, size=300)
    aug = Augmentation(scale=(0.3, 1.0), color_jitter=0.2)
    first = random_view(image, KERAS_CAFFE, aug, view_rng(0, 1, 2))
    assert first.shape == (3, 224, 224) and first.dtype == np.float32
    np.testing.assert_array_equal(first, random_view(image, KERAS_CAFFE, aug, view_rng(0, 1, 2)))
    assert not np.array_equal(first, random_view(image, KERAS_CAFFE, aug, view_rng(0, 2, 2)))
    # BGR order: a pure red image puts its 255 in the model's last channel.
    red = Image.new("RGB", (256, 256), (255, 0, 0))
    view = random_view(red, KERAS_CAFFE, Augmentation(flip=False), view_rng(0, 0, 0))
    assert view[2].mean() == pytest.approx(255 - 123.68, abs=1e-3) and view[0].mean() == pytest.approx(
        -103.939, abs=1e-3
    )


def test_centre_view_is_what_inference_sees(tiny_weights_file: Path, shapes: Path) -> None:
    loaded = load_model(weights_file=tiny_weights_file)
    samples = list(scan_dataset(shapes).samples[:5])
    parts = split_model(loaded.model, "head")
    *_, store = extract(parts.frozen, samples, loaded.preprocessing, device=torch.device("cpu"), workers=0)
    from resnet_gui.core.images import load_image

    batch = np.stack([loaded.preprocessing.prepare(load_image(s.path)) for s in samples])
    with torch.inference_mode():
        expected = parts.frozen(torch.from_numpy(batch))
    torch.testing.assert_close(store[:, 0], expected, rtol=1e-4, atol=1e-5)


# --- training ----------------------------------------------------------------------------------


def test_head_training_writes_a_bundle_that_the_app_loads(
    tiny_weights_file: Path, shapes: Path, tmp_path: Path
) -> None:
    split = make_split(scan_dataset(shapes), val_fraction=0.25)
    out = tmp_path / "out" / "shapes"
    events = list(train(str(tiny_weights_file), split, out, TrainConfig(mode="head", epochs=3, **FAST)))
    result = events[-1]
    assert isinstance(result, TrainResult) and result.status == "finished"
    assert result.bundle == out.with_suffix(".safetensors") and result.bundle.is_file()
    assert not checkpoint_path(result.bundle).exists()  # deleted once the bundle is written
    kinds = {type(e) for e in events}
    assert {Progress, StepMetrics, EpochMetrics} <= kinds
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert len(steps) == 3 * 3 and steps[-1].step == steps[-1].steps == 3 and steps[-1].eta_seconds == 0
    epochs = [e for e in events if isinstance(e, EpochMetrics)]
    assert [e.epoch for e in epochs] == [1, 2, 3] and all(e.val_accuracy is not None for e in epochs)

    loaded = load_model(str(result.bundle))
    assert loaded.categories == SHAPES and loaded.architecture == "resnet18"
    assert loaded.preprocessing.crop_size == 64
    info = read_bundle_info(result.bundle)
    meta = info.metadata
    assert meta["format"] == "resnet-gui-weights/1" and meta["num_classes"] == "2"
    assert info.training["mode"] == "head" and info.training["base_model"] == "tiny-resnet18"
    assert len(info.split["val"]) == 6 and info.split["classes"] == list(SHAPES)
    assert info.metrics["val_accuracy"] == result.val_accuracy and len(info.metrics["history"]) == 3
    assert set(meta) >= {"dataset_fingerprint", "date", "versions"} and "torch" in meta["versions"]
    sidecar = json.loads(sidecar_path(result.bundle).read_text())
    assert sidecar["categories"] == list(SHAPES) and sidecar["split"] == info.split
    # Only the classifier changed.
    base = _weights(tiny_weights_file)
    tuned = _weights(result.bundle)
    assert torch.equal(base["layer4.1.conv2.weight"], tuned["layer4.1.conv2.weight"])
    assert tuned["fc.weight"].shape == (2, 512)


def test_classify_accepts_the_bundle(tiny_weights_file: Path, shapes: Path, tmp_path: Path, capsys) -> None:
    from resnet_gui.cli import main

    split = make_split(scan_dataset(shapes), val_fraction=0.25)
    result = run_training(
        str(tiny_weights_file), split, tmp_path / "b.safetensors", TrainConfig(epochs=1, **FAST)
    )
    image = str(shapes / "circle" / "circle000.png")
    for option in ("--model", "--weights"):
        assert main(["classify", image, option, str(result.bundle), "--json"]) == 0
        predictions = json.loads(capsys.readouterr().out)["results"][0]["predictions"]
        assert {p["label"] for p in predictions} == set(SHAPES)


@pytest.mark.parametrize("mode", ["partial", "full"])
def test_same_seed_same_weights(tiny_weights_file: Path, shapes: Path, tmp_path: Path, mode: str) -> None:
    # No validation images: the last epoch is kept (else the probe's classifier may be the best).
    split = make_split(scan_dataset(shapes), val_fraction=0.0)
    config = TrainConfig(mode=mode, epochs=2, probe_epochs=1, cached_views=1, color_jitter=0.1, **FAST)
    first = run_training(str(tiny_weights_file), split, tmp_path / "a", config)
    second = run_training(str(tiny_weights_file), split, tmp_path / "b", dataclass_replace(config, workers=2))
    other = run_training(str(tiny_weights_file), split, tmp_path / "c", dataclass_replace(config, seed=1))
    a, b, c = _weights(first.bundle), _weights(second.bundle), _weights(other.bundle)
    trained = "layer4.0.conv1.weight" if mode == "partial" else "conv1.weight"
    assert not torch.equal(a[trained], _weights(tiny_weights_file)[trained])  # the backbone did train
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fc.weight"], c["fc.weight"])
    if mode == "partial":
        assert torch.equal(a["layer3.1.conv2.weight"], _weights(tiny_weights_file)["layer3.1.conv2.weight"])


def run_until(model: str, split, out: Path, config: TrainConfig, *, steps: int, **options) -> TrainResult:
    """Run training and cancel it (as the user would) once ``steps`` optimisation steps are done."""
    done = [0]
    result = None
    for event in train(model, split, out, config, cancel=lambda: done[0] >= steps, **options):
        done[0] += isinstance(event, StepMetrics)
        if isinstance(event, TrainResult):
            result = event
    assert result is not None
    return result


def dataclass_replace(config: TrainConfig, **changes) -> TrainConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


# 3 steps per epoch: head is cancelled in its 3rd epoch, partial in the 2nd epoch after 2 probe epochs.
@pytest.mark.parametrize(("mode", "cancel_after"), [("head", 7), ("partial", 10)])
def test_cancel_then_resume_gives_the_uninterrupted_result(
    tiny_weights_file: Path, shapes_split: Path, tmp_path: Path, mode: str, cancel_after: int
) -> None:
    split = make_split(scan_dataset(shapes_split))
    config = TrainConfig(mode=mode, epochs=4, probe_epochs=2, patience=0, **FAST)
    reference = run_training(str(tiny_weights_file), split, tmp_path / "ref", config)

    out = tmp_path / "run.safetensors"
    stopped = run_until(str(tiny_weights_file), split, out, config, steps=cancel_after)
    assert stopped.status == "cancelled" and stopped.bundle is None and not out.exists()
    assert stopped.checkpoint == checkpoint_path(out) and stopped.checkpoint.is_file()
    done_epochs = len(stopped.history)
    assert 1 <= done_epochs < len(reference.history)
    info = read_checkpoint_info(out)
    assert info is not None and info.epochs_done == done_epochs and info.config.mode == mode

    assert stopped.history[-1].stage == "train" and len(stopped.history) == (2 if mode == "head" else 3)

    resumed = run_training(str(tiny_weights_file), split, out, config, resume=True)
    assert resumed.status == "finished" and not stopped.checkpoint.exists()
    assert [e.val_loss for e in resumed.history] == [e.val_loss for e in reference.history]
    a, b = _weights(reference.bundle), _weights(resumed.bundle)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_killed_run_keeps_its_last_epoch(tiny_weights_file: Path, shapes_split: Path, tmp_path: Path) -> None:
    """A run that simply stops (a crash, a kill, a closed window) resumes from its last finished epoch."""
    split = make_split(scan_dataset(shapes_split))
    config = TrainConfig(mode="head", epochs=4, patience=0, **FAST)
    out = tmp_path / "run.safetensors"
    run = train(str(tiny_weights_file), split, out, config)
    epochs = 0
    for event in run:
        epochs += isinstance(event, EpochMetrics)
        if epochs == 2 and isinstance(event, StepMetrics):
            break  # in the middle of epoch 3
    run.close()
    assert read_checkpoint_info(out).epochs_done == 2 and not out.exists()
    assert not list(tmp_path.glob("*.partial"))  # atomic writes leave no half-written file
    resumed = run_training(str(tiny_weights_file), split, out, config, resume=True)
    reference = run_training(str(tiny_weights_file), split, tmp_path / "ref", config)
    a, b = _weights(reference.bundle), _weights(resumed.bundle)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("mode", ["head", "partial"])
def test_training_without_feature_cache(
    tiny_weights_file: Path, shapes: Path, tmp_path: Path, mode: str
) -> None:
    """Fresh augmented views every epoch: the frozen part runs each step, nothing is extracted first."""
    split = make_split(scan_dataset(shapes), val_fraction=0.25)
    config = TrainConfig(mode=mode, epochs=2, probe_epochs=1, cache_features=False, color_jitter=0.2, **FAST)
    events = list(train(str(tiny_weights_file), split, tmp_path / "x", config))
    assert not any(isinstance(e, Progress) and e.phase == "features (train)" for e in events)
    result = events[-1]
    assert result.status == "finished" and len([e for e in result.history if e.stage == "train"]) == 2
    again = run_training(str(tiny_weights_file), split, tmp_path / "y", config)
    a, b = _weights(result.bundle), _weights(again.bundle)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_run(tiny_weights_file: Path, shapes: Path, tmp_path: Path) -> None:
    split = make_split(scan_dataset(shapes), val_fraction=0.25)
    out = tmp_path / "run.safetensors"
    config = TrainConfig(epochs=3, **FAST)
    with pytest.raises(TrainingError, match="no checkpoint to resume"):
        run_training(str(tiny_weights_file), split, out, config, resume=True)
    assert run_until(str(tiny_weights_file), split, out, config, steps=4).status == "cancelled"
    assert checkpoint_path(out).is_file()
    with pytest.raises(TrainingError, match=r"lr: 0\.01 in the checkpoint, now 0\.5"):
        run_training(str(tiny_weights_file), split, out, dataclass_replace(config, lr=0.5), resume=True)
    other_split = make_split(scan_dataset(shapes), val_fraction=0.25, seed=7)
    with pytest.raises(TrainingError, match="split differ"):
        run_training(str(tiny_weights_file), other_split, out, config, resume=True)
    # A runtime setting (the device, the loader threads) may change.
    assert run_training(
        str(tiny_weights_file), split, out, dataclass_replace(config, workers=1), resume=True
    ).bundle


def test_cancel_during_extraction_keeps_nothing(
    tiny_weights_file: Path, shapes: Path, tmp_path: Path
) -> None:
    split = make_split(scan_dataset(shapes), val_fraction=0.25)
    result = run_training(
        str(tiny_weights_file), split, tmp_path / "x", TrainConfig(**FAST), cancel=lambda: True
    )
    assert result.status == "cancelled" and result.checkpoint is None and result.history == ()


def test_save_on_cancel_writes_the_best_so_far(tiny_weights_file: Path, shapes: Path, tmp_path: Path) -> None:
    split = make_split(scan_dataset(shapes), val_fraction=0.25)
    result = run_until(
        str(tiny_weights_file),
        split,
        tmp_path / "x",
        TrainConfig(epochs=5, **FAST),
        steps=7,
        save_on_cancel=True,
    )
    assert result.status == "cancelled" and result.bundle is not None and result.checkpoint is not None
    assert read_bundle_info(result.bundle).metrics["status"] == "cancelled"


def test_feature_cache_skips_the_extraction(tiny_weights_file: Path, shapes: Path, tmp_path: Path) -> None:
    split = make_split(scan_dataset(shapes), val_fraction=0.25)
    cache_dir = tmp_path / "cache"
    config = TrainConfig(epochs=2, **FAST)
    first = list(
        train(str(tiny_weights_file), split, tmp_path / "a", config, feature_cache=FeatureCache(cache_dir))
    )
    assert any(isinstance(e, Progress) and e.phase.startswith("features") for e in first)
    assert len(list(cache_dir.glob("features-*.safetensors"))) == 2  # train and val
    again = list(
        train(str(tiny_weights_file), split, tmp_path / "b", config, feature_cache=FeatureCache(cache_dir))
    )
    assert not any(isinstance(e, Progress) and e.phase.startswith("features") for e in again)
    assert _weights(first[-1].bundle)["fc.weight"].equal(_weights(again[-1].bundle)["fc.weight"])
    # Other views are another key: computed afresh.
    third = list(
        train(str(tiny_weights_file), split, tmp_path / "c", dataclass_replace(config, cached_views=1),
              feature_cache=FeatureCache(cache_dir))
    )  # fmt: skip
    assert any(isinstance(e, Progress) and e.phase == "features (train)" for e in third)


def test_imbalanced_classes_weight_the_loss(tiny_weights_file: Path, tmp_path: Path) -> None:
    from resnet_gui.core.training.train import _class_weights

    root = make_shapes(tmp_path / "d", {"circle": 12, "square": 4})
    split = make_split(scan_dataset(root), val_fraction=0.25)
    weights = _class_weights(split, "auto")
    assert weights is not None and weights[1] / weights[0] == pytest.approx(3.0)
    assert _class_weights(split, "off") is None
    assert run_training(str(tiny_weights_file), split, tmp_path / "x", TrainConfig(epochs=1, **FAST)).bundle


def test_no_validation_split_trains_all_epochs(tiny_weights_file: Path, shapes: Path, tmp_path: Path) -> None:
    split = make_split(scan_dataset(shapes), val_fraction=0.0)
    result = run_training(
        str(tiny_weights_file), split, tmp_path / "x", TrainConfig(epochs=3, patience=1, **FAST)
    )
    assert result.status == "finished" and len(result.history) == 3 and result.best_epoch == 3
    assert result.val_accuracy is None


def test_test_split_is_scored(tiny_weights_file: Path, shapes_split: Path, tmp_path: Path) -> None:
    make_shapes(shapes_split, {"circle": 3, "square": 3}, seed=4, split="test")
    split = make_split(scan_dataset(shapes_split))
    result = run_training(str(tiny_weights_file), split, tmp_path / "x", TrainConfig(epochs=2, **FAST))
    assert result.test_accuracy is not None and 0.0 <= result.test_accuracy <= 1.0
    assert read_bundle_info(result.bundle).metrics["test_accuracy"] == result.test_accuracy


def test_bad_settings_are_refused(tiny_weights_file: Path, shapes: Path, tmp_path: Path) -> None:
    split = make_split(scan_dataset(shapes), val_fraction=0.25)
    for config, words in (
        (TrainConfig(mode="everything"), "Unknown training mode"),
        (TrainConfig(epochs=0), "epochs must be at least 1"),
        (TrainConfig(optimizer="adam"), "Unknown optimizer"),
    ):
        with pytest.raises(TrainingError, match=words):
            run_training(str(tiny_weights_file), split, tmp_path / "x", config)
    assert normalise_bundle_path("m") == Path("m.safetensors")
    with pytest.raises(Exception, match="safetensors"):
        normalise_bundle_path("m.pth")


# --- evaluation --------------------------------------------------------------------------------


def test_metrics_by_hand() -> None:
    # true:      a a a a b b c
    # predicted: a a b c b a c      (column 3: a prediction outside the folder's classes)
    true = [0, 0, 0, 0, 1, 1, 2]
    predicted = [0, 0, 1, 3, 1, 0, 2]
    confusion, per_class, accuracy = compute_metrics(true, predicted, ["a", "b", "c"], columns=4)
    assert confusion.tolist() == [[2, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 0]]
    assert accuracy == pytest.approx(4 / 7)
    a, b, c = per_class
    assert (a.precision, a.recall, a.support) == (pytest.approx(2 / 3), pytest.approx(2 / 4), 4)
    assert a.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert (b.precision, b.recall) == (pytest.approx(0.5), pytest.approx(0.5))
    assert (c.precision, c.recall, c.f1) == (1.0, 1.0, 1.0)


def _constant_bundle(tiny_weights_file: Path, path: Path, winner: str) -> Path:
    """The tiny model made to always predict ``winner`` (zero classifier weights, one large bias)."""
    from resnet_gui.core.checkpoints import read_weights_file, write_weights_file

    tensors, metadata = read_weights_file(tiny_weights_file)
    categories = json.loads(metadata["categories"])
    tensors["fc.weight"] = torch.zeros_like(tensors["fc.weight"])
    tensors["fc.bias"] = torch.tensor([5.0 if name == winner else 0.0 for name in categories])
    write_weights_file(path, tensors, metadata)
    return path


def test_evaluate_a_known_model(tiny_weights_file: Path, tmp_path: Path) -> None:
    root = tmp_path / "eval"
    make_shapes(root, {"ant": 3, "bee": 2})
    (root / "bee" / "broken.jpg").write_bytes(b"not a jpeg")
    bundle = _constant_bundle(tiny_weights_file, tmp_path / "always-ant.safetensors", "ant")
    report = evaluate(str(bundle), root, workers=0, top_wrong=1)
    # The tiny model has a third class, cat: its column is "(other)".
    assert report.columns == ("ant", "bee", OTHER) and report.classes == ("ant", "bee")
    assert report.confusion.tolist() == [[3, 0, 0], [2, 0, 0]]
    assert report.accuracy == pytest.approx(3 / 5) and report.count == 5
    ant, bee = report.per_class
    assert (ant.precision, ant.recall, bee.precision, bee.recall) == (pytest.approx(0.6), 1.0, 0.0, 0.0)
    assert [i.path.name for i in report.unreadable] == ["broken.jpg"]
    (wrong,) = report.most_confident_wrong
    expected = float(np.exp(5.0) / (np.exp(5.0) + 2))
    assert wrong.predicted_label == "ant" and wrong.true_label == "bee"
    assert wrong.confidence == pytest.approx(expected, rel=1e-5)
    written = report.write(tmp_path / "report")
    assert written["confusion_csv"].read_text().splitlines() == [
        "true \\ predicted,ant,bee,(other)", "ant,3,0,0", "bee,2,0,0",
    ]  # fmt: skip
    with Image.open(written["confusion_png"]) as png:
        assert png.format == "PNG" and png.size[0] > 200
    # The app's own Classifier can be passed: its lock then guards the forward passes.
    from resnet_gui.core.engine import Classifier

    classifier = Classifier(load_model(str(bundle)), device="cpu")
    assert evaluate(classifier, root, workers=0).confusion.tolist() == [[3, 0, 0], [2, 0, 0]]
    data = json.loads(written["report"].read_text())
    assert data["accuracy"] == pytest.approx(0.6) and data["confusion_matrix"] == [[3, 0, 0], [2, 0, 0]]
    assert len(written["predictions"].read_text().splitlines()) == 6


def test_evaluate_refuses_unknown_classes(tiny_weights_file: Path, shapes: Path) -> None:
    with pytest.raises(DatasetError, match="circle, square are not classes of the model"):
        evaluate(str(tiny_weights_file), shapes, workers=0)


def test_evaluate_a_split_folder_scores_val_or_test(tiny_weights_file: Path, shapes_split: Path) -> None:
    from resnet_gui.core.checkpoints import read_weights_file, write_weights_file

    tensors, metadata = read_weights_file(tiny_weights_file)
    metadata["categories"] = json.dumps(["circle", "square", "triangle"])
    relabelled = shapes_split.parent / "relabelled.safetensors"
    write_weights_file(relabelled, tensors, metadata)
    assert evaluate(str(relabelled), shapes_split, workers=0).count == 8  # val/
    assert evaluate(str(relabelled), shapes_split, split="train", workers=0).count == 20
    make_shapes(shapes_split, {"circle": 1, "square": 2}, seed=6, split="test")
    assert evaluate(str(relabelled), shapes_split, workers=0).count == 3  # test/ when there is one


def test_evaluate_the_recorded_validation_split(
    tiny_weights_file: Path, shapes: Path, tmp_path: Path
) -> None:
    split = make_split(scan_dataset(shapes), val_fraction=0.25)
    result = run_training(str(tiny_weights_file), split, tmp_path / "m", TrainConfig(epochs=2, **FAST))
    report = evaluate(str(result.bundle), shapes, split="val", workers=0)
    assert report.count == 6
    assert report.accuracy == pytest.approx(result.val_accuracy)
