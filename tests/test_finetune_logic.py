"""The fine-tuning wizard's decisions, tested without Qt (core/training/planning.py).

What the health page flags and ticks, where a new model is saved (never over an earlier one),
copying a bundle with its sidecar, finding an interrupted run to resume, and the baseline the
results page compares the accuracy with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_training import FAST, make_shapes, shape_image

from resnet_gui.core.errors import OutputError, WeightsError
from resnet_gui.core.training import (
    EpochMetrics,
    StepMetrics,
    TrainConfig,
    check_health,
    checkpoint_path,
    make_split,
    scan_dataset,
    sidecar_path,
    train,
)
from resnet_gui.core.training.planning import (
    FLAG_GROUP_KEYS,
    biggest_mistake,
    bundle_stem,
    class_examples,
    correct_count,
    default_exclusions,
    find_interrupted_run,
    flag_groups,
    majority_baseline,
    save_copy,
    suggest_bundle_path,
    unique_bundle_path,
)


def test_planning_is_free_of_qt() -> None:
    import resnet_gui.core.training.planning as planning

    source = Path(planning.__file__).read_text()
    assert "PySide6" not in source and "resnet_gui.gui" not in source


@pytest.fixture()
def messy(tmp_path: Path) -> Path:
    """train/val folders with one file of each problem the health page groups."""
    root = tmp_path / "messy"
    make_shapes(root, {"circle": 8, "square": 8}, seed=1, split="train")
    make_shapes(root, {"circle": 3, "square": 3}, seed=2, split="val")
    train_dir, val_dir = root / "train", root / "val"
    (train_dir / "square" / "text.png").write_text("not an image")
    shape_image("square", 5, size=20).save(train_dir / "square" / "thumb.png")
    (train_dir / "circle" / "copy.png").write_bytes((train_dir / "circle" / "circle000.png").read_bytes())
    (train_dir / "circle" / "leak.png").write_bytes((val_dir / "circle" / "circle001.png").read_bytes())
    (train_dir / "square" / "mislabelled.png").write_bytes(
        (train_dir / "circle" / "circle002.png").read_bytes()
    )
    return root


def test_flag_groups_say_which_file_is_flagged_why_and_what_is_ticked(messy: Path) -> None:
    report = check_health(scan_dataset(messy))
    groups = flag_groups(report)
    assert [g.key for g in groups] == list(FLAG_GROUP_KEYS)  # every kind present, worst first
    by_key = {g.key: {f.name: f for f in g.files} for g in groups}

    (unreadable,) = by_key["unreadable"].values()
    assert unreadable.name == "train/square/text.png" and not unreadable.optional and unreadable.suggested
    # A val photo copied into train: both copies listed, only the train one ticked (val stays as it was).
    leaked = by_key["leaked"]
    assert set(leaked) == {"train/circle/leak.png", "val/circle/circle001.png"}
    assert leaked["train/circle/leak.png"].suggested and not leaked["val/circle/circle001.png"].suggested
    assert leaked["train/circle/leak.png"].reason == "same photo as val/circle/circle001.png"
    # The same photo in two classes: which label is right cannot be known, both are ticked.
    conflict = by_key["conflict"]
    assert set(conflict) == {"train/circle/circle002.png", "train/square/mislabelled.png"}
    assert all(f.suggested and f.optional for f in conflict.values())
    # Copies within a class: the first stays (unlisted), the later copy is listed and ticked.
    assert list(by_key["copy"]) == ["train/circle/copy.png"]
    assert by_key["copy"]["train/circle/copy.png"].reason == "copy of train/circle/circle000.png"
    assert list(by_key["tiny"]) == ["train/square/thumb.png"]

    listed = {f.path for g in groups for f in g.files}
    ticked = {f.path for g in groups for f in g.files if f.suggested}
    assert default_exclusions(report) == ticked and ticked < listed
    assert messy / "train" / "circle" / "circle000.png" not in listed


def test_a_clean_folder_has_no_groups_and_examples_skip_flagged_files(messy: Path, tmp_path: Path) -> None:
    clean = make_shapes(tmp_path / "clean", {"a": 3, "b": 2})
    report = check_health(scan_dataset(clean))
    assert flag_groups(report) == [] and default_exclusions(report) == set()

    dataset = scan_dataset(messy)
    report = check_health(dataset)
    examples = class_examples(dataset, report, 4)
    assert set(examples) == {"circle", "square"} and all(len(v) == 4 for v in examples.values())
    flagged = default_exclusions(report)
    assert not flagged & {p for paths in examples.values() for p in paths}
    assert all(dataset.classes[s.label] == name for name, paths in examples.items() for s in dataset.samples
               if s.path in paths)  # fmt: skip


def test_a_new_bundle_path_never_names_an_existing_bundle(tmp_path: Path) -> None:
    assert bundle_stem("ants-bees", "resnet50:IMAGENET1K_V2", "head") == "ants-bees-resnet50-head"
    assert bundle_stem("shapes", "/models/tiny.safetensors", "full") == "shapes-tiny-full"
    assert bundle_stem("", "", "head") == "photos-model-head"
    folder = tmp_path / "models"
    first = suggest_bundle_path(folder, tmp_path / "shapes", "resnet18:X", "head")
    assert first == folder / "shapes-resnet18-head.safetensors"
    folder.mkdir()
    first.write_bytes(b"first run")
    second = unique_bundle_path(folder, "shapes-resnet18-head")
    assert second == folder / "shapes-resnet18-head-2.safetensors"
    second.write_bytes(b"second run")
    assert unique_bundle_path(folder, "shapes-resnet18-head").name == "shapes-resnet18-head-3.safetensors"
    # An interrupted run (checkpoint, no bundle) keeps its name: the same choices find it again.
    checkpoint_path(folder / "other.safetensors").write_bytes(b"ckpt")
    assert unique_bundle_path(folder, "other") == folder / "other.safetensors"


def test_save_copy_copies_the_bundle_and_its_sidecar(tmp_path: Path) -> None:
    bundle = tmp_path / "model.safetensors"
    bundle.write_bytes(b"weights")
    sidecar_path(bundle).write_text('{"classes": ["a"]}')
    copy = save_copy(bundle, tmp_path / "elsewhere" / "mine")
    assert copy == tmp_path / "elsewhere" / "mine.safetensors"
    assert copy.read_bytes() == b"weights" and sidecar_path(copy).read_text() == '{"classes": ["a"]}'
    with pytest.raises(WeightsError, match="safetensors"):
        save_copy(bundle, tmp_path / "mine.pt")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OutputError, match="Cannot write"):
        save_copy(bundle, tmp_path / "a-file" / "mine.safetensors")


def test_an_interrupted_run_is_found_with_its_settings_and_split(
    tiny_weights_file: Path, tmp_path: Path
) -> None:
    shapes = make_shapes(tmp_path / "shapes", {"circle": 8, "square": 8})
    split = make_split(scan_dataset(shapes), val_fraction=0.25)
    out = tmp_path / "run.safetensors"
    assert find_interrupted_run(out, shapes) is None  # nothing there
    config = TrainConfig(mode="head", epochs=5, patience=0, **FAST)
    run = train(str(tiny_weights_file), split, out, config)
    epochs = 0
    for event in run:
        epochs += isinstance(event, EpochMetrics)
        if epochs == 2 and isinstance(event, StepMetrics):
            break
    run.close()  # as if the app was closed in epoch 3

    found = find_interrupted_run(out, shapes)
    assert found is not None and found.epochs_done == 2 and found.missing == []
    assert found.config.epochs == 5 and found.config.mode == "head"
    assert [s.path for s in found.split.val] == [s.path for s in split.val]
    gone = split.train[0].path
    gone.unlink()
    assert find_interrupted_run(out, shapes).missing == [gone]
    checkpoint_path(out).write_bytes(b"garbage")  # unreadable: a new run replaces it
    assert find_interrupted_run(out, shapes) is None


def test_the_results_baseline_and_biggest_mistake() -> None:
    # Rows: true classes (30 a, 10 b); the extra third column is an answer outside the classes.
    confusion = np.array([[25, 3, 2], [4, 6, 0]])
    assert majority_baseline(confusion) == pytest.approx(0.75)
    assert correct_count(confusion, 2) == 31
    assert biggest_mistake(confusion, 2) == (1, 0)
    assert biggest_mistake(np.array([[5, 0], [0, 5]]), 2) is None
    assert majority_baseline(np.zeros((2, 2), int)) == 0.0
