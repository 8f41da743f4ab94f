"""Review Training Photos: the photos whose label the model strongly disputes, and what to do with each.

Confident learning (core's :func:`~resnet_gui.core.training.review.iter_label_issues`, with
cleanlab) lists the validation and cross-validated training photos whose given class the model
disputes. For each the user picks *Keep*, *Leave out* or *Move to “class”*; the choices are saved
at once in the app's data folder (they survive a restart) and nothing in the user's folder changes
until *Apply…*, which shows every move first. The last applied review can be undone. Every file
operation runs in a job; the dialog holds numpy thumbnails and core's dataclasses only.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.gui.data import UserMessage
from resnet_gui.gui.workers import TaskContext

__all__ = ["ReviewDialog", "ReviewScan"]

THUMBNAIL = 56
UNDECIDED = "Undecided"
KEEP = "Keep as it is"
LEAVE_OUT = "Leave out of training"
MOVE = "Move to “{}”"
SPLIT_WORDS = {"train": "a training photo", "val": "a validation photo", "test": "a test photo"}


@dataclass(frozen=True)
class ReviewScan:
    """What the scan found: the issues (ranked), their thumbnails, the saved decisions, the last apply."""

    issues: tuple[Any, ...]  # core LabelIssue
    thumbnails: tuple[np.ndarray | None, ...]
    decisions: Any  # core ReviewDecisions
    classes: tuple[str, ...]
    last_applied: Any  # core AppliedReview, or None


def _thumbnail(path: Path) -> np.ndarray | None:
    from resnet_gui.core.errors import ResNetGuiError
    from resnet_gui.core.images import load_image

    try:
        image = load_image(path)
    except (ResNetGuiError, OSError):
        return None
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    return np.ascontiguousarray(np.asarray(image.convert("RGB")))


def scan(
    context: TaskContext, bundle: Path, metadata: Mapping[str, Any]
) -> Generator[tuple[float | None, str], None, ReviewScan]:
    """Find the possible label errors of ``bundle``'s training photos; yields (fraction, text)."""
    from resnet_gui.core import paths
    from resnet_gui.core.training import FeatureCache, Progress
    from resnet_gui.core.training.review import ReviewDecisions, iter_label_issues, last_applied_review

    decisions = ReviewDecisions.for_bundle(metadata)
    cache = FeatureCache(paths.data_dir() / "cache" / "features")
    issues: list[Any] = []
    yield None, "Loading the model…"
    for event in iter_label_issues(bundle, feature_cache=cache, cancel=context.is_cancelled):
        if isinstance(event, Progress):
            fraction = event.done / event.total if event.total else None
            yield fraction, f"Looking at the photos ({event.done} of {event.total})…"
        else:
            issues = list(event)
    context.check()
    kept = decisions.kept()
    issues = [issue for issue in issues if issue.path not in kept]  # the user has looked at these
    yield None, "Making thumbnails…"
    thumbnails = tuple(_thumbnail(issue.path) for issue in issues)
    classes = tuple(_classes(metadata))
    return ReviewScan(tuple(issues), thumbnails, decisions, classes, last_applied_review(decisions.root))


def _classes(metadata: Mapping[str, Any]) -> list[str]:
    import json

    value = metadata.get("categories", "[]")
    names = json.loads(value) if isinstance(value, str) else value
    return [str(name) for name in names]


def decide(context: TaskContext, decisions: Any, path: Path, action: str, label: str) -> Any:
    if action == "":
        decisions.forget(path)
    else:
        decisions.decide(path, action, label)
    return decisions


def plan(context: TaskContext, decisions: Any) -> Any:
    from resnet_gui.core.training.review import plan_review

    return plan_review(decisions)


def apply(context: TaskContext, review_plan: Any, decisions: Any) -> Any:
    from resnet_gui.core.training.review import apply_review

    return apply_review(review_plan, decisions)


def undo(context: TaskContext, applied: Any) -> Any:
    from resnet_gui.core.training.review import undo_review

    return undo_review(applied)


def _pixmap(array: np.ndarray) -> QPixmap:
    height, width, _ = array.shape
    image = QImage(array.data, width, height, width * 3, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class ReviewDialog(QDialog):
    """The list of disputed photos with a decision each, Apply… (plan first) and Undo Last Apply."""

    def __init__(
        self, controller: Any, bundle: Path, metadata: Mapping[str, Any], parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.controller = controller
        self.bundle = Path(bundle)
        self.metadata = metadata
        self.result_scan: ReviewScan | None = None
        self.decisions: Any = None
        self.last_applied: Any = None
        self.setWindowTitle("Review Training Photos")
        self.resize(760, 560)

        self.status = QLabel("Looking for photos whose label the model disputes…")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Photo", "Labelled as", "The model says", "What to do"])
        self.table.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(THUMBNAIL + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.hide()
        self.note = QLabel(
            "Nothing in your folder changes until you press Apply, which shows every move first. "
            "Your choices are saved as you make them."
        )
        self.note.setWordWrap(True)

        self.apply_button = QPushButton("Apply…")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self.ask_apply)
        self.undo_button = QPushButton("Undo Last Apply")
        self.undo_button.setEnabled(False)
        self.undo_button.clicked.connect(self.undo_last)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.undo_button)
        row.addStretch(1)
        row.addWidget(self.apply_button)
        row.addWidget(buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.progress)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        layout.addLayout(row)
        self.combos: list[QComboBox] = []
        self.start_scan()

    # -- scanning --

    def start_scan(self) -> None:
        self.progress.show()
        self.controller.start_job(
            "review",
            scan,
            self.bundle,
            self.metadata,
            on_progress=self._scan_progress,
            on_result=self._scanned,
            on_error=partial(self._failed, "look for label errors"),
        )

    def _scan_progress(self, fraction: float | None, text: str) -> None:
        self.status.setText(text)
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(fraction * 1000))

    def _scanned(self, found: ReviewScan) -> None:
        self.result_scan = found
        self.decisions = found.decisions
        self.last_applied = found.last_applied
        self.progress.hide()
        count = len(found.issues)
        if count:
            self.status.setText(
                f"{count} photo{'s' if count != 1 else ''} whose label the model strongly disputes "
                "(confident learning, on photos the model did not learn from). Look at each and "
                "choose what to do."
            )
        else:
            self.status.setText("No photo's label is strongly disputed by the model: nothing to review.")
        self._fill(found)
        self._update_buttons()

    def _fill(self, found: ReviewScan) -> None:
        self.table.setRowCount(len(found.issues))
        self.combos = []
        for row, (issue, thumbnail) in enumerate(zip(found.issues, found.thumbnails, strict=True)):
            photo = QTableWidgetItem(issue.path.name)
            photo.setToolTip(str(issue.path))
            if thumbnail is not None:
                photo.setIcon(QIcon(_pixmap(thumbnail)))
            self.table.setItem(row, 0, photo)
            where = SPLIT_WORDS.get(issue.split, issue.split)
            self.table.setItem(row, 1, QTableWidgetItem(f"{issue.given} ({where})" if where else issue.given))
            self.table.setItem(
                row, 2, QTableWidgetItem(f"{issue.suggested} ({issue.suggested_probability * 100:.0f} %)")
            )
            combo = QComboBox()
            combo.setAccessibleName(f"What to do with {issue.path.name}")
            combo.addItem(UNDECIDED, ("", ""))
            combo.addItem(KEEP, ("keep", ""))
            combo.addItem(LEAVE_OUT, ("leave_out", ""))
            for name in found.classes:
                if name != issue.given:
                    combo.addItem(MOVE.format(name), ("move", name))
            decision = found.decisions.get(issue.path)
            if decision is not None:
                chosen = (decision.action, decision.label)
                matches = [i for i in range(combo.count()) if tuple(combo.itemData(i)) == chosen]
                combo.setCurrentIndex(matches[0] if matches else 0)
            combo.currentIndexChanged.connect(partial(self._decided, issue.path, combo))
            self.table.setCellWidget(row, 3, combo)
            self.combos.append(combo)
        self.table.setVisible(bool(found.issues))

    # -- deciding, applying, undoing --

    def _decided(self, path: Path, combo: QComboBox, _index: int) -> None:
        action, label = combo.currentData()
        self.controller.start_job(
            "review-decide",
            decide,
            self.decisions,
            path,
            action,
            label,
            supersede=False,  # every choice is saved, in order
            on_result=lambda _decisions: self._update_buttons(),
            on_error=partial(self._failed, "save your choice"),
        )

    def _update_buttons(self) -> None:
        pending = bool(self.decisions is not None and self.decisions.pending())
        self.apply_button.setEnabled(pending)
        self.undo_button.setEnabled(self.last_applied is not None and not self.last_applied.undone)

    def ask_apply(self) -> None:
        self.apply_button.setEnabled(False)
        self.controller.start_job(
            "review-apply",
            plan,
            self.decisions,
            on_result=self._confirm,
            on_error=partial(self._failed, "plan"),
        )

    def _confirm(self, review_plan: Any) -> None:
        moves = len(review_plan.moves)
        if not moves:
            QMessageBox.information(
                self, "Nothing to Move", "\n".join(review_plan.lines()) or "No move is planned."
            )
            self._update_buttons()
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Apply the Review")
        box.setText(
            f"Move {moves} photo{'s' if moves != 1 else ''} inside {review_plan.root}? "
            "Nothing is deleted, and Undo Last Apply puts them back."
        )
        box.setDetailedText("\n".join(review_plan.lines()))
        box.setStandardButtons(QMessageBox.StandardButton.Cancel)
        apply_button = box.addButton(
            f"Move {moves} Photo{'s' if moves != 1 else ''}", QMessageBox.ButtonRole.AcceptRole
        )
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is not apply_button:
            self._update_buttons()
            return
        self.controller.start_job(
            "review-apply",
            apply,
            review_plan,
            self.decisions,
            on_result=self._applied,
            on_error=partial(self._failed, "apply the review"),
        )

    def _applied(self, applied: Any) -> None:
        self.last_applied = applied
        moved = len(applied.moves)
        self.controller.message.emit(
            UserMessage(
                f"Moved {moved} photo{'s' if moved != 1 else ''} in {applied.root}; "
                "fine-tune again to train on the folder as it is now.",
                "info",
            )
        )
        self._update_buttons()
        self.start_scan()

    def undo_last(self) -> None:
        if self.last_applied is None:
            return
        self.undo_button.setEnabled(False)
        self.controller.start_job(
            "review-apply",
            undo,
            self.last_applied,
            on_result=self._undone,
            on_error=partial(self._failed, "undo the review"),
        )

    def _undone(self, applied: Any) -> None:
        self.last_applied = applied
        moved = len(applied.moves)
        self.controller.message.emit(
            UserMessage(f"Put {moved} photo{'s' if moved != 1 else ''} back where they were.", "info")
        )
        self._update_buttons()
        self.start_scan()

    def _failed(self, doing: str, error: BaseException) -> None:
        from resnet_gui.gui.controller import describe_error

        self.progress.hide()
        self.status.setText(describe_error(error, doing))
        self._update_buttons()

    def done(self, result: int) -> None:
        for job in self.controller.runner.active("review"):
            job.abort()
        super().done(result)


def review_available(metadata: Mapping[str, Any]) -> bool:
    """Whether a model records the photos it was fine-tuned on (only then can they be reviewed)."""
    from resnet_gui.core.metadata import metadata_data_root

    return metadata_data_root(metadata) is not None
