"""Page 5: how good the session's model is on the validation photos, and where it fails.

A click on a matrix cell lists its photos, most confident first; picking one shows it beside its
Grad-CAM for the class the model chose (computed in a job). The *Confidence* tab shows how far
the model's percentages can be believed: the calibration error in words and a reliability
diagram, before and after the temperature fitted at the end of training. The numbers and the
sentences are core's.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from resnet_gui.gui import tasks as gui_tasks
from resnet_gui.gui.charts import ConfusionMatrixView, ReliabilityDiagram
from resnet_gui.gui.controller import describe_error
from resnet_gui.gui.data import Picture
from resnet_gui.gui.finetune import tasks
from resnet_gui.gui.finetune.common import ERROR_COLOR, THUMBNAIL_SIDE, percent, square_icon
from resnet_gui.gui.finetune.session import FinetuneSession
from resnet_gui.gui.finetune.texts import BEST_STAGE_NOTE
from resnet_gui.gui.image_view import ImageView
from resnet_gui.gui.qtutil import heading
from resnet_gui.gui.workers import Job


class ResultsPage(QWizardPage):
    """How good the model is and where it fails: click a matrix cell to see its photos with Grad-CAM."""

    def __init__(self, session: FinetuneSession) -> None:
        super().__init__()
        self.session = session
        self.setTitle("Results")
        self.setSubTitle(
            "Measured on the validation photos only. Click a cell of the table of mistakes to see "
            "those photos, with a heat map of what made the model choose its answer."
        )
        self._cell_paths: list[tuple[Path, str, str, float]] = []
        self._thumb_job: Job | None = None
        self._explain_job: Job | None = None
        self.explained: tasks.CellExplanation | None = None
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.save_report_button = QPushButton("Save Report…")
        self.save_report_button.setToolTip(
            "Write report.json, the confusion matrix (CSV and PNG), the reliability diagram (PNG) and "
            "every photo's prediction (CSV)"
        )
        self.save_report_button.clicked.connect(self.save_report_dialog)
        self.report_label = QLabel()
        self.report_label.setWordWrap(True)
        self._report_job: Job | None = None
        self.saved_report: dict[str, Path] | None = None
        self.per_class = QTableWidget(0, 5)
        self.per_class.setHorizontalHeaderLabels(["Class", "Photos", "Precision", "Recall", "F1"])
        self.per_class.verticalHeader().setVisible(False)
        self.per_class.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.per_class.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.per_class.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.per_class.setToolTip(
            "Precision: of the photos the model put in this class, the share that belong there.\n"
            "Recall: of the photos of this class, the share the model found."
        )
        self.matrix = ConfusionMatrixView()
        self.matrix.cell_clicked.connect(self.show_cell)
        self.calibration_label = QLabel()
        self.calibration_label.setWordWrap(True)
        self.calibration_label.setTextFormat(Qt.TextFormat.PlainText)  # a bundle's note is untrusted
        self.calibration_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.reliability = ReliabilityDiagram()
        self.reliability_note = QLabel(
            "Each dot is a group of photos the model was about as sure of; bigger dots hold more "
            "photos. The temperature was fitted on these same validation photos, so “after” is "
            "measured where it was fitted."
        )
        self.reliability_note.setWordWrap(True)
        self.cell_label = QLabel("Click a cell of the matrix.")
        self.cell_label.setWordWrap(True)
        self.cell_list = QListWidget()
        self.cell_list.setViewMode(QListWidget.ViewMode.IconMode)
        self.cell_list.setIconSize(QSize(THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        self.cell_list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.cell_list.setMovement(QListWidget.Movement.Static)
        self.cell_list.setWordWrap(True)
        self.cell_list.setGridSize(QSize(THUMBNAIL_SIDE + 36, THUMBNAIL_SIDE + 34))
        self.cell_list.currentRowChanged.connect(self._image_picked)
        self.preview = ImageView()
        self.preview.setMinimumHeight(200)
        self.preview_label = QLabel()
        self.preview_label.setWordWrap(True)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.headline)
        report_row = QHBoxLayout()
        report_row.addWidget(self.save_report_button)
        report_row.addWidget(self.report_label, 1)
        left_layout.addLayout(report_row)
        left_layout.addWidget(heading("Per class"))
        left_layout.addWidget(self.per_class)
        mistakes = QWidget()
        mistakes_layout = QVBoxLayout(mistakes)
        mistakes_layout.setContentsMargins(6, 6, 6, 6)
        mistakes_layout.addWidget(heading("Confusion matrix (rows: true class, columns: the model's answer)"))
        mistakes_layout.addWidget(self.matrix, 1)
        self.top_losses_button = QPushButton("Most Confident Mistakes")
        self.top_losses_button.setToolTip(
            "The validation photos the model got wrong while most sure of itself, worst first"
        )
        self.top_losses_button.clicked.connect(self.show_top_losses)
        self.review_button = QPushButton("Review Training Photos…")
        self.review_button.setToolTip(
            "Photos whose label the model strongly disputes (possible labelling mistakes): keep, "
            "leave out or move each; nothing changes in your folder until you apply"
        )
        self.review_button.clicked.connect(self.open_review)
        mistakes_buttons = QHBoxLayout()
        mistakes_buttons.addWidget(self.top_losses_button)
        mistakes_buttons.addWidget(self.review_button)
        mistakes_buttons.addStretch(1)
        mistakes_layout.addLayout(mistakes_buttons)
        confidence = QWidget()
        confidence_layout = QVBoxLayout(confidence)
        confidence_layout.setContentsMargins(6, 6, 6, 6)
        confidence_layout.addWidget(self.calibration_label)
        confidence_layout.addWidget(self.reliability, 1)
        confidence_layout.addWidget(self.reliability_note)
        self.tabs = QTabWidget()
        self.tabs.addTab(mistakes, "Mistakes")
        self.tabs.addTab(confidence, "Confidence")
        self.tabs.setTabToolTip(
            1, "Can the model's percentages be believed? Calibration on the validation photos"
        )
        left_layout.addWidget(self.tabs, 2)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.cell_label)
        right_layout.addWidget(self.cell_list, 1)
        right_layout.addWidget(self.preview, 2)
        right_layout.addWidget(self.preview_label)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def initializePage(self) -> None:
        from resnet_gui.core.training.planning import biggest_mistake, correct_count, majority_baseline

        evaluated = self.session.evaluated
        assert evaluated is not None
        report = evaluated.report
        right = correct_count(report.confusion, len(report.classes))
        majority = majority_baseline(report.confusion)
        self.headline.setText(
            f"<span style='font-size:16pt'><b>{percent(report.accuracy)}</b></span> of the validation "
            f"photos are right ({right} of {report.count}). Always answering the largest class would "
            f"score {percent(majority)}." + self._best_stage_note()
        )
        table = self.per_class
        table.setRowCount(len(report.per_class))
        for row, metrics in enumerate(report.per_class):
            values = [
                metrics.name,
                str(metrics.support),
                percent(metrics.precision),
                percent(metrics.recall),
                percent(metrics.f1),
            ]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(row, column, item)
        table.resizeRowsToContents()
        rows_height = sum(table.rowHeight(r) for r in range(table.rowCount()))
        table.setMaximumHeight(table.horizontalHeader().height() + rows_height + 2 * table.frameWidth() + 2)
        self.matrix.set_matrix(report.confusion, list(report.classes), list(report.columns))
        mistake = biggest_mistake(report.confusion, len(report.classes))
        self.matrix.select(*(mistake or (0, 0)))
        self._show_calibration(report, evaluated.classifier)

    def _show_calibration(self, report: Any, classifier: Any) -> None:
        """The calibration in core's sentences and the diagram, or one sentence why there is none."""
        from resnet_gui.core.calibration import missing_calibration_sentence

        calibration = report.calibration
        calibrated = (
            calibration is not None
            and calibration.temperature is not None
            and calibration.reliability_after is not None
        )
        if calibrated:
            self.calibration_label.setText("\n".join(calibration.sentences()))
            self.reliability.set_bins(calibration.reliability_before, calibration.reliability_after)
        else:
            loaded = getattr(classifier, "loaded", None)
            metadata = getattr(loaded, "metadata", None) or {}
            self.calibration_label.setText(missing_calibration_sentence(metadata))
            self.reliability.clear()
        self.reliability.setVisible(calibrated)
        self.reliability_note.setVisible(calibrated)

    def _best_stage_note(self) -> str:
        """Say so when deeper training did not help: the kept weights are the last layer's alone."""
        result = self.session.result
        plan = self.session.plan
        if result is None or plan is None or plan.config.mode == "head" or result.best_stage != "probe":
            return ""
        return BEST_STAGE_NOTE

    def save_report_dialog(self) -> None:
        start = str(self.session.result.bundle.with_suffix("")) + "-report"
        folder = QFileDialog.getExistingDirectory(
            self, "Save the report in a folder", str(Path(start).parent)
        )
        if folder:
            self.save_report(Path(folder))

    def save_report(self, folder: Path) -> None:
        """Write the evaluation files into ``folder`` in the background (the PNG takes a moment)."""
        evaluated = self.session.evaluated
        assert evaluated is not None
        report = evaluated.report
        self.save_report_button.setEnabled(False)
        self.report_label.setText("Saving…")
        self._report_job = self.session.start_job(
            "finetune-report",
            tasks.write_report,
            report,
            folder,
            on_result=self._on_report_saved,
            on_error=self._on_report_error,
            on_finished=self._on_report_finished,
        )

    def _on_report_finished(self) -> None:
        self.save_report_button.setEnabled(True)

    def _on_report_saved(self, paths: dict[str, Path]) -> None:
        self.saved_report = paths
        folder = next(iter(paths.values())).parent
        self.report_label.setText(f"Saved in {folder}: " + ", ".join(p.name for p in paths.values()))

    def _on_report_error(self, error: BaseException) -> None:
        self.report_label.setText(
            f"<span style='color:{ERROR_COLOR.name()}'>{describe_error(error, 'save the report')}</span>"
        )

    def show_cell(self, row: int, column: int) -> None:
        """List the validation photos of class ``row`` that the model put in ``column``."""
        evaluated = self.session.evaluated
        assert evaluated is not None
        report = evaluated.report
        true_name = report.classes[row]
        predicted_name = report.columns[column]
        photos = [p for p in report.predictions if p[1] == true_name and p[2] == predicted_name]
        photos.sort(key=lambda p: -p[3])
        verdict = "correctly" if row == column else f"as “{predicted_name}”"
        self._show_photos(
            photos,
            f"<b>{len(photos)}</b> “{true_name}” photos classified {verdict}"
            + (" — most confident first. Click one to see why." if photos else "."),
        )

    def show_top_losses(self) -> None:
        """List the most confidently wrong validation photos (core's top losses), worst first."""
        from resnet_gui.core.training.review import top_losses

        evaluated = self.session.evaluated
        if evaluated is None:
            return
        wrong = top_losses(evaluated.report)
        photos = [(w.path, w.true_label, w.predicted_label, w.confidence) for w in wrong]
        self._show_photos(
            photos,
            f"<b>{len(photos)}</b> validation photos the model got wrong, the most confident mistakes "
            "first. Click one to see what made it answer."
            if photos
            else "The model got every validation photo right.",
        )

    def open_review(self) -> None:
        """Review Training Photos… for the model just trained (the main window's dialog)."""
        from resnet_gui.gui.review_dialog import ReviewDialog

        result = self.session.result
        if result is None or result.bundle is None:
            return
        from resnet_gui.core.training import read_bundle_info

        metadata = read_bundle_info(result.bundle).metadata  # the header only: a few kB
        dialog = ReviewDialog(self.session.controller, result.bundle, metadata, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.review_dialog = dialog

    def _show_photos(self, photos: list[tuple[Path, str, str, float]], text: str) -> None:
        """Fill the photo list (thumbnails in a job); picking one shows it with its Grad-CAM."""
        self._cell_paths = photos
        self.cell_label.setText(text)
        self.cell_list.clear()
        self.preview.set_picture(None)
        self.preview_label.setText("")
        for path, _true, _predicted, confidence in self._cell_paths:
            item = QListWidgetItem(f"{path.name}\n{percent(confidence)}")
            item.setToolTip(str(path))
            self.cell_list.addItem(item)
        if self._thumb_job is not None:
            self._thumb_job.abort()
        if self._cell_paths:
            self._thumb_job = self.session.start_job(
                "finetune-cell-thumbnails",
                gui_tasks.batch_thumbnails,
                [p[0] for p in self._cell_paths],
                THUMBNAIL_SIDE,
                on_yield=self._on_thumbnail,
            )
            self.cell_list.setCurrentRow(0)

    def _on_thumbnail(self, item: tuple[Path, np.ndarray | None]) -> None:
        path, array = item
        if array is None:
            return
        for row, entry in enumerate(self._cell_paths):
            if entry[0] == path:
                list_item = self.cell_list.item(row)
                if list_item is not None:
                    list_item.setIcon(square_icon(array, THUMBNAIL_SIDE))

    def _image_picked(self, row: int) -> None:
        if not 0 <= row < len(self._cell_paths):
            return
        path, true_name, predicted_name, confidence = self._cell_paths[row]
        evaluated = self.session.evaluated
        if evaluated is None:
            return
        self.explained = None
        self.preview_label.setText(f"Computing the heat map of “{predicted_name}” on {path.name}…")
        self._explain_job = self.session.start_job(
            "finetune-explain",
            tasks.explain_cell_image,
            evaluated.classifier,
            path,
            predicted_name,
            on_result=partial(self._on_explained, true_name, predicted_name, confidence),
            on_error=self._on_explain_error,
        )

    def _on_explained(
        self, true_name: str, predicted_name: str, confidence: float, explained: tasks.CellExplanation
    ) -> None:
        self.explained = explained
        self.preview.set_picture(
            Picture(
                (explained.photo, explained.overlay),
                (f"True class: {true_name}", f"Grad-CAM of “{predicted_name}” ({percent(confidence)})"),
                explained.path.name,
            )
        )
        self.preview_label.setText(
            f"{explained.path.name}: the warm colours show the parts of the photo that made the model "
            f"answer “{predicted_name}”. The model sees the centre square of each photo; the rest is "
            "greyed."
        )

    def _on_explain_error(self, error: BaseException) -> None:
        self.preview_label.setText(describe_error(error, "explain the photo"))
