"""Page 2: the health report of the folder the session checked, with a Leave-out tick per flagged file.

The groups and default ticks are core's (:func:`~resnet_gui.core.training.planning.flag_groups`);
the ticks themselves live in the session, so the settings page's split reads them from there.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from resnet_gui.core.text import printable
from resnet_gui.gui import tasks
from resnet_gui.gui.finetune.common import (
    ERROR_COLOR,
    EXAMPLES_PER_CLASS,
    THUMBNAIL_SIDE,
    WARNING_COLOR,
    duration,
    error_html,
    pixmap,
    wrapped,
)
from resnet_gui.gui.finetune.session import FinetuneSession
from resnet_gui.gui.finetune.texts import GROUP_TEXT
from resnet_gui.gui.qtutil import heading
from resnet_gui.gui.workers import Job


def _checkable(item: QTreeWidgetItem) -> bool:
    """Whether a flagged file has a Leave-out checkbox (unreadable files are always left out)."""
    return item.data(0, Qt.ItemDataRole.CheckStateRole) is not None


class HealthPage(QWizardPage):
    """Every photo checked: examples per class, warnings, and the flagged files with a checkbox each."""

    def __init__(self, session: FinetuneSession) -> None:
        super().__init__()
        self.session = session
        self.setTitle("Check the photos")
        self.setSubTitle(
            "Each photo is opened once to find unreadable files, copies and very small images. "
            "Ticked files are left out of training; nothing is deleted."
        )
        self._thumb_job: Job | None = None
        self._example_labels: dict[Path, QLabel] = {}
        self._file_items: dict[Path, list[QTreeWidgetItem]] = {}
        self.progress = QProgressBar()
        self.progress_label = QLabel()
        self.summary = wrapped()
        self.warnings = wrapped()
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
        self.flagged.itemChanged.connect(self._item_changed)
        self.flagged_label = heading("Flagged files")
        self.leave_all = QPushButton("Leave Out All Flagged")
        self.leave_all.clicked.connect(lambda: session.set_all_excluded(True))
        self.keep_all = QPushButton("Keep All")
        self.keep_all.clicked.connect(lambda: session.set_all_excluded(False))
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
        session.folder_changed.connect(self._folder_changed)
        session.check_progress.connect(self._on_progress)
        session.excluded_changed.connect(self._sync_ticks)

    # -- what the tests and the settings read: the session's

    @property
    def checked(self) -> Any:
        return self.session.checked

    @property
    def error(self) -> str:
        return self.session.check_error

    def excluded(self) -> set[Path]:
        """The files to leave out: the ticked ones, and every unreadable one."""
        return self.session.excluded

    def set_excluded(self, path: Path, leave_out: bool) -> None:
        """Tick or untick one flagged file (the checkbox a user clicks); unreadable files have none."""
        self.session.set_excluded(path, leave_out)

    # -- drawing the session's state

    def _folder_changed(self) -> None:
        session = self.session
        if session.checked is not None:
            self.progress.hide()
            self.progress_label.hide()
            self._show_report(session.checked)
        elif session.check_error:
            self.progress.hide()
            self.progress_label.setText(error_html(session.check_error))
            self.progress_label.setWordWrap(True)
            self.progress_label.show()
        else:
            self._clear()
        self.completeChanged.emit()

    def _clear(self) -> None:
        """A check has started: the previous report and its thumbnails go."""
        if self._thumb_job is not None:
            self._thumb_job.abort()
        self.summary.setText("")
        self.warnings.setText("")
        self.classes_table.setRowCount(0)
        self.flagged.clear()
        self._file_items = {}
        self._example_labels = {}
        self.progress.setRange(0, 0)
        self.progress.show()
        folder = self.session.folder
        self.progress_label.setText(f"Looking at the photos in “{folder.name if folder else ''}”…")
        self.progress_label.show()

    def _on_progress(self, progress: Any) -> None:
        self.progress.setRange(0, max(1, progress.total))
        self.progress.setValue(progress.done)
        eta = progress.eta_seconds
        self.progress_label.setText(
            f"Checking photo {progress.done} of {progress.total}"
            + (f" — about {duration(eta)} left" if eta is not None and eta >= 2 else "")
        )

    def _show_report(self, checked: Any) -> None:
        dataset, report = checked.dataset, checked.report
        usable = sum(sum(per_class.values()) for per_class in report.counts.values())
        if checked.project_name is not None:
            layout = f"project “{html.escape(printable(checked.project_name))}”"
        elif dataset.layout == "splits":
            layout = "train/val folders"
        else:
            layout = f"{len(dataset.classes)} class folders"
        warnings = report.warnings()
        self.summary.setText(
            f"<b>{usable} usable photos</b> in {len(dataset.classes)} classes ({layout}). "
            + ("No problems found." if not warnings else "")
        )
        self.warnings.setText(
            "".join(f"<div style='color:{WARNING_COLOR.name()}'>⚠ {line}</div>" for line in warnings)
        )
        self.warnings.setVisible(bool(warnings))
        self._fill_classes(checked)
        self._fill_flagged(checked)
        wanted = list(self._example_labels) + [p for p in self._file_items if p not in self._example_labels]
        if wanted:
            self._thumb_job = self.session.start_job(
                "finetune-thumbnails",
                tasks.batch_thumbnails,
                wanted,
                THUMBNAIL_SIDE,
                on_yield=self._on_thumbnail,
            )

    def _fill_classes(self, checked: Any) -> None:
        from resnet_gui.core.training.planning import class_examples

        dataset, report = checked.dataset, checked.report
        examples = class_examples(dataset, report, EXAMPLES_PER_CLASS)
        table = self.classes_table
        table.setRowCount(len(dataset.classes))
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
            for path in examples[name]:
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

    def _fill_flagged(self, checked: Any) -> None:
        from resnet_gui.core.training.planning import flag_groups

        excluded = self.session.excluded
        tree = self.flagged
        blocked = tree.blockSignals(True)  # filling is not the user ticking
        tree.clear()
        self._file_items = {}
        groups = flag_groups(checked.report)
        for group in groups:
            count = len(group.files)
            top = QTreeWidgetItem([GROUP_TEXT[group.key], "", "1 file" if count == 1 else f"{count} files"])
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            tree.addTopLevelItem(top)
            for flagged in group.files:
                child = QTreeWidgetItem(["", flagged.name, flagged.reason])
                child.setData(0, Qt.ItemDataRole.UserRole, str(flagged.path))
                child.setToolTip(1, str(flagged.path))
                if not flagged.optional:  # no choice to make: it cannot be trained on
                    child.setText(0, "always")
                else:
                    leave_out = flagged.path in excluded
                    child.setCheckState(0, Qt.CheckState.Checked if leave_out else Qt.CheckState.Unchecked)
                top.addChild(child)
                self._file_items.setdefault(flagged.path, []).append(child)
            top.setExpanded(True)
        tree.blockSignals(blocked)
        tree.resizeColumnToContents(0)
        total = sum(len(group.files) for group in groups)
        self.flagged_label.setText(f"Flagged files ({total})")
        self.flagged_box.setVisible(bool(total))  # none: the summary says "No problems found"

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        path = item.data(0, Qt.ItemDataRole.UserRole)
        if column != 0 or not path or not _checkable(item):
            return
        self.session.set_excluded(Path(path), item.checkState(0) == Qt.CheckState.Checked)
        self._sync_ticks()  # also when the session refused the change

    def _sync_ticks(self) -> None:
        """Every checkbox shows the session's ticks (a file listed twice gets the same tick twice)."""
        excluded = self.session.excluded
        blocked = self.flagged.blockSignals(True)
        for path, items in self._file_items.items():
            state = Qt.CheckState.Checked if path in excluded else Qt.CheckState.Unchecked
            for item in items:
                if _checkable(item) and item.checkState(0) != state:
                    item.setCheckState(0, state)
        self.flagged.blockSignals(blocked)

    def _on_thumbnail(self, item: tuple[Path, np.ndarray | None]) -> None:
        path, array = item
        if array is None:
            return
        image = pixmap(array)
        label = self._example_labels.get(path)
        if label is not None:
            label.setPixmap(image)
        for tree_item in self._file_items.get(path, []):
            tree_item.setIcon(1, QIcon(image))

    def isComplete(self) -> bool:
        return self.session.checked is not None and not self.session.check_error

    def validatePage(self) -> bool:
        from resnet_gui.core.training import DatasetError

        checked = self.session.checked
        assert checked is not None
        report = checked.report
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
            self.session.split(val_fraction=0.2)
        except DatasetError as error:
            QMessageBox.warning(self, "Cannot train on this folder", str(error))
            return False
        return True
