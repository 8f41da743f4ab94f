"""View → Live Camera: the newest camera frame classified as fast as the model allows.

The window picks a camera (Qt Multimedia, :mod:`.camera`) or, where there is none, plays a video
file in real time instead; either feeds core's newest-frame slot (:mod:`resnet_gui.core.live`),
and core's live loop runs as one job of the app's job runner, its results arriving by signal. The
preview shows the source's frames as they come (or, with the heat map, each classified frame with
its Grad-CAM drawn on); the bars show the last classified frame's top-k; the status line counts
frames per second and the frames dropped because the model was busy. Pause (Space) freezes both;
Snapshot sends the frame shown to the main window's strip like an opened photo; with a model
fine-tuned here, *Capture to Class…* adds frames to a labelling project, a burst while the
capture button is held.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QPainter, QPalette, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.live import FrameSlot, LiveResult, LiveSettings, LiveSource, live_results
from resnet_gui.gui.camera import CameraFeed, CameraSupport, camera_support
from resnet_gui.gui.data import Picture, PredictionRow
from resnet_gui.gui.image_view import ImageView
from resnet_gui.gui.predictions import PredictionBar
from resnet_gui.gui.qtutil import VIDEO_FILTER, heading, muted

if TYPE_CHECKING:
    from resnet_gui.core.engine import ImageClassifier
    from resnet_gui.gui.controller import Controller
    from resnet_gui.gui.workers import Job, TaskContext

__all__ = ["CaptureTarget", "CaptureTargetDialog", "LiveBars", "LivePreview", "LiveView", "open_live_view"]

LIVE_JOB = "live"
#: How often the preview shows the source's newest frame (ms): about a camera's 30 fps.
PREVIEW_MS = 33
#: One frame captured per this many ms while "Hold to Capture" is held (a burst, as Teachable Machine).
BURST_MS = 150
NEW_PROJECT = "New project…"


# --- tasks (run on the job runner's threads) ---------------------------------------------------


def open_video_feed(context: TaskContext, path: Path) -> LiveSource:
    """Open a video file as a live source (reads the file: not on the UI thread)."""
    from resnet_gui.core.live import video_file_feed

    return video_file_feed(path)


def run_live_loop(context: TaskContext, slot: FrameSlot, classifier: Any, settings: LiveSettings):
    """Core's live loop as a generator job: each result is one signal to the window."""
    yield from live_results(slot, classifier, settings, cancel=context.is_cancelled)


def encode_png(context: TaskContext, image: np.ndarray) -> bytes:
    """A frame as PNG bytes: the main window opens them like a pasted image."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class CaptureTarget:
    """Where captured frames go: a labelling project (an existing folder, or a new one's name) and a class."""

    class_name: str
    project_root: Path | None = None
    new_project: str = ""
    project_name: str = ""

    def describe(self) -> str:
        project = (
            self.project_name or self.new_project or (self.project_root.name if self.project_root else "")
        )
        return f"“{self.class_name}” in {project}"


@dataclass(frozen=True)
class CaptureChoices:
    """What the capture dialog offers: the projects there are and the classes they and the model know."""

    projects: tuple[tuple[Path, str, tuple[str, ...]], ...]  # (root, name, classes)
    model_classes: tuple[str, ...]


def list_capture_choices(context: TaskContext, model_classes: tuple[str, ...]) -> CaptureChoices:
    """The recent projects and those in the projects folder, with their classes (reads folders)."""
    from resnet_gui.core.projects import LabellingProject, iter_project_folders, recent_projects

    seen: dict[Path, tuple[Path, str, tuple[str, ...]]] = {}
    for root in [*recent_projects(), *iter_project_folders()]:
        if root in seen:
            continue
        try:
            project = LabellingProject.open(root)
            seen[root] = (project.root, project.name, tuple(project.class_names()))
        except Exception:  # a damaged project is simply not offered
            continue
    return CaptureChoices(tuple(seen.values()), model_classes)


def prepare_capture_target(context: TaskContext, target: CaptureTarget) -> CaptureTarget:
    """Make the target's project (when new) and class (when missing); the target by its folder."""
    from resnet_gui.core.projects import LabellingProject, remember_project

    if target.project_root is not None:
        project = LabellingProject.open(target.project_root)
    else:
        project = LabellingProject.create(target.new_project)
    if target.class_name not in project.class_names():
        project.add_class(target.class_name)
    remember_project(project.root)
    return CaptureTarget(target.class_name, project_root=project.root, project_name=project.name)


def capture_frames(context: TaskContext, target: CaptureTarget, frames: list[np.ndarray]) -> list[Path]:
    """Add ``frames`` to the target's class; the photos (an exact copy of one already there is not
    added twice: its path comes back again)."""
    from resnet_gui.core.projects import SOURCE_CAMERA, LabellingProject

    assert target.project_root is not None
    project = LabellingProject.open(target.project_root)
    return [project.add_image(target.class_name, frame, source=SOURCE_CAMERA) for frame in frames]


# --- widgets -----------------------------------------------------------------------------------


class LivePreview(ImageView):
    """The image view without drops, saying in words what is coming (or why nothing is)."""

    enlarge = True

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(False)
        self.placeholder = "Starting…"

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self.update()

    def _paint_empty(self, painter: QPainter) -> None:
        palette = self.palette()
        painter.setPen(muted(palette))
        area = QRectF(self.rect()).adjusted(32, 32, -32, -32)
        painter.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)


class LiveBars(QWidget):
    """The top-k bars of the last classified frame, updated in place (no widgets made per frame)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bars: list[PredictionBar] = []
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.setSpacing(2)
        self.layout_.addStretch(1)

    def set_rows(self, rows: tuple[PredictionRow, ...]) -> None:
        while len(self.bars) > len(rows):
            bar = self.bars.pop()
            self.layout_.removeWidget(bar)
            bar.deleteLater()
        for position, row in enumerate(rows):
            if position < len(self.bars):
                bar = self.bars[position]
                bar.row = row
                bar.setAccessibleName(f"{row.rank}. {row.label}, {row.probability * 100:.0f} %")
                bar.setToolTip(f"“{row.label}” (class {row.index}): {row.probability * 100:.2f} %")
                bar.update()
            else:
                bar = PredictionBar(row, self)
                bar.setCursor(Qt.CursorShape.ArrowCursor)
                bar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                self.layout_.insertWidget(position, bar)
                self.bars.append(bar)

    def labels(self) -> list[str]:
        return [bar.row.label for bar in self.bars]


class CaptureTargetDialog(QDialog):
    """Which labelling project and class the captured frames go to."""

    def __init__(self, choices: CaptureChoices, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Capture to Class")
        self.choices = choices
        self.project = QComboBox()
        self.project.setAccessibleName("Labelling project")
        for root, name, _classes in choices.projects:
            self.project.addItem(name, root)
        self.project.addItem(NEW_PROJECT, None)
        self.new_name = QLineEdit()
        self.new_name.setPlaceholderText("Name of the new project")
        self.new_name.setAccessibleName("New project name")
        self.class_name = QComboBox()
        self.class_name.setEditable(True)
        self.class_name.setAccessibleName("Class")
        editor = self.class_name.lineEdit()
        if editor is not None:
            editor.setPlaceholderText("A class, e.g. “my mug”")
        form = QFormLayout()
        form.addRow("&Project:", self.project)
        form.addRow("New project &name:", self.new_name)
        form.addRow("&Class:", self.class_name)
        note = QLabel(
            "Frames are copied into the project's class folder; hold “Hold to Capture” for a burst."
        )
        note.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self.project.currentIndexChanged.connect(self._project_changed)
        self.new_name.textChanged.connect(self._validate)
        self.class_name.currentTextChanged.connect(self._validate)
        self._project_changed()

    def _project_changed(self) -> None:
        root = self.project.currentData()
        self.new_name.setEnabled(root is None)
        classes: list[str] = []
        for project_root, _name, project_classes in self.choices.projects:
            if project_root == root:
                classes = list(project_classes)
        for name in self.choices.model_classes:
            if name not in classes:
                classes.append(name)
        text = self.class_name.currentText()
        self.class_name.clear()
        self.class_name.addItems(classes)
        self.class_name.setEditText(text or (classes[0] if classes else ""))
        self._validate()

    def _validate(self) -> None:
        ok = bool(self.class_name.currentText().strip()) and (
            self.project.currentData() is not None or bool(self.new_name.text().strip())
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def target(self) -> CaptureTarget:
        root = self.project.currentData()
        return CaptureTarget(
            self.class_name.currentText().strip(),
            project_root=root,
            new_project="" if root is not None else self.new_name.text().strip(),
        )


def _is_finetuned(classifier: ImageClassifier | None) -> bool:
    """Whether the model was fine-tuned (its bundle records its training): only then can frames
    be captured to its classes."""
    loaded = getattr(classifier, "loaded", None)
    metadata = getattr(loaded, "metadata", None) or {}
    return "training" in metadata


class LiveView(QDialog):
    """The live camera window (one per main window); closing it stops the camera and the loop."""

    snapshot_ready = Signal(bytes, str)  # PNG bytes, a name: the main window opens it in the strip
    photos_captured = Signal(object)  # (project root): frames were added to its class
    result_shown = Signal(object)  # LiveResult, after the window showed it (for tests)

    def __init__(
        self,
        controller: Controller,
        parent: QWidget | None = None,
        *,
        support: Callable[[], CameraSupport] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Live Camera")
        self.setWindowFlag(Qt.WindowType.Window)
        self.controller = controller
        self.settings = LiveSettings(
            top_k=controller.top_k, alpha=controller.alpha, colormap=controller.colormap
        )
        self.slot: FrameSlot | None = None
        self.feed: LiveSource | None = None
        self.job: Job | None = None
        self.last_result: LiveResult | None = None
        self.shown_frame: np.ndarray | None = None
        self._shown_index = -1
        self.results = 0
        self.snapshots = 0
        self.captured = 0
        self.capture_target: CaptureTarget | None = None
        self.captured_photos: set[Path] = set()
        self._stopped = True
        self._ended_text = ""

        self.support = (support or camera_support)()  # looked up now: tests replace it
        self.source_combo = QComboBox()
        self.source_combo.setAccessibleName("Camera")
        self.source_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        for camera in self.support.cameras:
            self.source_combo.addItem(camera.description, camera)
        if not self.support.available:
            self.source_combo.addItem("No camera")
            self.source_combo.setEnabled(False)
        self.video_button = QPushButton("Use a Video File Instead…")
        self.video_button.setToolTip("Play a video file in real time, as if it came from a camera")
        self.video_button.clicked.connect(self.choose_video_file)
        self.source_note = QLabel(self.support.reason)
        self.source_note.setWordWrap(True)
        self.source_note.setVisible(bool(self.support.reason))

        self.preview = LivePreview()
        self.preview.setMinimumSize(480, 360)
        self.bars = LiveBars()
        self.heatmap_box = QCheckBox("Show &heat map")
        self.heatmap_box.setToolTip("Draw on each frame what made the model choose its best class (Grad-CAM)")
        self.heatmap_box.toggled.connect(self._heatmap_toggled)
        self.top1 = QLabel()
        self.top1.setWordWrap(True)

        self.pause_button = QPushButton("&Pause")
        self.pause_button.setToolTip("Freeze the picture and the predictions (Space)")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause_toggled)
        self.snapshot_button = QPushButton("&Snapshot")
        self.snapshot_button.setToolTip(
            "Add the frame shown to the main window's photos, like an opened photo"
        )
        self.snapshot_button.clicked.connect(self.snapshot)
        self.capture_button = QPushButton("Capture to &Class…")
        self.capture_button.clicked.connect(self.choose_capture_target)
        self.hold_button = QPushButton("Hold to Capture")
        self.hold_button.setAutoRepeat(True)  # clicked every BURST_MS while held: a burst
        self.hold_button.setAutoRepeatDelay(BURST_MS)
        self.hold_button.setAutoRepeatInterval(BURST_MS)
        self.hold_button.clicked.connect(self.capture_frame)
        self.hold_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)

        self.status = QLabel()
        self.status.setAccessibleName("Live status")
        palette = self.status.palette()
        palette.setColor(QPalette.ColorRole.WindowText, muted(self.palette()))
        self.status.setPalette(palette)

        source_row = QHBoxLayout()
        source_row.addWidget(QLabel("Camera:"))
        source_row.addWidget(self.source_combo, 1)
        source_row.addWidget(self.video_button)

        side = QVBoxLayout()
        side.addWidget(heading("Predictions", 1.15))
        side.addWidget(self.bars)
        side.addWidget(self.top1)
        side.addWidget(self.heatmap_box)
        side.addStretch(1)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setMinimumWidth(280)
        side_widget.setMaximumWidth(360)

        middle = QHBoxLayout()
        middle.addWidget(self.preview, 1)
        middle.addWidget(side_widget)

        buttons = QHBoxLayout()
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.snapshot_button)
        buttons.addSpacing(16)
        buttons.addWidget(self.capture_button)
        buttons.addWidget(self.hold_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(source_row)
        layout.addWidget(self.source_note)
        layout.addLayout(middle, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

        QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.pause_button.toggle)
        self.preview_timer = QTimer(self)
        self.preview_timer.setInterval(PREVIEW_MS)
        self.preview_timer.timeout.connect(self._show_latest)
        self.source_combo.activated.connect(self._camera_picked)
        controller.model_changed.connect(self._model_changed)
        self._update_enabled()
        self.resize(1000, 640)
        if self.support.available:
            self.use_camera(self.source_combo.currentIndex())
        else:
            self.preview.set_placeholder(f"{self.support.reason}\nYou can play a video file instead.")
            self._set_status("")

    # -- sources ---------------------------------------------------------------------------------

    def _camera_picked(self, index: int) -> None:
        if self.support.available:
            self.use_camera(index)

    def use_camera(self, index: int) -> None:
        camera = self.source_combo.itemData(index)
        if camera is None:
            return
        feed = CameraFeed(camera, self)
        self._start(feed)

    def choose_video_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Play a Video File", "", VIDEO_FILTER)
        if path:
            self.use_video_file(Path(path))

    def use_video_file(self, path: Path) -> None:
        """Play ``path`` in real time as the source (opened in a job: it reads the file)."""
        self.preview.set_placeholder(f"Opening {path.name}…")
        self.controller.start_job(
            "live-open", open_video_feed, path, on_result=self._start, on_error=self._source_failed
        )

    def _source_failed(self, error: BaseException) -> None:
        from resnet_gui.gui.controller import describe_error

        self._set_status(describe_error(error, "opening the video"))

    def _start(self, feed: LiveSource) -> None:
        """Stop what plays, and play ``feed`` through a new slot and loop."""
        self.stop()
        if not self.isVisible():  # closed while the video was being opened
            feed.stop()
            return
        self.slot = FrameSlot()
        self.feed = feed
        self._stopped = False
        self._ended_text = ""
        self.last_result = None
        self._shown_index = -1
        try:
            feed.start(self.slot)
        except Exception as error:  # a camera unplugged since it was listed
            self.feed = None
            self._set_status(str(error))
            return
        self.preview.set_placeholder(f"Waiting for {feed.name}…")
        self._start_loop()
        self.preview_timer.start()
        self._update_enabled()

    def _start_loop(self) -> None:
        classifier = self.controller.classifier
        if classifier is None or self.slot is None:
            self._set_status("Waiting for the model to load…")
            return
        self.heatmap_box.setEnabled(_can_explain(classifier))
        self.job = self.controller.start_job(
            LIVE_JOB,
            run_live_loop,
            self.slot,
            classifier,
            self.settings,
            on_yield=self._result_arrived,
            on_error=self._loop_failed,
            on_finished=self._loop_finished,
        )

    def _model_changed(self, _info: object) -> None:
        if not self._stopped:
            self._start_loop()  # the same frames, the new model (the old job is superseded)
        self._update_enabled()

    def stop(self) -> None:
        """Stop the source and the loop (the loop ends within a frame; nothing waits for it)."""
        self._stopped = True
        self.preview_timer.stop()
        if self.job is not None:
            self.job.abort()
            self.job = None
        if self.feed is not None:
            self.feed.stop()
            if isinstance(self.feed, CameraFeed):
                self.feed.deleteLater()  # its QCamera and capture session go with it
            self.feed = None
        if self.slot is not None:
            self.slot.close()

    @property
    def running(self) -> bool:
        return self.job is not None and not self.job.done

    # -- results ---------------------------------------------------------------------------------

    def _result_arrived(self, result: LiveResult) -> None:
        if self.settings.paused:
            return  # classified just before the pause: the frozen picture stays
        self.last_result = result
        self.results += 1
        rows = tuple(
            PredictionRow(rank, p.label, p.index, p.probability)
            for rank, p in enumerate(result.predictions, start=1)
        )
        self.bars.set_rows(rows)
        self.top1.setText(result.heatmap_note)
        if self.settings.heatmap and result.overlay is not None:
            self._show(result.image, result.frame.index, overlay=result.overlay)
        self._set_status()
        self.result_shown.emit(result)

    def _show_latest(self) -> None:
        """The preview timer: the source's newest frame (without the heat map, which lags behind)."""
        if self.slot is None or self.settings.paused:
            return
        if self.settings.heatmap and self.last_result is not None and self.last_result.overlay is not None:
            return
        frame = self.slot.latest
        if frame is not None and frame.index != self._shown_index:
            from resnet_gui.core.live import as_rgb_array

            self._show(as_rgb_array(frame.image), frame.index)
        if self.slot.closed and not self._stopped and not self.running and self.feed is not None:
            self._source_ended()

    def _show(self, image: np.ndarray, index: int, overlay: np.ndarray | None = None) -> None:
        self.shown_frame = image
        self._shown_index = index
        name = self.feed.name if self.feed is not None else ""
        self.preview.set_picture(Picture((overlay if overlay is not None else image,), (name,), name))

    def _source_ended(self) -> None:
        error = getattr(self.feed, "error", None)
        self._ended_text = str(error) if error is not None else "The video ended."
        self.preview_timer.stop()
        self._set_status()

    def _loop_failed(self, error: BaseException) -> None:
        from resnet_gui.gui.controller import describe_error

        self._set_status(describe_error(error, "classifying the camera's frames"))

    def _loop_finished(self) -> None:
        if self.slot is not None and self.slot.closed and not self._stopped:
            self._source_ended()
        self._update_enabled()

    def _set_status(self, text: str | None = None) -> None:
        if text is None:
            parts = []
            if self.feed is not None:
                parts.append(self.feed.name)
            result = self.last_result
            if result is not None:
                parts.append(_rate_text(result.fps))
                parts.append(f"{result.dropped} dropped (the model was busy)")
            if self.settings.paused:
                parts.append("paused")
            if self.captured and self.capture_target is not None:
                parts.append(f"{self.captured} captured to {self.capture_target.describe()}")
            if self._ended_text:
                parts.append(self._ended_text)
            text = " · ".join(parts)
        self.status.setText(text)

    # -- controls ----------------------------------------------------------------------------------

    def _heatmap_toggled(self, on: bool) -> None:
        self.settings.heatmap = on

    def _pause_toggled(self, paused: bool) -> None:
        self.settings.paused = paused
        self.pause_button.setText("&Resume" if paused else "&Pause")
        self._set_status()

    def _update_enabled(self) -> None:
        classifier = self.controller.classifier
        finetuned = _is_finetuned(classifier)
        self.capture_button.setEnabled(finetuned)
        self.capture_button.setToolTip(
            "Add frames to a labelling project's class, to fine-tune on them"
            if finetuned
            else "Capture to a class needs a model fine-tuned here (Model → Fine-Tune on Your Photos…)"
        )
        # A target comes from Capture to Class… (a fine-tuned model) or the project editor's Add from Camera…
        self.hold_button.setEnabled(self.capture_target is not None)
        self.snapshot_button.setEnabled(self.feed is not None)
        self.pause_button.setEnabled(self.feed is not None)

    def snapshot(self) -> None:
        """Send the frame shown (without the heat map) to the main window's strip."""
        if self.shown_frame is None:
            return
        self.snapshots += 1
        name = f"Camera snapshot {self.snapshots}"
        self.controller.start_job(
            "live-snapshot",
            encode_png,
            self.shown_frame,
            on_result=lambda data: self.snapshot_ready.emit(data, name),
            supersede=False,
        )

    def choose_capture_target(self) -> None:
        classifier = self.controller.classifier
        classes = tuple(classifier.categories) if classifier is not None else ()
        self.controller.start_job("live-projects", list_capture_choices, classes, on_result=self._ask_target)

    def _ask_target(self, choices: CaptureChoices) -> None:
        dialog = CaptureTargetDialog(choices, self)
        self.capture_dialog = dialog
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.controller.start_job(
                "live-projects", prepare_capture_target, dialog.target(), on_result=self._target_ready
            )

    def _target_ready(self, target: CaptureTarget) -> None:
        self.capture_target = target
        self.captured_photos = set()
        self.hold_button.setText(f"Hold to Capture “{target.class_name}”")
        self.hold_button.setToolTip(f"Hold to add a frame every {BURST_MS} ms to {target.describe()}")
        self._update_enabled()

    def capture_into(self, project_root: Path, project_name: str, class_name: str) -> None:
        """Capture into ``class_name`` of an existing project (the class editor's Add from Camera…):
        no dialog, and any model (a first project has no fine-tuned model yet)."""
        self._target_ready(CaptureTarget(class_name, project_root=project_root, project_name=project_name))

    def capture_frame(self) -> None:
        """One frame to the capture target (called every BURST_MS while the button is held)."""
        target = self.capture_target
        if target is None or self.shown_frame is None:
            return
        frame = self.shown_frame
        self.controller.start_job(
            "live-capture",
            capture_frames,
            target,
            [frame],
            on_result=self._captured,
            supersede=False,
        )

    def _captured(self, photos: list[Path]) -> None:
        self.captured_photos.update(photos)
        self.captured = len(self.captured_photos)
        self._set_status()
        if self.capture_target is not None and self.capture_target.project_root is not None:
            self.photos_captured.emit(self.capture_target.project_root)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop()
        super().closeEvent(event)

    def done(self, result: int) -> None:  # Escape closes the window as the Close button does
        self.stop()
        super().done(result)


def _rate_text(fps: float) -> str:
    """How fast frames are classified, in words that still read well for a slow model."""
    if fps <= 0:
        return "first frame classified"
    if fps < 1:
        return f"one frame classified every {1 / fps:.1f} s"
    return f"{fps:.1f} frames classified per second"


def _can_explain(classifier: ImageClassifier) -> bool:
    from resnet_gui.core.live import can_explain

    return can_explain(classifier)


def open_live_view(window: Any) -> LiveView:
    """Show the main window's live view (made on first use), its snapshots going to the strip."""
    view = getattr(window, "live_view", None)
    if view is None:
        view = LiveView(window.controller, window)
        view.snapshot_ready.connect(lambda data, name: window.controller.open_image_data(data, name))
        view.photos_captured.connect(window.project_photos_captured)
        window.live_view = view
        window.label_live_action(view.support)  # the menu says so from now on
    elif view.feed is None and view.support.available:
        view.use_camera(view.source_combo.currentIndex())
    view.show()
    view.raise_()
    view.activateWindow()
    return view
