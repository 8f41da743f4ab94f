"""A fine-tuned model as one file: weights plus everything needed to use and redo it.

The bundle is a ``.safetensors`` file whose string metadata holds what
:func:`resnet_gui.core.models.load_model` reads (architecture, categories, preprocessing), so
``resnet-gui classify --model BUNDLE`` works with nothing else, plus how it was made (settings,
the exact split, metrics, the dataset fingerprint, versions). A ``.json`` sidecar next to it
repeats the metadata for people. Both are written atomically: an interrupted save leaves the
previous bundle, never half a file.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from resnet_gui.core.atomic import write_text_atomic
from resnet_gui.core.checkpoints import write_weights_file
from resnet_gui.core.errors import WeightsError
from resnet_gui.core.preprocessing import Preprocessing

__all__ = [
    "BUNDLE_FORMAT",
    "BundleInfo",
    "checkpoint_path",
    "normalise_bundle_path",
    "read_bundle_info",
    "sidecar_path",
    "versions",
    "write_bundle",
]

BUNDLE_FORMAT = "resnet-gui-weights/1"
_JSON_FIELDS = ("categories", "preprocessing", "training", "split", "metrics", "versions")


def normalise_bundle_path(path: str | Path) -> Path:
    """``model`` -> ``model.safetensors``; another suffix is refused (the bundle *is* safetensors)."""
    path = Path(path).expanduser()
    if path.suffix.lower() == ".safetensors":
        return path
    if path.suffix == "" or path.name.endswith("."):
        return path.with_name(path.name.rstrip(".") + ".safetensors")
    raise WeightsError(f"A fine-tuned model is saved as .safetensors; '{path.name}' has another suffix.")


def sidecar_path(bundle: Path) -> Path:
    """``ants.safetensors`` -> ``ants.json``: the human-readable copy of the metadata."""
    return bundle.with_suffix(".json")


def checkpoint_path(bundle: Path) -> Path:
    """Where a run writing ``bundle`` keeps its resumable checkpoint."""
    return bundle.with_name(f"{bundle.stem}.checkpoint.safetensors")


def versions() -> dict[str, str]:
    import numpy
    import torchvision

    from resnet_gui import __version__

    return {
        "resnet_gui": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def write_bundle(
    path: Path,
    state_dict: Mapping[str, torch.Tensor],
    *,
    architecture: str,
    name: str,
    categories: tuple[str, ...] | list[str],
    preprocessing: Preprocessing,
    training: dict[str, Any],
    split: dict[str, Any],
    metrics: dict[str, Any],
    dataset_fingerprint: str,
) -> dict[str, str]:
    """Write the bundle and its sidecar atomically; return the metadata written."""
    metadata = {
        "format": BUNDLE_FORMAT,
        "architecture": architecture,
        "name": name,
        "categories": json.dumps(list(categories)),
        "preprocessing": json.dumps(preprocessing.to_dict()),
        "num_classes": str(len(categories)),
        "training": json.dumps(training),
        "split": json.dumps(split, separators=(",", ":")),
        "metrics": json.dumps(metrics),
        "dataset_fingerprint": dataset_fingerprint,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": json.dumps(versions()),
    }
    write_weights_file(path, state_dict, metadata)
    write_text_atomic(sidecar_path(path), json.dumps(readable(metadata), indent=2) + "\n")
    return metadata


def readable(metadata: Mapping[str, str]) -> dict[str, Any]:
    """The metadata with its JSON-valued fields decoded (what the sidecar holds)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in _JSON_FIELDS:
            try:
                out[key] = json.loads(value)
                continue
            except ValueError:
                pass
        out[key] = value
    return out


@dataclass(frozen=True)
class BundleInfo:
    """A bundle's metadata, decoded, without loading its tensors."""

    path: Path
    metadata: dict[str, Any]

    @property
    def categories(self) -> list[str]:
        return list(self.metadata.get("categories", []))

    @property
    def training(self) -> dict[str, Any]:
        return dict(self.metadata.get("training", {}))

    @property
    def split(self) -> dict[str, Any]:
        return dict(self.metadata.get("split", {}))

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.metadata.get("metrics", {}))


def read_bundle_info(path: str | Path) -> BundleInfo:
    """Read only the header of a bundle (fast, whatever the model size)."""
    import safetensors

    path = Path(path)
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
    except (OSError, safetensors.SafetensorError, ValueError) as err:
        raise WeightsError(f"'{path}' is not a readable bundle: {err}.") from None
    return BundleInfo(path, readable(metadata))
