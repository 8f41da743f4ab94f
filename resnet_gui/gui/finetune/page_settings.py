"""Page 3: base model, mode and epochs (advanced settings folded away), and the time it will take.

When the folder's photos are small, core suggests training from scratch
(:func:`resnet_gui.core.training.scratch.suggest_from_scratch`): the page preselects that mode and
a network made for small photos, and says why in one sentence. In a mode that trains from scratch
the picker lists those networks instead of the pretrained ones.

Fixes the session's plan when the user goes on: the split of the checked folder without the
left-out files, the settings, and where the bundle goes (never over an earlier run's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from resnet_gui.core.modes import TRAINING_MODES
from resnet_gui.gui.controller import describe_error
from resnet_gui.gui.finetune import tasks
from resnet_gui.gui.finetune.common import device_name, error_html, wrapped
from resnet_gui.gui.finetune.session import FinetuneSession, TrainingPlan
from resnet_gui.gui.finetune.texts import ADVANCED_TIPS, RESUME_MISSING, RESUME_QUESTION
from resnet_gui.gui.qtutil import muted


class SettingsPage(QWizardPage):
    """Base model, mode and epochs; advanced settings folded away; the time it will take."""

    def __init__(self, session: FinetuneSession) -> None:
        super().__init__()
        self.session = session
        self.setTitle("Choose the settings")
        self.setSubTitle(
            "The defaults suit most folders. The estimate below is measured on this computer with the "
            "model you pick."
        )
        self.last_estimate: Any = None
        self.suggestion = wrapped("")
        self.suggestion.setFrameShape(QFrame.Shape.StyledPanel)
        self.suggestion.setMargin(8)
        self.suggestion.hide()
        self._suggested_for: Path | None = None
        """The folder whose suggestion was applied: going Back and Next again keeps the user's choice."""
        self._preferred_model = ""
        self._models_from_scratch: bool | None = None
        """Which list the picker holds: networks for training from scratch, or pretrained ones."""
        self.model_combo = QComboBox()
        self.model_combo.currentIndexChanged.connect(self._model_picked)
        self.mode_group = QButtonGroup(self)
        mode_box = QVBoxLayout()
        self.mode_buttons: dict[str, QRadioButton] = {}
        for mode in TRAINING_MODES.values():
            button = QRadioButton(mode.choice_text)
            button.setToolTip(mode.description)
            self.mode_group.addButton(button)
            self.mode_buttons[mode.key] = button
            explanation = wrapped(mode.description)
            explanation.setIndent(24)
            palette = explanation.palette()
            palette.setColor(explanation.foregroundRole(), muted(palette))
            explanation.setPalette(palette)
            mode_box.addWidget(button)
            mode_box.addWidget(explanation)
            button.toggled.connect(self._mode_toggled)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setToolTip(
            "Passes over the training photos. Training stops early once it stops improving."
        )
        self.epochs.valueChanged.connect(self._update_estimate)
        self.val_percent = QSpinBox()  # a percentage: "20 %" reads better than "0.20"
        self.val_percent.setRange(5, 50)
        self.val_percent.setSingleStep(5)
        self.val_percent.setSuffix(" %")
        self.val_percent.setValue(20)
        self.val_percent.setToolTip(
            "The share of each class kept aside to measure the model on photos it never trained on."
        )
        self.val_percent.valueChanged.connect(self._update_estimate)
        self.val_folder_note = QLabel("the photos of the val/ folder")
        self.val_folder_note.hide()
        val_row = QHBoxLayout()
        val_row.addWidget(self.val_percent, 1)
        val_row.addWidget(self.val_folder_note, 1)
        self.out_edit = QLineEdit()
        self.out_edit.textChanged.connect(self.completeChanged)
        # What is at the destination, looked up in a job on each Next (a run may have written it since).
        self.destination: tasks.DestinationChecked | None = None
        self._estimate_text = ""
        out_browse = QPushButton("Change…")
        out_browse.clicked.connect(self._browse_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(out_browse)

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced settings")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.toggled.connect(self._toggle_advanced)
        self.advanced = QWidget()
        advanced_form = QFormLayout(self.advanced)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 512)
        self.batch_size.setValue(32)
        self.lr_edit = QLineEdit()
        self.lr_edit.setPlaceholderText("automatic")
        self.optimizer = QComboBox()
        for key, text in (("", "automatic"), ("sgd", "SGD (momentum)"), ("adamw", "AdamW")):
            self.optimizer.addItem(text, key)
        self.label_smoothing = QDoubleSpinBox()
        self.label_smoothing.setRange(0.0, 0.5)
        self.label_smoothing.setSingleStep(0.05)
        self.label_smoothing.setValue(0.1)
        self.color_jitter = QDoubleSpinBox()
        self.color_jitter.setRange(0.0, 0.5)
        self.color_jitter.setSingleStep(0.05)
        self.patience = QSpinBox()
        self.patience.setRange(0, 100)
        self.patience.setSpecialValueText("never stop early")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.device = QComboBox()
        self.device.addItem("Automatic", "auto")
        for device in session.devices:
            self.device.addItem(device.upper() if device == "cpu" else device, device)
        self.device.currentIndexChanged.connect(self._model_picked)
        for label, key, control in (
            ("Batch size", "batch_size", self.batch_size),
            ("Learning rate", "learning_rate", self.lr_edit),
            ("Optimizer", "optimizer", self.optimizer),
            ("Label smoothing", "label_smoothing", self.label_smoothing),
            ("Colour jitter", "color_jitter", self.color_jitter),
            ("Stop after epochs without progress", "patience", self.patience),
            ("Random seed", "seed", self.seed),
            ("Device", "device", self.device),
        ):
            control.setToolTip(ADVANCED_TIPS[key])
            advanced_form.addRow(label, control)
            advanced_form.labelForField(control).setToolTip(ADVANCED_TIPS[key])
        from resnet_gui.core.training.distributed import processes_choice_count

        self.processes: QSpinBox | None = None
        gpus = processes_choice_count(session.devices)
        if gpus > 1:  # on one device several processes only share it (see core.training.distributed)
            self.processes = QSpinBox()
            self.processes.setRange(1, gpus)
            self.processes.setValue(1)
            self.processes.setToolTip(ADVANCED_TIPS["processes"])
            advanced_form.addRow("Processes", self.processes)
            advanced_form.labelForField(self.processes).setToolTip(ADVANCED_TIPS["processes"])
        self.advanced.setVisible(False)
        self.batch_size.valueChanged.connect(self._update_estimate)

        self.estimate = wrapped("")
        self.estimate.setFrameShape(QFrame.Shape.StyledPanel)
        self.estimate.setMargin(8)
        form = QFormLayout()
        form.addRow("Start from", self.model_combo)
        form.addRow("How much learns", mode_box)
        form.addRow("Epochs (at most)", self.epochs)
        form.addRow("Photos kept for validation", val_row)
        form.addRow("Save the model as", out_row)
        layout = QVBoxLayout(self)
        layout.addWidget(self.suggestion)
        layout.addLayout(form)
        layout.addWidget(self.advanced_toggle)
        layout.addWidget(self.advanced)
        layout.addWidget(self.estimate)
        layout.addStretch(1)
        session.base_changed.connect(self._base_changed)
        session.base_progress.connect(self.estimate.setText)

    @property
    def base(self) -> Any:
        """The session's base model with its measured costs, once ready."""
        return self.session.base

    # -- filling

    def initializePage(self) -> None:
        settings = self.session.settings
        if self.mode_group.checkedButton() is None:
            self._preferred_model = settings.finetune_base
            self.mode_buttons[settings.finetune_mode].setChecked(True)
        suggestion = self.session.scratch_suggestion()
        if suggestion is not None and self._suggested_for != self.session.folder:
            self._suggested_for = self.session.folder
            self._preferred_model = suggestion.model
            self._models_from_scratch = None  # refilled with the suggested network selected
            self.mode_buttons[suggestion.mode].setChecked(True)
        self.suggestion.setText(suggestion.reason if suggestion is not None else "")
        self.suggestion.setVisible(suggestion is not None)
        refilled = self._sync_models()
        has_val_folder = self.session.has_val_folder
        self.val_percent.setVisible(not has_val_folder)
        self.val_folder_note.setVisible(has_val_folder)
        if refilled or (self.session.base is None and not self.session.base_pending()):
            self._model_picked()
        self._update_estimate()

    def _from_scratch(self) -> bool:
        from resnet_gui.core.modes import TRAINING_MODES

        return TRAINING_MODES[self.mode()].from_scratch

    def _sync_models(self) -> bool:
        """Fill the picker for the mode (networks for training from scratch, or pretrained ones),
        keeping the preferred entry; whether it was refilled."""
        scratch = self._from_scratch()
        if self._models_from_scratch == scratch and self.model_combo.count():
            return False
        current = str(self.model_combo.currentData() or "")
        options = self.session.scratch_models() if scratch else self.session.base_models()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for option in options:
            self.model_combo.addItem(option.label, option.ref)
        for wanted in (self._preferred_model, current):
            index = self.model_combo.findData(wanted) if wanted else -1
            if index >= 0:
                self.model_combo.setCurrentIndex(index)
                break
        self.model_combo.blockSignals(False)
        self._models_from_scratch = scratch
        return True

    def _suggest_out(self) -> None:
        if self.out_edit.text() and self.out_edit.isModified():
            return  # the user's own choice stays
        suggested = self.session.suggest_out(str(self.model_combo.currentData() or "model"), self.mode())
        if suggested is not None:
            self.out_edit.setText(str(suggested))

    def _browse_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the model as", self.out_edit.text(), "Model bundle (*.safetensors)"
        )
        if path:
            if not path.endswith(".safetensors"):
                path += ".safetensors"
            self.out_edit.setText(path)
            self.out_edit.setModified(True)

    def _toggle_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def mode(self) -> str:
        for mode, button in self.mode_buttons.items():
            if button.isChecked():
                return mode
        return "head"

    def _mode_toggled(self, on: bool) -> None:
        if not on:
            return
        from resnet_gui.core.training.config import MODE_DEFAULTS

        defaults = MODE_DEFAULTS[self.mode()]
        self.epochs.setValue(defaults["epochs"])
        self.patience.setValue(defaults["patience"])
        if self._models_from_scratch is not None and self._sync_models():
            self._model_picked()  # another kind of network: measure it
        self._update_estimate()  # also suggests a file name for the new mode

    # -- the base model and the estimate

    def _model_picked(self, *_: Any) -> None:
        ref = self.model_combo.currentData()
        if not ref or self.session.checked is None:
            return
        self.session.prepare_base(str(ref), self.device.currentData() or "auto", self._from_scratch())
        self._suggest_out()

    def _base_changed(self) -> None:
        session = self.session
        if session.base_error:
            self.estimate.setText(error_html(session.base_error))
        elif session.base is None:
            self.estimate.setText("Measuring how fast this computer trains this model…")
        else:
            self._update_estimate()
        self.completeChanged.emit()

    def config(self) -> Any:
        """The settings as core's TrainConfig (``None`` fields take the mode's defaults)."""
        from resnet_gui.core.training import TrainConfig

        lr_text = self.lr_edit.text().strip()
        try:
            lr = float(lr_text) if lr_text else None
        except ValueError:
            lr = -1.0  # rejected by TrainConfig.resolved with a clear message
        return TrainConfig(
            mode=self.mode(),
            epochs=self.epochs.value(),
            batch_size=self.batch_size.value(),
            lr=lr,
            optimizer=self.optimizer.currentData() or None,
            label_smoothing=self.label_smoothing.value(),
            color_jitter=self.color_jitter.value(),
            patience=self.patience.value(),
            seed=self.seed.value(),
            device=self.device.currentData() or "auto",
        )

    def split(self) -> Any:
        """The session's split with this page's validation share and seed."""
        return self.session.split(val_fraction=self.val_percent.value() / 100, seed=self.seed.value())

    def _update_estimate(self, *_: Any) -> None:
        from resnet_gui.core.training import DatasetError, TrainingError
        from resnet_gui.core.training.estimate import describe_seconds, estimate_run

        self._suggest_out()
        base = self.session.base
        if base is None:
            return
        try:
            split = self.split()
            estimate = estimate_run(base.costs, self.config(), len(split.train), len(split.val))
        except (DatasetError, TrainingError) as error:
            self.estimate.setText(error_html(str(error)))
            return
        self.last_estimate = estimate
        lines = [f"<b>{len(split.train)} photos to train on, {len(split.val)} to validate.</b>"]
        if estimate.setup_seconds >= 1:
            lines.append(
                f"Reading the photos through the network once: {describe_seconds(estimate.setup_seconds)}."
            )
        lines.append(f"Each epoch: {describe_seconds(estimate.epoch_seconds)}.")
        lines.append(
            f"In all: {describe_seconds(estimate.total_seconds)} at most "
            f"({estimate.epochs} epochs"
            + ("; training stops early once it stops improving). " if self.patience.value() else "). ")
            + f"Measured on this computer's {device_name(base.costs.device)}."
        )
        self.estimate.setText("<br>".join(lines))

    def isComplete(self) -> bool:
        return bool(self.out_edit.text().strip()) and not self.session.base_error

    def out_path(self) -> Path:
        out = Path(self.out_edit.text().strip()).expanduser()
        return out if out.suffix == ".safetensors" else out.with_name(out.name + ".safetensors")

    def _check_destination(self, out: Path) -> None:
        """Look at ``out`` in a job (a file there, the checkpoint of a cut-off run and the photos it
        used), then press Next again."""
        assert self.session.checked is not None
        self._estimate_text = self.estimate.text()
        self.estimate.setText(f"Looking at {out.name}…")
        self.session.start_job(
            "finetune-destination",
            tasks.check_destination,
            out,
            self.session.checked.dataset.root,
            on_result=self._destination_checked,
            on_error=self._destination_failed,
        )

    def _destination_checked(self, checked: tasks.DestinationChecked) -> None:
        self.estimate.setText(self._estimate_text)
        wizard = self.wizard()
        if checked.out == self.out_path() and wizard is not None and wizard.currentPage() is self:
            self.destination = checked
            wizard.next()

    def _destination_failed(self, error: BaseException) -> None:
        self.estimate.setText(error_html(describe_error(error, "look at where the model goes")))

    def validatePage(self) -> bool:
        from resnet_gui.core.training import DatasetError, TrainingError

        try:
            self.config().resolved()
            split = self.split()
        except (DatasetError, TrainingError) as error:
            QMessageBox.warning(self, "Check the settings", str(error))
            return False
        if not split.val:
            QMessageBox.warning(self, "Check the settings", "No photos are left for validation.")
            return False
        out = self.out_path()
        checked, self.destination = self.destination, None
        if checked is None or checked.out != out:
            self._check_destination(out)  # Next goes on once it is known
            return False
        if checked.exists and not self.out_edit.isModified():
            # The suggested name was taken meanwhile (e.g. by the previous run): never overwrite it.
            self._suggest_out()
            self._check_destination(self.out_path())
            return False
        if checked.exists:
            answer = QMessageBox.question(
                self, "Replace the model?", f"“{out.name}” already exists. Replace it when training ends?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        config = self.config()
        interrupted = self._interrupted_run(out, checked.interrupted)
        if interrupted is False:
            return False
        resume = interrupted is not None
        if isinstance(interrupted, tuple):
            config, split = interrupted
        settings = self.session.settings
        settings.finetune_mode = self.mode()
        settings.finetune_base = str(self.model_combo.currentData() or "")
        base = self.session.base
        self.session.plan = TrainingPlan(
            base=base.loaded if base is not None else str(self.model_combo.currentData()),
            source=str(self.model_combo.currentData() or ""),
            split=split,
            config=config,
            out=out,
            device=self.device.currentData() or "auto",
            resume=resume,
            processes=self.processes.value() if self.processes is not None else 1,
        )
        return True

    def _interrupted_run(self, out: Path, interrupted: Any) -> tuple[Any, Any] | bool | None:
        """An interrupted run into ``out`` (the app was closed while training): resume it?

        Returns its (settings, split) to resume, None to start over, False to stay on this page.
        """
        if interrupted is None:
            return None
        answer = QMessageBox.question(
            self,
            "Resume the interrupted run?",
            RESUME_QUESTION.format(name=out.name, epochs=interrupted.epochs_done),
            QMessageBox.StandardButton.Yes
            | QMessageBox.StandardButton.No
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer != QMessageBox.StandardButton.Yes:
            return None
        if interrupted.missing:
            QMessageBox.warning(
                self,
                "Cannot resume",
                RESUME_MISSING.format(count=len(interrupted.missing), name=interrupted.missing[0].name),
            )
            return False
        return interrupted.config, interrupted.split
