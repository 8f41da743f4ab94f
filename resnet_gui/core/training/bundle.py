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
import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import torch

from resnet_gui.core.atomic import atomic_path, output_reason
from resnet_gui.core.checkpoints import write_weights_file
from resnet_gui.core.errors import OutputError, WeightsError
from resnet_gui.core.formats import BUNDLE_FORMAT
from resnet_gui.core.preprocessing import Preprocessing

__all__ = [
    "BUNDLE_FORMAT",
    "WRITE_ERRORS",
    "BundleInfo",
    "SaveError",
    "checkpoint_path",
    "normalise_bundle_path",
    "read_bundle_info",
    "sidecar_path",
    "versions",
    "write_bundle",
    "write_failure_reason",
]


_JSON_FIELDS = ("categories", "preprocessing", "training", "split", "metrics", "versions")
_RUST_OS_ERROR = re.compile(r"os error (\d+)")


class SaveError(OutputError):
    """A bundle or checkpoint could not be written (full disk, file too large, permissions).

    Nothing partial is left: the files are written atomically, so the previous version (if any)
    stays. ``reason`` is the short cause, for a caller that words its own sentence.
    """

    def __init__(self, path: Path, reason: str, sentence: str | None = None) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(sentence or f"Cannot write '{path}': {reason}; nothing was written.")


def write_failure_reason(error: BaseException) -> str | None:
    """The short cause of a failed write, whatever raised it; ``None`` when it is no OS failure.

    An ``OSError``; the ``OutputError`` or ``WeightsError`` made of one (the OS error is their
    cause or context); or safetensors' own error, which carries the OS error only in its text
    (``I/O error: No space left on device (os error 28)``). Worded as :func:`output_reason` does.
    """
    for candidate in (error, error.__cause__, error.__context__):
        if isinstance(candidate, OSError):
            return output_reason(candidate)
    match = _RUST_OS_ERROR.search(str(error))
    if match:
        number = int(match.group(1))
        return output_reason(OSError(number, os.strerror(number)))
    if isinstance(error, OutputError):
        return None  # already a sentence for the user (e.g. the destination is a folder)
    return str(error).rstrip(".") or type(error).__name__


WRITE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    OutputError,
    WeightsError,
    safetensors.SafetensorError,
)
"""What writing a weights file raises when the disk refuses it (safetensors has its own type)."""


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
    """Write the bundle and its sidecar atomically, as a pair; return the metadata written.

    Both go to temporary files first and are renamed into place only once both are complete,
    so a full disk leaves the previous bundle and sidecar (or nothing), never half a pair.
    Raises :class:`SaveError`.
    """
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
    sidecar = json.dumps(readable(metadata), indent=2) + "\n"
    try:
        with atomic_path(path) as bundle_tmp, atomic_path(sidecar_path(path)) as sidecar_tmp:
            write_weights_file(bundle_tmp, state_dict, metadata)
            sidecar_tmp.write_bytes(sidecar.encode("utf-8"))
    except WRITE_ERRORS as err:
        reason = write_failure_reason(err)
        if reason is None:
            raise
        raise SaveError(path, reason) from None
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
