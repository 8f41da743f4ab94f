"""A dataset health check, as data: what would silently hurt a fine-tuning run.

Every image is hashed and decoded once, before anything is trained, so that a corrupt file,
a thumbnail, a copy of a validation image in the training set (which flatters the validation
score) or a class with three images is shown to the user rather than discovered in a bad
model. The report only *describes*; the user decides what to leave out and passes that set of
paths (``exclude``) to :func:`~resnet_gui.core.training.split.make_split`.
:meth:`HealthReport.suggested_exclude` is the usual choice.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnet_gui.core.errors import ImageLoadError
from resnet_gui.core.images import load_image, original_size
from resnet_gui.core.training.dataset import Dataset, file_digest, fingerprint
from resnet_gui.core.training.events import Cancelled, Progress
from resnet_gui.core.userfiles import UserFileError, os_reason

__all__ = ["DuplicateGroup", "FileIssue", "HealthReport", "check_health", "iter_health"]

TINY_SIDE = 32
"""Images whose shorter side is below this (in pixels) are reported as tiny."""
MIN_IMAGES_PER_CLASS = 5
"""Classes with fewer usable images than this are reported: too few to learn or to validate."""
IMBALANCE_WARNING_RATIO = 3.0
"""A largest/smallest class ratio above this gets a warning (training weights the loss from 1.5)."""


@dataclass(frozen=True)
class FileIssue:
    """One file and what is wrong with it, in words."""

    path: Path
    reason: str


@dataclass(frozen=True)
class DuplicateGroup:
    """Files with identical content. ``splits``/``classes`` are those of each path, in order."""

    digest: str
    paths: tuple[Path, ...]
    splits: tuple[str, ...]
    classes: tuple[str, ...]

    @property
    def crosses_splits(self) -> bool:
        """Copies in train and in val/test: the validation score would be measured on training data."""
        return "train" in self.splits and any(split in ("val", "test") for split in self.splits)

    @property
    def conflicting_labels(self) -> bool:
        """The same image filed under two classes."""
        return len(set(self.classes)) > 1


@dataclass
class HealthReport:
    """What :func:`check_health` found. Paths are absolute; :meth:`to_dict` makes them relative."""

    root: Path
    layout: str
    classes: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    """Usable (decodable) images per split (``"all"`` for the class layout) and class."""
    unreadable: list[FileIssue] = field(default_factory=list)
    tiny: list[FileIssue] = field(default_factory=list)
    duplicates: list[DuplicateGroup] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    empty: list[Path] = field(default_factory=list)
    """Class folders without a single image file: they make no class, and the user is told."""
    fingerprint: str = ""
    sizes: dict[Path, tuple[int, int]] = field(default_factory=dict, repr=False)

    @property
    def leakage(self) -> list[DuplicateGroup]:
        """Duplicate groups with copies both in train and in val or test."""
        return [group for group in self.duplicates if group.crosses_splits]

    @property
    def training_counts(self) -> dict[str, int]:
        """The counts that training sees: the train split, or everything for the class layout."""
        return self.counts.get("train") or self.counts.get("all") or {}

    @property
    def imbalance_ratio(self) -> float:
        """Largest over smallest class among the training counts (inf when a class has none)."""
        values = list(self.training_counts.values())
        if not values:
            return 1.0
        return float("inf") if min(values) == 0 else max(values) / min(values)

    @property
    def small_classes(self) -> list[str]:
        """Classes with fewer than :data:`MIN_IMAGES_PER_CLASS` usable images in all."""
        totals: dict[str, int] = defaultdict(int)
        for per_class in self.counts.values():
            for name, count in per_class.items():
                totals[name] += count
        return [name for name in self.classes if totals[name] < MIN_IMAGES_PER_CLASS]

    def suggested_exclude(self) -> set[Path]:
        """The usual clean-up: unreadable and tiny files, and all but one copy of each duplicate.

        Of copies that span splits, the train copies go, so validation stays as it was. Of copies
        with conflicting labels, all go: which label is right cannot be known.
        """
        excluded = {issue.path for issue in self.unreadable} | {issue.path for issue in self.tiny}
        for group in self.duplicates:
            if group.conflicting_labels:
                excluded.update(group.paths)
            elif group.crosses_splits:
                excluded.update(p for p, s in zip(group.paths, group.splits, strict=True) if s == "train")
            else:
                excluded.update(group.paths[1:])
        return excluded

    def warnings(self) -> list[str]:
        """One sentence per problem, worst first, for a wizard page or the CLI."""
        lines = []
        if self.unreadable:
            n = len(self.unreadable)
            lines.append(
                _plural(
                    n, "1 file cannot be read and is left out.", f"{n} files cannot be read and are left out."
                )
            )
        leaked = self.leakage
        if leaked:
            lines.append(
                _plural(
                    len(leaked),
                    "1 image of the validation/test split is",
                    f"{len(leaked)} images of the validation/test split are",
                )
                + " also in the training split: the validation score would be flattered."
            )
        conflicting = [group for group in self.duplicates if group.conflicting_labels]
        if conflicting:
            n = len(conflicting)
            lines.append(_plural(n, "1 image is", f"{n} images are") + " filed under two different classes.")
        plain = [g for g in self.duplicates if not g.crosses_splits and not g.conflicting_labels]
        if plain:
            copies = sum(len(group.paths) - 1 for group in plain)
            lines.append(
                _plural(
                    copies,
                    "1 file is an exact copy of another file",
                    f"{copies} files are exact copies of other files",
                )
                + " of the same class."
            )
        for name in self.small_classes:
            total = sum(per_class.get(name, 0) for per_class in self.counts.values())
            lines.append(
                f"Class '{name}' has only {total} usable images (at least {MIN_IMAGES_PER_CLASS} needed)."
            )
        for folder in self.empty:
            # In a train/val layout the class may still exist through its other split folders.
            left_out = "; it is left out." if folder.name not in self.classes else "."
            lines.append(f"The class folder '{self._relative(folder)}' holds no images{left_out}")
        ratio = self.imbalance_ratio
        if ratio > IMBALANCE_WARNING_RATIO:
            shown = "a class with none" if ratio == float("inf") else f"{ratio:.1f} : 1"
            lines.append(f"The classes are imbalanced ({shown}); the loss will be weighted per class.")
        if self.tiny:
            n = len(self.tiny)
            lines.append(
                _plural(n, "1 image is", f"{n} images are") + f" smaller than {TINY_SIDE} px on a side."
            )
        if self.layout == "splits":
            missing = [name for name in self.classes if self.counts.get("val", {}).get(name, 0) == 0]
            if "val" in self.counts and missing:
                lines.append(f"The val split has no images of: {', '.join(missing)}.")
        if self.ignored:
            n = len(self.ignored)
            lines.append(
                _plural(n, "1 image is", f"{n} images are") + " outside any class folder and not used."
            )
        return lines

    def _relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def to_dict(self) -> dict[str, Any]:
        rel = self._relative
        ratio = self.imbalance_ratio
        return {
            "root": str(self.root),
            "layout": self.layout,
            "classes": list(self.classes),
            "counts": self.counts,
            "unreadable": [{"path": rel(i.path), "reason": i.reason} for i in self.unreadable],
            "tiny": [{"path": rel(i.path), "reason": i.reason} for i in self.tiny],
            "duplicates": [
                {
                    "sha256": g.digest,
                    "paths": [rel(p) for p in g.paths],
                    "crosses_splits": g.crosses_splits,
                    "conflicting_labels": g.conflicting_labels,
                }
                for g in self.duplicates
            ],
            "leakage": [[rel(p) for p in g.paths] for g in self.leakage],
            "imbalance_ratio": None if ratio == float("inf") else round(ratio, 3),
            "small_classes": self.small_classes,
            "ignored": [rel(p) for p in self.ignored],
            "empty_class_folders": [rel(p) for p in self.empty],
            "fingerprint": self.fingerprint,
            "suggested_exclude": sorted(rel(p) for p in self.suggested_exclude()),
            "warnings": self.warnings(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _plural(number: int, one: str, many: str) -> str:
    """``one`` when ``number`` is 1, else ``many``: warnings in grammatical English."""
    return one if number == 1 else many


def iter_health(
    dataset: Dataset, *, cancel: Callable[[], bool] | None = None
) -> Iterator[Progress | HealthReport]:
    """Check every image, yielding :class:`Progress` after each file and the report last.

    A generator so a wizard can show progress and stop it; :func:`check_health` runs it to the end.
    Raises :class:`Cancelled` when ``cancel()`` becomes true.
    """
    per_split: dict[str, dict[str, int]] = {}
    for split in dataset.splits or ("all",):
        per_split[split] = {name: 0 for name in dataset.classes}
    report = HealthReport(dataset.root, dataset.layout, dataset.classes, per_split)
    report.ignored = list(dataset.ignored)
    report.empty = list(dataset.empty)
    by_digest: dict[str, list[int]] = defaultdict(list)
    entries = []
    progress = Progress("health", 0, len(dataset.samples))
    for index, sample in enumerate(dataset.samples):
        if cancel is not None and cancel():
            raise Cancelled("The health check was cancelled.")
        # Both readers refuse FIFOs and devices (no hang) and the loader refuses images over the
        # decompression-bomb limit (ImageTooLargeError), so no Pillow warning reaches the user.
        try:
            digest = file_digest(sample.path)
            image = load_image(sample.path, min_size=TINY_SIDE)
        except (ImageLoadError, UserFileError) as err:
            report.unreadable.append(FileIssue(sample.path, err.reason))
        except OSError as err:  # closing the file, or a race the readers did not see
            report.unreadable.append(FileIssue(sample.path, os_reason(err)))
        else:
            # The stored size, upright, before JPEG draft decoding shrank it.
            width, height = original_size(image)
            report.sizes[sample.path] = (width, height)
            if min(width, height) < TINY_SIDE:
                report.tiny.append(FileIssue(sample.path, f"only {width}x{height} px"))
            per_split[sample.split or "all"][dataset.classes[sample.label]] += 1
            by_digest[digest].append(index)
            entries.append((dataset.relative(sample.path), dataset.classes[sample.label], digest))
        progress = progress.advanced(index + 1)
        yield progress
    for digest, indices in by_digest.items():
        if len(indices) > 1:
            samples = [dataset.samples[i] for i in indices]
            report.duplicates.append(
                DuplicateGroup(
                    digest,
                    tuple(s.path for s in samples),
                    tuple(s.split for s in samples),
                    tuple(dataset.classes[s.label] for s in samples),
                )
            )
    report.fingerprint = fingerprint(entries)
    yield report


def check_health(dataset: Dataset, *, cancel: Callable[[], bool] | None = None) -> HealthReport:
    """The whole health check as one call (see :func:`iter_health`)."""
    for item in iter_health(dataset, cancel=cancel):
        if isinstance(item, HealthReport):
            return item
    raise AssertionError("iter_health ended without a report")
