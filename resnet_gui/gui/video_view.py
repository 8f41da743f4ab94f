"""The video window: classify a video's frames into a timeline of top-1 classes, scrub it, export.

Opening a video (dropped on the main window, or picked with Ctrl+O) first reads its header in a
job, so a file that is not a video (audio only, an unknown codec, damaged) is one sentence in the
message bar and nothing shown before is lost. The run is core's
:func:`~resnet_gui.core.video.classify_video` (decoding ahead of the model in its own thread, in
bounded memory) in a worker job of the controller's runner, one queued signal per batch; Cancel
keeps the frames done, and a truncated file keeps the frames before the damage and says where it
stopped. The window keeps only the per-frame results (a :class:`VideoTimeline`), never the frames:
scrubbing to a moment reads that one frame (:func:`~resnet_gui.core.video_timeline.read_frame_at`)
in a job, takes its predictions from the run when that frame was classified (else classifies it),
and computes its heat map in another job, each under the model's lock. Export writes the results
with the CLI's writers (``resnet-gui classify-video --out``), atomically.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QFontMetrics,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.video import FrameResult, VideoInfo, VideoProgress, split_videos
from resnet_gui.core.video_results import VIDEO_FORMATS, VideoRun, video_format_for
from resnet_gui.core.video_timeline import VIDEO_SAMPLING, VideoTimeline, read_frame_at
from resnet_gui.gui import tasks
from resnet_gui.gui.controller import Controller, describe_error
from resnet_gui.gui.data import (
    ExplanationMap,
    Picture,
    PredictionRow,
    PredictionsState,
    PredictionsView,
    UserMessage,
)
from resnet_gui.gui.image_view import ImageView
from resnet_gui.gui.predictions import PredictionsPanel
from resnet_gui.gui.qtutil import VIDEO_FILTER, local_paths, muted, soft
from resnet_gui.gui.strip import MessageBar
from resnet_gui.gui.workers import Job, TaskContext

if TYPE_CHECKING:
    from resnet_gui.core.engine import Classifier, Prediction

__all__ = [
    "VideoTimelineWidget",
    "VideoView",
]

#: Frames per forward pass of a run: small, so the timeline grows often.
BATCH_SIZE = 4
#: The frame shown (and explained) is capped at this long side: a 4K frame is not needed to look at.
FRAME_MAX_SIDE = 1280
#: The classified frame a click lands on when it is this close (pixels): a click means "that frame".
SNAP_PIXELS = 4


# --- the jobs (run in worker threads: no widget is touched) -----------------------------------


@dataclass(frozen=True)
class ShownFrame:
    """The frame at a moment of the video, ready to show: its picture and its predictions."""

    time_s: float
    index: int
    display: np.ndarray  # RGB uint8, capped at FRAME_MAX_SIDE
    result: FrameResult
    from_run: bool  # the run classified this frame (else it was classified when shown)


def probe(context: TaskContext, path: Path) -> VideoInfo:
    """Read a video's header (one VideoError sentence when it cannot be read as a video)."""
    from resnet_gui.core.video import probe_video

    return probe_video(path)


def classify_run(
    context: TaskContext,
    classifier: Classifier,
    path: Path,
    every_s: float | None,
    top_k: int,
    batch_size: int = BATCH_SIZE,
) -> Iterator[tuple[tuple[FrameResult, ...], VideoProgress]]:
    """Classify a video with core's read-ahead pipeline; yields ``(results of a batch, progress)``.

    Cancelling (the job's abort) stops before the next batch; the batches yielded are the window's.
    A damaged file's VideoDamagedError comes after the frames before the damage were yielded.
    """
    from resnet_gui.core.video import VideoFileSource, classify_video

    source = VideoFileSource(path, every_s)
    total = source.expected_frames
    duration = source.duration_s
    began = time.monotonic()
    done = 0
    batch: list[FrameResult] = []
    try:
        for result in classify_video(
            classifier, source, top_k=top_k, batch_size=batch_size, cancel=context.is_cancelled
        ):
            batch.append(result)
            done += 1
            if len(batch) >= batch_size:
                yield (
                    tuple(batch),
                    VideoProgress(done, total, result.time_s, duration, time.monotonic() - began),
                )
                batch = []
    except Exception:
        if batch:  # the frames before the damage are the window's, then the error
            yield (
                tuple(batch),
                VideoProgress(done, total, batch[-1].time_s, duration, time.monotonic() - began),
            )
        raise
    if batch:
        yield tuple(batch), VideoProgress(done, total, batch[-1].time_s, duration, time.monotonic() - began)


def _display_array(image: Image.Image) -> np.ndarray:
    if max(image.size) > FRAME_MAX_SIDE:
        image = image.copy()
        image.thumbnail((FRAME_MAX_SIDE, FRAME_MAX_SIDE), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def classify_frame(
    classifier: Classifier, image: Image.Image, top_k: int
) -> tuple[tuple[Prediction, ...], bool | None]:
    """One frame's top-k and "unlike the training photos" flag, exactly as a run classifies it."""
    array = classifier.preprocessing.prepare(image)
    probabilities, flags = classifier.probabilities_and_unusual(array[None])
    predictions = classifier.top_k(probabilities, top_k)[0]
    return predictions, None if flags is None else bool(flags[0])


def show_frame(
    context: TaskContext,
    classifier: Classifier,
    path: Path,
    time_s: float,
    known: FrameResult | None,
    top_k: int,
) -> ShownFrame:
    """Read the frame shown at ``time_s``; its predictions are ``known``'s when that is the same
    frame (the run's), else the model classifies it now."""
    frame = read_frame_at(path, time_s)
    image = frame.image if isinstance(frame.image, Image.Image) else Image.fromarray(frame.image)
    context.check()
    if known is not None and math.isclose(known.time_s, frame.time_s, abs_tol=1e-3):
        result, from_run = known, True
    else:
        predictions, unusual = classify_frame(classifier, image, top_k)
        result, from_run = FrameResult(frame.index, frame.time_s, predictions, unusual), False
    return ShownFrame(frame.time_s, frame.index, _display_array(image), result, from_run)


def export_results(
    context: TaskContext,
    results: Sequence[FrameResult],
    path: Path,
    format_name: str,
    run: VideoRun,
    stopped: str | None,
) -> tuple[Path, int]:
    """Write the results with the CLI's writer, atomically (a failed export leaves no half file)."""
    from resnet_gui.core.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        writer = VIDEO_FORMATS[format_name].writer(handle, run)
        for result in results:
            context.check()
            writer.write(result)
        writer.finish(stopped)
    return path, len(results)


# --- the timeline widget -----------------------------------------------------------------------


def _time_text(seconds: float) -> str:
    """``0.5 s``, ``12 s``, ``1:05``, ``1:02:03``: short enough for the axis."""
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


def _tick_step(duration: float, width: float) -> float:
    """A round time between axis labels, about one per 90 pixels."""
    wanted = duration / max(1.0, width / 90)
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if step >= wanted:
            return float(step)
    return 7200.0


class VideoTimelineWidget(QWidget):
    """The top-1 class over time: a band of the class's colour per run of frames, each frame's
    confidence as the height of its bar, a playhead, a time axis and a legend.

    Clicking or dragging emits :attr:`scrubbed` with the time under the mouse (a click close to a
    classified frame lands on it). The keys are the window's (Left/Right, Home/End).
    """

    scrubbed = Signal(float)

    BAND = 56  # the height of the bands, pixels
    MARGIN = 10

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.timeline = VideoTimeline()
        self.position_s: float | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self.setAccessibleName("Timeline of the top-1 class")
        self.setToolTip("Click or drag to see any moment; Left/Right step between classified frames")

    def sizeHint(self) -> QSize:
        line = self.fontMetrics().height()
        return QSize(720, self.BAND + 2 * line + 3 * self.MARGIN + 8)

    def minimumSizeHint(self) -> QSize:
        return QSize(240, self.sizeHint().height())

    def set_timeline(self, timeline: VideoTimeline) -> None:
        self.timeline = timeline
        self.update()

    def set_position(self, time_s: float | None) -> None:
        self.position_s = time_s
        self.update()

    # -- geometry

    def track(self) -> QRectF:
        """Where the bands are drawn."""
        return QRectF(self.MARGIN, self.MARGIN, max(1, self.width() - 2 * self.MARGIN), self.BAND)

    def x_of(self, time_s: float) -> float:
        track = self.track()
        end = self.timeline.end_s or 1.0
        return float(round(track.left() + track.width() * min(max(time_s / end, 0.0), 1.0)))

    def time_at(self, x: float) -> float:
        """The time under ``x``: a classified frame's own time when the click is next to it."""
        track = self.track()
        end = self.timeline.end_s
        time_s = min(max((x - track.left()) / track.width(), 0.0), 1.0) * end
        near = self.timeline.nearest(time_s)
        if near is not None and abs(self.x_of(self.timeline.points[near].time_s) - x) <= SNAP_PIXELS:
            return self.timeline.points[near].time_s
        return time_s

    # -- events

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.timeline.points:
            self.setFocus(Qt.FocusReason.MouseFocusReason)
            self.scrubbed.emit(self.time_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if not self.timeline.points:
            return
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.scrubbed.emit(self.time_at(event.position().x()))
            return
        where = self.timeline.at_or_before(self.time_at(event.position().x()))
        if where is not None:
            point = self.timeline.points[where]
            self.setToolTip(f"{point.time_s:.2f} s: {point.label} ({point.confidence * 100:.0f} %)")

    # -- painting

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)  # bands without antialiasing: no seams between frames
        palette = self.palette()
        track = self.track()
        painter.fillRect(track, soft(palette.color(QPalette.ColorRole.Text), 18))
        timeline = self.timeline
        for segment in timeline.segments():  # the class band, faint, full height
            colour = QColor(*timeline.colour(segment.class_index))
            left, right = self.x_of(segment.start_s), self.x_of(segment.end_s)
            painter.fillRect(
                QRectF(left, track.top(), max(1.0, right - left), track.height()), soft(colour, 70)
            )
        for position, point in enumerate(timeline.points):  # each frame's confidence as a bar
            start, end = timeline.span(position)
            left, right = self.x_of(start), self.x_of(end)
            height = track.height() * min(max(point.confidence, 0.0), 1.0)
            bar = QRectF(left, track.bottom() - height, max(1.0, right - left), height)
            painter.fillRect(bar, QColor(*timeline.colour(point.class_index)))
        painter.setPen(QPen(soft(palette.color(QPalette.ColorRole.Text), 60), 1))
        painter.drawRect(track)
        self._paint_axis(painter, track)
        self._paint_legend(painter, track)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._paint_playhead(painter, track)
        painter.end()

    def _paint_axis(self, painter: QPainter, track: QRectF) -> None:
        metrics = QFontMetrics(self.font())
        painter.setPen(muted(self.palette()))
        end = self.timeline.end_s
        if not self.timeline.points:
            painter.drawText(
                track, Qt.AlignmentFlag.AlignCenter, "The timeline fills in as the frames are classified"
            )
            return
        step = _tick_step(end, track.width())
        count = int(end / step + 1e-9)
        baseline = track.bottom() + 4 + metrics.ascent()
        for tick in range(count + 1):
            time_s = tick * step
            x = self.x_of(time_s)
            painter.drawLine(QPointF(x, track.bottom()), QPointF(x, track.bottom() + 3))
            text = _time_text(time_s)
            width = metrics.horizontalAdvance(text)
            left = min(max(x - width / 2, track.left()), track.right() - width)
            painter.drawText(QPointF(left, baseline), text)

    def _paint_legend(self, painter: QPainter, track: QRectF) -> None:
        metrics = QFontMetrics(self.font())
        top = track.bottom() + 8 + metrics.height()
        x = track.left()
        total = sum(seconds for _, _, seconds in self.timeline.legend()) or 1.0
        swatch = metrics.ascent() - 2
        for class_index, label, seconds in self.timeline.legend():
            text = f"{label} {seconds / total * 100:.0f} %"
            width = swatch + 6 + metrics.horizontalAdvance(text) + 16
            if x + width > track.right():
                painter.setPen(muted(self.palette()))
                painter.drawText(QPointF(x, top + metrics.ascent()), "…")
                break
            painter.fillRect(QRectF(x, top + 2, swatch, swatch), QColor(*self.timeline.colour(class_index)))
            painter.setPen(self.palette().color(QPalette.ColorRole.Text))
            painter.drawText(QPointF(x + swatch + 6, top + metrics.ascent()), text)
            x += width

    def _paint_playhead(self, painter: QPainter, track: QRectF) -> None:
        if self.position_s is None or not self.timeline.points:
            return
        x = self.x_of(self.position_s)
        colour = self.palette().color(QPalette.ColorRole.Highlight)
        painter.setPen(QPen(colour, 2))
        painter.drawLine(QPointF(x, track.top() - 2), QPointF(x, track.bottom() + 2))
        painter.setBrush(colour)
        painter.drawPolygon(
            QPolygonF(
                [QPointF(x - 5, track.top() - 6), QPointF(x + 5, track.top() - 6), QPointF(x, track.top())]
            )
        )


class FrameView(ImageView):
    """The frame shown (with its heat map); before the first one, what to do instead of a photo's
    invitation."""

    enlarge = True

    empty_text = "Drop a video here, or open one (MP4, MOV, MKV, WebM, AVI…)"

    def _paint_empty(self, painter: QPainter) -> None:
        painter.setPen(muted(self.palette()))
        painter.drawText(
            QRectF(self.rect()).adjusted(24, 24, -24, -24),
            Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
            self.empty_text,
        )


# --- the window --------------------------------------------------------------------------------


_WINDOW_NUMBERS = itertools.count(1)


class VideoView(QWidget):
    """The video window (a top-level window owned by the main window)."""

    opened = Signal(object)  # the VideoInfo of a video that opened
    open_failed = Signal(str)  # the sentence said about a video that did not
    run_finished = Signal()  # a run ended (done, cancelled or stopped by damage)
    frame_shown = Signal(object)  # ShownFrame
    explanation_shown = Signal(object)  # ExplanationMap
    threshold_picked = Signal(float)  # the user set the "not sure" threshold in this window
    export_finished = Signal(object)  # the file's Path, or None when the export failed

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.controller = controller
        self.path: Path | None = None
        self.info: VideoInfo | None = None
        self.every_s: float | None = VIDEO_SAMPLING[0].every_s
        self.results: list[FrameResult] = []
        self.timeline = VideoTimeline()
        self.progress: VideoProgress | None = None
        self.stopped: str | None = None  # why the run did not reach the end (None: it did, or runs)
        self.top_k = controller.top_k
        self.position_s: float | None = None
        self.shown: ShownFrame | None = None
        self.explanation: ExplanationMap | None = None
        self.target: int | None = None  # the class explained (None: the frame's top-1)
        self.model_name = ""
        self._job: Job | None = None
        self._active = False
        self._pending = False  # a run waits for the model to load
        self._frame_pending = False
        self._export_job: Job | None = None
        self.opening: Path | None = None  # the video whose header is being read
        # Each window's jobs are its own kinds: two windows never supersede each other's runs.
        self._kind_prefix = f"video{next(_WINDOW_NUMBERS)}"
        self.setWindowTitle("Video classification")
        self.setAcceptDrops(True)
        self.resize(1080, 720)
        self._build()
        controller.model_changed.connect(self._model_changed)
        # One "not sure" threshold for the app: set here or in the main window, both follow.
        controller.threshold_changed.connect(self._threshold_set)

    def _kind(self, job: str) -> str:
        return f"{self._kind_prefix}-{job}"

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        self.file_label = QLabel("No video yet")
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.file_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.every_combo = QComboBox()
        self.every_combo.setAccessibleName("Classify one frame every")
        for choice in VIDEO_SAMPLING:
            self.every_combo.addItem(choice.text, choice.every_s)
        self.every_combo.setToolTip("How often a frame is classified: more often is slower")
        self.every_combo.currentIndexChanged.connect(self._every_picked)
        every_label = QLabel("Classify")
        every_label.setBuddy(self.every_combo)
        self.open_button = QPushButton("Open Video…")
        self.open_button.clicked.connect(self.choose_video)
        top = QHBoxLayout()
        top.addWidget(self.file_label, 1)
        top.addWidget(every_label)
        top.addWidget(self.every_combo)
        top.addWidget(self.open_button)

        self.message_bar = MessageBar()

        self.image_view = FrameView()
        self.image_view.mime_dropped.connect(self.open_mime)
        self.predictions = PredictionsPanel()
        self.predictions.top_k.hide()  # the run's top-k is the main window's
        self.predictions.copy_button.hide()
        self.predictions.target_clicked.connect(self._target_clicked)
        # The user's change goes to the main window, which makes it the app's and keeps it in the
        # settings, as for its own spin box; this window redraws when the controller says so.
        self.predictions.threshold_changed.connect(self.threshold_picked)
        self.frame_label = QLabel()
        self.frame_label.setWordWrap(True)
        self.heatmap_box = QCheckBox("Show the heat map")
        self.heatmap_box.setChecked(True)
        self.heatmap_box.setToolTip(
            "Colour where the model looked for the class explained (Grad-CAM or the method chosen)"
        )
        self.heatmap_box.toggled.connect(self._heatmap_toggled)
        self.map_label = QLabel()
        self.map_label.setWordWrap(True)
        for label in (self.frame_label, self.map_label):  # secondary text, as the panels' hints
            palette = label.palette()
            palette.setColor(QPalette.ColorRole.WindowText, muted(self.palette()))
            label.setPalette(palette)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(8, 0, 0, 0)
        side_layout.addWidget(self.predictions)
        side_layout.addWidget(self.frame_label)
        side_layout.addWidget(self.heatmap_box)
        side_layout.addWidget(self.map_label)
        side_layout.addStretch(1)
        side.setMinimumWidth(300)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.image_view)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([720, 320])

        self.timeline_widget = VideoTimelineWidget()
        self.timeline_widget.set_timeline(self.timeline)
        self.timeline_widget.scrubbed.connect(self.go_to)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("%p %")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        progress = QHBoxLayout()
        progress.addWidget(self.progress_bar, 1)
        progress.addWidget(self.cancel_button)

        self.rate_label = QLabel("Open a video to classify its frames.")
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the per-frame results as CSV, JSON Lines or JSON")
        self.export_button.clicked.connect(lambda: self.export())
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.rate_label, 1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message_bar)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.timeline_widget)
        layout.addLayout(progress)
        layout.addLayout(buttons)
        self._show_predictions()
        self._update_buttons()

    # ------------------------------------------------------------------ opening

    @property
    def running(self) -> bool:
        return self._active

    def choose_video(self) -> None:
        start = str(self.path.parent) if self.path is not None else str(Path.home())
        chosen, _ = QFileDialog.getOpenFileName(self, "Open a video", start, VIDEO_FILTER)
        if chosen:
            self.open(chosen)

    def open_mime(self, mime: QMimeData) -> None:
        """A drop on this window: its first video opens here (photos belong to the main window)."""
        videos, _ = split_videos(local_paths(mime))
        if videos:
            self.open(videos[0])
        else:
            self.message_bar.show_message(
                UserMessage("Drop a video file here (MP4, MOV, MKV, WebM, AVI…).", "warning")
            )

    def open(self, path: str | os.PathLike[str]) -> Job:
        """Read the video's header in a job; it opens (and its run starts) only if it is a video."""
        path = Path(path)
        self.opening = path
        return self.controller.start_job(
            self._kind("open"),
            probe,
            path,
            on_result=partial(self._opened, path),
            on_error=self._open_failed,
        )

    def _open_failed(self, error: BaseException) -> None:
        self.opening = None
        text = describe_error(error, "open the video")
        message = UserMessage(text, "error")
        self.controller.message.emit(message)  # the main window's message bar
        if self.isVisible():
            self.message_bar.show_message(message)
        self.open_failed.emit(text)

    def _opened(self, path: Path, info: VideoInfo) -> None:
        self.opening = None
        self.path = path
        self.info = info
        self.message_bar.clear()
        self.file_label.setText(f"{path.name}  —  {info.summary()}")
        self.file_label.setToolTip(str(path))
        self.setWindowTitle(f"{path.name} — Video classification")
        self.show()
        self.raise_()
        self.activateWindow()
        self.opened.emit(info)
        self.start()

    def start(self) -> None:
        """Classify the open video from its start (a run in progress is superseded)."""
        if self.path is None or self.info is None:
            return
        self.controller.runner.supersede(self._kind("run"))
        self.controller.runner.supersede(self._kind("frame"))
        self.controller.runner.supersede(self._kind("explain"))
        self.results = []
        self.timeline = VideoTimeline(self.info.duration_s)
        self.timeline_widget.set_timeline(self.timeline)
        self.timeline_widget.set_position(None)
        self.progress = None
        self.stopped = None
        self.position_s = None
        self.shown = None
        self.explanation = None
        self.target = None
        self.image_view.empty_text = "The first frame appears once it is classified…"
        self.image_view.set_picture(None)
        self.map_label.setText("")
        self.message_bar.clear()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        classifier = self.controller.classifier
        if classifier is None:
            self._pending = True
            self.rate_label.setText("Waiting for the model to load…")
            self._show_predictions()
            self._update_buttons()
            return
        self._pending = False
        self._active = True
        self.top_k = min(self.controller.top_k, len(classifier.categories))
        self.model_name = classifier.name
        self.rate_label.setText("Starting…")
        self._show_predictions()
        self._job = self.controller.start_job(
            self._kind("run"),
            classify_run,
            classifier,
            self.path,
            self.every_s,
            self.top_k,
            on_yield=self._run_yielded,
            on_error=self._run_errored,
            on_finished=self._run_done,
        )
        self._update_buttons()

    def _model_changed(self, info: Any) -> None:
        if self._pending and self.controller.classifier is not None:
            self.start()

    def _every_picked(self, index: int) -> None:
        self.every_s = VIDEO_SAMPLING[index].every_s
        if self.path is not None:
            self.start()

    def set_every(self, every_s: float | None) -> None:
        """Choose the sampling (one of :data:`VIDEO_SAMPLING`), as the *Every* menu does."""
        index = next(i for i, choice in enumerate(VIDEO_SAMPLING) if choice.every_s == every_s)
        if index == self.every_combo.currentIndex():
            return
        self.every_combo.setCurrentIndex(index)

    # ------------------------------------------------------------------ the run

    def _run_yielded(self, value: tuple[tuple[FrameResult, ...], VideoProgress]) -> None:
        results, progress = value
        for result in results:
            self.results.append(result)
            self.timeline.add(result)
        self.timeline_widget.update()
        self._show_progress(progress)
        if self.position_s is None and self.results:
            self.go_to(self.results[0].time_s)
        self._update_buttons()

    def _show_progress(self, progress: VideoProgress) -> None:
        self.progress = progress
        fraction = progress.fraction
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(round((fraction or 0.0) * 1000))
        of = f" of {progress.total}" if progress.total else ""
        where = f" at {progress.time_s:.1f} s" if progress.time_s is not None else ""
        self.rate_label.setText(
            f"Frame {progress.done}{of}{where}, {progress.frames_per_second:.1f} frames/s"
        )

    def _run_errored(self, error: BaseException) -> None:
        text = describe_error(error, "classify the video")
        self.stopped = text
        self.message_bar.show_message(UserMessage(text, "error"))

    def _run_done(self) -> None:
        was_active = self._active
        self._active = False
        count = len(self.results)
        span = f" ({self.results[0].time_s:.1f} s to {self.results[-1].time_s:.1f} s)" if count else ""
        if isinstance(self.stopped, str) and was_active:
            self.rate_label.setText(
                f"Stopped: the {count} frames classified before the damage{span} are kept."
            )
        elif was_active and self.progress is not None:
            self.timeline.complete = True  # the last band runs to the video's end
            self.timeline_widget.update()
            self.progress_bar.setValue(self.progress_bar.maximum())
            elapsed, rate = self.progress.elapsed_s, self.progress.frames_per_second
            self.rate_label.setText(f"Done: {count} frames{span} in {elapsed:.1f} s ({rate:.1f} frames/s).")
        self._update_buttons()
        self.run_finished.emit()

    def cancel(self) -> None:
        """Stop the run after the batch in hand; the frames classified so far stay on the timeline."""
        if not self.running:
            return
        assert self._job is not None
        self._job.abort()
        self._active = False
        count = len(self.results)
        last = self.results[-1].time_s if self.results else 0.0
        self.stopped = f"Interrupted after {count} frames (at {last:.2f} s)."
        self.rate_label.setText(f"Cancelled at {last:.1f} s: the {count} frames classified so far are kept.")
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.cancel_button.setEnabled(self.running)
        self.export_button.setEnabled(bool(self.results))

    # ------------------------------------------------------------------ scrubbing

    def go_to(self, time_s: float) -> None:
        """Show the frame at ``time_s``: its picture, predictions and heat map (read in jobs)."""
        if self.path is None:
            return
        end = (
            self.timeline.end_s
            if self.timeline.points
            else (self.info.duration_s if self.info else 0.0) or 0.0
        )
        self.position_s = min(max(float(time_s), 0.0), end)
        self.timeline_widget.set_position(self.position_s)
        if not self._frame_pending:  # a drag asks once per turn of the event loop, not per pixel
            self._frame_pending = True
            QTimer.singleShot(0, self._request_frame)

    def step(self, delta: int) -> None:
        """Go ``delta`` classified frames on (Right: +1, Left: -1)."""
        if self.position_s is None:
            return
        position = self.timeline.step(self.position_s, delta)
        if position is not None:
            self.go_to(self.timeline.points[position].time_s)

    def go_to_end(self, last: bool) -> None:
        if self.timeline.points:
            self.go_to(self.timeline.points[-1 if last else 0].time_s)

    def _result_near(self, time_s: float) -> FrameResult | None:
        position = self.timeline.at_or_before(time_s)
        return self.results[position] if position is not None and position < len(self.results) else None

    def _request_frame(self) -> None:
        self._frame_pending = False
        classifier = self.controller.classifier
        if self.path is None or self.position_s is None or classifier is None:
            return
        self.frame_label.setText(f"Reading the frame at {self.position_s:.2f} s…")
        self.controller.start_job(
            self._kind("frame"),
            show_frame,
            classifier,
            self.path,
            self.position_s,
            self._result_near(self.position_s),
            self.top_k,
            on_result=self._frame_read,
            on_error=self._frame_failed,
        )

    def _frame_read(self, shown: ShownFrame) -> None:
        self.shown = shown
        self.explanation = None
        self.target = None
        how = "classified in the run" if shown.from_run else "classified now (between the run's frames)"
        self.frame_label.setText(f"Frame {shown.index} at {shown.time_s:.2f} s · {how}")
        self._show_picture()
        self._show_predictions()
        self.frame_shown.emit(shown)
        self._request_explanation()

    def _frame_failed(self, error: BaseException) -> None:
        text = describe_error(error, "show the frame")
        self.frame_label.setText(text)
        self.message_bar.show_message(UserMessage(text, "error"))

    def _rows(self, result: FrameResult) -> tuple[PredictionRow, ...]:
        return tuple(
            PredictionRow(rank, p.label, p.index, float(p.probability))
            for rank, p in enumerate(result.predictions, start=1)
        )

    def _show_predictions(self) -> None:
        shown = self.shown
        if shown is None:
            state: PredictionsState = "classifying" if self.running or self._pending else "empty"
            message = (
                "Classifying the frames…"
                if state == "classifying"
                else "Open a video to see its frames' classes."
            )
            self.predictions.set_view(PredictionsView(state, message=message, threshold=self.threshold))
            return
        result = shown.result
        top1 = result.top1
        self.predictions.set_view(
            PredictionsView(
                "ready",
                self._rows(result),
                selected=self.target if self.target is not None else (top1.index if top1 else None),
                unsure=result.not_sure(self.threshold),
                unusual=bool(result.unusual),
                threshold=self.threshold,
            )
        )

    @property
    def threshold(self) -> float:
        """The app's "not sure" threshold: the controller's, one for every window."""
        return self.controller.threshold

    def _threshold_set(self, _threshold: float) -> None:
        self._show_predictions()

    def _show_picture(self) -> None:
        shown = self.shown
        if shown is None:
            self.image_view.set_picture(None)
            return
        caption = f"{shown.time_s:.2f} s"
        explanation = self.explanation
        if explanation is not None and self.heatmap_box.isChecked():
            from resnet_gui.core.explain.maps import overlay

            blended = overlay(
                shown.display,
                explanation.map_on_image,
                colormap=self.controller.colormap,
                alpha=self.controller.alpha,
            )
            picture = Picture(
                (blended,), (f"{caption} · {explanation.method_name} · {explanation.label}",), caption
            )
        else:
            picture = Picture((shown.display,), (caption,), caption)
        self.image_view.set_picture(picture)

    # ------------------------------------------------------------------ heat maps

    def _target_clicked(self, class_index: int) -> None:
        self.target = class_index
        self._show_predictions()
        self._request_explanation()

    def _heatmap_toggled(self, checked: bool) -> None:
        if checked and self.explanation is None:
            self._request_explanation()
        else:
            self._show_picture()

    def _request_explanation(self) -> None:
        shown = self.shown
        classifier = self.controller.classifier
        if shown is None or classifier is None or not self.heatmap_box.isChecked():
            self.controller.runner.supersede(self._kind("explain"))
            self.map_label.setText("")
            return
        top1 = shown.result.top1
        target = self.target if self.target is not None else (top1.index if top1 else None)
        if target is None:
            return
        self.map_label.setText("Computing the heat map…")
        self.controller.start_job(
            self._kind("explain"),
            tasks.explain,
            classifier,
            shown.display,
            self.controller.method,
            target,
            on_result=partial(self._explained, shown, target),
            on_error=self._explain_failed,
        )

    def _explained(self, shown: ShownFrame, target: int, explanation: ExplanationMap) -> None:
        if shown is not self.shown:
            return
        self.explanation = explanation
        self.map_label.setText(
            f"{explanation.method_name} map of “{explanation.label}” ({explanation.seconds:.1f} s)"
        )
        self._show_picture()
        self.explanation_shown.emit(explanation)

    def _explain_failed(self, error: BaseException) -> None:
        from resnet_gui.core.explain import ExplanationCancelled

        if isinstance(error, ExplanationCancelled):
            self.map_label.setText("")
            return
        self.map_label.setText(describe_error(error, "compute the heat map"))

    # ------------------------------------------------------------------ export

    def run_description(self) -> VideoRun:
        """What an exported file says of the run (as ``resnet-gui classify-video`` writes it)."""
        return VideoRun(str(self.path), self.model_name, self.every_s, self.threshold, self.top_k)

    def export(
        self, path: str | os.PathLike[str] | None = None, format_name: str | None = None
    ) -> Job | None:
        """Write the per-frame results (CSV, JSON Lines or JSON by the suffix) atomically, in a job."""
        if not self.results or self.path is None:
            return None
        if self._export_job is not None and not self._export_job.done:
            self.rate_label.setText("An export is still being written.")
            return None
        if path is None:
            filters = ";;".join(
                f"{fmt.description} (" + " ".join(f"*{s}" for s in fmt.suffixes) + ")"
                for fmt in VIDEO_FORMATS.values()
            )
            start = self.path.with_name(self.path.stem + "-frames.csv")
            chosen, chosen_filter = QFileDialog.getSaveFileName(
                self, "Export the frames' results", str(start), filters
            )
            if not chosen:
                return None
            path = chosen
            if Path(chosen).suffix.lower() not in {s for fmt in VIDEO_FORMATS.values() for s in fmt.suffixes}:
                picked = next(
                    (fmt for fmt in VIDEO_FORMATS.values() if chosen_filter.startswith(fmt.description)),
                    VIDEO_FORMATS["csv"],
                )
                path = chosen + picked.suffixes[0]
        video_format = video_format_for(path, format_name)
        self.rate_label.setText(f"Saving {len(self.results)} frames to {path}…")
        stopped = (
            self.stopped if not self.running else f"Still classifying: {len(self.results)} frames so far."
        )
        self._export_job = self.controller.start_job(
            self._kind("export"),
            export_results,
            list(self.results),
            Path(path),
            video_format.name,
            self.run_description(),
            stopped,
            on_result=self._exported,
            on_error=self._export_failed,
            on_finished=self._update_buttons,
        )
        return self._export_job

    def _exported(self, value: tuple[Path, int]) -> None:
        path, count = value
        self.rate_label.setText(f"Saved {count} frames to {path}.")
        self.export_finished.emit(path)

    def _export_failed(self, error: BaseException) -> None:
        text = describe_error(error, "export the results")
        self.rate_label.setText(text)
        self.message_bar.show_message(UserMessage(text, "error"))
        self.export_finished.emit(None)

    # ------------------------------------------------------------------ keys, drops, closing

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Right:
            self.step(+1)
        elif key == Qt.Key.Key_Left:
            self.step(-1)
        elif key == Qt.Key.Key_Home:
            self.go_to_end(last=False)
        elif key == Qt.Key.Key_End:
            self.go_to_end(last=True)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        event.acceptProposedAction()
        self.open_mime(event.mimeData())

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window stops its run (the results are kept if it is shown again)."""
        self.cancel()
        super().closeEvent(event)
