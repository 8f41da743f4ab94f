"""Page 6: where the session's model was saved, a copy elsewhere (written in a job), and "use it now"."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWizardPage,
)

from resnet_gui.core.modes import TRAINING_MODES
from resnet_gui.core.text import printable, printable_path
from resnet_gui.gui.controller import describe_error
from resnet_gui.gui.finetune import tasks
from resnet_gui.gui.finetune.common import percent, wrapped
from resnet_gui.gui.finetune.session import FinetuneSession
from resnet_gui.gui.qtutil import heading
from resnet_gui.gui.workers import Job


class SavePage(QWizardPage):
    """Where the model was saved, a copy elsewhere, and whether to use it now."""

    def __init__(self, session: FinetuneSession) -> None:
        super().__init__()
        self.session = session
        self.setTitle("Save and use the model")
        self.setSubTitle("The model is saved. Use it now, or later with Model ▸ Use a Weights File….")
        self._copy_job: Job | None = None
        self.copied: Path | None = None
        self.where = wrapped()
        self.details = wrapped()
        show = QPushButton("Show in Folder")
        show.clicked.connect(self.show_in_folder)
        self.copy_button = QPushButton("Save a Copy As…")
        self.copy_button.clicked.connect(self.save_copy_dialog)
        buttons = QHBoxLayout()
        buttons.addWidget(show)
        buttons.addWidget(self.copy_button)
        buttons.addStretch(1)
        self.use_now = QCheckBox("Use this model in the classifier now")
        self.use_now.setChecked(True)
        self.cli = wrapped()
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Saved as"))
        layout.addWidget(self.where)
        layout.addLayout(buttons)
        layout.addSpacing(8)
        layout.addWidget(self.details)
        layout.addSpacing(8)
        layout.addWidget(self.use_now)
        layout.addWidget(self.cli)
        layout.addStretch(1)
        self.setFinalPage(True)

    def bundle(self) -> Path | None:
        result = self.session.result
        return None if result is None else result.bundle

    def initializePage(self) -> None:
        bundle = self.bundle()
        assert bundle is not None
        self.where.setText(
            f"{html.escape(printable_path(bundle))}<br>(settings, split and scores: "
            f"{html.escape(printable(bundle.with_suffix('.json').name))})"
        )
        evaluated = self.session.evaluated
        plan = self.session.plan
        report = evaluated.report if evaluated is not None else None
        lines = []
        if plan is not None:
            resolved = plan.config.resolved()
            lines.append(
                f"Classes: {', '.join(plan.split.classes)}. How much learned: "
                f"{TRAINING_MODES[resolved.mode].title}; "
                f"{len(plan.split.train)} training and {len(plan.split.val)} validation photos."
            )
        if report is not None:
            lines.append(f"Validation accuracy: {percent(report.accuracy)}.")
        self.details.setText(" ".join(lines))
        self.cli.setText(f'From a terminal: <code>resnet-gui classify --model "{bundle}" PHOTO</code>')
        self.cli.setTextFormat(Qt.TextFormat.RichText)

    def show_in_folder(self) -> None:
        bundle = self.bundle()
        if bundle is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(bundle.parent)))

    def save_copy_dialog(self) -> None:
        bundle = self.bundle()
        if bundle is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Save a copy of the model", str(Path.home() / bundle.name), "Model bundle (*.safetensors)"
        )
        if path:
            self.save_copy(Path(path))

    def save_copy(self, target: Path) -> None:
        """Copy the bundle and its sidecar to ``target`` in the background (a model is tens of MB)."""
        bundle = self.bundle()
        if bundle is None:
            return
        self.copy_button.setEnabled(False)
        self.copied = None
        self._copy_job = self.session.start_job(
            "finetune-copy",
            tasks.copy_bundle,
            bundle,
            target,
            on_result=self._on_copied,
            on_error=self._on_copy_error,
            on_finished=self._on_copy_finished,
        )

    def _on_copy_finished(self) -> None:
        self.copy_button.setEnabled(True)

    def _on_copied(self, copied: Path) -> None:
        self.copied = copied
        self.where.setText(self.where.text() + f"<br>Copy: {copied}")

    def _on_copy_error(self, error: BaseException) -> None:
        text = str(error) if isinstance(error, OSError) else describe_error(error, "save the copy")
        QMessageBox.warning(self, "Could not save the copy", text)
