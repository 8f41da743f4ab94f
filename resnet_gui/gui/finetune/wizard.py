"""The fine-tuning wizard: from a folder of labelled photos to a model the classifier uses, with proof.

Six pages over one :class:`~resnet_gui.gui.finetune.session.FinetuneSession` (the state and the
jobs; the pages never reach into each other), so the window never freezes:

1. folder (one sub-folder per class, or ``train/`` + ``val/``); 2. the health report: examples
per class, warnings, flagged files to leave out; 3. base model, mode, epochs, the time per epoch
measured on this computer; 4. live loss and accuracy curves, progress, ETA, stop and resume;
5. validation accuracy, per-class table, a confusion matrix whose cells show their images with
Grad-CAM; 6. where the model is, a copy elsewhere, and "use this model now".

This module is the window: the pages in order, and closing safely while a run goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMessageBox, QWidget, QWizard

from resnet_gui.gui.controller import Controller
from resnet_gui.gui.finetune.page_folder import FolderPage
from resnet_gui.gui.finetune.page_health import HealthPage
from resnet_gui.gui.finetune.page_project import ProjectPage
from resnet_gui.gui.finetune.page_results import ResultsPage
from resnet_gui.gui.finetune.page_save import SavePage
from resnet_gui.gui.finetune.page_settings import SettingsPage
from resnet_gui.gui.finetune.page_training import TrainingPage
from resnet_gui.gui.finetune.session import BaseModelOption, FinetuneSession, TrainingPlan
from resnet_gui.gui.finetune.texts import CLOSE_WHILE_TRAINING
from resnet_gui.gui.settings import AppSettings

PAGE_FOLDER, PAGE_HEALTH, PAGE_SETTINGS, PAGE_TRAINING, PAGE_RESULTS, PAGE_SAVE = range(6)
PAGE_PROJECT = 6
"""The class editor of a labelling project: between the first page and the health report, when chosen."""


class FinetuneWizard(QWizard):
    """The six pages over one session, and a safe close while training runs."""

    use_model = Signal(object)  # Path of a bundle for the classifier

    def __init__(
        self,
        controller: Controller,
        settings: AppSettings,
        *,
        base_models: Sequence[BaseModelOption] | None = None,
        devices: Sequence[str] = ("cpu",),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = settings
        self.session = FinetuneSession(
            controller, settings, base_models=base_models, devices=devices, parent=self
        )
        self.setWindowTitle("Fine-Tune a Model on Your Photos")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Done")
        self.folder_page = FolderPage(self.session)
        self.health_page = HealthPage(self.session)
        self.settings_page = SettingsPage(self.session)
        self.training_page = TrainingPage(self.session)
        self.results_page = ResultsPage(self.session)
        self.save_page = SavePage(self.session)
        self.project_page = ProjectPage(self.session)
        self.folder_page.project_chosen.connect(self.project_page.show_project)
        self.setPage(PAGE_PROJECT, self.project_page)
        for page_id, page in enumerate(
            (
                self.folder_page,
                self.health_page,
                self.settings_page,
                self.training_page,
                self.results_page,
                self.save_page,
            )
        ):
            self.setPage(page_id, page)
        self.setStartId(PAGE_FOLDER)
        self.resize(1080, 780)
        # QWizard enables Back itself on a page switch: the training page disables it again while it runs.
        self.currentIdChanged.connect(lambda _: self.training_page._update_buttons())

    @property
    def plan(self) -> TrainingPlan | None:
        """What the training page runs (the session's)."""
        return self.session.plan

    def running(self) -> bool:
        return self.session.running()

    def nextId(self) -> int:
        """The pages' own order; the save page is the last although the class editor's id is higher."""
        if self.currentId() == PAGE_SAVE:
            return -1
        return super().nextId()

    def open_project(self, root: Any) -> bool:
        """Show the class editor of the project in ``root`` (File → Recent Projects), to add photos and
        train again; False (nothing changes) while a training runs."""
        if self.running():
            return False
        if self.currentId() != PAGE_FOLDER:
            self.restart()
        self.folder_page.choose_project(Path(root))
        self.next()
        return True

    def reject(self) -> None:
        if self.running():
            answer = QMessageBox.question(self, "Stop training?", CLOSE_WHILE_TRAINING)
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.session.stop()
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.running():
            event.ignore()
            self.reject()
            return
        super().closeEvent(event)

    def accept(self) -> None:
        result = self.session.result
        bundle = None if result is None else result.bundle
        if bundle is not None and self.save_page.use_now.isChecked():
            self.use_model.emit(bundle)
        super().accept()

    def keyPressEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Escape and self.running():
            self.session.stop()
            return
        super().keyPressEvent(event)
