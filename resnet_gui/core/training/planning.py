"""The decisions around a fine-tuning run, without any view: what the health report flags and
suggests leaving out, where a new bundle goes, copying a bundle, finding an interrupted run, and
the baseline a validation accuracy is read against.

The wizard shows these; keeping them here lets them be tested (and reused by the CLI) without Qt.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnet_gui.core.atomic import atomic_path
from resnet_gui.core.training.bundle import normalise_bundle_path, sidecar_path
from resnet_gui.core.training.checkpoint import CheckpointInfo, read_checkpoint_info
from resnet_gui.core.training.config import TrainConfig
from resnet_gui.core.training.dataset import Dataset
from resnet_gui.core.training.events import TrainingError
from resnet_gui.core.training.health import HealthReport
from resnet_gui.core.training.split import Split

__all__ = [
    "FLAG_GROUP_KEYS",
    "FlagGroup",
    "FlaggedFile",
    "InterruptedRun",
    "biggest_mistake",
    "bundle_stem",
    "class_examples",
    "correct_count",
    "default_exclusions",
    "find_interrupted_run",
    "flag_groups",
    "majority_baseline",
    "relative_name",
    "save_copy",
    "suggest_bundle_path",
    "unique_bundle_path",
]

FLAG_GROUP_KEYS = ("unreadable", "leaked", "conflict", "copy", "tiny")
"""The health report's problems in the order they are shown: the worst (cannot be read) first."""


@dataclass(frozen=True)
class FlaggedFile:
    """One flagged file in one group: why, and what the user may do about it."""

    path: Path
    name: str
    """The path relative to the folder, as the user reads it."""
    reason: str
    optional: bool
    """False for an unreadable file: it cannot be trained on, so it is left out whatever is ticked."""
    suggested: bool
    """Ticked (left out) by default: :meth:`HealthReport.suggested_exclude`."""


@dataclass(frozen=True)
class FlagGroup:
    """The files flagged for one reason (a key of :data:`FLAG_GROUP_KEYS`)."""

    key: str
    files: tuple[FlaggedFile, ...]


def relative_name(root: Path, path: Path) -> str:
    """``path`` as the user knows it inside the folder, or the whole path when it lies outside."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def flag_groups(report: HealthReport) -> list[FlagGroup]:
    """The flagged files by problem (non-empty groups only), each with its reason in words.

    A file may be in two groups (a copy that is also tiny); a group of copies lists every copy of
    a leaked or conflicting photo but only the later copies of one within a class (the first stays).
    """
    suggested = report.suggested_exclude()
    items: dict[str, list[tuple[Path, str]]] = {key: [] for key in FLAG_GROUP_KEYS}
    items["unreadable"] = [(issue.path, issue.reason) for issue in report.unreadable]
    items["tiny"] = [(issue.path, issue.reason) for issue in report.tiny]
    for group in report.duplicates:
        names = [relative_name(report.root, p) for p in group.paths]
        for index, path in enumerate(group.paths):
            others = ", ".join(n for i, n in enumerate(names) if i != index)
            if group.conflicting_labels:
                items["conflict"].append((path, f"same photo as {others}"))
            elif group.crosses_splits:
                items["leaked"].append((path, f"same photo as {others}"))
            elif index > 0:
                items["copy"].append((path, f"copy of {names[0]}"))
    return [
        FlagGroup(
            key,
            tuple(
                FlaggedFile(
                    path,
                    relative_name(report.root, path),
                    reason,
                    optional=key != "unreadable",
                    suggested=key == "unreadable" or path in suggested,
                )
                for path, reason in files
            ),
        )
        for key, files in items.items()
        if files
    ]


def default_exclusions(report: HealthReport) -> set[Path]:
    """What is left out before the user changes a tick: the suggestions and every unreadable file."""
    return report.suggested_exclude() | {issue.path for issue in report.unreadable}


def class_examples(dataset: Dataset, report: HealthReport, count: int) -> dict[str, list[Path]]:
    """Up to ``count`` photos per class to show as examples: none of them flagged by the report."""
    flagged = default_exclusions(report)
    examples: dict[str, list[Path]] = {name: [] for name in dataset.classes}
    for sample in dataset.samples:
        name = dataset.classes[sample.label]
        if sample.path not in flagged and len(examples[name]) < count:
            examples[name].append(sample.path)
    return examples


def bundle_stem(folder_name: str, ref: str, mode: str) -> str:
    """``ants-bees`` + ``resnet50:IMAGENET1K_V2`` + ``head`` -> ``ants-bees-resnet50-head``."""
    architecture = Path(str(ref or "model")).stem.split(":")[0]
    return f"{folder_name or 'photos'}-{architecture}-{mode}"


def unique_bundle_path(directory: Path, stem: str) -> Path:
    """``stem.safetensors`` in ``directory``, or ``stem-2``, ``stem-3``… : never an existing bundle.

    Only the bundle counts: a checkpoint without a bundle (an interrupted run) keeps its name, so
    the same choices lead back to it and it can be resumed.
    """
    candidate = directory / f"{stem}.safetensors"
    number = 2
    while candidate.exists():
        candidate = directory / f"{stem}-{number}.safetensors"
        number += 1
    return candidate


def suggest_bundle_path(directory: Path, folder: Path, ref: str, mode: str) -> Path:
    """Where a new run on ``folder`` from ``ref`` in ``mode`` saves, so that it overwrites no other."""
    return unique_bundle_path(directory, bundle_stem(folder.name, ref, mode))


def save_copy(bundle: Path, target: Path) -> Path:
    """Copy a bundle (weights and its JSON sidecar) to ``target``, each file written atomically.

    Returns the copy's path (``.safetensors`` added when missing); raises OutputError (or
    WeightsError for another suffix) with the reason in words.
    """
    target = normalise_bundle_path(target)
    for source, destination in ((bundle, target), (sidecar_path(bundle), sidecar_path(target))):
        with atomic_path(destination) as temporary:
            shutil.copyfile(source, temporary)
    return target


@dataclass(frozen=True)
class InterruptedRun:
    """A run into a bundle that was cut off (the app closed while training): what resuming needs."""

    epochs_done: int
    config: TrainConfig
    split: Split
    missing: list[Path]
    """Photos of its split that are gone: such a run cannot be resumed."""
    checkpoint: CheckpointInfo


def find_interrupted_run(bundle: Path, root: Path) -> InterruptedRun | None:
    """The interrupted run whose checkpoint lies next to ``bundle``, with its split on ``root``.

    ``None`` when there is none, or when it cannot be read or understood: a new run then replaces it.
    """
    try:
        info = read_checkpoint_info(bundle)
    except TrainingError:
        return None
    if info is None:
        return None
    try:
        split = Split.from_dict(info.split, root)
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return InterruptedRun(info.epochs_done, info.config, split, split.missing_files(), info)


def correct_count(confusion: np.ndarray, classes: int) -> int:
    """Photos on the diagonal: extra columns (answers outside the true classes) are never right."""
    return int(np.trace(confusion[:, :classes]))


def majority_baseline(confusion: np.ndarray) -> float:
    """The accuracy of always answering the largest true class: what a score must beat to mean much."""
    counts = np.asarray(confusion).sum(axis=1)
    total = counts.sum()
    return float(counts.max() / total) if total else 0.0


def biggest_mistake(confusion: np.ndarray, classes: int) -> tuple[int, int] | None:
    """The (true, predicted) cell with the most wrong photos, or ``None`` when none is wrong."""
    off = np.array(confusion[:, :classes], copy=True)
    np.fill_diagonal(off, 0)
    if not off.sum():
        return None
    row, column = np.unravel_index(int(off.argmax()), off.shape)
    return int(row), int(column)
