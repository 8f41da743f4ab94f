"""The fine-tuning wizard's state, in one object the pages share: no page reaches into another.

:class:`FinetuneSession` owns the checked folder (its health report and the user's ticks), the
base model with its measured costs, the plan the settings page fixes, the training run and its
evaluation, and the worker jobs behind them. Each change is a signal; pages read the session and
redraw. The decisions themselves (what is flagged, where a bundle goes, what to resume) are
core's (:mod:`resnet_gui.core.training.planning`).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from resnet_gui.gui import tasks as gui_tasks
from resnet_gui.gui.controller import Controller, describe_error
from resnet_gui.gui.data import ModelChoice
from resnet_gui.gui.finetune import tasks
from resnet_gui.gui.settings import AppSettings
from resnet_gui.gui.workers import Job

USABLE_STATUSES = ("cached", "imported")


@dataclass(frozen=True)
class BaseModelOption:
    """An entry of the base-model picker: a registry ref or a weights file, and what the user reads."""

    ref: str
    label: str


def base_model_options(choices: Sequence[ModelChoice]) -> list[BaseModelOption]:
    """ImageNet models to start from: those on this computer first (ResNet-50 first), then downloads."""

    def rank(choice: ModelChoice) -> tuple[int, int, int]:
        return (
            0 if choice.status in USABLE_STATUSES else 1,
            0 if choice.ref.startswith("resnet50") else 1,
            0 if choice.is_default else 1,
        )

    options = []
    for choice in sorted((c for c in choices if c.status != "missing"), key=rank):
        note = "" if choice.status in USABLE_STATUSES else " — downloads first"
        options.append(BaseModelOption(choice.ref, f"{choice.label}{note}"))
    return options


@dataclass(frozen=True)
class TrainingPlan:
    """What the training page runs: the settings page's choices, fixed."""

    base: Any  # a LoadedModel, or a ref to load
    source: str
    split: Any
    config: Any
    out: Path
    device: str
    resume: bool = False
    """Go on from ``out``'s checkpoint (an interrupted run, with its own settings and split)."""
    processes: int = 1
    """DDP processes (one per GPU); offered only with several GPUs."""


class FinetuneSession(QObject):
    """Everything the wizard knows and runs; the pages are views of it."""

    folder_changed = Signal()
    """A check started (``checked`` is None), or its report or error arrived."""
    check_progress = Signal(object)  # core Progress of the health check
    excluded_changed = Signal()
    base_changed = Signal()
    """Measuring a base model started, or it is ready (``base``), or it failed (``base_error``)."""
    base_progress = Signal(str)
    plan_changed = Signal()
    run_started = Signal(bool)  # resume
    run_event = Signal(object)  # core's training events, TrainResult last
    stop_requested = Signal()
    evaluation_started = Signal()
    evaluation_progress = Signal(object)
    evaluated_changed = Signal()
    run_failed = Signal(str, bool)  # the error in words; True when training (not the check) failed
    running_changed = Signal()

    def __init__(
        self,
        controller: Controller,
        settings: AppSettings,
        *,
        base_models: Sequence[BaseModelOption] | None = None,
        devices: Sequence[str] = ("cpu",),
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = settings
        self.devices = tuple(devices)
        self._base_models = list(base_models) if base_models is not None else None
        self.folder: Path | None = None
        self.checked: tasks.FolderChecked | None = None
        self.check_error = ""
        self._excluded: set[Path] = set()
        self._optional: set[Path] = set()
        self.base: tasks.BaseModelReady | None = None
        self.base_error = ""
        self._plan: TrainingPlan | None = None
        self.result: Any = None  # core TrainResult
        self.evaluated: tasks.Evaluated | None = None
        self.run_error = ""
        self.check_job: Job | None = None
        self.base_job: Job | None = None
        self.train_job: Job | None = None
        self.eval_job: Job | None = None
        self._stop = threading.Event()

    def start_job(self, kind: str, func: Callable[..., Any], *args: Any, **handlers: Any) -> Job:
        """A page's own background work (thumbnails, a heat map, writing a report), on the app's runner:
        a new job of a kind supersedes the running one (see :meth:`Controller.start_job`)."""
        return self.controller.start_job(kind, func, *args, **handlers)

    # -- the folder and its health report

    def choose_folder(self, folder: Path) -> None:
        """The folder to train on; checked unless it is the one already checked (ticks are kept)."""
        self.folder = folder
        self.settings.finetune_folder = str(folder)
        if (
            self.checked is not None
            and self.checked.dataset.root.resolve() == folder.resolve()
            and not self.check_error
        ):
            return
        self.check_folder(folder)

    def check_folder(self, folder: Path) -> None:
        """Scan and check every photo of ``folder`` in the background."""
        self.folder = folder
        self.checked = None
        self.check_error = ""
        self._excluded, self._optional = set(), set()
        self.plan = None
        self.check_job = self.controller.start_job(
            "finetune-health",
            tasks.check_folder,
            folder,
            on_yield=self.check_progress.emit,
            on_result=self._on_checked,
            on_error=self._on_check_error,
        )
        self.folder_changed.emit()

    def _on_checked(self, checked: tasks.FolderChecked) -> None:
        from resnet_gui.core.training.planning import default_exclusions, flag_groups

        report = checked.report
        self.checked = checked
        self._excluded = default_exclusions(report)
        self._optional = {f.path for g in flag_groups(report) for f in g.files if f.optional} - {
            issue.path for issue in report.unreadable
        }
        self.folder_changed.emit()

    def _on_check_error(self, error: BaseException) -> None:
        self.check_error = describe_error(error, "check the folder")
        self.folder_changed.emit()

    @property
    def excluded(self) -> set[Path]:
        """The files to leave out: the ticked ones, and every unreadable one."""
        return set(self._excluded)

    def can_choose(self, path: Path) -> bool:
        """Whether ``path`` has a Leave-out tick the user may change (unreadable files have none)."""
        return Path(path) in self._optional

    def set_excluded(self, path: Path, leave_out: bool) -> None:
        """Tick or untick one flagged file; a change makes the plan stale."""
        path = Path(path)
        if path not in self._optional or (path in self._excluded) == leave_out:
            return
        if leave_out:
            self._excluded.add(path)
        else:
            self._excluded.discard(path)
        self.plan = None
        self.excluded_changed.emit()

    def set_all_excluded(self, leave_out: bool) -> None:
        """Leave Out All Flagged / Keep All (unreadable files stay out either way)."""
        changed = self._optional - self._excluded if leave_out else self._optional & self._excluded
        if not changed:
            return
        self._excluded = self._excluded | changed if leave_out else self._excluded - changed
        self.plan = None
        self.excluded_changed.emit()

    @property
    def has_val_folder(self) -> bool:
        return self.checked is not None and any(s.split == "val" for s in self.checked.dataset.samples)

    def split(self, val_fraction: float = 0.2, seed: int = 0) -> Any:
        """The split of the checked folder without the left-out files (raises DatasetError)."""
        from resnet_gui.core.training import make_split

        assert self.checked is not None
        return make_split(self.checked.dataset, val_fraction=val_fraction, seed=seed, exclude=self.excluded)

    # -- the base model

    def base_models(self) -> list[BaseModelOption]:
        """The picker's entries: given at construction (tests) or read from the registry now."""
        if self._base_models is None:
            self._base_models = base_model_options(gui_tasks.model_choices())
        options = list(self._base_models)
        info = self.controller.model_info
        if info is not None and info.ref.startswith("file:"):
            path = info.ref[len("file:") :]
            options.append(BaseModelOption(path, f"The model in use: {Path(path).name}"))
        return options

    def scratch_models(self) -> list[BaseModelOption]:
        """The picker's entries in a mode that trains from scratch: the networks made for small photos."""
        from resnet_gui.core.models import get_model_spec
        from resnet_gui.core.training.scratch import scratch_architectures

        return [BaseModelOption(name, get_model_spec(name).display_name) for name in scratch_architectures()]

    def scratch_suggestion(self) -> Any:
        """Core's suggestion to train from scratch for the checked folder (small photos), or None."""
        from resnet_gui.core.training.scratch import suggest_from_scratch

        return None if self.checked is None else suggest_from_scratch(self.checked.report)

    def base_pending(self) -> bool:
        return self.base_job is not None

    def prepare_base(self, ref: str, device: str, from_scratch: bool = False) -> None:
        """Load ``ref`` (built untrained ``from_scratch``) and time training's pieces with it on a few
        photos of the checked folder."""
        if not ref or self.checked is None:
            return
        self.base = None
        self.base_error = ""
        dataset = self.checked.dataset
        samples = [s.path for s in dataset.samples[:: max(1, len(dataset.samples) // 4)]][:4]
        self.base_job = self.controller.start_job(
            "finetune-base",
            tasks.prepare_base,
            str(ref),
            device,
            samples,
            from_scratch,
            on_yield=self.base_progress.emit,
            on_result=self._on_base_ready,
            on_error=self._on_base_error,
        )
        self.base_changed.emit()

    def _on_base_ready(self, base: tasks.BaseModelReady) -> None:
        self.base_job = None
        self.base = base
        self.base_changed.emit()

    def _on_base_error(self, error: BaseException) -> None:
        self.base_job = None
        self.base_error = describe_error(error, "load the base model")
        self.base_changed.emit()

    # -- the plan

    @property
    def plan(self) -> TrainingPlan | None:
        return self._plan

    @plan.setter
    def plan(self, plan: TrainingPlan | None) -> None:
        if plan is not self._plan:
            self._plan = plan
            self.plan_changed.emit()

    def suggest_out(self, ref: str, mode: str) -> Path | None:
        """A new bundle in the app's data folder that overwrites no earlier run's."""
        from resnet_gui.core import paths
        from resnet_gui.core.training.planning import suggest_bundle_path

        if self.folder is None:
            return None
        return suggest_bundle_path(paths.data_dir() / "models", self.folder, str(ref or "model"), mode)

    # -- the run and its evaluation

    def running(self) -> bool:
        return any(job is not None and not job.done for job in (self.train_job, self.eval_job))

    def training(self) -> bool:
        return self.train_job is not None and not self.train_job.done

    def start_training(self, resume: bool = False) -> None:
        """Run the plan (or go on from its checkpoint); the events come as :attr:`run_event`."""
        plan = self.plan
        assert plan is not None
        # The model, the report and the pages made since start-up are long-lived too: out of the
        # collector's reach, a full collection in mid-training stays short (measured: 100-230 ms
        # otherwise, in whichever thread triggers it, the UI thread included).
        gc.freeze()
        self.result = None
        self.evaluated = None
        self.run_error = ""
        self._stop = threading.Event()
        self.train_job = self.controller.start_job(
            "finetune-train",
            tasks.finetune,
            plan.base,
            plan.source,
            plan.split,
            plan.out,
            plan.config,
            self._stop,
            resume,
            plan.processes,
            on_yield=self._on_train_event,
            on_error=partial(self._on_error, True),
            on_finished=self.running_changed.emit,
        )
        self.run_started.emit(resume)
        self.running_changed.emit()

    def stop(self) -> None:
        """Ask the run to stop at its next step (the best weights so far are saved); drop an evaluation."""
        if self.training():
            self._stop.set()
            self.stop_requested.emit()
        if self.eval_job is not None and not self.eval_job.done:
            self.eval_job.abort()

    def has_checkpoint(self) -> bool:
        """Whether the planned run left a checkpoint to resume from."""
        from resnet_gui.core.training import checkpoint_path

        return self.plan is not None and checkpoint_path(self.plan.out).exists()

    def _on_train_event(self, event: Any) -> None:
        from resnet_gui.core.training import TrainResult

        if isinstance(event, TrainResult):
            self.result = event
        self.run_event.emit(event)
        if isinstance(event, TrainResult) and event.bundle is not None:
            self.evaluate(event.bundle)

    def evaluate(self, bundle: Path) -> None:
        """Score ``bundle`` on the plan's validation photos in the background."""
        plan = self.plan
        assert plan is not None
        self.evaluated = None
        self.eval_job = self.controller.start_job(
            "finetune-evaluate",
            tasks.evaluate_bundle,
            bundle,
            plan.split.root,
            plan.device,
            "val",
            on_yield=self.evaluation_progress.emit,
            on_result=self._on_evaluated,
            on_error=partial(self._on_error, False),
            on_finished=self.running_changed.emit,
        )
        self.evaluation_started.emit()

    def _on_evaluated(self, evaluated: tasks.Evaluated) -> None:
        self.evaluated = evaluated
        self.evaluated_changed.emit()

    def _on_error(self, training: bool, error: BaseException) -> None:
        self.run_error = describe_error(error, "train the model" if training else "check the trained model")
        self.run_failed.emit(self.run_error, training)
