"""Fixtures of the hostile-input corpus: a small world of photos, a model and a labelled folder,
all under the test's own temporary folder, plus tools to tamper with a model file."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image


@dataclass
class World:
    """Paths a hostile case may name in its command line as ``{photo}``, ``{model}``, …"""

    root: Path
    photos: Path
    photo: Path
    model: Path
    other_model: Path
    dataset: Path
    data_dir: Path

    def placeholders(self) -> dict[str, str]:
        return {
            "tmp": str(self.root),
            "photos": str(self.photos),
            "photo": str(self.photo),
            "model": str(self.model),
            "other_model": str(self.other_model),
            "dataset": str(self.dataset),
            "data_dir": str(self.data_dir),
        }


def write_photo(path: Path, size: tuple[int, int] = (96, 80), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture()
def world(tmp_path: Path, tiny_weights_file: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """Three photos, two copies of the tiny 3-class model, a 3-class folder of 12 photos; an empty
    app data folder and torch cache (nothing of the user's real folders is touched)."""
    data_dir = tmp_path / "appdata"
    monkeypatch.setenv("RESNET_GUI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    photos = tmp_path / "photos"
    for index in range(3):
        write_photo(photos / f"image{index}.png", (80 + 30 * index, 70), seed=index)
    model = tmp_path / "model.safetensors"
    shutil.copyfile(tiny_weights_file, model)
    other_model = tmp_path / "other.safetensors"
    shutil.copyfile(tiny_weights_file, other_model)
    dataset = tmp_path / "dataset"
    for label, name in enumerate(("ant", "bee", "cat")):
        for index in range(4):
            write_photo(dataset / name / f"{name}{index}.png", (72, 72), seed=10 * label + index)
    return World(tmp_path, photos, photos / "image0.png", model, other_model, dataset, data_dir)


def tampered_model(source: Path, destination: Path, *, tensors: Any = None, **metadata: str | None) -> Path:
    """A copy of the bundle ``source`` with metadata fields replaced (None: removed) or its tensors changed."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as handle:
        header = dict(handle.metadata() or {})
        state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
    for key, value in metadata.items():
        if value is None:
            header.pop(key, None)
        else:
            header[key] = value
    if tensors is not None:
        state = tensors(state)
    save_file(state, str(destination), metadata=header)
    return destination


def preprocessing_with(**changes: Any) -> str:
    """The tiny model's preprocessing JSON with some fields changed (a field set to ... is removed)."""
    data: dict[str, Any] = {
        "resize_size": 72,
        "crop_size": 64,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "interpolation": "bilinear",
        "channel_order": "RGB",
    }
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    return json.dumps(data)
