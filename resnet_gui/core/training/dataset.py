"""Find the labelled images of a training folder.

Two layouts are recognised, the two that image datasets are usually shipped in:

* ``ROOT/<class>/…`` — one sub-folder per class; the split is made by :mod:`.split`.
* ``ROOT/train/<class>/…`` and ``ROOT/val/<class>/…`` (``valid``/``validation`` also accepted),
  optionally ``ROOT/test/<class>/…`` — an existing split, kept as it is so results compare with
  published ones.

Images inside a class folder are found recursively (hidden files skipped) by suffix, in sorted
order, so two scans of the same folder (a run and its resume, the CLI and the wizard) agree.
A ``_left_out/`` folder (where the review of the training data puts the photos the user leaves
out) is never a class, at the root or inside a split folder. Nothing is decoded here: that is
:mod:`.health`'s job.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from resnet_gui.core.corrections import LEFT_OUT_FOLDER
from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.images import images_under, is_image_name
from resnet_gui.core.userfiles import file_digest

__all__ = [
    "Dataset",
    "DatasetError",
    "Sample",
    "file_digest",
    "fingerprint",
    "scan_dataset",
]

SPLIT_FOLDERS: dict[str, str] = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
"""Folder names of an existing split, and the split each one is."""


class DatasetError(ResNetGuiError):
    """A training or evaluation folder that cannot be used as it is (missing, no classes…)."""

    exit_code = 2


@dataclass(frozen=True)
class Sample:
    """One labelled image. ``split`` is the folder split (train/val/test) or ``""`` when there is none."""

    path: Path
    label: int
    split: str = ""


@dataclass(frozen=True)
class Dataset:
    """The labelled images of a folder. ``layout`` is ``"classes"`` or ``"splits"``."""

    root: Path
    classes: tuple[str, ...]
    samples: tuple[Sample, ...]
    layout: str
    ignored: tuple[Path, ...] = ()
    """Image files outside any class folder (not used; the health report lists them)."""
    empty: tuple[Path, ...] = ()
    """Class folders holding no image file: no class is made of them (the health report says so)."""

    @property
    def splits(self) -> tuple[str, ...]:
        """The folder splits present, in train/val/test order (empty for the class layout)."""
        present = {sample.split for sample in self.samples}
        return tuple(name for name in ("train", "val", "test") if name in present)

    def relative(self, path: Path) -> str:
        """``path`` relative to the root, with ``/``: how files are named in bundles and reports."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def of_split(self, split: str) -> list[Sample]:
        return [sample for sample in self.samples if sample.split == split]

    def counts(self, samples: Iterable[Sample] | None = None) -> dict[str, int]:
        """Images per class (every class listed, zeros included)."""
        counter = Counter(sample.label for sample in (self.samples if samples is None else samples))
        return {name: counter.get(index, 0) for index, name in enumerate(self.classes)}


def _class_folders(folder: Path) -> list[Path]:
    """The sub-folders that may be classes: not hidden, and not the review's ``_left_out/``
    (photos the user left out of the training, kept in the dataset folder so it can be undone)."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as err:
        raise DatasetError(f"Cannot list '{folder}': {err.strerror or err}.") from None
    return [
        entry
        for entry in entries
        if entry.is_dir() and not entry.name.startswith(".") and entry.name.lower() != LEFT_OUT_FOLDER
    ]


def _loose_images(folder: Path) -> list[Path]:
    return sorted(entry for entry in folder.iterdir() if entry.is_file() and is_image_name(entry.name))


def scan_dataset(root: str | os.PathLike[str]) -> Dataset:
    """Scan ``root`` in either layout. Raises :class:`DatasetError` with what to do when unusable."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"'{root}' {'is not a folder' if root.exists() else 'does not exist'}.")
    folders = _class_folders(root)
    split_folders = {f.name.lower(): f for f in folders if f.name.lower() in SPLIT_FOLDERS}
    if "train" in split_folders:
        return _scan_splits(root, split_folders)
    class_dirs = [(folder.name, folder) for folder in folders]
    per_class = {name: images_under(folder) for name, folder in class_dirs}
    empty = tuple(folder for name, folder in class_dirs if not per_class[name])
    per_class = {name: paths for name, paths in per_class.items() if paths}
    if len(per_class) < 2:
        found = f"found {len(per_class)} class folder with images" if per_class else "found no class folder"
        raise DatasetError(
            f"'{root}' needs one sub-folder per class with at least two classes ({found}), "
            "or train/ and val/ folders each holding the class sub-folders."
        )
    classes = tuple(sorted(per_class))
    samples = tuple(Sample(path, label) for label, name in enumerate(classes) for path in per_class[name])
    return Dataset(root, classes, samples, "classes", tuple(_loose_images(root)), empty)


def _scan_splits(root: Path, split_folders: dict[str, Path]) -> Dataset:
    by_split: dict[str, dict[str, list[Path]]] = {}
    ignored = _loose_images(root)
    empty: list[Path] = []
    for folder_name, folder in sorted(split_folders.items()):
        split = SPLIT_FOLDERS[folder_name]
        if split in by_split:
            raise DatasetError(f"'{root}' has two folders for the {split} split; keep one.")
        by_split[split] = {}
        for class_dir in _class_folders(folder):
            paths = images_under(class_dir)
            if paths:
                by_split[split][class_dir.name] = paths
            else:
                empty.append(class_dir)
        ignored += _loose_images(folder)
    classes = tuple(sorted({name for per_class in by_split.values() for name in per_class}))
    if len(by_split["train"]) < 2:
        raise DatasetError(
            f"'{root / 'train'}' needs one sub-folder per class with images, at least two classes."
        )
    index = {name: label for label, name in enumerate(classes)}
    samples = tuple(
        Sample(path, index[name], split)
        for split in ("train", "val", "test")
        if split in by_split
        for name in classes
        for path in by_split[split].get(name, [])
    )
    return Dataset(root, classes, samples, "splits", tuple(ignored), tuple(empty))


def fingerprint(entries: Iterable[tuple[str, str, str]]) -> str:
    """A short identity of labelled content: ``(relative path, class, content digest)`` triples.

    It changes when an image is added, removed, relabelled or edited, and not when the folder is
    moved, so it keys feature caches and tells a resume that the data is still the same.
    File names that are not UTF-8 (bytes the file system decoded as surrogates) hash as their
    raw bytes; other names hash exactly as before.
    """
    digest = hashlib.sha256()
    for relative, label, content in sorted(entries):
        digest.update(f"{relative}\t{label}\t{content}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:24]
