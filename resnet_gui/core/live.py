"""Live classification: the newest frame of a camera (or a video played in real time), as fast as
the model allows.

A live source produces frames faster than a ResNet on a CPU classifies them. Queueing them would
show the predictions of a moment long past, and grow without end; so the source writes into a
:class:`FrameSlot` that holds one frame, the newest: a frame replaced before the model took it is
*dropped* (and counted). :func:`live_results` takes the newest frame each time the model is free,
classifies it (and, if asked, computes a Grad-CAM heat map under the model's lock, through the
explain API), and yields a :class:`LiveResult` with the frames-per-second it achieves and the
dropped count. :func:`run_live` is the same loop with a callback, in the manner of Orange3's
``run`` functions: plain Python, testable without Qt or a camera.

A :class:`LiveSource` is what feeds a slot: :class:`FrameSourceFeed` plays any
:class:`~resnet_gui.core.video.FrameSource` (a video file, paced by :class:`PacedSource` so its
frames arrive at their real times and dropping happens as with a camera); the camera is a thin
layer over Qt Multimedia in the GUI. Never imports Qt.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from resnet_gui.core.errors import CancelCheck, as_cancel_check
from resnet_gui.core.video import FrameSource, VideoFileSource, VideoFrame

if TYPE_CHECKING:
    from PIL import Image

    from resnet_gui.core.engine import ImageClassifier, Prediction

__all__ = [
    "FrameSlot",
    "FrameSourceFeed",
    "LiveResult",
    "LiveSettings",
    "LiveSource",
    "LiveStats",
    "PacedSource",
    "can_explain",
    "classify_frame",
    "live_results",
    "run_live",
    "video_file_feed",
]

#: How often a waiting loop looks at its cancel flag, in seconds.
POLL_S = 0.05
#: Frames per second are counted over this many recent seconds.
FPS_WINDOW_S = 2.0


# --- the newest-frame slot ---------------------------------------------------------------------


class FrameSlot:
    """A mailbox for one frame, shared by a producer thread and the model's thread.

    :meth:`put` replaces the frame held, counting the replaced one as ``dropped`` when the model
    never took it; :meth:`take` waits for a frame and empties the slot. Memory is one frame whatever
    the two speeds. :meth:`close` ends the stream: :meth:`take` then returns what is left, then None.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._frame: VideoFrame | None = None
        self._latest: VideoFrame | None = None
        self._closed = False
        self.received = 0  # frames put
        self.dropped = 0  # frames replaced before anyone took them
        self.taken = 0
        self.discarded = 0  # frames thrown away on purpose (while paused): not "dropped"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def latest(self) -> VideoFrame | None:
        """The newest frame put, taken or not: what a preview shows (reading it takes nothing)."""
        return self._latest

    @property
    def pending(self) -> bool:
        """Whether a frame waits to be taken."""
        with self._condition:
            return self._frame is not None

    def put(self, frame: VideoFrame) -> None:
        """Hold ``frame`` instead of the frame held (ignored once closed)."""
        with self._condition:
            if self._closed:
                return
            if self._frame is not None:
                self.dropped += 1
            self._frame = self._latest = frame
            self.received += 1
            self._condition.notify_all()

    def take(self, timeout: float | None = None, cancel: CancelCheck | None = None) -> VideoFrame | None:
        """The newest frame, waiting for one up to ``timeout`` seconds (None: until there is one, the
        slot is closed or ``cancel`` says stop); None when none came."""
        cancelled = as_cancel_check(cancel)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while self._frame is None:
                if self._closed or cancelled():
                    return None
                wait = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
                if wait <= 0:
                    return None
                self._condition.wait(wait)
            frame, self._frame = self._frame, None
            self.taken += 1
            return frame

    def discard(self) -> None:
        """Throw the held frame away without counting it as dropped (a paused view)."""
        with self._condition:
            if self._frame is not None:
                self._frame = None
                self.discarded += 1

    def close(self) -> None:
        """End the stream: no frame is accepted after this; a waiting :meth:`take` returns."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()


# --- sources -----------------------------------------------------------------------------------


class LiveSource(Protocol):
    """Something that feeds a :class:`FrameSlot` on its own (a camera, a video played in real
    time) until stopped; it closes the slot when its stream ends. ``error`` is the error that
    ended it early (a damaged video), else None."""

    @property
    def name(self) -> str: ...

    @property
    def error(self) -> BaseException | None: ...

    def start(self, slot: FrameSlot) -> None: ...

    def stop(self) -> None: ...


class PacedSource:
    """A :class:`FrameSource` whose frames come at their presentation times (``time_s``) in real
    time, divided by ``speed``: a video file played like a camera. :meth:`close` also ends a wait.

    ``clock`` and ``sleep`` are there for tests; ``sleep(seconds)`` returns True when woken early.
    """

    def __init__(
        self,
        source: FrameSource,
        speed: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, not {speed!r}")
        self.source = source
        self.speed = speed
        self.clock = clock
        self._stop = threading.Event()

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def duration_s(self) -> float | None:
        return self.source.duration_s

    @property
    def frame_rate(self) -> float | None:
        return self.source.frame_rate

    @property
    def expected_frames(self) -> int | None:
        return self.source.expected_frames

    def __iter__(self) -> Iterator[VideoFrame]:
        began: float | None = None
        for frame in self.source:
            if began is None:
                began = self.clock() - frame.time_s / self.speed
            wait = began + frame.time_s / self.speed - self.clock()
            if wait > 0 and self._stop.wait(wait):
                return
            if self._stop.is_set():
                return
            yield frame

    def interrupt(self) -> None:
        """End the current wait and the iteration (from any thread); the source is not closed."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self.source.close()


class FrameSourceFeed:
    """Plays a :class:`FrameSource` into a slot from a thread of its own (a :class:`LiveSource`).

    The source is iterated, and closed, in that thread only (a PyAV container is not shared
    between threads); :meth:`stop` asks it to end and waits briefly. When the stream ends the slot
    is closed; an error that ended it is kept in ``error``.
    """

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self.error: BaseException | None = None
        self.fed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.source.name

    def start(self, slot: FrameSlot) -> None:
        if self._thread is not None:
            raise RuntimeError("a FrameSourceFeed can be started once")
        self._thread = threading.Thread(target=self._run, args=(slot,), name="live-feed", daemon=True)
        self._thread.start()

    def _run(self, slot: FrameSlot) -> None:
        try:
            for frame in self.source:
                if self._stop.is_set():
                    break
                # Converted here, off the UI thread and the model's: the preview and the loop get arrays.
                slot.put(VideoFrame(frame.index, frame.time_s, as_rgb_array(frame.image)))
                self.fed += 1
        except BaseException as error:  # kept for the view to say; the slot still closes
            self.error = error
        finally:
            try:
                self.source.close()
            finally:
                slot.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 0.5) -> None:
        self._stop.set()
        interrupt = getattr(self.source, "interrupt", None)
        if callable(interrupt):
            interrupt()
        if self._thread is None:
            self.source.close()  # never started: nobody else will close it
        elif self._thread is not threading.current_thread():
            self._thread.join(timeout)


def video_file_feed(path: str | Path, speed: float = 1.0) -> FrameSourceFeed:
    """A video file played at its real frame rate (times ``speed``) as a live source; opening it
    raises the video's one-sentence :class:`~resnet_gui.core.video.VideoError`."""
    return FrameSourceFeed(PacedSource(VideoFileSource(path), speed))


# --- the loop ----------------------------------------------------------------------------------


@dataclass
class LiveSettings:
    """What the live loop does with the next frame, changed by the view while it runs (each field
    is read once per frame; plain attribute writes are atomic in Python)."""

    top_k: int = 5
    heatmap: bool = False
    paused: bool = False
    method: str = "gradcam"
    alpha: float = 0.5
    colormap: str = "turbo"


@dataclass(frozen=True)
class LiveResult:
    """One frame classified live: the frame (``image`` as H×W×3 uint8), its predictions, the heat
    map on the frame when asked (``heatmap``: H×W floats 0-1; ``overlay``: the frame with it drawn,
    uint8), and where the run stands."""

    frame: VideoFrame = field(repr=False)
    image: np.ndarray = field(repr=False)
    predictions: tuple[Prediction, ...]
    unusual: bool | None
    heatmap: np.ndarray | None = field(repr=False)
    overlay: np.ndarray | None = field(repr=False)
    fps: float  # frames classified per second, over the last FPS_WINDOW_S seconds (or two frames)
    classified: int  # frames classified since the loop started
    dropped: int  # frames the source replaced before the model was free
    seconds: float  # this frame's classification (and heat map), wall-clock
    heatmap_note: str = ""  # why there is no heat map although one was asked for

    @property
    def top1(self) -> Prediction | None:
        return self.predictions[0] if self.predictions else None


@dataclass(frozen=True)
class LiveStats:
    """What :func:`run_live` did: frames classified, dropped, and the frames per second overall."""

    classified: int
    dropped: int
    received: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.classified / self.seconds if self.seconds > 0 else 0.0


def as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """A frame's picture as a contiguous H×W×3 uint8 array."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.shape[2] == 4:
        array = array[:, :, :3]
    return np.ascontiguousarray(array, dtype=np.uint8)


def can_explain(classifier: ImageClassifier) -> bool:
    """Whether ``classifier`` has a PyTorch model to draw heat maps with (an ``.onnx`` file has not)."""
    from resnet_gui.core.engine import Classifier

    return isinstance(classifier, Classifier)


def classify_frame(
    classifier: ImageClassifier, image: np.ndarray, top_k: int
) -> tuple[tuple[Prediction, ...], bool | None]:
    """Top-k predictions of one RGB frame, and its "unlike the training photos" flag: exactly what
    classifying it as a photo gives."""
    from PIL import Image

    prepared = classifier.preprocessing.prepare(Image.fromarray(image))
    probabilities, flags = classifier.probabilities_and_unusual(prepared[None])
    [predictions] = classifier.top_k(probabilities, top_k)
    return predictions, None if flags is None else bool(flags[0])


def _heatmap(
    classifier: ImageClassifier, image: np.ndarray, target: int, settings: LiveSettings
) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    from resnet_gui.core.engine import Classifier
    from resnet_gui.core.explain.maps import overlay
    from resnet_gui.core.explain.pipeline import explain_photo

    assert isinstance(classifier, Classifier)
    explained = explain_photo(classifier, Image.fromarray(image), method=settings.method, targets=target)
    map01 = explained.classes[0].map_on_image
    return map01, overlay(image, map01, colormap=settings.colormap, alpha=settings.alpha)


def live_results(
    slot: FrameSlot,
    classifier: ImageClassifier,
    settings: LiveSettings | None = None,
    *,
    cancel: CancelCheck | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[LiveResult]:
    """Classify the newest frame of ``slot`` each time the model is free, until the slot is closed
    and empty or ``cancel`` says stop; one :class:`LiveResult` per frame classified.

    While ``settings.paused`` frames are thrown away (not counted as dropped) and nothing is
    classified. With ``settings.heatmap`` each frame also gets a heat map of its top class
    (``settings.method``, Grad-CAM by default) where the classifier can draw one.
    """
    settings = settings or LiveSettings()
    cancelled = as_cancel_check(cancel)
    recent: deque[float] = deque()
    classified = 0
    explainable = can_explain(classifier)
    while not cancelled():
        if settings.paused:  # frames are thrown away: a paused view shows the frame it stopped on
            slot.discard()
            if slot.closed:
                return
            time.sleep(POLL_S / 2)
            continue
        frame = slot.take(timeout=POLL_S * 2, cancel=cancelled)
        if frame is None:
            if slot.closed and not slot.pending:
                return
            continue
        began = clock()
        image = as_rgb_array(frame.image)
        predictions, unusual = classify_frame(classifier, image, settings.top_k)
        heatmap = overlaid = None
        note = ""
        if settings.heatmap and predictions:
            if explainable:
                heatmap, overlaid = _heatmap(classifier, image, predictions[0].index, settings)
            else:
                note = "This model file cannot draw heat maps (it has no PyTorch model)."
        done = clock()
        classified += 1
        recent.append(done)
        while len(recent) > 2 and done - recent[0] > FPS_WINDOW_S:
            recent.popleft()  # the last two stay: a frame every 8 s still reads 0.12/s, not 0
        span = done - recent[0]
        fps = (len(recent) - 1) / span if len(recent) > 1 and span > 0 else 0.0
        yield LiveResult(
            frame=frame,
            image=image,
            predictions=predictions,
            unusual=unusual,
            heatmap=heatmap,
            overlay=overlaid,
            fps=fps,
            classified=classified,
            dropped=slot.dropped,
            seconds=done - began,
            heatmap_note=note,
        )


def run_live(
    source: LiveSource,
    classifier: ImageClassifier,
    settings: LiveSettings | None = None,
    *,
    on_result: Callable[[LiveResult], None] | None = None,
    cancel: CancelCheck | None = None,
    slot: FrameSlot | None = None,
) -> LiveStats:
    """Start ``source`` into a slot, run :func:`live_results` on it calling ``on_result`` for each
    result, and stop the source at the end (its stream ended, or ``cancel``)."""
    slot = slot or FrameSlot()
    began = time.monotonic()
    classified = 0
    source.start(slot)
    try:
        for result in live_results(slot, classifier, settings, cancel=cancel):
            classified += 1
            if on_result is not None:
                on_result(result)
    finally:
        source.stop()
        slot.close()
    return LiveStats(classified, slot.dropped, slot.received, time.monotonic() - began)
