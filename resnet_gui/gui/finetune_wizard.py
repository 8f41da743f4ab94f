"""The fine-tuning wizard: from a folder of labelled photos to a model the classifier uses, with proof.

Six pages, each a thin view over ``core.training`` run in worker jobs (see
:mod:`resnet_gui.gui.finetune_tasks`), so the window never freezes:

1. :class:`FolderPage` — the folder (one sub-folder per class, or ``train/`` + ``val/``);
2. :class:`HealthPage` — the health report: examples per class, warnings, flagged files to leave out;
3. :class:`SettingsPage` — base model, mode, epochs; the time per epoch measured on this computer;
4. :class:`TrainingPage` — live loss and accuracy curves, progress, ETA, stop and resume;
5. :class:`ResultsPage` — validation accuracy, per-class table, a confusion matrix whose cells
   show their images with Grad-CAM;
6. :class:`SavePage` — where the model is, a copy elsewhere, and "use this model now".
"""

from __future__ import annotations

import math
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QColor, QDesktopServices, QDragEnterEvent, QDropEvent, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from resnet_gui.gui import finetune_tasks, tasks
from resnet_gui.gui.charts import ConfusionMatrixView, CurveChart
from resnet_gui.gui.controller import Controller, describe_error
from resnet_gui.gui.data import ModelChoice, Picture
from resnet_gui.gui.image_view import ImageView
from resnet_gui.gui.predictions import format_percent
from resnet_gui.gui.qtutil import heading, local_paths, muted, to_qimage
from resnet_gui.gui.settings import AppSettings
from resnet_gui.gui.workers import Job

PAGE_FOLDER, PAGE_HEALTH, PAGE_SETTINGS, PAGE_TRAINING, PAGE_RESULTS, PAGE_SAVE = range(6)
EXAMPLES_PER_CLASS = 6
THUMBNAIL_SIDE = 64
TRAIN_COLOR = QColor(37, 99, 235)
VAL_COLOR = QColor(234, 88, 12)
WARNING_COLOR = QColor(180, 110, 0)
ERROR_COLOR = QColor(190, 40, 40)
USABLE_STATUSES = ("cached", "imported")
MODE_TEXT = {
    "head": (
        "Quick (recommended)",
        "Only the last layer learns; the rest of the network keeps what it learned from millions of "
        "photos. Best for a few hundred photos per class: fast, and hard to overfit.",
    ),
    "partial": (
        "Balanced",
        "The last block of layers learns too. Can help when your photos look unlike everyday photos "
        "(microscopy, drawings, X-rays). Several times slower.",
    ),
    "full": (
        "Thorough",
        "Every layer learns, the pretrained ones slowly. Needs many photos per class, and a GPU to be "
        "done in reasonable time.",
    ),
}
GROUP_TEXT = {
    "unreadable": "Cannot be read (always left out)",
    "leaked": "Also in the validation split (a copy would flatter the score)",
    "conflict": "The same photo in two classes",
    "copy": "Exact copies within a class",
    "tiny": "Very small images",
}


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
        note = "" if choice.status in USABLE_STATUSES else " (downloads first)"
        options.append(BaseModelOption(choice.ref, f"{choice.label}{note}"))
    return options


def _pixmap(array: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(to_qimage(array))


def _percent(value: float | None) -> str:
    """The predictions panel's percentages, or a dash when there is no value (no validation)."""
    return "–" if value is None or not math.isfinite(value) else format_percent(value)


def _duration(seconds: float | None) -> str:
    """The app's one way of writing a duration (the batch window's), or a dash when unknown."""
    from resnet_gui.core.batch import format_duration

    return "–" if seconds is None or not math.isfinite(seconds) else format_duration(seconds)


def _checkable(item: QTreeWidgetItem) -> bool:
    """Whether a flagged file has a Leave-out checkbox (unreadable files are always left out)."""
    return item.data(0, Qt.ItemDataRole.CheckStateRole) is not None


def _device_name(device: str) -> str:
    return "CPU" if device == "cpu" else "GPU" if device.startswith("cuda") else device.upper()


def _wrapped(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


# ------------------------------------------------------------------------------------------------
# 1. Folder


class FolderPage(QWizardPage):
    """Where the photos are. A folder can also be dropped on the page."""

    def __init__(self, wizard: FinetuneWizard) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle("Choose your photos")
        self.setSubTitle(
            "Pick a folder with one sub-folder per class, named after the class (for example "
            "“ants” and “bees”), each holding that class's photos. A folder that already has "
            "“train” and “val” sub-folders, each split that way, is used as it is."
        )
        self.setAcceptDrops(True)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("A folder of class folders…")
        self.path_edit.setClearButtonEnabled(True)
        self.path_edit.textChanged.connect(self._changed)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self.note = _wrapped()
        example = QLabel(
            "<pre>my photos/\n  ants/   ant1.jpg  ant2.jpg …\n  bees/   bee1.jpg  bee2.jpg …</pre>"
        )
        example.setTextFormat(Qt.TextFormat.RichText)
        tips = _wrapped(
            "Tips: 50 or more photos per class give good results, 20 can be enough for easy cases. "
            "Photos are never changed or moved. The next page checks every photo first."
        )
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Folder"))
        layout.addLayout(row)
        layout.addWidget(self.note)
        layout.addSpacing(12)
        layout.addWidget(example)
        layout.addWidget(tips)
        layout.addStretch(1)
        if wizard.settings.finetune_folder and Path(wizard.settings.finetune_folder).is_dir():
            self.path_edit.setText(wizard.settings.finetune_folder)

    def folder(self) -> Path | None:
        text = self.path_edit.text().strip()
        return Path(text).expanduser() if text else None

    def browse(self) -> None:
        start = self.path_edit.text() or self.owner.settings.finetune_folder or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Folder of class folders", start)
        if folder:
            self.path_edit.setText(folder)

    def _changed(self) -> None:
        folder = self.folder()
        if folder is None:
            self.note.setText("")
        elif not folder.is_dir():
            self.note.setText("This folder does not exist.")
        else:
            self.note.setText("")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        folder = self.folder()
        return folder is not None and folder.is_dir()

    def validatePage(self) -> bool:
        folder = self.folder()
        if folder is None or not folder.is_dir():
            return False
        self.owner.settings.finetune_folder = str(folder)
        return True

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(Path(p).is_dir() for p in local_paths(event.mimeData())):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        folders = [p for p in local_paths(event.mimeData()) if Path(p).is_dir()]
        if folders:
            self.path_edit.setText(folders[0])
            event.acceptProposedAction()


# ------------------------------------------------------------------------------------------------
# 2. Health report


class HealthPage(QWizardPage):
    """Every photo checked: examples per class, warnings, and the flagged files with a checkbox each."""

    def __init__(self, wizard: FinetuneWizard) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle("Check the photos")
        self.setSubTitle(
            "Each photo is opened once to find unreadable files, copies and very small images. "
            "Ticked files are left out of training; nothing is deleted."
        )
        self.checked: finetune_tasks.FolderChecked | None = None
        self.error = ""
        self._job: Job | None = None
        self._thumb_job: Job | None = None
        self._example_labels: dict[Path, QLabel] = {}
        self._file_items: dict[Path, list[QTreeWidgetItem]] = {}
        self.progress = QProgressBar()
        self.progress_label = QLabel()
        self.summary = _wrapped()
        self.warnings = _wrapped()
        self.classes_table = QTableWidget(0, 3)
        self.classes_table.setHorizontalHeaderLabels(["Class", "Photos", "Examples"])
        self.classes_table.verticalHeader().setVisible(False)
        self.classes_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.classes_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.classes_table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.classes_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.flagged = QTreeWidget()
        self.flagged.setHeaderLabels(["Leave out", "File", "Why"])
        self.flagged.setIconSize(QSize(40, 40))
        self.flagged.setRootIsDecorated(True)
        self.flagged.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.flagged_label = heading("Flagged files")
        self.leave_all = QPushButton("Leave Out All Flagged")
        self.leave_all.clicked.connect(lambda: self._set_all(True))
        self.keep_all = QPushButton("Keep All")
        self.keep_all.clicked.connect(lambda: self._set_all(False))
        buttons = QHBoxLayout()
        buttons.addWidget(self.flagged_label)
        buttons.addStretch(1)
        buttons.addWidget(self.leave_all)
        buttons.addWidget(self.keep_all)
        self.flagged_box = flagged_box = QWidget()
        flagged_layout = QVBoxLayout(flagged_box)
        flagged_layout.setContentsMargins(0, 0, 0, 0)
        flagged_layout.addLayout(buttons)
        flagged_layout.addWidget(self.flagged)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.classes_table)
        self.splitter.addWidget(flagged_box)
        layout = QVBoxLayout(self)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary)
        layout.addWidget(self.warnings)
        layout.addWidget(self.splitter, 1)

    def initializePage(self) -> None:
        folder = self.owner.folder_page.folder()
        assert folder is not None
        if (
            self.checked is not None
            and self.checked.dataset.root.resolve() == folder.resolve()
            and not self.error
        ):
            return  # back and forth: keep the report and the user's ticks
        self.start(folder)

    def start(self, folder: Path) -> None:
        for job in (self._job, self._thumb_job):
            if job is not None:
                job.abort()
        self.checked = None
        self.error = ""
        self.owner.reset_after(PAGE_HEALTH)
        self.summary.setText("")
        self.warnings.setText("")
        self.classes_table.setRowCount(0)
        self.flagged.clear()
        self._file_items = {}
        self._example_labels = {}
        self.progress.setRange(0, 0)
        self.progress.show()
        self.progress_label.setText(f"Looking at the photos in “{folder.name}”…")
        self.progress_label.show()
        self._job = self.owner.controller.run_job(
            "finetune-health",
            finetune_tasks.check_folder,
            folder,
            on_yielded=self._on_progress,
            on_returned=self._on_checked,
            on_errored=self._on_error,
        )
        self.completeChanged.emit()

    def _on_progress(self, job: Job, progress: Any) -> None:
        if job is not self._job:
            return
        self.progress.setRange(0, max(1, progress.total))
        self.progress.setValue(progress.done)
        eta = progress.eta_seconds
        self.progress_label.setText(
            f"Checking photo {progress.done} of {progress.total}"
            + (f" — about {_duration(eta)} left" if eta is not None and eta >= 2 else "")
        )

    def _on_error(self, job: Job, error: BaseException) -> None:
        if job is not self._job:
            return
        self.error = describe_error(error, "check the folder")
        self.progress.hide()
        self.progress_label.setText(f"<b style='color:{ERROR_COLOR.name()}'>{self.error}</b>")
        self.progress_label.setWordWrap(True)
        self.completeChanged.emit()

    def _on_checked(self, job: Job, checked: finetune_tasks.FolderChecked) -> None:
        if job is not self._job:
            return
        self.checked = checked
        self.progress.hide()
        self.progress_label.hide()
        self._show_report(checked)
        self.completeChanged.emit()

    def _show_report(self, checked: finetune_tasks.FolderChecked) -> None:
        dataset, report = checked.dataset, checked.report
        usable = sum(sum(per_class.values()) for per_class in report.counts.values())
        layout = (
            "train/val folders" if dataset.layout == "splits" else f"{len(dataset.classes)} class folders"
        )
        self.summary.setText(
            f"<b>{usable} usable photos</b> in {len(dataset.classes)} classes ({layout}). "
            + ("No problems found." if not report.warnings() else "")
        )
        warnings = report.warnings()
        self.warnings.setText(
            "".join(f"<div style='color:{WARNING_COLOR.name()}'>⚠ {line}</div>" for line in warnings)
        )
        self.warnings.setVisible(bool(warnings))
        self._fill_classes(checked)
        self._fill_flagged(checked)
        wanted = list(self._example_labels) + [p for p in self._file_items if p not in self._example_labels]
        if wanted:
            self._thumb_job = self.owner.controller.run_job(
                "finetune-thumbnails",
                tasks.batch_thumbnails,
                wanted,
                THUMBNAIL_SIDE,
                on_yielded=self._on_thumbnail,
            )

    def _fill_classes(self, checked: finetune_tasks.FolderChecked) -> None:
        dataset, report = checked.dataset, checked.report
        table = self.classes_table
        table.setRowCount(len(dataset.classes))
        flagged = report.suggested_exclude() | {issue.path for issue in report.unreadable}
        for row, name in enumerate(dataset.classes):
            table.setItem(row, 0, QTableWidgetItem(name))
            parts = [f"{split or 'all'} {counts.get(name, 0)}" for split, counts in report.counts.items()]
            total = sum(counts.get(name, 0) for counts in report.counts.values())
            count_item = QTableWidgetItem(str(total) if len(parts) == 1 else f"{total}  ({', '.join(parts)})")
            if name in report.small_classes:
                count_item.setForeground(ERROR_COLOR)
                count_item.setToolTip("Too few photos to learn this class reliably.")
            table.setItem(row, 1, count_item)
            strip = QWidget()
            strip_layout = QHBoxLayout(strip)
            strip_layout.setContentsMargins(2, 2, 2, 2)
            strip_layout.setSpacing(4)
            examples = [s.path for s in dataset.samples if s.label == row and s.path not in flagged]
            for path in examples[:EXAMPLES_PER_CLASS]:
                label = QLabel()
                label.setFixedSize(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
                label.setAlignment(Qt.AlignmentFlag.AlignCenter)
                label.setFrameShape(QFrame.Shape.StyledPanel)
                label.setToolTip(dataset.relative(path))
                strip_layout.addWidget(label)
                self._example_labels[path] = label
            strip_layout.addStretch(1)
            table.setCellWidget(row, 2, strip)
            table.setRowHeight(row, THUMBNAIL_SIDE + 8)

    def _flag_groups(self, report: Any) -> list[tuple[str, list[tuple[Path, str]]]]:
        """The flagged files by problem, each with the reason in words."""
        groups: dict[str, list[tuple[Path, str]]] = {key: [] for key in GROUP_TEXT}
        groups["unreadable"] = [(issue.path, issue.reason) for issue in report.unreadable]
        groups["tiny"] = [(issue.path, issue.reason) for issue in report.tiny]
        root = report.root
        for group in report.duplicates:
            names = [self._relative(root, p) for p in group.paths]
            for index, path in enumerate(group.paths):
                others = ", ".join(n for i, n in enumerate(names) if i != index)
                if group.conflicting_labels:
                    groups["conflict"].append((path, f"same photo as {others}"))
                elif group.crosses_splits:
                    groups["leaked"].append((path, f"same photo as {others}"))
                elif index > 0:
                    groups["copy"].append((path, f"copy of {names[0]}"))
        return [(key, items) for key, items in groups.items() if items]

    @staticmethod
    def _relative(root: Path, path: Path) -> str:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            return str(path)

    def _fill_flagged(self, checked: finetune_tasks.FolderChecked) -> None:
        report = checked.report
        suggested = report.suggested_exclude()
        tree = self.flagged
        tree.clear()
        groups = self._flag_groups(report)
        for key, items in groups:
            files = "1 file" if len(items) == 1 else f"{len(items)} files"
            top = QTreeWidgetItem([GROUP_TEXT[key], "", files])
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            tree.addTopLevelItem(top)
            for path, reason in items:
                child = QTreeWidgetItem(["", self._relative(report.root, path), reason])
                child.setData(0, Qt.ItemDataRole.UserRole, str(path))
                child.setToolTip(1, str(path))
                if key == "unreadable":  # no choice to make: it cannot be trained on
                    child.setText(0, "always")
                else:
                    state = Qt.CheckState.Checked if path in suggested else Qt.CheckState.Unchecked
                    child.setCheckState(0, state)
                top.addChild(child)
                self._file_items.setdefault(path, []).append(child)
            top.setExpanded(True)
        tree.resizeColumnToContents(0)
        count = sum(len(items) for _, items in groups)
        self.flagged_label.setText(f"Flagged files ({count})")
        self.flagged_box.setVisible(bool(count))  # none: the summary says "No problems found"
        tree.itemChanged.connect(self._item_changed)

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        """A file listed twice (e.g. a copy that is also tiny) gets the same tick in both places."""
        path = item.data(0, Qt.ItemDataRole.UserRole)
        if column != 0 or not path:
            return
        state = item.checkState(0)
        for other in self._file_items.get(Path(path), []):
            if other is not item and _checkable(other) and other.checkState(0) != state:
                other.setCheckState(0, state)
        self.owner.reset_after(PAGE_HEALTH)

    def _set_all(self, leave_out: bool) -> None:
        state = Qt.CheckState.Checked if leave_out else Qt.CheckState.Unchecked
        for items in self._file_items.values():
            for item in items:
                if _checkable(item):
                    item.setCheckState(0, state)

    def _on_thumbnail(self, job: Job, item: tuple[Path, np.ndarray | None]) -> None:
        path, array = item
        if array is None:
            return
        pixmap = _pixmap(array)
        label = self._example_labels.get(path)
        if label is not None:
            label.setPixmap(pixmap)
        for tree_item in self._file_items.get(path, []):
            tree_item.setIcon(1, QIcon(pixmap))

    def excluded(self) -> set[Path]:
        """The files to leave out: the ticked ones, and every unreadable one."""
        if self.checked is None:
            return set()
        leave_out = {issue.path for issue in self.checked.report.unreadable}
        for path, items in self._file_items.items():
            if any(_checkable(item) and item.checkState(0) == Qt.CheckState.Checked for item in items):
                leave_out.add(path)
        return leave_out

    def set_excluded(self, path: Path, leave_out: bool) -> None:
        """Tick or untick one flagged file (the checkbox a user clicks); unreadable files have none."""
        for item in self._file_items.get(Path(path), []):
            if _checkable(item):
                item.setCheckState(0, Qt.CheckState.Checked if leave_out else Qt.CheckState.Unchecked)

    def isComplete(self) -> bool:
        return self.checked is not None and not self.error

    def validatePage(self) -> bool:
        from resnet_gui.core.training import DatasetError

        assert self.checked is not None
        report = self.checked.report
        if report.small_classes:
            names = ", ".join(report.small_classes)
            answer = QMessageBox.question(
                self,
                "Very few photos",
                f"These classes have very few photos: {names}.\n\nThe model will have little to learn "
                "from and the validation score will be unreliable. Go on anyway?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        try:
            from resnet_gui.core.training import make_split

            make_split(self.checked.dataset, val_fraction=0.2, exclude=self.excluded())
        except DatasetError as error:
            QMessageBox.warning(self, "Cannot train on this folder", str(error))
            return False
        return True


# ------------------------------------------------------------------------------------------------
# 3. Settings


class SettingsPage(QWizardPage):
    """Base model, mode and epochs; advanced settings folded away; the time it will take."""

    def __init__(self, wizard: FinetuneWizard) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle("Choose the settings")
        self.setSubTitle(
            "The defaults suit most folders. The estimate below is measured on this computer with the "
            "model you pick."
        )
        self.base: finetune_tasks.BaseModelReady | None = None
        self.base_error = ""
        self._job: Job | None = None
        self.model_combo = QComboBox()
        self.model_combo.currentIndexChanged.connect(self._model_picked)
        self.mode_group = QButtonGroup(self)
        mode_box = QVBoxLayout()
        self.mode_buttons: dict[str, QRadioButton] = {}
        for mode, (title, text) in MODE_TEXT.items():
            button = QRadioButton(title)
            button.setToolTip(text)
            self.mode_group.addButton(button)
            self.mode_buttons[mode] = button
            explanation = _wrapped(text)
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
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.05, 0.5)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setDecimals(2)
        self.val_fraction.setValue(0.2)
        self.val_fraction.setToolTip(
            "The share of each class kept aside to measure the model on photos it never trained on."
        )
        self.val_fraction.valueChanged.connect(self._update_estimate)
        self.val_folder_note = QLabel("the photos of the val/ folder")
        self.val_folder_note.hide()
        val_row = QHBoxLayout()
        val_row.addWidget(self.val_fraction, 1)
        val_row.addWidget(self.val_folder_note, 1)
        self.out_edit = QLineEdit()
        self.out_edit.textChanged.connect(self.completeChanged)
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
        for device in wizard.devices:
            self.device.addItem(device.upper() if device == "cpu" else device, device)
        self.device.currentIndexChanged.connect(self._model_picked)
        advanced_form.addRow("Batch size", self.batch_size)
        advanced_form.addRow("Learning rate", self.lr_edit)
        advanced_form.addRow("Optimizer", self.optimizer)
        advanced_form.addRow("Label smoothing", self.label_smoothing)
        advanced_form.addRow("Colour jitter", self.color_jitter)
        advanced_form.addRow("Stop after epochs without progress", self.patience)
        advanced_form.addRow("Random seed", self.seed)
        advanced_form.addRow("Device", self.device)
        self.advanced.setVisible(False)
        self.batch_size.valueChanged.connect(self._update_estimate)

        self.estimate = _wrapped("")
        self.estimate.setFrameShape(QFrame.Shape.StyledPanel)
        self.estimate.setMargin(8)
        form = QFormLayout()
        form.addRow("Start from", self.model_combo)
        form.addRow("How much learns", mode_box)
        form.addRow("Epochs (at most)", self.epochs)
        form.addRow("Photos kept for validation", val_row)
        form.addRow("Save the model as", out_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.advanced_toggle)
        layout.addWidget(self.advanced)
        layout.addWidget(self.estimate)
        layout.addStretch(1)

    # -- filling

    def initializePage(self) -> None:
        if self.model_combo.count() == 0:
            options = self.owner.base_models()
            for option in options:
                self.model_combo.addItem(option.label, option.ref)
            remembered = self.model_combo.findData(self.owner.settings.finetune_base)
            if remembered >= 0:
                self.model_combo.setCurrentIndex(remembered)
            self.mode_buttons[self.owner.settings.finetune_mode].setChecked(True)
        checked = self.owner.health_page.checked
        has_val_folder = checked is not None and any(s.split == "val" for s in checked.dataset.samples)
        self.val_fraction.setVisible(not has_val_folder)
        self.val_folder_note.setVisible(has_val_folder)
        if self.base is None and self._job is None:
            self._model_picked()
        self._update_estimate()

    def _suggest_out(self) -> None:
        from resnet_gui.core import paths

        folder = self.owner.folder_page.folder()
        if folder is None or (self.out_edit.text() and self.out_edit.isModified()):
            return
        ref = self.model_combo.currentData() or "model"
        architecture = Path(str(ref)).stem.split(":")[0]
        stem = f"{folder.name or 'photos'}-{architecture}-{self.mode()}"
        directory = paths.data_dir() / "models"
        candidate = directory / f"{stem}.safetensors"
        number = 2
        while candidate.exists():
            candidate = directory / f"{stem}-{number}.safetensors"
            number += 1
        self.out_edit.setText(str(candidate))

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
        self._update_estimate()  # also suggests a file name for the new mode

    # -- the base model and the estimate

    def _model_picked(self, *_: Any) -> None:
        ref = self.model_combo.currentData()
        if not ref or self.owner.health_page.checked is None:
            return
        if self._job is not None:
            self._job.abort()
        self.base = None
        self.base_error = ""
        self.estimate.setText("Measuring how fast this computer trains this model…")
        dataset = self.owner.health_page.checked.dataset
        samples = [s.path for s in dataset.samples[:: max(1, len(dataset.samples) // 4)]][:4]
        self._job = self.owner.controller.run_job(
            "finetune-base",
            finetune_tasks.prepare_base,
            str(ref),
            self.device.currentData() or "auto",
            samples,
            on_yielded=self._on_base_progress,
            on_returned=self._on_base_ready,
            on_errored=self._on_base_error,
        )
        self._suggest_out()

    def _on_base_progress(self, job: Job, text: str) -> None:
        if job is self._job:
            self.estimate.setText(text)

    def _on_base_ready(self, job: Job, base: finetune_tasks.BaseModelReady) -> None:
        if job is not self._job:
            return
        self._job = None
        self.base = base
        self._update_estimate()

    def _on_base_error(self, job: Job, error: BaseException) -> None:
        if job is not self._job:
            return
        self._job = None
        self.base_error = describe_error(error, "load the base model")
        self.estimate.setText(f"<b style='color:{ERROR_COLOR.name()}'>{self.base_error}</b>")
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
        from resnet_gui.core.training import make_split

        checked = self.owner.health_page.checked
        assert checked is not None
        return make_split(
            checked.dataset,
            val_fraction=self.val_fraction.value(),
            seed=self.seed.value(),
            exclude=self.owner.health_page.excluded(),
        )

    def _update_estimate(self, *_: Any) -> None:
        from resnet_gui.core.training import DatasetError, TrainingError
        from resnet_gui.core.training.estimate import describe_seconds, estimate_run

        self._suggest_out()
        if self.base is None:
            return
        try:
            split = self.split()
            estimate = estimate_run(self.base.costs, self.config(), len(split.train), len(split.val))
        except (DatasetError, TrainingError) as error:
            self.estimate.setText(f"<b style='color:{ERROR_COLOR.name()}'>{error}</b>")
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
            f"({estimate.epochs} epochs; training stops early once it stops improving). "
            f"Measured on this computer's {_device_name(self.base.costs.device)}."
        )
        self.estimate.setText("<br>".join(lines))

    def isComplete(self) -> bool:
        return bool(self.out_edit.text().strip()) and not self.base_error

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
        out = Path(self.out_edit.text().strip()).expanduser()
        if out.suffix != ".safetensors":
            out = out.with_name(out.name + ".safetensors")
        if out.exists() and not self.out_edit.isModified():
            # The suggested name was taken meanwhile (e.g. by the previous run): never overwrite it.
            self._suggest_out()
            out = Path(self.out_edit.text().strip())
        elif out.exists():
            answer = QMessageBox.question(
                self, "Replace the model?", f"“{out.name}” already exists. Replace it when training ends?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        config = self.config()
        interrupted = self._interrupted_run(out)
        if interrupted is False:
            return False
        resume = interrupted is not None
        if interrupted is not None:
            config, split = interrupted
        self.owner.settings.finetune_mode = self.mode()
        self.owner.settings.finetune_base = str(self.model_combo.currentData() or "")
        self.owner.plan = TrainingPlan(
            base=self.base.loaded if self.base is not None else str(self.model_combo.currentData()),
            source=str(self.model_combo.currentData() or ""),
            split=split,
            config=config,
            out=out,
            device=self.device.currentData() or "auto",
            resume=resume,
        )
        return True

    def _interrupted_run(self, out: Path) -> tuple[Any, Any] | bool | None:
        """An interrupted run into ``out`` (the app was closed while training): resume it?

        Returns its (settings, split) to resume, None to start over, False to stay on this page.
        """
        from resnet_gui.core.training import Split, TrainingError, read_checkpoint_info

        try:
            info = read_checkpoint_info(out)
        except TrainingError:
            return None  # unreadable: the new run replaces it
        if info is None:
            return None
        answer = QMessageBox.question(
            self,
            "Resume the interrupted run?",
            f"A run into “{out.name}” was interrupted after {info.epochs_done} epochs. Resume it, with "
            "the settings it was started with? (No starts over with the settings on this page.)",
            QMessageBox.StandardButton.Yes
            | QMessageBox.StandardButton.No
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer != QMessageBox.StandardButton.Yes:
            return None
        checked = self.owner.health_page.checked
        assert checked is not None
        split = Split.from_dict(info.split, checked.dataset.root)
        missing = split.missing_files()
        if missing:
            QMessageBox.warning(
                self,
                "Cannot resume",
                f"{len(missing)} photos of the interrupted run are gone (e.g. “{missing[0].name}”). "
                "Start over instead.",
            )
            return False
        return info.config, split


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


# ------------------------------------------------------------------------------------------------
# 4. Training


class TrainingPage(QWizardPage):
    """The run: progress, ETA, live curves, stop and resume; then the validation check."""

    def __init__(self, wizard: FinetuneWizard) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle("Training")
        self.setSubTitle("You can keep using the app meanwhile. Stopping keeps the best model so far.")
        self.result: Any = None
        self.evaluated: finetune_tasks.Evaluated | None = None
        self.error = ""
        self._job: Job | None = None
        self._eval_job: Job | None = None
        self._stop = threading.Event()
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

    def initializePage(self) -> None:
        self.start(resume=self.owner.plan is not None and self.owner.plan.resume)

    def cleanupPage(self) -> None:
        """Back to the settings: a run still going is stopped (its checkpoint stays)."""
        self.stop()

    def running(self) -> bool:
        return any(job is not None and not job.done for job in (self._job, self._eval_job))

    def start(self, resume: bool = False) -> None:
        plan = self.owner.plan
        assert plan is not None
        self.owner.reset_after(PAGE_TRAINING)
        self.result = None
        self.evaluated = None
        self.error = ""
        self._stop = threading.Event()
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
        self._job = self.owner.controller.run_job(
            "finetune-train",
            finetune_tasks.finetune,
            plan.base,
            plan.source,
            plan.split,
            plan.out,
            plan.config,
            self._stop,
            resume,
            on_yielded=self._on_event,
            on_errored=self._on_error,
            on_finished=self._on_finished,
        )
        self._update_buttons()
        self.completeChanged.emit()

    def stop(self) -> None:
        """Ask the run to stop at its next step (the best weights so far are saved)."""
        if self._job is not None and not self._job.done:
            self._stop.set()
            self.stop_button.setEnabled(False)
            self.phase.setText("Stopping after this step…")
        if self._eval_job is not None and not self._eval_job.done:
            self._eval_job.abort()

    # -- events of the run

    def _x(self, stage: str, epoch: float) -> float:
        return (self._offset if stage == "train" else 0) + epoch

    def _on_event(self, job: Job, event: Any) -> None:
        from resnet_gui.core.training import EpochMetrics, Progress, StepMetrics, TrainResult

        if job is not self._job:
            return
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
        texts = {
            "prepare": "Preparing the model…",
            "features (val)": "Reading the validation photos through the network",
            "features (train)": (
                "Reading the training photos through the network (once; the epochs then take little time)"
            ),
            "test": "Scoring the test photos",
        }
        base = texts.get(event.phase, event.phase.capitalize())
        if event.phase == "prepare":
            self.phase.setText(base if not event.message else event.message.capitalize() + "…")
            self.progress.setRange(0, 0)
            return
        self.phase.setText(f"{base} — {event.done} of {event.total}")
        self.progress.setRange(0, max(1, event.total))
        self.progress.setValue(event.done)
        self.eta.setText(
            f"About {_duration(event.eta_seconds)} left in this step" if event.eta_seconds else ""
        )

    def _stage_name(self, stage: str) -> str:
        if stage == "probe":
            return "Training the last layer"
        mode = self.owner.plan.config.mode if self.owner.plan else "head"
        return {
            "head": "Training the last layer",
            "partial": "Training the last block",
            "full": "Training every layer",
        }[mode]

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
            self.eta.setText(f"About {_duration(event.eta_seconds)} left at most")
        if event.stage == "train" and self.owner.plan.config.mode != "head" and event.steps > 1:
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
                f"Best so far: epoch {int(x)}, validation accuracy {_percent(event.val_accuracy)}"
            )
        if event.eta_seconds is not None:
            self.eta.setText(f"About {_duration(event.eta_seconds)} left at most")

    def _show_result(self, result: Any) -> None:
        self.result = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.stop_button.hide()
        done = {
            "finished": "Training finished",
            "stopped_early": "Training stopped early: the validation loss stopped improving",
            "cancelled": "Training stopped",
        }[result.status]
        cached = self.owner.plan is not None and self.owner.plan.config.mode == "head" and not self._extracted
        self.eta.setText(
            f"{done} after {_duration(result.seconds)}."
            + (" The photos' features came from an earlier run's cache." if cached else "")
        )
        if result.status == "cancelled" and result.checkpoint is not None:
            self.resume_button.show()
        if result.bundle is None:
            self.phase.setText(
                "Stopped before the first epoch finished: there is no model yet. Resume, or go back to "
                "change the settings."
            )
            if result.checkpoint is None:
                self.resume_button.hide()
            return
        self._evaluate(result.bundle)

    def _evaluate(self, bundle: Path) -> None:
        plan = self.owner.plan
        assert plan is not None
        self.phase.setText(f"Checking the model on the {len(plan.split.val)} validation photos…")
        self.progress.setRange(0, max(1, len(plan.split.val)))
        self.progress.setValue(0)
        self._eval_job = self.owner.controller.run_job(
            "finetune-evaluate",
            finetune_tasks.evaluate_bundle,
            bundle,
            plan.split.root,
            plan.device,
            "val",
            on_yielded=self._on_eval_progress,
            on_returned=self._on_evaluated,
            on_errored=self._on_error,
            on_finished=self._on_finished,
        )

    def _on_eval_progress(self, job: Job, progress: Any) -> None:
        if job is self._eval_job:
            self.progress.setRange(0, max(1, progress.total))
            self.progress.setValue(progress.done)

    def _on_evaluated(self, job: Job, evaluated: finetune_tasks.Evaluated) -> None:
        if job is not self._eval_job:
            return
        self.evaluated = evaluated
        report = evaluated.report
        right = int(np.trace(report.confusion[:, : len(report.classes)]))
        self.phase.setText(
            f"<b>Validation accuracy: {_percent(report.accuracy)}</b> ({right} of {report.count} photos "
            "the model never trained on). Next: where it goes wrong."
        )
        self.completeChanged.emit()

    def _on_error(self, job: Job, error: BaseException) -> None:
        if job not in (self._job, self._eval_job):
            return
        doing = "train the model" if job is self._job else "check the trained model"
        self.error = describe_error(error, doing)
        self.phase.setText(f"<b style='color:{ERROR_COLOR.name()}'>{self.error}</b>")
        self.stop_button.hide()
        from resnet_gui.core.training import checkpoint_path

        plan = self.owner.plan
        if job is self._job and plan is not None and checkpoint_path(plan.out).exists():
            self.resume_button.show()

    def _on_finished(self, job: Job) -> None:
        self._update_buttons()
        self.completeChanged.emit()

    def _update_buttons(self) -> None:
        back = self.owner.button(QWizard.WizardButton.BackButton)
        if back is not None and self.owner.currentPage() is self:
            back.setEnabled(not self.running())

    def isComplete(self) -> bool:
        return self.evaluated is not None and not self.running()


# ------------------------------------------------------------------------------------------------
# 5. Results


class ResultsPage(QWizardPage):
    """How good the model is and where it fails: click a matrix cell to see its photos with Grad-CAM."""

    def __init__(self, wizard: FinetuneWizard) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle("Results")
        self.setSubTitle(
            "Measured on the validation photos only. Click a cell of the table of mistakes to see "
            "those photos, with a heat map of what made the model choose its answer."
        )
        self._cell_paths: list[tuple[Path, str, str, float]] = []
        self._thumb_job: Job | None = None
        self._explain_job: Job | None = None
        self.explained: finetune_tasks.CellExplanation | None = None
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.save_report_button = QPushButton("Save Report…")
        self.save_report_button.setToolTip(
            "Write report.json, the confusion matrix (CSV and PNG) and every photo's prediction (CSV)"
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
        left_layout.addWidget(heading("Confusion matrix (rows: true class, columns: the model's answer)"))
        left_layout.addWidget(self.matrix, 2)
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
        evaluated = self.owner.training_page.evaluated
        assert evaluated is not None
        report = evaluated.report
        right = int(np.trace(report.confusion[:, : len(report.classes)]))
        counts = report.confusion.sum(axis=1)
        majority = float(counts.max() / counts.sum()) if counts.sum() else 0.0
        self.headline.setText(
            f"<span style='font-size:16pt'><b>{_percent(report.accuracy)}</b></span> of the validation "
            f"photos are right ({right} of {report.count}). Always answering the largest class would "
            f"score {_percent(majority)}." + self._best_stage_note()
        )
        table = self.per_class
        table.setRowCount(len(report.per_class))
        for row, metrics in enumerate(report.per_class):
            values = [
                metrics.name,
                str(metrics.support),
                _percent(metrics.precision),
                _percent(metrics.recall),
                _percent(metrics.f1),
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
        off = report.confusion[:, : len(report.classes)].copy()
        np.fill_diagonal(off, 0)
        if off.sum():
            row, column = np.unravel_index(int(off.argmax()), off.shape)
            self.matrix.select(int(row), int(column))
        else:
            self.matrix.select(0, 0)

    def _best_stage_note(self) -> str:
        """Say so when deeper training did not help: the kept weights are the last layer's alone."""
        result = self.owner.training_page.result
        plan = self.owner.plan
        if result is None or plan is None or plan.config.mode == "head" or result.best_stage != "probe":
            return ""
        return (
            " <i>Training the deeper layers did not lower the validation loss, so the model kept is the "
            "one from the first stage (the last layer alone): Quick mode would have done as well.</i>"
        )

    def save_report_dialog(self) -> None:
        start = str(self.owner.training_page.result.bundle.with_suffix("")) + "-report"
        folder = QFileDialog.getExistingDirectory(
            self, "Save the report in a folder", str(Path(start).parent)
        )
        if folder:
            self.save_report(Path(folder))

    def save_report(self, folder: Path) -> None:
        """Write the evaluation files into ``folder`` in the background (the PNG takes a moment)."""
        report = self.owner.training_page.evaluated.report
        self.save_report_button.setEnabled(False)
        self.report_label.setText("Saving…")
        self._report_job = self.owner.controller.run_job(
            "finetune-report",
            finetune_tasks.write_report,
            report,
            folder,
            on_returned=self._on_report_saved,
            on_errored=self._on_report_error,
            on_finished=self._on_report_finished,
        )

    def _on_report_finished(self, job: Job) -> None:
        self.save_report_button.setEnabled(True)

    def _on_report_saved(self, job: Job, paths: dict[str, Path]) -> None:
        self.saved_report = paths
        folder = next(iter(paths.values())).parent
        self.report_label.setText(f"Saved in {folder}: " + ", ".join(p.name for p in paths.values()))

    def _on_report_error(self, job: Job, error: BaseException) -> None:
        self.report_label.setText(
            f"<span style='color:{ERROR_COLOR.name()}'>{describe_error(error, 'save the report')}</span>"
        )

    def show_cell(self, row: int, column: int) -> None:
        """List the validation photos of class ``row`` that the model put in ``column``."""
        report = self.owner.training_page.evaluated.report
        true_name = report.classes[row]
        predicted_name = report.columns[column]
        self._cell_paths = [p for p in report.predictions if p[1] == true_name and p[2] == predicted_name]
        self._cell_paths.sort(key=lambda p: -p[3])
        verdict = "correctly" if row == column else f"as “{predicted_name}”"
        self.cell_label.setText(
            f"<b>{len(self._cell_paths)}</b> “{true_name}” photos classified {verdict}"
            + (" — most confident first. Click one to see why." if self._cell_paths else ".")
        )
        self.cell_list.clear()
        self.preview.set_picture(None)
        self.preview_label.setText("")
        for path, _true, _predicted, confidence in self._cell_paths:
            item = QListWidgetItem(f"{path.name}\n{_percent(confidence)}")
            item.setToolTip(str(path))
            self.cell_list.addItem(item)
        if self._thumb_job is not None:
            self._thumb_job.abort()
        if self._cell_paths:
            self._thumb_job = self.owner.controller.run_job(
                "finetune-cell-thumbnails",
                tasks.batch_thumbnails,
                [p[0] for p in self._cell_paths],
                THUMBNAIL_SIDE,
                on_yielded=self._on_thumbnail,
            )
            self.cell_list.setCurrentRow(0)

    def _on_thumbnail(self, job: Job, item: tuple[Path, np.ndarray | None]) -> None:
        if job is not self._thumb_job:
            return
        path, array = item
        if array is None:
            return
        for row, entry in enumerate(self._cell_paths):
            if entry[0] == path:
                list_item = self.cell_list.item(row)
                if list_item is not None:
                    list_item.setIcon(QIcon(_pixmap(array)))

    def _image_picked(self, row: int) -> None:
        if not 0 <= row < len(self._cell_paths):
            return
        path, true_name, predicted_name, confidence = self._cell_paths[row]
        evaluated = self.owner.training_page.evaluated
        if self._explain_job is not None:
            self._explain_job.abort()
        self.explained = None
        self.preview_label.setText(f"Computing the heat map of “{predicted_name}” on {path.name}…")
        self._explain_job = self.owner.controller.run_job(
            "finetune-explain",
            finetune_tasks.explain_cell_image,
            evaluated.classifier,
            path,
            predicted_name,
            on_returned=self._on_explained,
            on_errored=self._on_explain_error,
        )
        self._explain_job.tag = (true_name, predicted_name, confidence)

    def _on_explained(self, job: Job, explained: finetune_tasks.CellExplanation) -> None:
        if job is not self._explain_job:
            return
        true_name, predicted_name, confidence = job.tag
        self.explained = explained
        self.preview.set_picture(
            Picture(
                (explained.photo, explained.overlay),
                (f"True class: {true_name}", f"Grad-CAM of “{predicted_name}” ({_percent(confidence)})"),
                explained.path.name,
            )
        )
        self.preview_label.setText(
            f"{explained.path.name}: the warm colours show the parts of the photo that made the model "
            f"answer “{predicted_name}”. The model sees the centre square of each photo; the rest is "
            "greyed."
        )

    def _on_explain_error(self, job: Job, error: BaseException) -> None:
        if job is self._explain_job:
            self.preview_label.setText(describe_error(error, "explain the photo"))


# ------------------------------------------------------------------------------------------------
# 6. Save and use


class SavePage(QWizardPage):
    """Where the model was saved, a copy elsewhere, and whether to use it now."""

    def __init__(self, wizard: FinetuneWizard) -> None:
        super().__init__()
        self.owner = wizard
        self.setTitle("Save and use the model")
        self.setSubTitle("The model is saved. Use it now, or later with Model ▸ Use a Weights File….")
        self.where = _wrapped()
        self.details = _wrapped()
        show = QPushButton("Show in Folder")
        show.clicked.connect(self.show_in_folder)
        copy = QPushButton("Save a Copy As…")
        copy.clicked.connect(self.save_copy_dialog)
        buttons = QHBoxLayout()
        buttons.addWidget(show)
        buttons.addWidget(copy)
        buttons.addStretch(1)
        self.use_now = QCheckBox("Use this model in the classifier now")
        self.use_now.setChecked(True)
        cli = _wrapped()
        self.cli = cli
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Saved as"))
        layout.addWidget(self.where)
        layout.addLayout(buttons)
        layout.addSpacing(8)
        layout.addWidget(self.details)
        layout.addSpacing(8)
        layout.addWidget(self.use_now)
        layout.addWidget(cli)
        layout.addStretch(1)
        self.setFinalPage(True)

    def bundle(self) -> Path | None:
        result = self.owner.training_page.result
        return None if result is None else result.bundle

    def initializePage(self) -> None:
        bundle = self.bundle()
        assert bundle is not None
        self.where.setText(f"{bundle}<br>(settings, split and scores: {bundle.with_suffix('.json').name})")
        evaluated = self.owner.training_page.evaluated
        plan = self.owner.plan
        report = evaluated.report if evaluated is not None else None
        lines = []
        if plan is not None:
            resolved = plan.config.resolved()
            lines.append(
                f"Classes: {', '.join(plan.split.classes)}. Mode: {resolved.mode}; "
                f"{len(plan.split.train)} training and {len(plan.split.val)} validation photos."
            )
        if report is not None:
            lines.append(f"Validation accuracy: {_percent(report.accuracy)}.")
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
            from resnet_gui.core.errors import OutputError

            try:
                copied = save_copy(bundle, Path(path))
            except (OutputError, OSError) as error:
                QMessageBox.warning(self, "Could not save the copy", str(error))
                return
            self.where.setText(self.where.text() + f"<br>Copy: {copied}")


def save_copy(bundle: Path, target: Path) -> Path:
    """Copy a bundle (weights and its JSON sidecar) to ``target``, each file written atomically."""
    from resnet_gui.core.atomic import atomic_path
    from resnet_gui.core.training import normalise_bundle_path, sidecar_path

    target = normalise_bundle_path(target)
    for source, destination in ((bundle, target), (sidecar_path(bundle), sidecar_path(target))):
        with atomic_path(destination) as temporary:
            shutil.copyfile(source, temporary)
    return target


# ------------------------------------------------------------------------------------------------
# The wizard


class FinetuneWizard(QWizard):
    """The six pages, the state they share, and a safe close while training runs."""

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
        self.devices = tuple(devices)
        self._base_models = list(base_models) if base_models is not None else None
        self.plan: TrainingPlan | None = None
        self.setWindowTitle("Fine-Tune a Model on Your Photos")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Done")
        self.folder_page = FolderPage(self)
        self.health_page = HealthPage(self)
        self.settings_page = SettingsPage(self)
        self.training_page = TrainingPage(self)
        self.results_page = ResultsPage(self)
        self.save_page = SavePage(self)
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
        self.currentIdChanged.connect(lambda _: self.training_page._update_buttons())

    def base_models(self) -> list[BaseModelOption]:
        """The picker's entries: given at construction (tests) or read from the registry now."""
        if self._base_models is None:
            self._base_models = base_model_options(tasks.model_choices())
        options = list(self._base_models)
        info = self.controller.model_info
        if info is not None and info.ref.startswith("file:"):
            path = info.ref[len("file:") :]
            options.append(BaseModelOption(path, f"The model in use: {Path(path).name}"))
        return options

    def reset_after(self, page_id: int) -> None:
        """A change on ``page_id`` makes what later pages computed stale."""
        if page_id < PAGE_TRAINING:
            self.plan = None

    def running(self) -> bool:
        return self.training_page.running()

    def reject(self) -> None:
        if self.running():
            answer = QMessageBox.question(
                self,
                "Stop training?",
                "Training is still running. Stop it and close the wizard? The last finished epoch is "
                "kept, and the best model so far is saved.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.training_page.stop()
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.running():
            event.ignore()
            self.reject()
            return
        super().closeEvent(event)

    def accept(self) -> None:
        bundle = self.save_page.bundle()
        if bundle is not None and self.save_page.use_now.isChecked():
            self.use_model.emit(bundle)
        super().accept()

    def keyPressEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Escape and self.running():
            self.training_page.stop()
            return
        super().keyPressEvent(event)


__all__ = [
    "BaseModelOption",
    "FinetuneWizard",
    "base_model_options",
    "save_copy",
]
