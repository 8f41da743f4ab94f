"""Retraining plans (core, no Qt): the old split and settings, the new photos in the training part."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_training import make_shapes

from resnet_gui.core.training import TrainConfig, make_split, scan_dataset
from resnet_gui.core.training.retrain import RetrainError, base_source_of, plan_retrain


def bundle_metadata(root: Path, **training: object) -> dict[str, str]:
    """What a bundle written by train() holds (its JSON fields as text, as in a weights file)."""
    split = make_split(scan_dataset(root), val_fraction=0.25, seed=3)
    settings = {**TrainConfig(mode="head", epochs=7, lr=0.05).to_dict(), "data_root": str(root), **training}
    settings.setdefault("base_source", "resnet18:IMAGENET1K_V1")
    return {"training": json.dumps(settings), "split": json.dumps(split.to_dict())}


@pytest.fixture()
def shapes(tmp_path: Path) -> Path:
    return make_shapes(tmp_path / "shapes", {"circle": 8, "square": 8})


def test_the_new_photos_join_training_and_validation_stays_the_same(shapes: Path, tmp_path: Path) -> None:
    metadata = bundle_metadata(shapes)
    old = json.loads(metadata["split"])
    extra = make_shapes(tmp_path / "extra", {"square": 2, "triangle": 1})
    photos = [
        (extra / "square" / "square000.png", "square"),
        (extra / "square" / "square001.png", "square"),
        (extra / "triangle" / "triangle000.png", "triangle"),
    ]
    bundle = tmp_path / "models" / "shapes-resnet18-head-3.safetensors"
    plan = plan_retrain(bundle, metadata, photos)

    assert plan.base == "resnet18:IMAGENET1K_V1"
    assert plan.config.mode == "head" and plan.config.epochs == 7 and plan.config.lr == 0.05
    assert plan.split.classes == ("circle", "square", "triangle")
    assert [s.path.relative_to(shapes).as_posix() for s in plan.split.val] == [rel for rel, _ in old["val"]]
    assert len(plan.split.train) == len(old["train"]) + 3
    added = {s.path: plan.split.classes[s.label] for s in plan.split.train[len(old["train"]) :]}
    assert added == {path: label for path, label in photos}
    assert plan.split.seed == 3
    # A new name beside the old model (the numbering starts again), never the old model itself.
    assert plan.out == bundle.parent / "shapes-resnet18-head.safetensors"
    assert plan.added == tuple(path for path, _ in photos)


def test_a_photo_already_in_the_split_is_not_added_twice(shapes: Path, tmp_path: Path) -> None:
    metadata = bundle_metadata(shapes)
    known = shapes / json.loads(metadata["split"])["train"][0][0]
    plan = plan_retrain(tmp_path / "m.safetensors", metadata, [(known, "circle")])
    assert len(plan.split.train) == len(json.loads(metadata["split"])["train"])


def test_retraining_never_picks_an_existing_bundle(shapes: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "m.safetensors").write_bytes(b"x")
    (models / "m-2.safetensors").write_bytes(b"x")
    plan = plan_retrain(models / "m.safetensors", bundle_metadata(shapes), [])
    assert plan.out == models / "m-3.safetensors"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda root, m: m.pop("training"), "not fine-tuned in this app", id="no-training"),
        pytest.param(lambda root, m: m.pop("split"), "not fine-tuned in this app", id="no-split"),
        pytest.param(
            lambda root, m: shutil.move(root, root.with_name("elsewhere")),
            "no longer there",
            id="folder-moved",
        ),
        pytest.param(
            lambda root, m: next((root / "circle").iterdir()).unlink(), "are gone from", id="a-photo-deleted"
        ),
        pytest.param(
            lambda root, m: m.update(training=json.dumps({"data_root": str(root)})),
            "does not say which model",
            id="no-base",
        ),
        pytest.param(
            lambda root, m: m.update(split=json.dumps({"train": 5})), "is damaged", id="damaged-split"
        ),
    ],
)
def test_a_model_that_cannot_be_retrained_says_why(
    shapes: Path, tmp_path: Path, damage, message: str
) -> None:
    metadata = bundle_metadata(shapes)
    damage(shapes, metadata)
    with pytest.raises(RetrainError, match=message):
        plan_retrain(tmp_path / "m.safetensors", metadata, [])


@pytest.mark.parametrize(
    ("training", "source"),
    [
        ({"base_source": "/models/base.safetensors", "base_model": "x"}, "/models/base.safetensors"),
        ({"base_weights": "file /models/old.pth", "base_model": "old"}, "/models/old.pth"),
        (
            {"base_weights": "torchvision ImageNet", "base_model": "resnet50:IMAGENET1K_V2"},
            "resnet50:IMAGENET1K_V2",
        ),
        ({}, ""),
    ],
)
def test_the_base_model_of_old_and_new_bundles(training: dict, source: str) -> None:
    assert base_source_of(training) == source
