"""The fine-tuning wizard's background work: thin wrappers over ``core.training``'s generators.

Each function runs in a worker job (see :mod:`resnet_gui.gui.workers`): progress comes back by
``yield``, the result by ``return``, errors in one place. Training takes its own stop flag
(``stop``) rather than the job's abort: a stopped run still ends with a result (the best
weights so far, a checkpoint to resume from), while an aborted job's results are dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from resnet_gui.gui.data import ImageSource
from resnet_gui.gui.workers import TaskContext

PREVIEW_SIDE = 1024
STEP_EVENT_INTERVAL = 0.05
"""Seconds between two step events passed to the UI (the last step of an epoch always is)."""


@dataclass(frozen=True)
class FolderChecked:
    """A scanned folder and its health report (core dataclasses: paths, counts, no tensors)."""

    dataset: Any  # core.training.Dataset
    report: Any  # core.training.HealthReport
    project_name: str | None = None
    """The labelling project's name when the folder is one (its classes were made in the app)."""


@dataclass(frozen=True)
class DestinationChecked:
    """What is at the path a run would save to: a file already, and the checkpoint of a cut-off run."""

    out: Path
    exists: bool
    interrupted: Any  # core.training.planning.InterruptedRun, or None


def check_destination(context: TaskContext, out: Path, root: Path) -> DestinationChecked:
    """Look at ``out`` before a run: reads the checkpoint beside it and stats every photo of its split."""
    from resnet_gui.core.training.planning import find_interrupted_run

    return DestinationChecked(out, out.exists(), find_interrupted_run(out, root))


@dataclass(frozen=True)
class BaseModelReady:
    """The base model loaded, and what each piece of training costs per image on this machine."""

    ref: str
    loaded: Any  # core.models.LoadedModel, handed back to :func:`finetune`
    costs: Any  # core.training.estimate.CostModel


@dataclass(frozen=True)
class Evaluated:
    """The validation report of the trained bundle, and the bundle loaded for Grad-CAM."""

    report: Any  # core.training.EvaluationReport
    classifier: Any  # core.engine.Classifier


@dataclass(frozen=True)
class CellExplanation:
    """One image of a confusion-matrix cell: the photo and its Grad-CAM overlay for the predicted class."""

    path: Path
    photo: np.ndarray
    overlay: np.ndarray
    label: str
    probability: float


def check_folder(context: TaskContext, folder: Path) -> Generator[Any, None, FolderChecked]:
    """Scan ``folder`` (class folders or train/val/test) and check every image; yields Progress."""
    from resnet_gui.core.training import iter_health, scan_dataset
    from resnet_gui.core.training.events import forward_progress

    dataset = scan_dataset(folder)
    report = yield from forward_progress(iter_health(dataset, cancel=context.is_cancelled))
    context.check()
    return FolderChecked(dataset, report, _project_name(folder))


def _project_name(folder: Path) -> str | None:
    """The project's name, or None for a plain folder (open refuses a folder without a manifest)."""
    from resnet_gui.core.projects import LabellingProject, ProjectError

    try:
        return LabellingProject.open(folder).name
    except ProjectError:
        return None


def prepare_base(
    context: TaskContext,
    ref: str,
    device: str,
    sample_paths: Sequence[Path],
    from_scratch: bool = False,
) -> Generator[str, None, BaseModelReady]:
    """Load the base model (a registry ref or a weights file) and time training's pieces with it.

    ``from_scratch``: ``ref`` names a network made for small photos, built with random weights.
    Yields what it is doing, in words; returns a :class:`BaseModelReady`.
    """
    from resnet_gui.core.models import load_model
    from resnet_gui.core.training.estimate import measure_costs
    from resnet_gui.core.training.scratch import untrained_model

    yield "Building the new network…" if from_scratch else "Loading the base model…"
    loaded = untrained_model(ref) if from_scratch else load_model(ref, allow_download=True)
    context.check()
    yield "Timing a few training steps on this computer…"
    costs = measure_costs(loaded, sample_paths, device=device, cancel=context.is_cancelled)
    return BaseModelReady(ref, loaded, costs)


def finetune(
    context: TaskContext,
    base: Any,
    source: str,
    split: Any,
    out: Path,
    config: Any,
    stop: threading.Event,
    resume: bool = False,
    processes: int = 1,
) -> Generator[Any, None, Any]:
    """Run core's :func:`train`, yielding its events; the last one (a TrainResult) is returned too.

    With ``processes`` > 1, on that many DDP processes (each loads ``source`` itself).
    """
    from resnet_gui.core import paths
    from resnet_gui.core.training import FeatureCache, StepMetrics, TrainResult, train

    cache = FeatureCache(paths.data_dir() / "cache" / "features") if config.mode == "head" else None
    result = None
    last_step = 0.0
    if processes > 1:
        from resnet_gui.core.training.distributed import TrainJob, train_in_processes

        job = TrainJob(
            source or None,
            split,
            out,
            config,
            resume=resume,
            cache_dir=None if cache is None or cache.directory is None else str(cache.directory),
            save_on_cancel=True,
            source=source,
        )
        events = train_in_processes(job, processes, cancel=stop.is_set)
    else:
        events = train(
            base,
            split,
            out,
            config,
            resume=resume,
            cancel=stop.is_set,
            feature_cache=cache,
            save_on_cancel=True,
            source=source,
        )
    for event in events:
        if isinstance(event, TrainResult):
            result = event
        elif isinstance(event, StepMetrics) and event.step < event.steps:
            # Steps on cached features come by the thousand per second: a burst of queued signals
            # would keep the UI thread from painting. Epoch ends and every other event always go.
            now = time.perf_counter()
            if now - last_step < STEP_EVENT_INTERVAL:
                continue
            last_step = now
        yield event
    return result


def evaluate_bundle(
    context: TaskContext, bundle: Path, folder: Path, device: str, split: str | None
) -> Generator[Any, None, Evaluated]:
    """Score the trained bundle on the validation images it was not trained on; yields Progress."""
    from resnet_gui.core.engine import Classifier
    from resnet_gui.core.models import load_model
    from resnet_gui.core.training import iter_evaluate
    from resnet_gui.core.training.events import forward_progress

    classifier = Classifier(load_model(str(bundle)), device=device)
    report = yield from forward_progress(
        iter_evaluate(classifier, folder, split=split, cancel=context.is_cancelled)
    )
    return Evaluated(report, classifier)


def copy_bundle(context: TaskContext, bundle: Path, target: Path) -> Path:
    """Save a Copy As: the bundle and its sidecar, off the UI thread (a model is tens of MB)."""
    from resnet_gui.core.training.planning import save_copy

    return save_copy(bundle, target)


def write_report(context: TaskContext, report: Any, folder: Path) -> dict[str, Path]:
    """The evaluation's files (JSON, confusion matrix CSV and PNG, predictions CSV), written atomically."""
    return report.write(folder)


def explain_cell_image(
    context: TaskContext, classifier: Any, path: Path, predicted: str, colormap: str = "turbo"
) -> CellExplanation:
    """The photo at display size and the Grad-CAM of ``predicted`` (the class the model chose) on it."""
    from resnet_gui.core.explain.maps import overlay
    from resnet_gui.core.explain.pipeline import explain_photo
    from resnet_gui.gui.tasks import decode_for_display

    decoded = decode_for_display(ImageSource.from_path(path))
    photo = decoded.display
    if max(photo.shape[:2]) > PREVIEW_SIDE:
        image = Image.fromarray(photo)
        image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
        photo = np.asarray(image)
    categories = list(classifier.categories)
    target = categories.index(predicted) if predicted in categories else None
    context.check()
    result = explain_photo(
        classifier,
        Image.fromarray(photo),
        method="gradcam",
        targets=None if target is None else [target],
        cancel=context.is_cancelled,
    )
    explained = result.classes[0]
    blended = overlay(photo, explained.map_on_image, colormap=colormap, alpha=0.5)
    return CellExplanation(path, photo, blended, explained.label, explained.probability)
