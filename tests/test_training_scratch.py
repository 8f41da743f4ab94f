"""Training from scratch (``scratch`` mode, ``finetune --from-scratch``) on tiny synthetic 32x32 data.

The networks are the CIFAR ResNets of the 2015 paper (ResNet-20 with option A and B shortcuts,
plain-20). How well ResNet-20 learns real CIFAR-10 photos is measured by
benchmarks/train_from_scratch.py (README), not here: these check the recipe's pieces.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_training import shape_image
from test_training_cli import run_cli

from resnet_gui.core.models import load_model
from resnet_gui.core.modes import TRAINING_MODES
from resnet_gui.core.preprocessing import Preprocessing
from resnet_gui.core.training import (
    EpochMetrics,
    TrainConfig,
    TrainingError,
    make_split,
    read_bundle_info,
    run_training,
    scan_dataset,
)
from resnet_gui.core.training.augment import Augmentation, pad_of, random_view, view_rng
from resnet_gui.core.training.health import HealthReport
from resnet_gui.core.training.scratch import (
    FromScratchError,
    scratch_architectures,
    suggest_from_scratch,
    untrained_model,
)
from resnet_gui.core.training.train import _optimizer, _param_groups

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VARIANTS = ["cifar_resnet20", "cifar_resnet20_b", "cifar_plain20"]  # option A, option B, plain
FAST = {"batch_size": 8, "workers": 0, "device": "cpu"}


def small_shapes(root: Path, counts: dict[str, int], *, seed: int = 0) -> Path:
    """Red circles and blue squares as 32x32 photos: the classes differ by colour."""
    for class_index, (name, count) in enumerate(counts.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            shape_image(name, seed * 100_000 + class_index * 1000 + index, size=32).save(
                folder / f"{name}{index:03d}.png"
            )
    return root


@pytest.fixture()
def small(tmp_path: Path, isolated_dirs: Path) -> Path:
    return small_shapes(tmp_path / "small", {"circle": 16, "square": 16})


def _batch_norms(network: torch.nn.Module) -> list[torch.nn.BatchNorm2d]:
    return [m for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)]


@pytest.mark.parametrize("name", VARIANTS)
def test_a_from_scratch_step_lowers_the_loss_and_moves_the_batch_norm_statistics(name: str) -> None:
    network = untrained_model(name, seed=0).model
    config = TrainConfig(mode="scratch", batch_size=16).resolved()
    groups = _param_groups(network, network.fc, config)
    assert len(groups) == 1 and groups[0]["lr"] == pytest.approx(0.1 * 16 / 128)  # one rate for all
    assert sum(len(g["params"]) for g in groups) == len(list(network.parameters()))
    optimizer = _optimizer(groups, config)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(16, 3, 32, 32, generator=generator)
    labels = torch.arange(16) % 10
    before = [bn.running_mean.clone() for bn in _batch_norms(network)]
    network.train()
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(network(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] * 0.9, losses
    moved = [not torch.equal(b, bn.running_mean) for b, bn in zip(before, _batch_norms(network), strict=True)]
    assert all(moved)


def test_untrained_networks_are_drawn_from_the_seed_and_leave_the_global_state() -> None:
    state = torch.random.get_rng_state()
    first = untrained_model("cifar_resnet20", seed=3).model.state_dict()
    again = untrained_model("cifar_resnet20", seed=3).model.state_dict()
    other = untrained_model("cifar_resnet20", seed=4).model.state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["conv1.weight"], other["conv1.weight"])
    assert scratch_architectures()[0] == "cifar_resnet20"
    assert {"cifar_resnet20_b", "cifar_plain20", "cifar_resnet1202"} <= set(scratch_architectures())


def test_a_network_for_large_photos_is_refused_in_one_sentence() -> None:
    with pytest.raises(FromScratchError, match="made for large photos") as caught:
        untrained_model("resnet18")
    assert str(caught.value).count(". ") == 0 and "cifar_resnet20" in str(caught.value)


def test_scratch_mode_learns_small_photos_that_differ_by_colour_and_its_bundle_classifies(
    small: Path, tmp_path: Path
) -> None:
    val = small_shapes(tmp_path / "val-photos", {"circle": 6, "square": 6}, seed=7)
    split = make_split(scan_dataset(small), val_fraction=0.25)
    config = TrainConfig(mode="scratch", epochs=6, **FAST)
    result = run_training("cifar_resnet20", split, tmp_path / "scratch.safetensors", config)
    assert result.status == "finished" and result.bundle is not None
    assert result.val_accuracy is not None and result.val_accuracy >= 0.9
    info = read_bundle_info(result.bundle)
    training = info.metadata["training"]
    training = json.loads(training) if isinstance(training, str) else training
    assert training["mode"] == "scratch" and training["base_source"] == "cifar_resnet20"
    assert training["base_weights"] == f"trained from scratch on {small.resolve()}"
    from resnet_gui.core.engine import Classifier

    classifier = Classifier(load_model(str(result.bundle)), device="cpu")
    assert classifier.loaded.architecture == "cifar_resnet20"
    photos = sorted(val.glob("*/*.png"))
    answers = classifier.classify_images([classifier.load(p) for p in photos], top_k=1)
    right = sum(answer[0].label == photo.parent.name for answer, photo in zip(answers, photos, strict=True))
    assert right >= 0.9 * len(photos)


@pytest.mark.parametrize(("mode", "trains"), [("scratch", True), ("full", False)])
def test_batch_norm_trains_during_the_steps_only_from_scratch(
    mode: str,
    trains: bool,
    small: Path,
    tmp_path: Path,
    tiny_weights_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[bool, set[bool]] = {True: set(), False: set()}  # grad enabled (a step) -> BN.training

    def record(module: torch.nn.Module, inputs: object, output: object) -> None:
        seen[torch.is_grad_enabled()].add(module.training)

    train_module = importlib.import_module("resnet_gui.core.training.train")  # not train()
    original = train_module.split_model

    def hooked(network: torch.nn.Module, *args: object, **kwargs: object):
        for bn in _batch_norms(network):
            bn.register_forward_hook(record)
        return original(network, *args, **kwargs)

    monkeypatch.setattr(train_module, "split_model", hooked)
    model = "cifar_resnet20" if mode == "scratch" else str(tiny_weights_file)
    config = TrainConfig(mode=mode, epochs=1, probe_epochs=0, **FAST)
    run_training(model, make_split(scan_dataset(small)), tmp_path / f"{mode}.safetensors", config)
    assert seen[True] == {trains}  # the training steps
    assert seen[False] == {False}  # validation, calibration: the running statistics


def test_a_resumed_scratch_run_ends_with_the_weights_of_an_uninterrupted_one(
    small: Path, tmp_path: Path
) -> None:
    split = make_split(scan_dataset(small))
    config = TrainConfig(mode="scratch", epochs=2, patience=0, **FAST)
    whole = run_training("cifar_resnet20", split, tmp_path / "whole.safetensors", config)
    epochs_done = []

    def cancel() -> bool:
        return bool(epochs_done)

    cut = run_training(
        "cifar_resnet20",
        split,
        tmp_path / "cut.safetensors",
        config,
        cancel=cancel,
        on_event=lambda e: epochs_done.append(e) if isinstance(e, EpochMetrics) else None,
    )
    assert cut.status == "cancelled" and cut.checkpoint is not None
    resumed = run_training("cifar_resnet20", split, tmp_path / "cut.safetensors", config, resume=True)
    assert resumed.status == "finished"
    from safetensors.torch import load_file

    assert whole.bundle is not None and resumed.bundle is not None
    a, b = load_file(str(whole.bundle)), load_file(str(resumed.bundle))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_scratch_settings_that_cannot_work_are_refused() -> None:
    assert TRAINING_MODES["scratch"].from_scratch and not TRAINING_MODES["full"].from_scratch
    resolved = TrainConfig(mode="scratch").resolved()
    assert (resolved.probe_epochs, resolved.cached_views, resolved.cache_features) == (0, 0, False)
    assert resolved.lr == pytest.approx(0.1 * 32 / 128) and resolved.optimizer == "sgd"
    assert TrainConfig(mode="scratch", optimizer="adamw").resolved().lr == pytest.approx(1e-3)
    assert TrainConfig(mode="scratch").augmentation.kind == "pad_crop"
    assert TrainConfig(mode="full").augmentation.kind == "resized_crop"
    with pytest.raises(TrainingError, match="no classifier-only stage"):
        TrainConfig(mode="scratch", probe_epochs=5).resolved()


def test_the_pad_crop_view_is_the_inference_view_moved_by_at_most_the_pad() -> None:
    assert (pad_of(32), pad_of(64), pad_of(8)) == (4, 8, 1)
    preprocessing = Preprocessing(resize_size=32, crop_size=32)
    image = shape_image("circle", 1, size=40)
    centre = preprocessing.prepare(image)
    aug = Augmentation(kind="pad_crop", flip=False)
    black = preprocessing.to_array(Image.new("RGB", (32, 32)))[:, 0, 0]
    shifts = set()
    for index in range(30):
        view = random_view(image, preprocessing, aug, view_rng(0, 0, index))
        assert view.shape == centre.shape
        found = [
            (dx, dy)
            for dx in range(-4, 5)
            for dy in range(-4, 5)
            if np.allclose(
                view[:, max(0, dy) : 32 + min(0, dy), max(0, dx) : 32 + min(0, dx)],
                centre[:, max(0, -dy) : 32 + min(0, -dy), max(0, -dx) : 32 + min(0, -dx)],
                atol=1e-5,
            )
        ]
        assert found, f"view {index} is no shifted copy of the inference view"
        _, dy = found[0]
        if dy > 0:  # the rows moved in from outside the photo are the zero padding
            assert np.allclose(view[:, :dy, :], black[:, None, None], atol=1e-5)
        shifts.add(found[0])
    assert len(shifts) > 5


def _report(sizes: dict[str, tuple[int, int]]) -> HealthReport:
    report = HealthReport(root=Path("/photos"), layout="classes", classes=("a",), counts={})
    report.sizes.update({Path(f"/photos/a/{name}"): size for name, size in sizes.items()})
    return report


def test_training_from_scratch_is_suggested_for_small_photos_only() -> None:
    small = suggest_from_scratch(_report({f"{i}.png": (32, 32) for i in range(9)} | {"big.jpg": (640, 480)}))
    assert small is not None and small.mode == "scratch" and small.model == "cifar_resnet20"
    assert small.median_side == 32 and "32×32" in small.reason and small.reason.count(".") == 1
    assert suggest_from_scratch(_report({f"{i}.png": (64, 48) for i in range(3)})) is not None
    assert suggest_from_scratch(_report({f"{i}.jpg": (72, 72) for i in range(3)})) is None
    assert suggest_from_scratch(_report({})) is None


# --- the command line ---------------------------------------------------------------------------


def test_finetune_from_scratch_writes_a_bundle_that_evaluate_reads(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scratch.safetensors"
    argv = ["finetune", str(small), "--from-scratch", "--epochs", "2", "--batch-size", "8"]
    assert run_cli([*argv, "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Training cifar_resnet20 from scratch (scratch mode, sgd, lr 0.00625" in printed
    assert out.is_file()
    report = tmp_path / "report"
    assert (
        run_cli(["evaluate", str(small), "--model", str(out), "--device", "cpu", "--out-dir", str(report)])
        == 0
    )
    assert json.loads((report / "report.json").read_text())["accuracy"] is not None


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--mode", "head"], "leave out --mode head"),
        (["--model", "resnet18"], "made for large photos"),
        (["--weights", "some.safetensors"], "leave out --weights"),
        (["--probe-epochs", "3"], "no classifier-only stage"),
        (["--views", "2"], "no classifier-only stage"),
    ],
)
@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_from_scratch_with_an_unsuitable_option_is_one_sentence_and_writes_nothing(
    extra: list[str], words: str, check: bool, small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models"
    out.mkdir()
    argv = ["finetune", str(small), "--from-scratch", *extra, "--out", str(out / "m.safetensors")]
    code = run_cli([*argv, "--check"] if check else argv)
    error = capsys.readouterr().err.strip()
    assert code != 0
    assert words in error and len(error.splitlines()) == 1
    assert list(out.iterdir()) == []


def test_a_reference_names_the_untrained_network_and_a_weights_file_is_refused(tmp_path: Path) -> None:
    from resnet_gui import cli_training
    from resnet_gui.core.training.scratch import (
        DEFAULT_SCRATCH_MODEL,
        FromScratchError,
        untrained_from_reference,
    )

    assert cli_training.DEFAULT_SCRATCH_MODEL == DEFAULT_SCRATCH_MODEL  # the CLI's torch-free copy
    assert untrained_from_reference(None).architecture == DEFAULT_SCRATCH_MODEL
    named = untrained_from_reference("cifar_plain20:AKAMASTER_CIFAR10", seed=3)
    assert named.architecture == "cifar_plain20" and named.weights_description.endswith("seed 3)")
    assert untrained_from_reference(named).architecture == "cifar_plain20"
    with pytest.raises(FromScratchError, match="not the weights file"):
        untrained_from_reference(str(tmp_path / "mine.safetensors"))
