"""Review of the training data: label issues (cleanlab), top losses, decisions, plan/apply/undo."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnet_gui.core.corrections import dataset_record_folder
from resnet_gui.core.training.dataset import scan_dataset
from resnet_gui.core.training.evaluate import EvaluationReport, WrongPrediction
from resnet_gui.core.training.review import (
    JOURNAL_FILE,
    REVIEW_FILE,
    ReviewDatasetMovedError,
    ReviewDecisions,
    ReviewError,
    ReviewFileGoneError,
    ReviewFolderError,
    apply_review,
    cross_validated_probabilities,
    find_label_issues,
    issues_from_probabilities,
    iter_label_issues,
    last_applied_review,
    plan_review,
    top_losses,
    undo_review,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COLOURS = {"blue": (20, 40, 220), "red": (220, 30, 20)}


def _coloured(path: Path, rgb: tuple[int, int, int], seed: int, size: int = 48) -> Path:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(rgb) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "appdata"


@pytest.fixture()
def colours(tmp_path: Path) -> tuple[Path, Path]:
    """Blue and red photos in class folders, and one red photo filed under blue (the mistake)."""
    root = tmp_path / "colours"
    for label, (name, rgb) in enumerate(COLOURS.items()):
        for index in range(10):
            _coloured(root / name / f"{name}{index:02d}.png", rgb, seed=100 * label + index)
    wrong = _coloured(root / "blue" / "blue_but_red.png", COLOURS["red"], seed=999)
    return root, wrong


# --- label issues -----------------------------------------------------------------------------


def test_issues_from_probabilities_flags_the_disputed_label() -> None:
    rng = np.random.default_rng(0)
    labels = np.array([0] * 20 + [1] * 20)
    probs = np.where(labels[:, None] == np.arange(2), 0.9, 0.1) + rng.uniform(-0.05, 0.05, (40, 2))
    probs[3] = [0.03, 0.97]  # given 0, the model is sure it is 1
    paths = [Path(f"/d/{i}.png") for i in range(40)]
    issues = issues_from_probabilities(paths, labels, probs, ("cat", "dog"), ["train"] * 40)
    assert [issue.path for issue in issues][:1] == [paths[3]]
    first = issues[0]
    assert (first.given, first.suggested, first.split) == ("cat", "dog", "train")
    assert first.given_probability == pytest.approx(probs[3, 0] / probs[3].sum())
    assert first.suggested_probability > 0.9
    assert first.quality == pytest.approx(first.given_probability)
    assert all(issue.path != paths[0] for issue in issues)


def test_cross_validation_scores_a_mislabelled_point_out_of_sample() -> None:
    rng = np.random.default_rng(1)
    features = np.concatenate([rng.normal(-2, 1, (15, 8)), rng.normal(2, 1, (15, 8))])
    labels = np.array([0] * 15 + [1] * 15)
    labels[4] = 1  # a class-0 point labelled 1
    probs = cross_validated_probabilities(features, labels, seed=0)
    assert probs is not None and probs.shape == (30, 2)
    assert probs[4, 1] < 0.5  # its own wrong label did not teach the fold that scored it
    issues = issues_from_probabilities(
        [Path(str(i)) for i in range(30)], labels, probs, ("a", "b"), ["train"] * 30
    )
    assert Path("4") in [issue.path for issue in issues]


def test_cross_validation_needs_two_photos_per_class() -> None:
    assert cross_validated_probabilities(np.zeros((3, 2)), np.array([0, 0, 1])) is None
    assert cross_validated_probabilities(np.zeros((3, 2)), np.array([0, 0, 0])) is None


def test_find_label_issues_flags_the_red_photo_filed_as_blue(colours, tiny_weights_file, tmp_path) -> None:
    from resnet_gui.core.models import load_model
    from resnet_gui.core.training import FeatureCache, Progress, TrainConfig, make_split, run_training

    root, wrong = colours
    split = make_split(scan_dataset(root), val_fraction=0.2, seed=0)
    config = TrainConfig(mode="head", epochs=8, batch_size=8, workers=0)
    bundle_path = tmp_path / "colours.safetensors"
    fresh = find_label_issues(
        load_model(str(run_training(str(tiny_weights_file), split, bundle_path, config).bundle)), workers=0
    )
    cache = FeatureCache(tmp_path / "cache")
    result = run_training(str(tiny_weights_file), split, bundle_path, config, feature_cache=cache)
    bundle = load_model(str(result.bundle))
    events = list(iter_label_issues(bundle, workers=0, feature_cache=cache))
    # Right after a head-mode training, the review takes the training's cached features.
    assert not [e for e in events if isinstance(e, Progress) and e.phase == "features (review)"]
    issues = events[-1]
    assert isinstance(issues, list)
    flagged = {issue.path: issue for issue in issues}
    assert wrong in flagged, [(i.path.name, i.given_probability) for i in issues]
    issue = flagged[wrong]
    assert (issue.given, issue.suggested) == ("blue", "red")
    assert issue.split in ("train", "val")
    assert issue.suggested_probability > issue.given_probability
    assert len(issues) <= 4  # the clean photos are not flagged wholesale
    # The same answer as features computed afresh (no cache).
    assert [i.path for i in fresh] == [i.path for i in issues]
    for a, b in zip(fresh, issues, strict=True):
        assert a.given_probability == pytest.approx(b.given_probability, abs=1e-3)
    again = find_label_issues(bundle, workers=0, feature_cache=FeatureCache(tmp_path / "cache"))
    assert [i.path for i in again] == [i.path for i in issues]


def test_find_label_issues_says_when_the_dataset_moved(colours, tiny_weights_file, tmp_path) -> None:
    from resnet_gui.core.models import load_model
    from resnet_gui.core.training import TrainConfig, make_split, run_training

    root, _ = colours
    split = make_split(scan_dataset(root), val_fraction=0.2)
    result = run_training(
        str(tiny_weights_file),
        split,
        tmp_path / "m.safetensors",
        TrainConfig(epochs=1, batch_size=8, workers=0),
    )
    root.rename(tmp_path / "moved")
    with pytest.raises(ReviewDatasetMovedError, match="moved or been deleted"):
        find_label_issues(load_model(str(result.bundle)), workers=0)


def test_a_model_without_a_dataset_has_nothing_to_review(tiny_model) -> None:
    with pytest.raises(ReviewError, match="records no dataset folder"):
        find_label_issues(tiny_model)


def test_top_losses_ranks_by_the_given_class_probability(tmp_path) -> None:
    wrong = [
        WrongPrediction(tmp_path / "a.png", "cat", "dog", 0.6, 0.3),
        WrongPrediction(tmp_path / "b.png", "cat", "dog", 0.9, 0.05),
        WrongPrediction(tmp_path / "c.png", "dog", "cat", 0.7, 0.2),
    ]
    report = EvaluationReport(
        "m",
        tmp_path,
        ("cat", "dog"),
        ("cat", "dog"),
        np.zeros((2, 2)),
        [],
        0.5,
        6,
        most_confident_wrong=wrong,
    )
    assert [w.path.name for w in top_losses(report)] == ["b.png", "c.png", "a.png"]
    assert [w.path.name for w in top_losses(report, 1)] == ["b.png"]


# --- decisions, plan, apply, undo -------------------------------------------------------------


@pytest.fixture()
def pets(tmp_path: Path) -> Path:
    root = tmp_path / "pets"
    for label, name in enumerate(("cat", "dog")):
        for index in range(3):
            _coloured(root / name / f"{name}{index}.png", (50 * label, 80, 90), seed=10 * label + index)
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_decisions_persist_across_restarts(pets, data_dir) -> None:
    decisions = ReviewDecisions(pets, data_dir)
    decisions.move(pets / "cat" / "cat0.png", "dog")
    decisions.leave_out(pets / "dog" / "dog1.png")
    decisions.keep(pets / "dog" / "dog2.png")
    assert decisions.path == dataset_record_folder(pets, data_dir) / REVIEW_FILE
    again = ReviewDecisions(pets, data_dir)
    assert [(d.path.name, d.action, d.label) for d in again.decisions()] == [
        ("cat0.png", "move", "dog"),
        ("dog1.png", "leave_out", ""),
        ("dog2.png", "keep", ""),
    ]
    assert again.kept() == {pets.resolve() / "dog" / "dog2.png"}
    again.forget(pets / "dog" / "dog2.png")
    assert ReviewDecisions(pets, data_dir).get(pets / "dog" / "dog2.png") is None
    with pytest.raises(ReviewError, match="not in the dataset folder"):
        again.keep(pets.parent / "elsewhere.png")


def test_nothing_moves_until_apply_and_undo_puts_everything_back(pets, data_dir) -> None:
    before = _tree(pets)
    decisions = ReviewDecisions(pets, data_dir)
    decisions.move(pets / "cat" / "cat0.png", "dog")
    decisions.leave_out(pets / "dog" / "dog1.png")
    decisions.keep(pets / "dog" / "dog2.png")
    decisions.move(pets / "dog" / "dog0.png", "dog")  # already there: skipped
    plan = plan_review(decisions)
    assert _tree(pets) == before  # planning moves nothing
    root = pets.resolve()
    assert [(m.source, m.destination) for m in plan.moves] == [
        (root / "cat" / "cat0.png", root / "dog" / "cat0.png"),
        (root / "dog" / "dog1.png", root / "_left_out" / "dog" / "dog1.png"),
    ]
    assert [path.name for path, _ in plan.skipped] == ["dog0.png"]
    assert any("leave out" in line for line in plan.lines())
    applied = apply_review(plan)
    assert (root / "dog" / "cat0.png").is_file() and not (root / "cat" / "cat0.png").exists()
    assert (root / "_left_out" / "dog" / "dog1.png").is_file()
    dataset = scan_dataset(pets)
    assert dataset.classes == ("cat", "dog")  # _left_out is not a class
    assert all("_left_out" not in s.path.parts for s in dataset.samples)
    assert [d.action for d in ReviewDecisions(pets, data_dir).decisions()] == [
        "move",
        "keep",
    ]  # applied: forgotten
    recorded = last_applied_review(pets, data_dir)
    assert recorded is not None and (recorded.id, recorded.moves) == (applied.id, applied.moves)
    undo_review(applied)
    assert _tree(pets) == before
    assert not (root / "_left_out").exists()
    assert last_applied_review(pets, data_dir) is None
    restored = {d.path.name: d.action for d in ReviewDecisions(pets, data_dir).decisions()}
    assert restored == {"cat0.png": "move", "dog1.png": "leave_out", "dog0.png": "move", "dog2.png": "keep"}


def test_a_taken_name_is_never_overwritten(pets, data_dir) -> None:
    _coloured(pets / "dog" / "cat0.png", (1, 2, 3), seed=5)  # a different photo of the same name
    taken = (pets / "dog" / "cat0.png").read_bytes()
    decisions = ReviewDecisions(pets, data_dir)
    decisions.move(pets / "cat" / "cat0.png", "dog")
    applied = apply_review(plan_review(decisions))
    assert applied.moves[0].destination.name == "cat0-1.png"
    assert (pets / "dog" / "cat0.png").read_bytes() == taken


def test_train_val_moves_stay_in_their_split(tmp_path, data_dir) -> None:
    root = tmp_path / "splits"
    for split in ("train", "val"):
        for name in ("cat", "dog"):
            for index in (1, 2):
                _coloured(root / split / name / f"{name}-{split}{index}.png", (9, 9, 9), seed=index)
    decisions = ReviewDecisions(root, data_dir)
    decisions.move(root / "val" / "cat" / "cat-val1.png", "dog")
    decisions.leave_out(root / "train" / "dog" / "dog-train1.png")
    plan = plan_review(decisions)
    resolved = root.resolve()
    assert sorted(m.destination for m in plan.moves) == [
        resolved / "_left_out" / "dog" / "dog-train1.png",
        resolved / "val" / "dog" / "cat-val1.png",
    ]
    apply_review(plan)
    assert scan_dataset(root).classes == ("cat", "dog")


def test_undo_refuses_when_a_place_was_taken_since(pets, data_dir) -> None:
    decisions = ReviewDecisions(pets, data_dir)
    decisions.move(pets / "cat" / "cat0.png", "dog")
    applied = apply_review(plan_review(decisions))
    _coloured(pets / "cat" / "cat0.png", (7, 7, 7), seed=3)  # someone put a new file there
    newcomer = (pets / "cat" / "cat0.png").read_bytes()
    with pytest.raises(ReviewError, match="taken by another file") as caught:
        undo_review(applied)
    assert "\n" not in str(caught.value)
    assert (pets / "cat" / "cat0.png").read_bytes() == newcomer
    assert (pets / "dog" / "cat0.png").is_file()  # nothing moved, nothing deleted


def test_undo_of_a_photo_gone_since_refuses_or_skips(pets, data_dir, tmp_path) -> None:
    decisions = ReviewDecisions(pets, data_dir)
    decisions.move(pets / "cat" / "cat0.png", "dog")
    decisions.move(pets / "cat" / "cat1.png", "dog")
    applied = apply_review(plan_review(decisions))
    (pets / "dog" / "cat0.png").rename(tmp_path / "taken away.png")
    with pytest.raises(ReviewFileGoneError, match="moved or deleted since"):
        undo_review(applied)
    assert (pets / "dog" / "cat1.png").is_file()
    undo_review(applied, skip_missing=True)
    assert (pets / "cat" / "cat1.png").is_file()


def test_a_read_only_folder_stops_the_apply_with_one_sentence(pets, data_dir, monkeypatch) -> None:
    decisions = ReviewDecisions(pets, data_dir)
    decisions.move(pets / "cat" / "cat0.png", "dog")
    decisions.move(pets / "cat" / "cat1.png", "dog")
    plan = plan_review(decisions)
    real_link = os.link
    calls = []

    def link(source, destination, **kwargs):
        calls.append(destination)
        if len(calls) > 1:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_link(source, destination, **kwargs)

    monkeypatch.setattr(os, "link", link)
    with pytest.raises(ReviewFolderError) as caught:
        apply_review(plan)
    message = str(caught.value)
    assert "read-only" in message and "can be undone" in message and "\n" not in message
    monkeypatch.setattr(os, "link", real_link)
    assert caught.value.applied is not None and len(caught.value.applied.moves) == 1
    assert (pets / "cat" / "cat1.png").is_file()  # the refused one stayed
    undo_review(caught.value.applied)
    assert (pets / "cat" / "cat0.png").is_file()


def test_a_crash_midway_is_undoable_from_the_journal(pets, data_dir, monkeypatch) -> None:
    from resnet_gui.core.batch import sort

    decisions = ReviewDecisions(pets, data_dir)
    decisions.move(pets / "cat" / "cat0.png", "dog")
    decisions.move(pets / "cat" / "cat1.png", "dog")
    plan = plan_review(decisions)
    real = sort._move_exclusive
    count = []

    def crash_on_second(source, destination):
        count.append(source)
        if len(count) == 2:
            os.link(source, destination)  # the power goes between the link and the unlink
            raise KeyboardInterrupt
        real(source, destination)

    monkeypatch.setattr(sort, "_move_exclusive", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        apply_review(plan)
    monkeypatch.setattr(sort, "_move_exclusive", real)
    journal = json.loads((dataset_record_folder(pets, data_dir) / JOURNAL_FILE).read_text())
    assert [m["state"] for m in journal["applied"][-1]["moves"]] == ["moved", "moving"]
    recovered = last_applied_review(pets, data_dir)
    assert recovered is not None and len(recovered.moves) == 2
    undo_review(recovered)
    assert sorted(p.name for p in (pets / "cat").iterdir()) == ["cat0.png", "cat1.png", "cat2.png"]
    assert sorted(p.name for p in (pets / "dog").iterdir()) == ["dog0.png", "dog1.png", "dog2.png"]


def test_a_moved_dataset_and_a_damaged_file_are_one_sentence(pets, data_dir, tmp_path) -> None:
    decisions = ReviewDecisions(pets, data_dir)
    decisions.leave_out(pets / "cat" / "cat0.png")
    record = decisions.path
    record.write_text("{oops")
    with pytest.raises(ReviewError, match="damaged") as caught:
        ReviewDecisions(pets, data_dir)
    assert "\n" not in str(caught.value)
    record.write_text(
        json.dumps({"format": "resnet-gui-review/1", "decisions": {"../x.png": {"action": "keep"}}})
    )
    with pytest.raises(ReviewError, match="damaged"):
        ReviewDecisions(pets, data_dir)
    record.unlink()
    decisions = ReviewDecisions(pets, data_dir)
    decisions.leave_out(pets / "cat" / "cat0.png")
    plan = plan_review(decisions)
    pets.rename(tmp_path / "moved")
    with pytest.raises(ReviewDatasetMovedError, match="moved or deleted"):
        apply_review(plan)
    with pytest.raises(ReviewDatasetMovedError):
        ReviewDecisions(pets, data_dir)
    with pytest.raises(ReviewDatasetMovedError):
        ReviewDecisions.for_bundle({"training": json.dumps({"data_root": str(pets)})}, data_dir)


def test_a_photo_gone_before_the_apply_is_skipped(pets, data_dir, tmp_path) -> None:
    decisions = ReviewDecisions(pets, data_dir)
    decisions.leave_out(pets / "cat" / "cat0.png")
    decisions.leave_out(pets / "cat" / "cat1.png")
    plan = plan_review(decisions)
    (pets / "cat" / "cat0.png").rename(tmp_path / "elsewhere.png")
    applied = apply_review(plan)
    assert [m.source.name for m in applied.moves] == ["cat1.png"]
    assert [p.name for p, _ in applied.skipped] == ["cat0.png"]


def test_core_review_imports_no_qt() -> None:
    import subprocess
    import sys

    code = "import sys, resnet_gui.core.training.review; assert 'PySide6' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_scan_never_reads_left_out_as_a_class(tmp_path) -> None:
    classes = tmp_path / "classes"
    splits = tmp_path / "splits"
    for name in ("cat", "dog", "_left_out", "_Left_Out"):
        _coloured(classes / name / f"{name}.png", (1, 2, 3), seed=1)
        _coloured(splits / "train" / name / f"{name}.png", (1, 2, 3), seed=1)
    _coloured(splits / "_left_out" / "cat" / "x.png", (1, 2, 3), seed=1)
    assert scan_dataset(classes).classes == ("cat", "dog")
    found = scan_dataset(splits)
    assert found.classes == ("cat", "dog")
    assert all("_left_out" not in str(s.path).lower() for s in found.samples)


def test_cross_validation_needs_every_class_in_the_training_photos() -> None:
    features = np.random.default_rng(0).normal(size=(6, 3))
    assert cross_validated_probabilities(features, np.array([0, 0, 0, 1, 1, 1]), num_classes=3) is None
