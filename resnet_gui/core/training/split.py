"""Train/validation split: stratified, seeded, and stored with the model so a run can be redone.

An existing ``train/``/``val/`` folder split is kept as it is. Otherwise each class is shuffled
on its own with a generator seeded by ``(seed, class name)``, so adding images to one class
does not reshuffle the others, and the same seed gives the same split on any machine.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnet_gui.core.training.dataset import Dataset, DatasetError, Sample

__all__ = ["Split", "make_split"]


@dataclass(frozen=True)
class Split:
    """Which images train, which validate, which test. ``method`` is ``folders`` or ``stratified``."""

    root: Path
    classes: tuple[str, ...]
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    test: tuple[Sample, ...] = ()
    method: str = "stratified"
    seed: int = 0
    val_fraction: float = 0.0
    excluded: tuple[Path, ...] = ()

    def counts(self, part: str) -> dict[str, int]:
        samples = getattr(self, part)
        return {name: sum(1 for s in samples if s.label == index) for index, name in enumerate(self.classes)}

    def _relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def to_dict(self) -> dict[str, Any]:
        """File lists relative to the dataset root (portable: the folder may move)."""

        def listing(samples: Iterable[Sample]) -> list[list[Any]]:
            return [[self._relative(s.path), s.label] for s in samples]

        return {
            "method": self.method,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "classes": list(self.classes),
            "train": listing(self.train),
            "val": listing(self.val),
            "test": listing(self.test),
            "excluded": [self._relative(p) for p in self.excluded],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any], root: str | Path) -> Split:
        """The split stored in a bundle or checkpoint, its paths resolved against ``root``."""
        root = Path(root)

        def samples(key: str, split: str) -> tuple[Sample, ...]:
            return tuple(Sample(root / rel, int(label), split) for rel, label in data.get(key, []))

        return cls(
            root=root,
            classes=tuple(data["classes"]),
            train=samples("train", "train"),
            val=samples("val", "val"),
            test=samples("test", "test"),
            method=str(data.get("method", "stratified")),
            seed=int(data.get("seed", 0)),
            val_fraction=float(data.get("val_fraction", 0.0)),
            excluded=tuple(root / rel for rel in data.get("excluded", [])),
        )

    def with_training_photos(self, photos: Iterable[tuple[Path, str]]) -> Split:
        """This split with ``(path, class name)`` photos added to the training part.

        The validation and test parts stay as they were (a retrained model is judged on the same
        photos); a class name the split does not know becomes a new class at the end; a photo the
        split already holds is not added twice.
        """
        classes = list(self.classes)
        known = {s.path for s in (*self.train, *self.val, *self.test)}
        added: list[Sample] = []
        for path, name in photos:
            path = Path(path)
            if path in known:
                continue
            if name not in classes:
                classes.append(name)
            known.add(path)
            added.append(Sample(path, classes.index(name), "train"))
        return dataclasses.replace(self, classes=tuple(classes), train=(*self.train, *added))

    def missing_files(self) -> list[Path]:
        return [s.path for s in (*self.train, *self.val, *self.test) if not s.path.is_file()]


def _class_seed(seed: int, name: str) -> list[int]:
    """Per-class generator seed; a folder name that is not UTF-8 counts by its raw bytes."""
    return [seed & 0xFFFFFFFF, zlib.crc32(name.encode("utf-8", "surrogateescape"))]


def make_split(
    dataset: Dataset,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    exclude: Collection[Path] = (),
) -> Split:
    """Split ``dataset`` without the ``exclude`` files (e.g. the health report's suggestions).

    A folder split (``train/``+``val/``) is kept; ``val_fraction`` then only applies when there is
    no ``val/`` folder, to carve validation images out of ``train/`` (``test/`` is kept apart).
    Each class with at least two images gets at least one validation image when
    ``val_fraction > 0``, and always keeps at least one training image.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"The validation fraction must be in [0, 1), not {val_fraction}.")
    excluded = {Path(p) for p in exclude}
    usable = [s for s in dataset.samples if s.path not in excluded]
    dropped = tuple(s.path for s in dataset.samples if s.path in excluded)
    test = tuple(s for s in usable if s.split == "test")
    if dataset.layout == "splits" and any(s.split == "val" for s in usable):
        split = Split(
            dataset.root,
            dataset.classes,
            tuple(s for s in usable if s.split == "train"),
            tuple(s for s in usable if s.split == "val"),
            test,
            method="folders",
            seed=seed,
            val_fraction=0.0,
            excluded=dropped,
        )
    else:
        pool = [s for s in usable if s.split in ("", "train")]
        train: list[Sample] = []
        val: list[Sample] = []
        for label, name in enumerate(dataset.classes):
            members = sorted((s for s in pool if s.label == label), key=lambda s: dataset.relative(s.path))
            n_val = 0
            if val_fraction > 0 and len(members) >= 2:
                n_val = min(len(members) - 1, max(1, math.floor(len(members) * val_fraction + 0.5)))
            order = np.random.default_rng(_class_seed(seed, name)).permutation(len(members))
            chosen = set(order[:n_val].tolist())
            for index, sample in enumerate(members):
                (val if index in chosen else train).append(sample)
        split = Split(
            dataset.root,
            dataset.classes,
            tuple(train),
            tuple(val),
            test,
            method="stratified",
            seed=seed,
            val_fraction=val_fraction,
            excluded=dropped,
        )
    empty = [name for name, count in split.counts("train").items() if count == 0]
    if empty:
        raise DatasetError(f"No training images left for: {', '.join(empty)}.")
    return split
