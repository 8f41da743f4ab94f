"""Which real photos an export is checked and calibrated on, prepared as the model is fed.

* Parity check: ``--check-images DIR``; else a fine-tuned bundle's own validation photos (found in
  the dataset folder it was trained on, given as ``data_root``: the bundle records its split
  relative to that folder, not where the folder is); else the app's sample photos.
* INT8 calibration: ``--calibrate DIR``; else the bundle's training photos (same ``data_root``);
  else :class:`CalibrationError`: calibrating on photos unlike the user's would make a worse model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_gui.core.errors import Cancelled, ImageLoadError
from resnet_gui.core.export.errors import CalibrationError, ExportError
from resnet_gui.core.text import printable_path

if TYPE_CHECKING:
    from resnet_gui.core.models import LoadedModel
    from resnet_gui.core.preprocessing import Preprocessing

__all__ = [
    "MAX_CALIBRATION_PHOTOS",
    "MAX_CHECK_PHOTOS",
    "SAMPLES_DIR",
    "PhotoSet",
    "calibration_photos",
    "check_photos",
    "prepare_photos",
]

SAMPLES_DIR = Path(__file__).resolve().parents[3] / "assets" / "samples"
#: At most this many photos are checked (spread evenly over the folder): 200 ResNet-50 passes take
#: about 30 s per runtime on a 2-core CPU and settle agreement to half a percent.
MAX_CHECK_PHOTOS = 200
#: At most this many photos calibrate INT8 (spread evenly): onnxruntime's MinMax ranges settle long
#: before; each photo costs one pass of the augmented graph.
MAX_CALIBRATION_PHOTOS = 64
_WORDS = {"val": "validation", "train": "training"}


@dataclass(frozen=True)
class PhotoSet:
    """Photos with their class index when known (a bundle's split), and where they come from, in words."""

    paths: tuple[Path, ...]
    labels: tuple[int | None, ...]
    description: str

    def __len__(self) -> int:
        return len(self.paths)


def _spread(items: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` items, evenly spread (every class of a sorted folder keeps its share)."""
    if len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(index * step)] for index in range(limit)]


def _folder(folder: Path, limit: int, what: str) -> PhotoSet:
    from resnet_gui.core.batch.scan import BatchInputError, scan_folder

    try:
        found = scan_folder(folder, recursive=True)
    except BatchInputError as error:
        raise ExportError(f"The {what} folder {error}") from None
    chosen = _spread(found, limit)
    return PhotoSet(
        tuple(chosen),
        (None,) * len(chosen),
        f"{len(chosen)} photos of {printable_path(folder)}"
        + (f" (of {len(found)})" if len(found) > len(chosen) else ""),
    )


def _split_of(loaded: LoadedModel) -> dict[str, Any] | None:
    split = loaded.metadata.get("split")
    if isinstance(split, str):
        try:
            split = json.loads(split)
        except ValueError:
            return None
    return split if isinstance(split, dict) else None


def _bundle_part(loaded: LoadedModel, data_root: Path, part: str, limit: int) -> PhotoSet | None:
    """The bundle's ``part`` ("val"/"train") photos present under ``data_root``; None if it has none."""
    split = _split_of(loaded)
    if split is None:
        return None
    listed = split.get(part)
    entries = [
        (str(entry[0]), entry[1])
        for entry in (listed if isinstance(listed, list) else [])
        # untrusted metadata: a pair of a relative path inside the folder and a class index
        if isinstance(entry, list)
        and len(entry) == 2
        and isinstance(entry[1], int)
        and not isinstance(entry[1], bool)
    ]
    entries = [
        (rel, label) for rel, label in entries if not Path(rel).is_absolute() and ".." not in Path(rel).parts
    ]
    present = [(data_root / rel, label) for rel, label in entries if (data_root / rel).is_file()]
    if not entries:
        return None
    if not present:
        raise ExportError(
            f"None of the model's {len(entries)} {_WORDS[part]} photos are in "
            f"'{printable_path(data_root)}'; give the folder it was fine-tuned on."
        )
    chosen = _spread(present, limit)
    words = _WORDS[part]
    return PhotoSet(
        tuple(path for path, _ in chosen),
        tuple(label for _, label in chosen),
        f"{len(chosen)} of the model's own {words} photos",
    )


def check_photos(
    loaded: LoadedModel,
    folder: Path | None = None,
    data_root: Path | None = None,
    limit: int = MAX_CHECK_PHOTOS,
) -> PhotoSet:
    """The photos of the parity check (see the module's order)."""
    if folder is not None:
        photos = _folder(Path(folder), limit, "--check-images")
    else:
        bundle = _bundle_part(loaded, Path(data_root), "val", limit) if data_root is not None else None
        photos = bundle or _folder(SAMPLES_DIR, limit, "sample photos")
        if bundle is None:
            photos = PhotoSet(photos.paths, photos.labels, f"the app's {len(photos)} sample photos")
    if not photos.paths:
        raise ExportError(f"There are no photos to check the export on ({photos.description}).")
    return photos


def calibration_photos(
    loaded: LoadedModel,
    folder: Path | None = None,
    data_root: Path | None = None,
    limit: int = MAX_CALIBRATION_PHOTOS,
) -> PhotoSet:
    """The photos INT8 is calibrated on, or :class:`CalibrationError` (one sentence) when there are none."""
    photos = None
    if folder is not None:
        photos = _folder(Path(folder), limit, "--calibrate")
    elif data_root is not None:
        photos = _bundle_part(loaded, Path(data_root), "train", limit)
    if photos is None or not photos.paths:
        where = f" in '{printable_path(folder)}'" if folder is not None else ""
        raise CalibrationError(
            f"INT8 needs calibration photos and there are no calibration photos{where}: give a folder of "
            "photos like the ones the model will see with --calibrate DIR (or, for a fine-tuned model, the "
            "folder it was trained on with --data DIR)."
        )
    return photos


def iter_prepared(
    photos: PhotoSet, preprocessing: Preprocessing, cancel: Callable[[], bool] | None = None
) -> Iterator[tuple[int, np.ndarray | None]]:
    """Each photo's prepared CHW array (``None`` for one that cannot be read), by index."""
    from resnet_gui.core.images import load_image

    for index, path in enumerate(photos.paths):
        if cancel is not None and cancel():
            raise Cancelled("Export cancelled; nothing was written.")
        try:
            image = load_image(path, min_size=preprocessing.resize_size)
        except ImageLoadError:
            yield index, None
            continue
        yield index, preprocessing.prepare(image)


def prepare_photos(
    photos: PhotoSet, preprocessing: Preprocessing, cancel: Callable[[], bool] | None = None
) -> tuple[np.ndarray, PhotoSet]:
    """One NCHW float32 array of the readable photos, and the set of those (unreadable ones dropped)."""
    arrays, kept = [], []
    for index, array in iter_prepared(photos, preprocessing, cancel):
        if array is not None:
            arrays.append(array)
            kept.append(index)
    side = preprocessing.crop_size
    batch = np.stack(arrays) if arrays else np.zeros((0, 3, side, side), np.float32)
    subset = PhotoSet(
        tuple(photos.paths[i] for i in kept), tuple(photos.labels[i] for i in kept), photos.description
    )
    return batch, subset
