"""Fine-tuning under hostile conditions: a loss that becomes NaN (a damaged feature cache, a
learning rate that diverges, NaN weights), a full disk while a checkpoint or the bundle is
written, and file and class names that are not UTF-8. Every case is one line of a table.

What must hold in each: the run stops with one sentence (a typed error), no bundle of a broken
run is saved, and no partial file is left behind.
"""

from __future__ import annotations

import copy
import errno
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch
from PIL import Image

from resnet_gui.core.errors import NonFiniteWeightsError, OutputError, ResNetGuiError, TrainingDivergedError
from resnet_gui.core.models import load_model
from resnet_gui.core.training import (
    FeatureCache,
    Progress,
    StepMetrics,
    TrainConfig,
    TrainResult,
    check_health,
    checkpoint_path,
    make_split,
    read_bundle_info,
    read_checkpoint_info,
    scan_dataset,
    sidecar_path,
    train,
)
from resnet_gui.core.training.split import Split

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# On the CPU, so that runs compare exactly (a recovered or resumed run with the clean one).
CONFIG = TrainConfig(mode="head", epochs=2, batch_size=8, workers=0, device="cpu")


def save_image(path: str | bytes, colour: int, seed: int) -> None:
    """A noisy image whose dominant channel is its class: learnable by the tiny model."""
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 90, (72, 72, 3), dtype=np.uint8)
    array[..., colour] += 150
    Image.fromarray(array).save(os.fsdecode(path), format="PNG")


def make_dataset(root: Path, classes: tuple[bytes, ...] = (b"red", b"green"), per_class: int = 8) -> Path:
    """``root/<class>/<n>.png``; class and file names are bytes, so they may be any the OS allows."""
    for colour, name in enumerate(classes):
        folder = os.path.join(os.fsencode(root), name)
        os.makedirs(folder)
        for index in range(per_class):
            save_image(os.path.join(folder, b"%d.png" % index), colour, 1000 * colour + index)
    return root


@dataclass
class Cached:
    """A dataset, its split, a feature cache made by one clean run, and that run's classifier."""

    root: Path
    split: Split
    cache_dir: Path
    fc: torch.Tensor


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory, tiny_weights_file: Path) -> Cached:
    base = tmp_path_factory.mktemp("cached")
    root = make_dataset(base / "data")
    split = make_split(scan_dataset(root), val_fraction=0.25)
    cache_dir = base / "cache"
    result = run(tiny_weights_file, split, base / "clean", feature_cache=FeatureCache(cache_dir))
    assert result.status == "finished" and len(list(cache_dir.iterdir())) == 2
    return Cached(root, split, cache_dir, weights(result.bundle)["fc.weight"])


def run(model: Any, split: Split, out: Path, config: TrainConfig = CONFIG, **options: Any) -> TrainResult:
    events = list(train(model if not isinstance(model, Path) else str(model), split, out, config, **options))
    assert isinstance(events[-1], TrainResult)
    return events[-1]


def weights(bundle: Path | None) -> dict[str, torch.Tensor]:
    assert bundle is not None
    return safetensors.torch.load_file(str(bundle))


def cache_file(cache_dir: Path, rows: int) -> Path:
    """The cache entry of ``rows`` images (the train and val entries differ in length)."""
    found = [
        p
        for p in cache_dir.glob("features-*.safetensors")
        if len(safetensors.torch.load_file(p)["features"]) == rows
    ]
    assert len(found) == 1
    return found[0]


def poison(path: Path, value: float) -> None:
    tensors = safetensors.torch.load_file(path)
    tensors["features"].view(-1)[::7] = value
    safetensors.torch.save_file(tensors, str(path))


def leftovers(folder: Path) -> list[str]:
    """Temporary files a failed write left behind."""
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".partial"))


def assert_one_sentence(error: BaseException) -> str:
    text = str(error)
    assert isinstance(error, ResNetGuiError) and text.endswith(".") and "\n" not in text, text
    return text


# --- non-finite losses -------------------------------------------------------------------------


class PoisonedCache(FeatureCache):
    """A cache whose entries (of ``rows`` images, or all) come back holding NaN: damage that got
    past the cache's own check, e.g. memory corrupted after it was read."""

    def __init__(self, directory: Path, rows: int | None = None) -> None:
        super().__init__(directory)
        self.rows = rows

    def get(self, key: str) -> torch.Tensor | None:
        hit = super().get(key)
        if hit is not None and self.rows in (None, len(hit)):
            hit = hit.clone()
            hit.view(-1)[::5] = math.nan
        return hit


def _diverging_lr(case: Cached, tmp: Path, tiny: Path) -> dict[str, Any]:
    return {"model": tiny, "config": replace(CONFIG, lr=1e38)}


def _nan_weights(case: Cached, tmp: Path, tiny: Path) -> dict[str, Any]:
    loaded = load_model(weights_file=tiny)
    damaged = replace(loaded, model=copy.deepcopy(loaded.model))
    with torch.no_grad():
        damaged.model.layer4[1].conv2.weight[0, 0, 0, 0] = math.nan
    return {"model": damaged}


def _huge_train_features(case: Cached, tmp: Path, tiny: Path) -> dict[str, Any]:
    """Huge but finite cached values (a flipped exponent bit): they pass the NaN check, then diverge."""
    cache_dir = shutil.copytree(case.cache_dir, tmp / "cache")
    poison(cache_file(cache_dir, len(case.split.train)), 3e38)
    return {"model": tiny, "feature_cache": FeatureCache(cache_dir)}


def _nan_from_cache(part: str | None) -> Callable[[Cached, Path, Path], dict[str, Any]]:
    def setup(case: Cached, tmp: Path, tiny: Path) -> dict[str, Any]:
        rows = None if part is None else len(getattr(case.split, part))
        return {
            "model": tiny,
            "feature_cache": PoisonedCache(shutil.copytree(case.cache_dir, tmp / "cache"), rows),
        }

    return setup


NON_FINITE_RUNS = [
    pytest.param(
        _diverging_lr, TrainingDivergedError, ("training loss", "lower learning rate"), id="lr-1e38"
    ),
    pytest.param(_nan_weights, NonFiniteWeightsError, ("NaN or infinite",), id="nan-weights-in-memory"),
    pytest.param(_huge_train_features, TrainingDivergedError, ("training loss", "cache"), id="huge-cached"),
    pytest.param(
        _nan_from_cache(None), TrainingDivergedError, ("training loss", "cache was damaged"), id="nan"
    ),
    pytest.param(_nan_from_cache("val"), TrainingDivergedError, ("validation loss", "removed"), id="nan-val"),
]


@pytest.mark.parametrize(("setup", "error", "words"), NON_FINITE_RUNS)
def test_non_finite_runs_stop_and_save_nothing(
    cached: Cached,
    tiny_weights_file: Path,
    tmp_path: Path,
    setup: Callable,
    error: type,
    words: tuple[str, ...],
) -> None:
    options = setup(cached, tmp_path, tiny_weights_file)
    model, config = options.pop("model"), options.pop("config", CONFIG)
    out = tmp_path / "out" / "model.safetensors"
    with pytest.raises(error) as caught:
        run(model, cached.split, out, config, **options)
    text = assert_one_sentence(caught.value)
    assert all(word in text for word in words), text
    assert not out.exists() and not sidecar_path(out).exists()
    cache = options.get("feature_cache")
    if cache is not None:  # a cache that fed a diverged run is never used again
        assert list(Path(cache.directory).glob("features-*")) == []


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("part", ["train", "val"])
def test_non_finite_cache_entry_is_recomputed(
    cached: Cached, tiny_weights_file: Path, tmp_path: Path, value: float, part: str
) -> None:
    cache_dir = shutil.copytree(cached.cache_dir, tmp_path / "cache")
    rows = len(getattr(cached.split, part))
    poison(cache_file(cache_dir, rows), value)
    events = list(
        train(
            str(tiny_weights_file),
            cached.split,
            tmp_path / "m",
            CONFIG,
            feature_cache=FeatureCache(cache_dir),
        )
    )
    phases = {event.phase for event in events if isinstance(event, Progress)}
    assert f"features ({part})" in phases  # dropped and recomputed, the other entry reused
    assert ("features (val)" in phases) == (part == "val")
    result = events[-1]
    assert isinstance(result, TrainResult) and result.status == "finished"
    assert torch.equal(weights(result.bundle)["fc.weight"], cached.fc)  # as good as the clean run
    assert bool(torch.isfinite(safetensors.torch.load_file(cache_file(cache_dir, rows))["features"]).all())


def test_feature_cache_never_stores_non_finite_values(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    cache.put("bad", torch.tensor([[1.0, math.nan]]))
    cache.put("good", torch.tensor([[1.0, 2.0]]))
    assert cache.get("bad") is None and FeatureCache(tmp_path / "cache").get("bad") is None
    assert torch.equal(FeatureCache(tmp_path / "cache").get("good"), torch.tensor([[1.0, 2.0]]))


# --- a full disk -------------------------------------------------------------------------------


def _os_error(number: int) -> Callable[[], BaseException]:
    return lambda: OSError(number, os.strerror(number))


def _rust_error(number: int) -> Callable[[], BaseException]:
    """What safetensors itself raises when the disk refuses a write."""
    return lambda: safetensors.SafetensorError(
        f"Error while serializing: I/O error: {os.strerror(number)} (os error {number})"
    )


FULL = _os_error(errno.ENOSPC)
KEPT = "previous checkpoint is kept"

# (what fails, on which of its writes, the error, words of the message, epochs the checkpoint keeps)
FULL_DISK = [
    pytest.param("checkpoint", 1, FULL, ("disk is full", "no checkpoint was kept"), None, id="ckpt-1"),
    pytest.param("checkpoint", 2, FULL, ("disk is full", KEPT, "--resume"), 1, id="ckpt-2"),
    pytest.param(
        "checkpoint", 2, _rust_error(errno.EFBIG), ("larger than the system", KEPT), 1, id="ckpt-efbig"
    ),
    pytest.param(
        "checkpoint", 1, _os_error(errno.EDQUOT), ("quota is used up", "run again"), None, id="quota"
    ),
    pytest.param("bundle", 1, FULL, ("cannot be saved", "disk is full", "--resume"), 2, id="bundle"),
    pytest.param(
        "bundle", 1, _rust_error(errno.ENOSPC), ("cannot be saved", "disk is full"), 2, id="bundle-rust"
    ),
    pytest.param("sidecar", 1, FULL, ("cannot be saved", "disk is full"), 2, id="sidecar"),
]


def _fail_writes(
    monkeypatch: pytest.MonkeyPatch, target: str, nth: int, error: Callable[[], BaseException]
) -> None:
    """Make the ``nth`` write of ``target`` write half its bytes, then fail as a full disk does."""
    calls = [0]

    def aimed(name: str) -> bool:
        if not name.endswith(".partial"):
            return False
        if target == "sidecar":
            return ".json." in name
        return ("checkpoint" in name) == (target == "checkpoint") and ".json." not in name

    def half_then_fail(path: Path, write: Callable[[], Any]) -> None:
        write()
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.truncate(size // 2)
        raise error()

    real_save = safetensors.torch.save_file
    real_write_bytes = Path.write_bytes

    def save_file(tensors: Any, filename: str, metadata: Any = None) -> None:
        if target != "sidecar" and aimed(Path(filename).name):
            calls[0] += 1
            if calls[0] == nth:
                return half_then_fail(Path(filename), lambda: real_save(tensors, filename, metadata=metadata))
        return real_save(tensors, filename, metadata=metadata)

    def write_bytes(self: Path, data: bytes) -> int:
        if target == "sidecar" and aimed(self.name):
            calls[0] += 1
            if calls[0] == nth:
                half_then_fail(self, lambda: real_write_bytes(self, data))
        return real_write_bytes(self, data)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    monkeypatch.setattr(Path, "write_bytes", write_bytes)


@pytest.mark.parametrize(("target", "nth", "error", "words", "kept_epochs"), FULL_DISK)
def test_full_disk_stops_with_one_sentence_and_no_stray_file(
    cached: Cached,
    tiny_weights_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    nth: int,
    error: Callable[[], BaseException],
    words: tuple[str, ...],
    kept_epochs: int | None,
) -> None:
    out = tmp_path / "out" / "model.safetensors"
    _fail_writes(monkeypatch, target, nth, error)
    with pytest.raises(OutputError) as caught:
        run(tiny_weights_file, cached.split, out)
    text = assert_one_sentence(caught.value)
    assert all(word in text for word in words), text
    assert leftovers(tmp_path) == [] and not out.exists() and not sidecar_path(out).exists()
    info = read_checkpoint_info(out)
    assert (info and info.epochs_done) == kept_epochs
    monkeypatch.undo()  # space freed: the resume the message suggests finishes the run
    if kept_epochs is not None:
        result = run(tiny_weights_file, cached.split, out, resume=True)
        assert result.status == "finished" and torch.equal(weights(result.bundle)["fc.weight"], cached.fc)
        assert not checkpoint_path(out).exists()


_FSIZE_CHILD = """
import json, resource, signal, sys
from pathlib import Path
import torch
from resnet_gui.core.preprocessing import Preprocessing
from resnet_gui.core.training.bundle import write_bundle
from resnet_gui.core.training.checkpoint import RunState, write_checkpoint

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
folder = Path(sys.argv[1])
big = {"w": torch.zeros(100_000)}
messages = []
for write in (
    lambda: write_checkpoint(folder / "m.checkpoint.safetensors", big, RunState(), None, {}),
    lambda: write_bundle(folder / "m.safetensors", big, architecture="resnet18", name="m", categories=["a"],
                         preprocessing=Preprocessing(), training={}, split={}, metrics={}, dataset_fingerprint=""),
):
    try:
        write()
    except Exception as error:
        messages.append([type(error).__name__, getattr(error, "exit_code", None), str(error)])
print(json.dumps(messages))
"""


def test_file_size_limit_is_a_typed_error_in_a_real_process(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse the write (EFBIG), as a full disk would (ENOSPC)."""
    done = subprocess.run(
        [sys.executable, "-c", _FSIZE_CHILD, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    messages = json.loads(done.stdout)
    assert [name for name, _, _ in messages] == ["SaveError", "SaveError"]
    assert all(
        code == OutputError.exit_code and "larger than the system allows" in text
        for _, code, text in messages
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no partial file, no half a pair


# --- names that are not UTF-8 ------------------------------------------------------------------


def test_non_utf8_names_train_resume_and_load(tiny_weights_file: Path, tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "data", classes=(b"caf\xe9", b"\xffgreen"))
    raw = os.path.join(os.fsencode(root), b"caf\xe9", b"ph\xe9.png")
    save_image(raw, 0, 77)
    dataset = scan_dataset(root)
    report = check_health(dataset)
    assert report.unreadable == [] and json.loads(report.to_json())["classes"] == list(dataset.classes)
    split = make_split(dataset, val_fraction=0.25, exclude=report.suggested_exclude())
    assert Path(os.fsdecode(raw)) in {s.path for s in (*split.train, *split.val)}
    out = tmp_path / "out" / "model"
    steps = [0]
    for event in train(str(tiny_weights_file), split, out, CONFIG, cancel=lambda: steps[0] >= 3):
        steps[0] += isinstance(event, StepMetrics)
    assert read_checkpoint_info(out) is not None  # the checkpoint's header holds the names
    result = run(tiny_weights_file, split, out, resume=True)
    assert result.status == "finished"
    assert load_model(str(result.bundle)).categories == dataset.classes
    sidecar = json.loads(sidecar_path(result.bundle).read_text(encoding="utf-8"))
    assert sidecar["categories"] == list(dataset.classes)
    again = Split.from_dict(read_bundle_info(result.bundle).split, root)
    assert again.missing_files() == [] and len(again.train) == len(split.train)
