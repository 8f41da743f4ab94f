"""Fix the model's mistakes where they are seen: "Wrong?" on a prediction, then "Retrain".

A fine-tuned model knows where its training photos are. Saying what a photo really shows copies
it (never moves it) into that class's training folder and keeps a list of these corrections in
the app's data folder (core's :class:`~resnet_gui.core.corrections.Corrections`, persisted, each
one undoable). The banner then offers to train the model again with the same settings and the new
photos; the new model is handed to the classifier. Every file operation and the training run in
jobs; this module only holds the state and the banner that shows it.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from resnet_gui.gui.data import ModelInfo, UserMessage
from resnet_gui.gui.workers import TaskContext

__all__ = ["CorrectionsBar", "CorrectionsController", "CorrectionsView", "RetrainDone"]

CorrectionsState = Literal["idle", "working", "retraining"]


@dataclass(frozen=True)
class CorrectionsView:
    """What the "Wrong?" button and the banner show."""

    available: bool = False
    """The model in use was fine-tuned here and its training photos can be reached."""
    classes: tuple[str, ...] = ()
    count: int = 0
    """Photos corrected since the model was trained."""
    last: str = ""
    """The last correction, in words ("bee.jpg is ants")."""
    state: CorrectionsState = "idle"
    progress: float | None = None
    text: str = ""
    """What is happening, or why corrections are not possible with this model."""
    corrected: Mapping[str, str] | None = None
    """Photo path (as text) → the class the user said it is."""

    def label_of(self, photo: Path | None) -> str:
        """The class the user gave ``photo``, or ""."""
        if photo is None or not self.corrected:
            return ""
        return self.corrected.get(str(photo), "")


@dataclass(frozen=True)
class RetrainDone:
    """A retraining run's outcome: the new bundle and the validation accuracy before and after."""

    bundle: Path
    added: int
    accuracy_before: float | None
    accuracy_after: float | None


def open_corrections(context: TaskContext, metadata: Mapping[str, Any]) -> Any:
    """The model's list of corrections (reads a file in the data folder)."""
    from resnet_gui.core.corrections import Corrections

    return Corrections.for_bundle(metadata)


def add_correction(context: TaskContext, store: Any, photo: Path, label: str, predicted: str) -> Any:
    store.add(photo, label, predicted)
    return store


def undo_correction(context: TaskContext, store: Any) -> Any:
    store.undo()
    return store


def retrain(
    context: TaskContext, store: Any, bundle: Path, metadata: Mapping[str, Any]
) -> Generator[tuple[float | None, str], None, RetrainDone]:
    """Train ``bundle`` again with the corrected photos; yields (fraction, text) while it runs."""
    from resnet_gui.core import paths
    from resnet_gui.core.metadata import metadata_val_accuracy
    from resnet_gui.core.training import EpochMetrics, FeatureCache, Progress, TrainResult, train
    from resnet_gui.core.training.retrain import plan_retrain

    entries = store.entries()
    plan = plan_retrain(bundle, metadata, [(entry.copy, entry.label) for entry in entries])
    cache = FeatureCache(paths.data_dir() / "cache" / "features") if plan.config.mode == "head" else None
    result: TrainResult | None = None
    yield None, "Loading the base model…"
    for event in train(
        plan.base,
        plan.split,
        plan.out,
        plan.config,
        cancel=context.is_cancelled,
        feature_cache=cache,
        source=plan.base,
    ):
        if isinstance(event, Progress) and event.total:
            yield event.done / event.total, f"Preparing the photos ({event.done} of {event.total})…"
        elif isinstance(event, EpochMetrics):
            yield event.epoch / max(event.epochs, 1), f"Training: round {event.epoch} of {event.epochs}…"
        elif isinstance(event, TrainResult):
            result = event
    context.check()
    if result is None or result.bundle is None:
        raise RuntimeError("The training run ended without a model.")
    store.clear()  # the photos are part of the new model's training data now
    return RetrainDone(result.bundle, len(entries), metadata_val_accuracy(metadata), result.val_accuracy)


class CorrectionsController(QObject):
    """The corrections of the model in use: adds, undoes and retrains through the controller's jobs."""

    changed = Signal(object)  # CorrectionsView

    def __init__(self, controller: Any) -> None:
        super().__init__(controller)
        self.controller = controller
        self.store: Any = None
        self.view = CorrectionsView()
        controller.model_changed.connect(self._model_changed)

    def _set(self, view: CorrectionsView) -> None:
        self.view = view
        self.changed.emit(view)

    def _model_changed(self, info: ModelInfo | None) -> None:
        if self.view.state == "retraining":
            return  # the retrained model is being loaded: the run's outcome says what happened
        from resnet_gui.core.metadata import metadata_data_root

        classifier = self.controller.classifier
        self.store = None
        metadata = classifier.loaded.metadata if classifier is not None else {}
        if classifier is None or metadata_data_root(metadata) is None:
            self._set(CorrectionsView())
            return
        self._set(CorrectionsView(classes=tuple(classifier.categories), text="Reading the corrections…"))
        self.controller.start_job(
            "corrections",
            open_corrections,
            metadata,
            on_result=self._store_ready,
            on_error=self._unavailable,
        )

    def _unavailable(self, error: BaseException) -> None:
        self.store = None
        self._set(replace(self.view, available=False, state="idle", text=str(error)))

    def _store_ready(self, store: Any) -> None:
        self.store = store
        entries = store.entries()
        last = f"{entries[-1].photo.name} is {entries[-1].label}" if entries else ""
        self._set(
            replace(
                self.view,
                available=True,
                count=len(entries),
                last=last,
                state="idle",
                progress=None,
                text="",
                corrected={str(entry.photo): entry.label for entry in entries},
            )
        )

    def _failed(self, doing: str, error: BaseException) -> None:
        from resnet_gui.gui.controller import describe_error

        self._set(replace(self.view, state="idle", progress=None, text=""))
        self.controller.message.emit(UserMessage(describe_error(error, doing), "error"))

    def can_correct(self) -> bool:
        image = self.controller.current_image
        return (
            self.view.available
            and self.view.state == "idle"
            and image is not None
            and image.source.path is not None
        )

    def correct(self, label: str) -> None:
        """The photo shown is ``label``: copy it into that class's training photos."""
        label = label.strip()
        image = self.controller.current_image
        if not label or not self.can_correct() or image is None or image.source.path is None:
            return
        rows = self.controller.rows(image)
        predicted = rows[0].label if rows else ""
        self._set(replace(self.view, state="working", text=f"Adding {image.source.name} to “{label}”…"))
        self.controller.start_job(
            "corrections",
            add_correction,
            self.store,
            image.source.path,
            label,
            predicted,
            on_result=self._store_ready,
            on_error=partial(self._failed, "add the photo to the training photos"),
        )

    def undo(self) -> None:
        """Take the last correction back (its copy is removed; the user's photo was never touched)."""
        if not self.view.count or self.view.state != "idle":
            return
        self._set(replace(self.view, state="working", text="Undoing the last correction…"))
        self.controller.start_job(
            "corrections",
            undo_correction,
            self.store,
            on_result=self._store_ready,
            on_error=partial(self._failed, "undo the correction"),
        )

    def retrain(self) -> None:
        """Train the model again with the corrected photos and use the new model when it is ready."""
        classifier = self.controller.classifier
        if not self.view.count or self.view.state != "idle" or classifier is None:
            return
        bundle = classifier.loaded.source
        self._set(replace(self.view, state="retraining", progress=None, text="Retraining…"))
        self.controller.start_job(
            "retrain",
            retrain,
            self.store,
            bundle,
            classifier.loaded.metadata,
            on_progress=self._retrain_progress,
            on_result=self._retrained,
            on_error=partial(self._failed, "retrain the model"),
            on_finished=self._retrain_finished,
        )

    def cancel(self) -> None:
        for job in self.controller.runner.active("retrain"):
            job.abort()

    def _retrain_progress(self, fraction: float | None, text: str) -> None:
        self._set(replace(self.view, progress=fraction, text=text))

    def _retrained(self, done: RetrainDone) -> None:
        from resnet_gui.gui.predictions import format_percent

        change = ""
        if done.accuracy_before is not None and done.accuracy_after is not None:
            change = (
                f" Validation photos right: {format_percent(done.accuracy_before)} before, "
                f"{format_percent(done.accuracy_after)} now."
            )
        photos = "photo" if done.added == 1 else "photos"
        self.controller.message.emit(
            UserMessage(
                f"Retrained with {done.added} new {photos}: now using {done.bundle.name}.{change}", "info"
            )
        )
        self._set(CorrectionsView())  # not "retraining" any more: the new model's corrections are read
        self.controller.load_model(weights_file=str(done.bundle))

    def _retrain_finished(self) -> None:
        """Called after the result or error handlers; still "retraining" means it was cancelled."""
        if self.view.state == "retraining":
            self._set(replace(self.view, state="idle", progress=None, text=""))
            self.controller.message.emit(
                UserMessage("Retraining cancelled: the model and its corrections are as they were.", "info")
            )


class CorrectionsBar(QFrame):
    """The banner: "2 photos corrected · Retrain with 2 new photos · Undo", and the run's progress."""

    retrain_requested = Signal()
    undo_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("corrections-bar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(False)
        self.retrain_button = QPushButton("Retrain")
        self.retrain_button.setToolTip(
            "Train the model again with the same settings and the corrected photos"
        )
        self.retrain_button.clicked.connect(self.retrain_requested)
        self.undo_button = QPushButton("Undo Last")
        self.undo_button.setToolTip("Take the last correction back (its copy is removed; your photo stays)")
        self.undo_button.clicked.connect(self.undo_requested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.undo_button)
        layout.addWidget(self.retrain_button)
        layout.addWidget(self.cancel_button)
        self.view = CorrectionsView()
        self.set_view(self.view)

    def set_view(self, view: CorrectionsView) -> None:
        self.view = view
        retraining = view.state == "retraining"
        photos = "photo" if view.count == 1 else "photos"
        if retraining:
            text = view.text or "Retraining…"
        elif view.text:
            text = view.text
        else:
            text = f"{view.count} {photos} corrected since this model was trained" + (
                f" (last: {view.last})." if view.last else "."
            )
        self.text.setText(text)
        self.retrain_button.setText(f"Retrain with {view.count} new {photos}")
        self.retrain_button.setVisible(not retraining)
        self.retrain_button.setEnabled(view.state == "idle" and view.count > 0)
        self.undo_button.setVisible(not retraining)
        self.undo_button.setEnabled(view.state == "idle" and view.count > 0)
        self.cancel_button.setVisible(retraining)
        self.progress.setVisible(retraining)
        if view.progress is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(view.progress * 1000))
        self.setVisible((view.available and (view.count > 0 or view.state != "idle")) or retraining)
