"""The batch window: classify a whole folder into a live table, filter and sort it, export, sort files.

The run is core's streaming pipeline (:func:`resnet_gui.core.batch.classify_folder`) in a worker job
of the controller's runner (so closing the app stops it), one queued signal per batch. The table is
a :class:`BatchTableModel` behind a :class:`BatchFilterModel` (class and minimum confidence filters,
sorting by any column). Its Note column says when the model is *not sure* of a photo (core's one
rule, under the app's threshold as the run began) and when a photo looks unlike the training photos;
the CSV export carries both as its ``not_sure`` and ``unlike_training`` columns. Thumbnails are
decoded lazily, only for the rows the view paints, by a second small job. Double-clicking a row
opens the image in the main window with its explanation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QCloseEvent, QColor, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.batch import (
    SORT_MODES,
    BatchProgress,
    BatchRow,
    SortAction,
    SortReport,
    format_duration,
    format_plan,
)
from resnet_gui.core.batch.scan import TOP_FOLDER, subfolder_of
from resnet_gui.core.confidence import NOT_SURE_TEXT
from resnet_gui.gui import tasks
from resnet_gui.gui.controller import Controller, describe_error
from resnet_gui.gui.qtutil import to_qimage
from resnet_gui.gui.workers import Job

COL_FILE, COL_FOLDER, COL_TOP1, COL_CONFIDENCE, COL_NOTE, COL_TOPK = range(6)
HEADERS = ("File", "Folder", "Top-1 class", "Confidence", "Note", "Top-k")
UNLIKE_NOTE = "unlike the training photos"  # the Note column's words (its tooltip says more)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ROW_ROLE = Qt.ItemDataRole.UserRole + 2
ALL_CLASSES = ""
ALL_FOLDERS: str | None = None  # the folder filter's "All folders" ("" is the chosen folder itself)
EXPORT_VISIBLE, EXPORT_ALL = "visible", "all"
FAILED = "<failed>"  # the class filter's entry for rows that could not be classified
THUMBNAILS_PER_JOB = 64
BATCH_SIZE = 16
ERROR_COLOR = QColor(190, 40, 40)
SORT_MODE_TEXT = {
    "copy": "Copy the files (the originals stay)",
    "link": "Link to the files (symbolic links)",
    "move": "Move the files",
}


class BatchTableModel(QAbstractTableModel):
    """The rows of a run, in arrival order; thumbnails are asked for when a row is painted."""

    thumbnails_wanted = Signal()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[BatchRow] = []
        self.root: Path | None = None  # the folder classified: the Folder column is relative to it
        self.unsure_threshold: float | None = None  # the run's "not sure" threshold (the Note column)
        self._row_of: dict[Path, int] = {}
        self._thumbnails: dict[Path, QPixmap | None] = {}
        self.wanted: dict[Path, None] = {}  # an ordered set of paths whose thumbnail is wanted
        self._asked = False

    # -- the Qt model

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = index.column()
        top1 = row.top1
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COL_FOLDER:
                return self.folder_of(row) or TOP_FOLDER
            if column == COL_NOTE:
                return self.note(row)
            return _display(row, column)
        if role == SORT_ROLE:
            if column == COL_FILE:
                return row.path.name.lower()
            if column == COL_FOLDER:
                return self.folder_of(row).lower()
            if column == COL_CONFIDENCE:
                return top1.probability if top1 is not None else -1.0
            if column == COL_TOP1:
                return top1.label.lower() if top1 is not None else ""
            if column == COL_NOTE:
                return self.note(row)
            return _display(row, column)
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.DecorationRole and column == COL_FILE:
            return self._thumbnail(row.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == COL_NOTE and self.note(row):
                return self.note_tooltip(row)
            return str(row.path) + (f"\n{row.error}" if row.error else "")
        if role == Qt.ItemDataRole.ForegroundRole and not row.ok and column in (COL_TOP1, COL_TOPK):
            return ERROR_COLOR
        if role == Qt.ItemDataRole.TextAlignmentRole and column == COL_CONFIDENCE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def note(self, row: BatchRow) -> str:
        """``not sure``, ``unlike the training photos``, both, or nothing."""
        notes = []
        if row.not_sure(self.unsure_threshold):
            notes.append(NOT_SURE_TEXT)
        if row.unusual:
            notes.append(UNLIKE_NOTE)
        return " · ".join(notes)

    def note_tooltip(self, row: BatchRow) -> str:
        """The Note in sentences, with the threshold."""
        lines = []
        if row.not_sure(self.unsure_threshold) and self.unsure_threshold is not None:
            lines.append(
                f"The model is not sure: its best guess is below {self.unsure_threshold * 100:.0f} %, "
                "so check this photo yourself."
            )
        if row.unusual:
            lines.append(
                "This photo looks unlike the photos the model was trained on: its guess may be wrong."
            )
        return "\n".join(lines)

    def folder_of(self, row: BatchRow) -> str:
        """The row's sub-folder of the classified folder (``ants``, ``val/ants``); ``""`` directly in it."""
        return subfolder_of(self.root, row.path) if self.root is not None else ""

    # -- contents

    def clear(self) -> None:
        self.beginResetModel()
        self.rows = []
        self._row_of = {}
        self._thumbnails = {}
        self.wanted = {}
        self.endResetModel()

    def add_rows(self, rows: Sequence[BatchRow]) -> None:
        if not rows:
            return
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        for offset, row in enumerate(rows):
            self._row_of[row.path] = first + offset
        self.rows.extend(rows)
        self.endInsertRows()

    def _thumbnail(self, path: Path) -> QPixmap | None:
        if path in self._thumbnails:
            return self._thumbnails[path]
        if path not in self.wanted:
            self.wanted[path] = None
            if not self._asked:  # one signal per turn of the event loop, however many rows paint
                self._asked = True
                QTimer.singleShot(0, self._ask)
        return None

    def _ask(self) -> None:
        self._asked = False
        self.thumbnails_wanted.emit()

    def take_wanted(self, limit: int) -> list[Path]:
        paths = list(self.wanted)[:limit]
        for path in paths:
            del self.wanted[path]
            self._thumbnails.setdefault(path, None)  # asked for once; None until it arrives
        return paths

    def set_thumbnail(self, path: Path, array: np.ndarray | None) -> None:
        self._thumbnails[path] = QPixmap.fromImage(to_qimage(array)) if array is not None else None
        row = self._row_of.get(path)
        if row is not None:
            index = self.index(row, COL_FILE)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def has_thumbnail(self, path: Path) -> bool:
        return self._thumbnails.get(path) is not None


def _percent(probability: float) -> str:
    return f"{probability * 100:.1f} %"


def _display(row: BatchRow, column: int) -> str:
    if column == COL_FILE:
        return row.path.name
    if not row.ok:
        return "Failed" if column == COL_TOP1 else (row.error or "") if column == COL_TOPK else ""
    top1 = row.top1
    if column == COL_TOP1:
        return top1.label if top1 is not None else ""
    if column == COL_CONFIDENCE:
        return _percent(top1.probability) if top1 is not None else ""
    return " · ".join(f"{p.label} {p.probability * 100:.0f} %" for p in row.predictions)


class BatchFilterModel(QSortFilterProxyModel):
    """Shows the rows of one top-1 class (or the failed ones) at or above a confidence; sorts any column."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.class_filter = ALL_CLASSES
        self.folder_filter: str | None = ALL_FOLDERS
        self.min_confidence = 0.0
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def set_class_filter(self, label: str) -> None:
        self._refilter(lambda: setattr(self, "class_filter", label or ALL_CLASSES))

    def set_folder_filter(self, folder: str | None) -> None:
        self._refilter(lambda: setattr(self, "folder_filter", folder))

    def set_min_confidence(self, value: float) -> None:
        self._refilter(lambda: setattr(self, "min_confidence", float(value)))

    def _refilter(self, change: Callable[[], None]) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.10
            self.beginFilterChange()
            change()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            change()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        row: BatchRow = model.rows[source_row]  # type: ignore[attr-defined]
        if self.folder_filter is not ALL_FOLDERS and model.folder_of(row) != self.folder_filter:  # type: ignore[attr-defined]
            return False
        if self.class_filter == FAILED:
            return not row.ok
        top1 = row.top1
        if self.class_filter != ALL_CLASSES and (top1 is None or top1.label != self.class_filter):
            return False
        return self.min_confidence <= 0 or (top1 is not None and top1.probability >= self.min_confidence)

    def visible_rows(self) -> list[BatchRow]:
        """The rows as shown: filtered and in the view's order."""
        return [self.index(i, 0).data(ROW_ROLE) for i in range(self.rowCount())]


class SortOptionsDialog(QDialog):
    """Where and how to sort the classified files: destination, copy/link/move, minimum confidence."""

    def __init__(self, start_folder: str, min_confidence: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sort into folders")
        self.destination = QLineEdit(start_folder)
        self.destination.setMinimumWidth(360)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.destination, 1)
        where.addWidget(browse)
        self.mode = QComboBox()
        for mode in SORT_MODES:
            self.mode.addItem(SORT_MODE_TEXT.get(mode, mode), mode)
        self.min_confidence = QDoubleSpinBox()
        self.min_confidence.setRange(0.0, 100.0)
        self.min_confidence.setDecimals(1)
        self.min_confidence.setSuffix(" %")
        self.min_confidence.setValue(min_confidence * 100)
        self._initial = min_confidence  # kept exact: the spin box shows it to 0.1 %
        self.min_confidence.setToolTip(
            "Files whose top-1 class is less sure than this go to “_unsure” (at first: the files the "
            "table’s Note calls “not sure”)"
        )
        form = QFormLayout()
        form.addRow("Destination folder", where)
        form.addRow("Mode", self.mode)
        form.addRow("Minimum confidence", self.min_confidence)
        note = QLabel("One folder per top-1 class; nothing is overwritten. You will see the plan first.")
        note.setWordWrap(True)
        standard = QDialogButtonBox.StandardButton
        buttons = QDialogButtonBox(standard.Ok | standard.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Sort into", self.destination.text())
        if folder:
            self.destination.setText(folder)

    def options(self) -> tuple[Path, str, float | None]:
        value = self.min_confidence.value() / 100
        if self.min_confidence.value() == round(self._initial * 100, 1):
            value = self._initial  # left as offered: exactly the Note's threshold, not its rounding
        return Path(self.destination.text()), self.mode.currentData(), value if value > 0 else None


class BatchView(QWidget):
    """The batch window (a top-level window owned by the main window)."""

    batch_finished = Signal(object)  # the last BatchProgress (or None when the run failed)
    sort_finished = Signal(object)  # SortReport
    export_finished = Signal(object)  # the CSV's Path, or None when the export failed

    def __init__(
        self,
        controller: Controller,
        open_image: Callable[[Path, int | None], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.controller = controller
        self.open_image = open_image
        self.folder: Path | None = None
        self.progress: BatchProgress | None = None
        self.last_report: SortReport | None = None
        self._job: Job | None = None
        self._active = False  # a run is going on (as the UI thread knows: till its finished signal)
        self._thumb_job: Job | None = None
        self._sort_job: Job | None = None
        self._export_job: Job | None = None
        self.found = ""  # what the scan found where: "153 photos in 2 folders: ants 70, bees 83"
        self._in_subfolders = False
        self._pending: Path | None = None  # a folder waiting for the model to load
        self._labels: set[str] = set()
        self.setWindowTitle("Batch classification")
        self.resize(900, 620)

        self.model = BatchTableModel(self)
        self.model.thumbnails_wanted.connect(self._load_thumbnails)
        self.proxy = BatchFilterModel(self)
        self.proxy.setSourceModel(self.model)
        self._build()
        controller.model_changed.connect(self._model_changed)

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        self.folder_label = QLabel("No folder yet")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.choose_button = QPushButton("Choose Folder…")
        self.choose_button.clicked.connect(self.choose_folder)
        top = QHBoxLayout()
        top.addWidget(self.folder_label, 1)
        top.addWidget(self.choose_button)

        self.class_combo = QComboBox()
        self.class_combo.setAccessibleName("Class filter")
        self.class_combo.setMinimumContentsLength(14)
        self.class_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self._reset_classes()
        self.class_combo.currentIndexChanged.connect(self._class_picked)
        self.folder_combo = QComboBox()
        self.folder_combo.setAccessibleName("Folder filter")
        self.folder_combo.setMinimumContentsLength(10)
        self.folder_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.folder_combo.setToolTip("Show the photos of one sub-folder only")
        self.folder_combo.currentIndexChanged.connect(self._folder_picked)
        self.confidence_spin = QDoubleSpinBox()
        self.confidence_spin.setAccessibleName("Minimum confidence")
        self.confidence_spin.setRange(0.0, 100.0)
        self.confidence_spin.setDecimals(1)
        self.confidence_spin.setSingleStep(5.0)
        self.confidence_spin.setSuffix(" %")
        self.confidence_spin.setToolTip("Hide rows whose top-1 class is less sure than this")
        self.confidence_spin.valueChanged.connect(self._confidence_changed)
        self.shown_label = QLabel()
        filters = QHBoxLayout()
        self.folder_filter_label = QLabel("Folder")
        for text, widget in (
            ("Folder", self.folder_combo),
            ("Class", self.class_combo),
            ("Minimum confidence", self.confidence_spin),
        ):
            label = self.folder_filter_label if widget is self.folder_combo else QLabel(text)
            label.setBuddy(widget)
            filters.addWidget(label)
            filters.addWidget(widget)
            filters.addSpacing(12)
        filters.addStretch(1)
        filters.addWidget(self.shown_label)

        table = QTableView()
        table.setModel(self.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # arrival order until a header is clicked
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setIconSize(QSize(tasks.BATCH_THUMBNAIL_SIDE, tasks.BATCH_THUMBNAIL_SIDE))
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(tasks.BATCH_THUMBNAIL_SIDE + 6)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        widths = ((COL_FILE, 240), (COL_FOLDER, 110), (COL_TOP1, 150), (COL_CONFIDENCE, 95), (COL_NOTE, 120))
        for column, width in widths:
            table.setColumnWidth(column, width)
        table.setColumnHidden(COL_FOLDER, True)  # shown when the photos are in sub-folders
        table.doubleClicked.connect(self._open_index)
        table.setToolTip("Double-click a row to open the image with its explanation")
        self.table = table
        self._reset_folders()
        QShortcut(QKeySequence(Qt.Key.Key_Return), table, activated=self._open_current)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("%p %")
        self.rate_label = QLabel("Choose a folder to classify its images.")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        progress = QHBoxLayout()
        progress.addWidget(self.progress_bar, 1)
        progress.addWidget(self.cancel_button)

        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save the rows as a CSV table: the shown ones, or all of them")
        self.export_button.clicked.connect(lambda: self.export_csv())
        self.sort_button = QPushButton("Sort into Folders…")
        self.sort_button.setToolTip("Copy, link or move the classified files into one folder per class")
        self.sort_button.clicked.connect(lambda: self.sort_into_folders())
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.rate_label, 1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.sort_button)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(table, 1)
        layout.addLayout(progress)
        layout.addLayout(buttons)
        self._update_buttons()
        self._update_shown()

    def _reset_classes(self) -> None:
        self._labels = set()
        combo = self.class_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("All classes", ALL_CLASSES)
        combo.addItem("Failed files", FAILED)
        combo.blockSignals(False)

    def _reset_folders(self, counts: dict[str, int] | None = None) -> None:
        """Fill the folder filter with the sub-folders found (hidden, as the column, when none)."""
        combo = self.folder_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("All folders", ALL_FOLDERS)
        for name, count in (counts or {}).items():
            combo.addItem(f"{name or TOP_FOLDER} ({count})", name)
        combo.setCurrentIndex(0)
        combo.blockSignals(False)
        self.proxy.set_folder_filter(ALL_FOLDERS)
        several = bool(counts) and set(counts or {}) != {""}
        combo.setVisible(several)
        self.folder_filter_label.setVisible(several)
        self.table.setColumnHidden(COL_FOLDER, not several)

    def set_folder_filter(self, folder: str | None) -> None:
        """Pick ``folder`` in the folder combo (None: all folders, ``""``: the chosen folder itself)."""
        index = self.folder_combo.findData(folder)
        if index >= 0:
            self.folder_combo.setCurrentIndex(index)

    def _folder_picked(self, index: int) -> None:
        self.proxy.set_folder_filter(self.folder_combo.itemData(index))
        self._update_shown()

    def _add_classes(self, rows: Sequence[BatchRow]) -> None:
        new = {row.top1.label for row in rows if row.top1 is not None} - self._labels
        if not new:
            return
        self._labels |= new
        combo = self.class_combo
        current = combo.currentData()
        combo.blockSignals(True)
        while combo.count() > 2:
            combo.removeItem(2)
        combo.insertSeparator(2)
        for label in sorted(self._labels, key=str.lower):
            combo.addItem(label, label)
        index = combo.findData(current)
        combo.setCurrentIndex(max(0, index))
        combo.blockSignals(False)

    # ------------------------------------------------------------------ the run

    @property
    def running(self) -> bool:
        return self._active

    def choose_folder(self) -> None:
        start = str(self.folder) if self.folder is not None else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Classify the images of a folder", start)
        if folder:
            self.start(folder)

    def start(self, folder: str | os.PathLike[str]) -> None:
        """Classify the images of ``folder`` into the table (a run in progress is superseded)."""
        self._active = False
        self.folder = Path(folder)
        self.folder_label.setText(str(self.folder))
        self.setWindowTitle(f"{self.folder.name or self.folder} — Batch classification")
        self.model.clear()
        self.model.root = self.folder
        self.model.unsure_threshold = (
            self.controller.threshold
        )  # the main window's "not sure", as the run begins
        self.found = ""
        self._in_subfolders = False
        self.progress_bar.setFormat("%p %")
        self._reset_classes()
        self._reset_folders()
        self.progress = None
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        classifier = self.controller.classifier
        if classifier is None:
            self._pending = self.folder
            self.rate_label.setText("Waiting for the model to load…")
            self._update_buttons()
            return
        self._pending = None
        self._active = True
        self.rate_label.setText("Listing the folder…")
        self._job = self.controller.start_job(
            "batch",
            tasks.classify_batch,
            classifier,
            self.folder,
            self.controller.top_k,
            BATCH_SIZE,
            on_yield=self._batch_yielded,
            on_error=self._batch_errored,
            on_finished=self._batch_done,
        )
        self._update_buttons()

    def _model_changed(self, info: Any) -> None:
        if self._pending is not None and self.controller.classifier is not None:
            self.start(self._pending)

    def _batch_yielded(self, value: tasks.FolderListed | tuple[tuple[BatchRow, ...], BatchProgress]) -> None:
        if isinstance(value, tasks.FolderListed):
            self._folder_listed(value)
            return
        rows, progress = value
        self.model.add_rows(rows)
        self._add_classes(rows)
        self._show_progress(progress)
        self._update_shown()

    def _folder_listed(self, listed: tasks.FolderListed) -> None:
        """The scan is done: say what was found where, and offer the sub-folders as a column and a filter."""
        self.found = listed.summary
        if self.folder is not None and listed.count:
            self.folder_label.setText(f"{self.folder}  —  {listed.summary}")
        self._in_subfolders = listed.in_subfolders
        if listed.in_subfolders:
            self._reset_folders(dict(listed.counts))

    def _show_progress(self, progress: BatchProgress) -> None:
        self.progress = progress
        self.progress_bar.setRange(0, max(1, progress.total))
        self.progress_bar.setValue(progress.done)
        failed = f" · {progress.failed} failed" if progress.failed else ""
        if progress.total == 0:
            self.rate_label.setText(
                "The folder holds no images (JPEG, PNG, BMP, GIF, TIFF or WebP), not even in its sub-folders."
            )
            self.progress_bar.setFormat("No images")
        elif progress.finished:
            self.rate_label.setText(
                f"Done: {progress.total} images in {format_duration(progress.elapsed_seconds)}"
                f" ({progress.images_per_second:.1f} images/s){failed}"
            )
        elif progress.done == 0:
            found = self.found if self._in_subfolders else f"{progress.total} images"
            self.rate_label.setText(f"{found}: starting…")
        else:
            eta = progress.eta_seconds
            left = f" · about {format_duration(eta)} left" if eta is not None else ""
            rate = f"{progress.images_per_second:.1f} images/s"
            self.rate_label.setText(f"{progress.done} of {progress.total} · {rate}{left}{failed}")

    def _batch_errored(self, error: BaseException) -> None:
        self.rate_label.setText(describe_error(error, "classify the folder"))

    def _batch_done(self) -> None:
        self._active = False
        self._update_buttons()
        self.batch_finished.emit(self.progress)

    def cancel(self) -> None:
        """Stop the run at the next batch; the rows so far stay in the table."""
        if not self.running:
            return
        assert self._job is not None
        self._job.abort()
        self._active = False
        progress = self.progress
        done = f" after {progress.done} of {progress.total} images" if progress is not None else ""
        self.rate_label.setText(f"Cancelled{done}.")
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.running
        self.cancel_button.setEnabled(running)
        has_rows = bool(self.model.rows)
        self.export_button.setEnabled(has_rows)
        sorting = self.sorting
        self.sort_button.setEnabled(has_rows and not running and not sorting)

    def _update_shown(self) -> None:
        total = len(self.model.rows)
        shown = self.proxy.rowCount()
        self.shown_label.setText(f"{total} rows" if shown == total else f"Showing {shown} of {total} rows")

    # ------------------------------------------------------------------ filters

    def _class_picked(self, index: int) -> None:
        self.proxy.set_class_filter(self.class_combo.itemData(index) or ALL_CLASSES)
        self._update_shown()

    def _confidence_changed(self, value: float) -> None:
        self.proxy.set_min_confidence(value / 100)
        self._update_shown()

    def set_class_filter(self, label: str) -> None:
        """Pick ``label`` in the class combo (``""``: all, :data:`FAILED`: the failed files)."""
        index = self.class_combo.findData(label)
        if index >= 0:
            self.class_combo.setCurrentIndex(index)

    # ------------------------------------------------------------------ thumbnails

    def _load_thumbnails(self) -> None:
        if self._thumb_job is not None and not self._thumb_job.done:
            return
        paths = self.model.take_wanted(THUMBNAILS_PER_JOB)
        if not paths:
            return
        self._thumb_job = self.controller.start_job(
            "batch-thumbnails",
            tasks.batch_thumbnails,
            paths,
            on_yield=self._thumbnail_yielded,
            on_finished=self._thumbnails_done,
        )

    def _thumbnail_yielded(self, value: tuple[Path, np.ndarray | None]) -> None:
        self.model.set_thumbnail(*value)

    def _thumbnails_done(self) -> None:
        QTimer.singleShot(0, self._load_thumbnails)

    # ------------------------------------------------------------------ opening a row

    def _open_current(self) -> None:
        self._open_index(self.table.currentIndex())

    def _open_index(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        row: BatchRow = self.proxy.index(index.row(), 0).data(ROW_ROLE)
        if self.open_image is not None:
            self.open_image(row.path, row.top1.index if row.top1 is not None else None)

    # ------------------------------------------------------------------ export

    def ask_export_rows(self) -> str | None:
        """Which rows to export when filters hide some: :data:`EXPORT_VISIBLE`, :data:`EXPORT_ALL` or None."""
        return self.ask_which_rows(
            "Export CSV",
            "Which rows should the CSV hold?",
            "The shown rows are saved in the table's order; all rows in the order they came.",
        )

    def ask_which_rows(self, title: str, question: str, detail: str) -> str | None:
        """Shown rows or all rows, asked only when the filters hide some (:data:`EXPORT_VISIBLE`,
        :data:`EXPORT_ALL`, or None when cancelled)."""
        shown, total = self.proxy.rowCount(), len(self.model.rows)
        if shown == total:
            return EXPORT_ALL
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(title)
        box.setText(f"The filters show {shown} of the {total} rows. {question}")
        box.setInformativeText(detail)
        visible = box.addButton(f"Shown Rows ({shown})", QMessageBox.ButtonRole.AcceptRole)
        every = box.addButton(f"All Rows ({total})", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(visible)
        box.exec()
        clicked = box.clickedButton()
        return EXPORT_VISIBLE if clicked is visible else EXPORT_ALL if clicked is every else None

    def export_csv(self, path: str | os.PathLike[str] | None = None, which: str | None = None) -> Job | None:
        """Write the shown or all rows as CSV (core's writer, atomically) in a job.

        Asks which rows when the filters hide some and ``which`` is None, and where when ``path`` is None;
        :attr:`export_finished` tells the outcome.
        """
        if not self.model.rows:
            return None
        if self._export_job is not None and not self._export_job.done:
            self.rate_label.setText("An export is still being written.")
            return None
        which = which or self.ask_export_rows()
        if which is None:
            return None
        if path is None:
            start = self.folder / "batch-results.csv" if self.folder is not None else Path.home()
            chosen, _ = QFileDialog.getSaveFileName(self, "Export CSV", str(start), "CSV table (*.csv)")
            if not chosen:
                return None
            path = chosen if chosen.lower().endswith(".csv") else chosen + ".csv"
        rows = self._rows(which)
        top_k = max((len(row.predictions) for row in rows), default=1) or 1
        self.rate_label.setText(f"Saving {len(rows)} rows to {path}…")
        self._export_job = self.controller.start_job(
            "batch-export",
            tasks.export_rows,
            rows,
            Path(path),
            top_k,
            self.model.unsure_threshold,
            on_result=self._export_returned,
            on_error=self._export_errored,
            on_finished=self._update_buttons,
        )
        self._update_buttons()
        return self._export_job

    def _rows(self, which: str) -> list[BatchRow]:
        return self.proxy.visible_rows() if which == EXPORT_VISIBLE else list(self.model.rows)

    def _export_returned(self, value: tuple[Path, int]) -> None:
        path, count = value
        self.rate_label.setText(f"Saved {count} rows to {path}.")
        self.export_finished.emit(path)

    def _export_errored(self, error: BaseException) -> None:
        self.rate_label.setText(describe_error(error, "export the CSV"))
        self.export_finished.emit(None)

    # ------------------------------------------------------------------ sorting files

    def ask_sort_options(self) -> tuple[Path, str, float | None] | None:
        """The sort's destination, mode and minimum confidence from a dialog; None when cancelled."""
        start = str(self.folder.parent / f"{self.folder.name}-sorted") if self.folder is not None else ""
        # By default the files the Note calls "not sure" go to "_unsure": the same rule as the table.
        dialog = SortOptionsDialog(start, self.model.unsure_threshold or 0.0, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.options()

    def confirm_plan(self, plan: Sequence[SortAction], destination: Path) -> bool:
        """Show what the sort will do (core's ``format_plan``) and ask to go on."""
        counts: dict[str, int] = {}
        for action in plan:
            counts[action.destination.parent.name] = counts.get(action.destination.parent.name, 0) + 1
        folders = ", ".join(f"{name} ({count})" for name, count in sorted(counts.items()))
        lines = format_plan(plan)
        preview = "\n".join(lines[:8]) + (f"\n… and {len(lines) - 8} more" if len(lines) > 8 else "")
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Sort into folders")
        verb = plan[0].mode.capitalize() if plan else "Sort"
        box.setText(f"{verb} {len(plan)} files into {len(counts)} folders in {destination}?")
        box.setInformativeText(f"Folders: {folders}\n\n{preview}")
        box.setDetailedText("\n".join(lines))
        box.setStandardButtons(QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Ok).setText(verb)
        return box.exec() == QMessageBox.StandardButton.Ok

    def sort_into_folders(self, which: str | None = None) -> None:
        """Sort the shown or all classified files: plan it in a job (it reads the disk for every
        file), show the plan to confirm, then apply it in another."""
        if not self.model.rows or self.running or self.sorting:
            return
        which = which or self.ask_which_rows(
            "Sort into folders",
            "Which files should be sorted?",
            "Only the shown rows' files, or every classified file of the folder.",
        )
        if which is None:
            return
        options = self.ask_sort_options()
        if options is None:
            return
        destination, mode, min_confidence = options
        rows = self._rows(which)
        self.rate_label.setText(f"Planning where {len(rows)} files go…")
        self._sort_job = self.controller.start_job(
            "batch-sort-plan",
            tasks.plan_sort_files,
            rows,
            destination,
            mode,
            min_confidence,
            on_result=partial(self._sort_planned, destination),
            on_error=self._sort_plan_failed,
            on_finished=self._sort_done,
        )
        self._update_buttons()

    @property
    def sorting(self) -> bool:
        return self._sort_job is not None and not self._sort_job.done

    def _sort_plan_failed(self, error: BaseException) -> None:
        text = str(error) if isinstance(error, ValueError) else describe_error(error, "plan the sort")
        self.rate_label.setText(text)

    def _sort_planned(self, destination: Path, plan: list[Any]) -> None:
        if not plan:
            self.rate_label.setText("Nothing to sort: every classified file is already in place.")
            return
        if not self.confirm_plan(plan, destination):
            self.rate_label.setText("Sort cancelled: nothing was copied, linked or moved.")
            return
        self.rate_label.setText(f"Sorting {len(plan)} files…")
        self._sort_job = self.controller.start_job(
            "batch-sort",
            tasks.sort_files,
            plan,
            on_result=self._sort_returned,
            on_error=self._sort_errored,
            on_finished=self._sort_done,
        )
        self._update_buttons()

    def _sort_errored(self, error: BaseException) -> None:
        self.rate_label.setText(describe_error(error, "sort the files"))

    def _sort_done(self) -> None:
        self._update_buttons()

    def _sort_returned(self, report: SortReport) -> None:
        self.last_report = report
        failed = f"; {len(report.failed)} failed ({report.failed[0][1]})" if report.failed else ""
        verb = {"copy": "Copied", "link": "Linked", "move": "Moved"}.get(
            report.done[0].mode if report.done else "", "Sorted"
        )
        self.rate_label.setText(f"{verb} {len(report.done)} files into class folders{failed}.")
        self.sort_finished.emit(report)

    # ------------------------------------------------------------------ closing

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window stops its run (the rows are kept if it is shown again)."""
        self.cancel()
        super().closeEvent(event)
