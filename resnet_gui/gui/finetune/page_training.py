"""Page 4: the session's run: progress, ETA, live curves, Stop and Resume; then the validation check."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from resnet_gui.gui.charts import CurveChart
from resnet_gui.gui.finetune.common import TRAIN_COLOR, VAL_COLOR, duration, error_html, percent
from resnet_gui.gui.finetune.session import FinetuneSession
from resnet_gui.gui.finetune.texts import PHASE_TEXT, STAGE_TEXT, STATUS_TEXT, STOPPED_WITHOUT_MODEL
from resnet_gui.gui.workers import Job


class TrainingPage(QWizardPage):
    """The run: progress, ETA, live curves, stop and resume; then the validation check."""

    def __init__(self, session: FinetuneSession) -> None:
        super().__init__()
        self.session = session
        self.setTitle("Training")
        self.setSubTitle("You can keep using the app meanwhile. Stopping keeps the best model so far.")
        self._stage = ""
        self._offset = 0
        self._probe_last = 0
        self._extracted = False
        self.phase = QLabel()
        self.phase.setWordWrap(True)
        self.progress = QProgressBar()
        self.eta = QLabel()
        self.best = QLabel()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; the best model so far is kept (Esc)")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Go on from the last finished epoch")
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.resume_button.hide()
        self.loss_chart = CurveChart("Loss (lower is better)")
        self.accuracy_chart = CurveChart("Accuracy", percent=True)
        for chart in (self.loss_chart, self.accuracy_chart):
            chart.add_series("train", TRAIN_COLOR)
            chart.add_series("validation", VAL_COLOR)
        top = QHBoxLayout()
        top.addWidget(self.progress, 1)
        top.addWidget(self.stop_button)
        top.addWidget(self.resume_button)
        charts = QHBoxLayout()
        charts.addWidget(self.loss_chart, 1)
        charts.addWidget(self.accuracy_chart, 1)
        info = QHBoxLayout()
        info.addWidget(self.eta)
        info.addStretch(1)
        info.addWidget(self.best)
        layout = QVBoxLayout(self)
        layout.addWidget(self.phase)
        layout.addLayout(top)
        layout.addLayout(info)
        layout.addLayout(charts, 1)
        session.run_event.connect(self._on_event)
        session.stop_requested.connect(self._stopping)
        session.evaluation_started.connect(self._evaluating)
        session.evaluation_progress.connect(self._on_eval_progress)
        session.evaluated_changed.connect(self._on_evaluated)
        session.run_failed.connect(self._on_error)
        session.running_changed.connect(self._running_changed)

    # -- the session's run, as the tests and the results page read it

    @property
    def result(self) -> Any:
        return self.session.result

    @property
    def evaluated(self) -> Any:
        return self.session.evaluated

    @property
    def error(self) -> str:
        return self.session.run_error

    @property
    def _job(self) -> Job | None:
        return self.session.train_job

    def initializePage(self) -> None:
        plan = self.session.plan
        self.start(resume=plan is not None and plan.resume)

    def cleanupPage(self) -> None:
        """Back to the settings: a run still going is stopped (its checkpoint stays)."""
        self.stop()

    def running(self) -> bool:
        return self.session.running()

    def start(self, resume: bool = False) -> None:
        if not resume:  # a resumed run goes on where its curves stopped
            for chart in (self.loss_chart, self.accuracy_chart):
                chart.clear()
            self._stage, self._offset, self._probe_last = "", 0, 0
        self.resume_button.hide()
        self.stop_button.show()
        self.stop_button.setEnabled(True)
        self.best.setText("")
        self._extracted = False
        self.eta.setText("")
        self.phase.setText("Preparing…")
        self.progress.setRange(0, 0)
        self.session.start_training(resume)
        self.completeChanged.emit()

    def stop(self) -> None:
        """Ask the run to stop at its next step (the best weights so far are saved)."""
        self.session.stop()

    def _stopping(self) -> None:
        self.stop_button.setEnabled(False)
        self.phase.setText("Stopping after this step…")

    # -- events of the run

    def _mode(self) -> str:
        plan = self.session.plan
        return plan.config.mode if plan is not None else "head"

    def _x(self, stage: str, epoch: float) -> float:
        return (self._offset if stage == "train" else 0) + epoch

    def _on_event(self, event: Any) -> None:
        from resnet_gui.core.training import EpochMetrics, Progress, StepMetrics, TrainResult

        if isinstance(event, Progress):
            self._show_progress(event)
        elif isinstance(event, StepMetrics):
            self._show_step(event)
        elif isinstance(event, EpochMetrics):
            self._show_epoch(event)
        elif isinstance(event, TrainResult):
            self._show_result(event)

    def _show_progress(self, event: Any) -> None:
        self._extracted = self._extracted or event.phase.startswith("features")
        base = PHASE_TEXT.get(event.phase, event.phase.capitalize())
        if event.phase == "prepare":
            self.phase.setText(base if not event.message else event.message.capitalize() + "…")
            self.progress.setRange(0, 0)
            return
        self.phase.setText(f"{base} — {event.done} of {event.total}")
        self.progress.setRange(0, max(1, event.total))
        self.progress.setValue(event.done)
        self.eta.setText(
            f"About {duration(event.eta_seconds)} left in this step" if event.eta_seconds else ""
        )

    def _stage_name(self, stage: str) -> str:
        return STAGE_TEXT["probe" if stage == "probe" else self._mode()]

    def _enter_stage(self, stage: str) -> None:
        """Epochs restart at 1 in the fine-tuning stage: its curves continue after the probe's."""
        if stage == self._stage:
            return
        if stage == "train" and self._stage == "probe" and self._probe_last:
            self._offset = self._probe_last
            for chart in (self.loss_chart, self.accuracy_chart):
                chart.add_boundary(self._offset + 0.5, "deeper layers learn")
        self._stage = stage

    def _show_step(self, event: Any) -> None:
        self._enter_stage(event.stage)
        fraction = ((event.epoch - 1) + event.step / max(1, event.steps)) / max(1, event.epochs)
        self.progress.setRange(0, 1000)
        self.progress.setValue(int(1000 * fraction))
        self.phase.setText(
            f"{self._stage_name(event.stage)}: epoch {event.epoch} of {event.epochs}, "
            f"step {event.step} of {event.steps} — {event.images_per_second:.0f} photos/s"
        )
        if event.eta_seconds is not None:
            self.eta.setText(f"About {duration(event.eta_seconds)} left at most")
        if event.stage == "train" and self._mode() != "head" and event.steps > 1:
            x = self._x(event.stage, event.epoch - 1 + event.step / event.steps)
            self.loss_chart.add_point("train", x, event.loss)
            self.accuracy_chart.add_point("train", x, event.accuracy)

    def _show_epoch(self, event: Any) -> None:
        self._enter_stage(event.stage)
        if event.stage == "probe":
            self._probe_last = event.epoch
        x = self._x(event.stage, event.epoch)
        self.loss_chart.add_point("train", x, event.train_loss)
        self.accuracy_chart.add_point("train", x, event.train_accuracy)
        if event.val_loss is not None:
            self.loss_chart.add_point("validation", x, event.val_loss)
        if event.val_accuracy is not None:
            self.accuracy_chart.add_point("validation", x, event.val_accuracy)
        if event.best:
            for chart in (self.loss_chart, self.accuracy_chart):
                chart.set_marker(x, "best")
            self.best.setText(
                f"Best so far: epoch {int(x)}, validation accuracy {percent(event.val_accuracy)}"
            )
        if event.eta_seconds is not None:
            self.eta.setText(f"About {duration(event.eta_seconds)} left at most")

    def _show_result(self, result: Any) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.stop_button.hide()
        cached = self._mode() == "head" and self.session.plan is not None and not self._extracted
        self.eta.setText(
            f"{STATUS_TEXT[result.status]} after {duration(result.seconds)}."
            + (" The photos' features came from an earlier run's cache." if cached else "")
        )
        resumable = result.status == "cancelled" and result.checkpoint is not None
        self.resume_button.setVisible(resumable)
        if result.bundle is None:
            # The message names the Resume button only when it is there.
            self.phase.setText(STOPPED_WITHOUT_MODEL[resumable])

    def _evaluating(self) -> None:
        plan = self.session.plan
        count = len(plan.split.val) if plan is not None else 0
        self.phase.setText(f"Checking the model on the {count} validation photos…")
        self.progress.setRange(0, max(1, count))
        self.progress.setValue(0)

    def _on_eval_progress(self, progress: Any) -> None:
        self.progress.setRange(0, max(1, progress.total))
        self.progress.setValue(progress.done)

    def _on_evaluated(self) -> None:
        from resnet_gui.core.training.planning import correct_count

        evaluated = self.session.evaluated
        if evaluated is None:
            return
        report = evaluated.report
        right = correct_count(report.confusion, len(report.classes))
        self.phase.setText(
            f"<b>Validation accuracy: {percent(report.accuracy)}</b> ({right} of {report.count} photos "
            "the model never trained on). Next: where it goes wrong."
        )
        self.completeChanged.emit()

    def _on_error(self, message: str, training: bool) -> None:
        self.phase.setText(error_html(message))
        self.stop_button.hide()
        if training and self.session.has_checkpoint():
            self.resume_button.show()

    def _running_changed(self) -> None:
        self._update_buttons()
        self.completeChanged.emit()

    def _update_buttons(self) -> None:
        """Back waits for the run to end (Back stops it; the settings must not change under it)."""
        wizard = self.wizard()
        if wizard is None or wizard.currentPage() is not self:
            return
        back = wizard.button(QWizard.WizardButton.BackButton)
        if back is not None:
            back.setEnabled(not self.running())

    def isComplete(self) -> bool:
        return self.session.evaluated is not None and not self.running()
