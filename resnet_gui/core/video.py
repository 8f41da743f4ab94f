"""Videos as a stream of frames, and classifying them frame by frame in bounded memory.

* A :class:`FrameSource` is anything that yields :class:`VideoFrame` objects (an index, a time in
  seconds from its start, an RGB image) and can be closed: :class:`VideoFileSource` reads a file
  with PyAV (FFmpeg), and the live camera view is meant to be a second implementation. A source
  says its ``duration_s`` and ``frame_rate`` when it knows them (a camera does not).
* :class:`VideoFileSource` decodes lazily, one frame at a time, so a ten-minute video is never in
  memory at once; with ``every_s`` it keeps one frame per ``every_s`` seconds of presentation time
  (the first frame at or after 0, every_s, 2·every_s, …), and only those are converted to RGB.
* :func:`classify_video` decodes (and prepares each kept frame for the model) in a background
  thread, ahead of the model, through a small bounded queue, and classifies in batches with the
  engine's :class:`~resnet_gui.core.engine.ImageClassifier`: the same preprocessing, calibrated
  probabilities and "unlike the training photos" flag as a photo. Cancelling (a callback) stops
  before the next batch; the frames already yielded are the caller's to keep.

Bad input is one :class:`VideoError` sentence: a missing file, a file that is not a video (or a
picture), a file without a video stream (audio only), a codec this FFmpeg cannot decode, a damaged
or truncated file. A truncated file yields the frames decodable before the damage, then raises
:class:`VideoDamagedError` saying where it stopped (``stopped_at_s``).

PyAV is an optional dependency (``pip install 'resnet-gui[video]'``), imported on first use; without
it, opening a video raises :class:`VideoSupportMissingError`. Never imports Qt, nor torch itself.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from resnet_gui.core.confidence import is_not_sure
from resnet_gui.core.errors import CancelCheck, ResNetGuiError, as_cancel_check
from resnet_gui.core.text import printable_path

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from resnet_gui.core.engine import ImageClassifier, Prediction

__all__ = [
    "VIDEO_EXTENSIONS",
    "FrameResult",
    "FrameSource",
    "NoVideoStreamError",
    "NotAVideoError",
    "UnsupportedCodecError",
    "VideoDamagedError",
    "VideoError",
    "VideoFileSource",
    "VideoFrame",
    "VideoInfo",
    "VideoNotFoundError",
    "VideoProgress",
    "VideoSupportMissingError",
    "classify_video",
    "is_video",
    "parse_interval",
    "probe_video",
    "require_av",
    "split_videos",
]

#: The suffixes offered for videos (FFmpeg reads many more; these are what a file dialog lists).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")
INSTALL_HINT = "pip install 'resnet-gui[video]'"


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is opened as a video (by its suffix: what the open dialog lists)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def split_videos(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the videos among ``paths``, the rest): a drop or the open dialog may give either."""
    videos = [path for path in paths if is_video(path) and not Path(path).is_dir()]
    return videos, [path for path in paths if path not in videos]

# --- errors ------------------------------------------------------------------------------------


class VideoError(ResNetGuiError):
    """A video that cannot be read (or not wholly): the message is one sentence for the user."""

    exit_code = 3


class VideoSupportMissingError(VideoError):
    """PyAV, which reads videos, is not installed."""

    exit_code = 1

    def __init__(self) -> None:
        super().__init__(f"Reading videos needs PyAV: {INSTALL_HINT}")


class VideoNotFoundError(VideoError):
    """The path is missing, or is a folder."""


class NotAVideoError(VideoError):
    """The file is not a video FFmpeg can read (a text file, a picture, random bytes)."""


class NoVideoStreamError(VideoError):
    """The file is a media file without pictures (audio only)."""


class UnsupportedCodecError(VideoError):
    """The video's codec cannot be decoded by this FFmpeg build."""


class VideoDamagedError(VideoError):
    """The video is damaged or truncated. Raised after the frames decodable before the damage were
    yielded; ``stopped_at_s`` is where decoding stopped (None: before the first frame)."""

    def __init__(
        self,
        message: str,
        *,
        stopped_at_s: float | None = None,
        duration_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.stopped_at_s = stopped_at_s
        self.duration_s = duration_s


def require_av() -> Any:
    """The ``av`` module (PyAV), or :class:`VideoSupportMissingError`."""
    try:
        import av
    except ImportError:
        raise VideoSupportMissingError() from None
    return av


# --- what a source gives -----------------------------------------------------------------------


@dataclass(frozen=True)
class VideoFrame:
    """One frame: its index among the frames the source decoded (0-based, counting the frames it
    skipped), its presentation time in seconds from the source's start, and the picture (an RGB
    PIL image, or an H×W×3 uint8 array)."""

    index: int
    time_s: float
    image: Image.Image | np.ndarray


@runtime_checkable
class FrameSource(Protocol):
    """Frames in presentation order: a video file (:class:`VideoFileSource`), later a camera.

    Iterating yields :class:`VideoFrame` objects (once: a source is a stream); :meth:`close`
    releases the file or device and is safe to call twice, also from ``finally`` while iterating
    has stopped part way. ``duration_s``, ``frame_rate`` and ``expected_frames`` (how many frames
    iterating will yield) are None when not known (a live camera).
    """

    @property
    def name(self) -> str: ...

    @property
    def duration_s(self) -> float | None: ...

    @property
    def frame_rate(self) -> float | None: ...

    @property
    def expected_frames(self) -> int | None: ...

    def __iter__(self) -> Iterator[VideoFrame]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` finds out about a video without decoding it."""

    path: Path
    duration_s: float | None
    frame_rate: float | None
    width: int
    height: int
    codec: str  # FFmpeg's short name: "h264", "vp9", "mpeg4"
    codec_description: str  # "H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10"
    container: str  # "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"
    frame_count: int | None  # from the container's header; None when it does not say
    has_audio: bool

    def summary(self) -> str:
        """``3.0 s, 10 fps, 96x64, mpeg4`` for people."""
        parts = []
        if self.duration_s is not None:
            parts.append(f"{self.duration_s:.1f} s")
        if self.frame_rate:
            parts.append(f"{self.frame_rate:.3g} fps")
        parts.append(f"{self.width}x{self.height}")
        parts.append(self.codec)
        return ", ".join(parts)


# --- reading a file ----------------------------------------------------------------------------

#: FFmpeg formats that are single pictures, not videos (a JPEG opens as a one-frame "video").
_PICTURE_FORMATS = ("image2", "jpeg_pipe", "png_pipe", "bmp_pipe", "tiff_pipe", "webp_pipe", "gif_pipe")


def _shown(path: Path) -> str:
    return printable_path(path)


def _open_container(path: Path) -> Any:
    """The PyAV container of ``path``, with its first video stream checked; one VideoError else."""
    av = require_av()
    shown = _shown(path)
    if path.is_dir():
        raise VideoNotFoundError(f"Cannot read the video '{shown}': it is a folder, not a file.")
    if not path.exists():
        raise VideoNotFoundError(f"Cannot read the video '{shown}': there is no such file.")
    if path.is_file() and path.stat().st_size == 0:
        raise NotAVideoError(f"Cannot read the video '{shown}': the file is empty.")
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as error:
        if isinstance(error, OSError) and not isinstance(error, av.error.InvalidDataError):
            reason = (error.strerror or str(error)).lower()
            raise VideoNotFoundError(f"Cannot read the video '{shown}': {reason}.") from None
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            raise VideoDamagedError(
                f"Cannot read the video '{shown}': it is damaged or truncated (FFmpeg cannot find its "
                "streams), or it is not a video."
            ) from None
        raise NotAVideoError(f"Cannot read '{shown}': it is not a video file FFmpeg can read.") from None
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise VideoNotFoundError(f"Cannot read the video '{shown}': {reason}.") from None
    try:
        _video_stream(container, path)
    except BaseException:
        container.close()
        raise
    return container


def _video_stream(container: Any, path: Path) -> Any:
    shown = _shown(path)
    format_name = container.format.name or ""
    if any(name in _PICTURE_FORMATS for name in format_name.split(",")):
        raise NotAVideoError(
            f"'{shown}' is a picture, not a video; classify it with `resnet-gui classify` instead."
        )
    streams = list(container.streams.video)
    if not streams:
        what = "only sound (an audio file)" if container.streams.audio else "no pictures"
        raise NoVideoStreamError(f"'{shown}' has no video stream: it holds {what}.")
    stream = streams[0]
    if stream.codec_context is None:
        raise UnsupportedCodecError(
            f"Cannot read the video '{shown}': its video codec is not one this FFmpeg build "
            "can decode; convert it to H.264 (MP4) first."
        )
    return stream


def _rate(stream: Any) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if math.isfinite(value) and 0 < value < 10_000:
                return value
    return None


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _info(path: Path, container: Any, stream: Any) -> VideoInfo:
    context = stream.codec_context
    return VideoInfo(
        path=path,
        duration_s=_duration(container, stream),
        frame_rate=_rate(stream),
        width=int(context.width or 0),
        height=int(context.height or 0),
        codec=context.name,
        codec_description=context.codec.long_name or context.name,
        container=container.format.name or "",
        frame_count=int(stream.frames) if stream.frames else None,
        has_audio=bool(container.streams.audio),
    )


def probe_video(path: str | Path) -> VideoInfo:
    """What a video is (duration, frame rate, size, codec, frame count) from its header; one
    :class:`VideoError` sentence when it cannot be read."""
    path = Path(path)
    container = _open_container(path)
    try:
        return _info(path, container, container.streams.video[0])
    finally:
        container.close()


def parse_interval(text: str) -> float | None:
    """``"0.5s"``, ``"0.5"``, ``"500ms"``, ``"2s"`` → seconds; ``"all"`` → None (every frame).
    ``ValueError`` with a sentence for anything else (zero, negative, not a number)."""
    cleaned = text.strip().lower()
    if cleaned in ("all", "every", "every-frame"):
        return None
    scale = 1.0
    if cleaned.endswith("ms"):
        cleaned, scale = cleaned[:-2], 0.001
    elif cleaned.endswith("s"):
        cleaned = cleaned[:-1]
    try:
        value = float(cleaned.strip()) * scale
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.001 <= value <= 86_400):
        raise ValueError(
            f"must be a time between 1 ms and 24 hours (e.g. 0.5s, 2s, 500ms) or 'all', not '{text}'"
        )
    return value


class VideoFileSource:
    """The frames of a video file, decoded by PyAV one at a time (constant memory).

    Opening checks the file (one :class:`VideoError` sentence); iterating decodes, keeping one
    frame per ``every_s`` seconds of presentation time (None: every frame). A frame's ``time_s``
    counts from the video's first frame; its image is an RGB PIL image, turned upright when the
    file says the camera was rotated. A file cut short yields what it holds before the cut and then
    raises :class:`VideoDamagedError` with ``stopped_at_s``. Use it once, and close it (or use
    ``with``).
    """

    def __init__(self, path: str | Path, every_s: float | None = None) -> None:
        if every_s is not None and not (math.isfinite(every_s) and every_s > 0):
            raise ValueError(f"every_s must be a positive number of seconds or None, not {every_s!r}")
        self.path = Path(path)
        self.every_s = every_s
        self._container = _open_container(self.path)
        self._stream = self._container.streams.video[0]
        self.info = _info(self.path, self._container, self._stream)
        self._used = False
        self._closed = False
        #: How many frames were decoded so far (kept or skipped), and the last kept one's time.
        self.decoded = 0
        self.last_time_s: float | None = None

    # FrameSource
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def duration_s(self) -> float | None:
        return self.info.duration_s

    @property
    def frame_rate(self) -> float | None:
        return self.info.frame_rate

    @property
    def expected_frames(self) -> int | None:
        duration = self.duration_s
        if self.every_s is None:
            if self.info.frame_count:
                return self.info.frame_count
            return round(duration * self.frame_rate) if duration and self.frame_rate else None
        if duration is None:
            return None
        return max(1, math.ceil(duration / self.every_s - 1e-9))

    def __iter__(self) -> Iterator[VideoFrame]:
        if self._used:
            raise RuntimeError("a VideoFileSource can be iterated once")
        if self._closed:
            raise RuntimeError("the VideoFileSource is closed")
        self._used = True
        return self._frames()

    def _frames(self) -> Iterator[VideoFrame]:
        av = require_av()
        stream = self._stream
        stream.codec_context.thread_type = "AUTO"  # frame threads: decoding keeps up with the model
        time_base = stream.time_base or Fraction(1, 1)
        start: Fraction | None = None
        every = Fraction(self.every_s).limit_denominator(1_000_000) if self.every_s else None
        next_target = Fraction(0)
        index = -1
        last: Fraction | None = None
        shown = _shown(self.path)
        frames = self._container.decode(stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.FFmpegError as error:
                raise self._damaged(last, f"decoding failed ({error.strerror or error})") from None
            if frame.pts is None:
                continue  # a frame without a time (a broken packet) cannot be placed on the timeline
            index += 1
            self.decoded = index + 1
            moment = Fraction(frame.pts) * time_base
            if start is None:
                start = moment
            offset = moment - start
            if offset < 0:
                continue  # before the first frame (B-frames of an edited file)
            last = offset
            if every is not None:
                if offset < next_target:
                    continue
                next_target = (offset // every + 1) * every
            self.last_time_s = float(offset)
            yield VideoFrame(index, float(offset), self._picture(frame))
        if index < 0:
            raise VideoDamagedError(
                f"Cannot read the video '{shown}': no frame of it could be decoded (it is damaged or "
                "truncated).",
                stopped_at_s=None,
                duration_s=self.duration_s,
            )
        self._check_complete(last)

    def _picture(self, frame: Any) -> Image.Image:
        image = frame.to_image()
        rotation = getattr(frame, "rotation", 0) or 0
        if rotation % 360:
            image = image.rotate(rotation, expand=True)  # counter-clockwise, as the display matrix says
        return image

    def _tolerance(self) -> float:
        rate = self.frame_rate or 25.0
        duration = self.duration_s or 0.0
        return max(0.5, 3.0 / rate, 0.02 * duration)

    def _check_complete(self, last: Fraction | None) -> None:
        """A file whose frames end well before its stated duration was cut short."""
        duration = self.duration_s
        if duration is None or last is None:
            return
        frame_time = 1.0 / self.frame_rate if self.frame_rate else 0.0
        if float(last) + frame_time < duration - self._tolerance():
            raise self._damaged(last, "it is truncated or damaged", verb="ends")

    def _damaged(self, last: Fraction | None, why: str, verb: str = "stops") -> VideoDamagedError:
        shown = _shown(self.path)
        stopped = float(last) if last is not None else 0.0
        of = f" of its {self.duration_s:.1f} s" if self.duration_s else ""
        return VideoDamagedError(
            f"The video '{shown}' {verb} at {stopped:.1f} s{of}: {why}.",
            stopped_at_s=stopped,
            duration_s=self.duration_s,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._container.close()

    def __enter__(self) -> VideoFileSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- classifying -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameResult:
    """The top-k predictions of one frame, at its time in the video."""

    index: int
    time_s: float
    predictions: tuple[Prediction, ...]
    #: Whether the frame looks unlike the model's training photos; None: the model cannot tell.
    unusual: bool | None = None

    @property
    def top1(self) -> Prediction | None:
        return self.predictions[0] if self.predictions else None

    def not_sure(self, threshold: float | None) -> bool:
        """Whether the top-1 prediction is *not sure* under ``threshold`` (the one rule of
        :func:`resnet_gui.core.confidence.is_not_sure`)."""
        top1 = self.top1
        return is_not_sure(top1.probability if top1 is not None else None, threshold)


@dataclass(frozen=True)
class VideoProgress:
    """Where a video run stands, after every batch: ``total`` is None when the source cannot say."""

    done: int
    total: int | None
    time_s: float | None  # of the last frame classified
    duration_s: float | None
    elapsed_s: float

    @property
    def frames_per_second(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        if self.duration_s and self.time_s is not None:
            return min(1.0, self.time_s / self.duration_s)
        if self.total:
            return min(1.0, self.done / self.total)
        return None


@dataclass
class _Prepared:
    index: int
    time_s: float
    array: np.ndarray


@dataclass
class _Failed:
    error: BaseException


_END = object()
_POLL_S = 0.05


def _as_pil(image: Image.Image | np.ndarray) -> Image.Image:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    return Image.fromarray(image).convert("RGB")


class _ReadAhead:
    """A thread that takes frames from a source, prepares them for the model, and hands them over
    through a queue of at most ``bound`` frames (so memory does not grow with the video)."""

    def __init__(self, source: FrameSource, prepare: Callable[[Any], np.ndarray], bound: int) -> None:
        self.source = source
        self.prepare = prepare
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=bound)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="video-read-ahead", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for frame in self.source:
                if self.stop.is_set():
                    return
                array = self.prepare(_as_pil(frame.image))
                if not self._put(_Prepared(frame.index, frame.time_s, array)):
                    return
        except BaseException as error:  # handed to the model thread, which raises it after its batch
            self._put(_Failed(error))
            return
        self._put(_END)

    def get(self, cancelled: Callable[[], bool]) -> Any:
        """The next item, or None when cancelled while waiting."""
        while True:
            if cancelled():
                return None
            try:
                return self.queue.get(timeout=_POLL_S)
            except queue.Empty:
                if not self.thread.is_alive() and self.queue.empty():
                    return _END  # the thread ended without a word (it was stopped)

    def shutdown(self) -> None:
        self.stop.set()
        while self.thread.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:
                    self.queue.get_nowait()
            self.thread.join(timeout=_POLL_S)


def classify_video(
    classifier: ImageClassifier,
    source: FrameSource,
    *,
    top_k: int = 5,
    batch_size: int = 8,
    progress: Callable[[VideoProgress], None] | None = None,
    cancel: CancelCheck | None = None,
    queue_size: int | None = None,
) -> Iterator[FrameResult]:
    """Classify the frames of ``source`` in batches, yielding one :class:`FrameResult` per frame in
    order; the source is closed when the generator ends (or is closed).

    A background thread decodes and prepares frames ahead of the model through a queue of at most
    ``queue_size`` frames (default ``2 * batch_size``), so memory stays constant whatever the
    video's length. ``cancel`` (an Event, or a callable returning True) is checked while waiting for
    frames and before each batch: the generator then simply ends, the results yielded so far being
    the caller's. A source error (a truncated file's :class:`VideoDamagedError`) is raised after the
    frames decoded before it were classified and yielded.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cancelled = as_cancel_check(cancel)
    bound = queue_size if queue_size is not None else max(2, 2 * batch_size)
    reader = _ReadAhead(source, classifier.preprocessing.prepare, max(1, bound))
    total = source.expected_frames
    duration = source.duration_s
    began = time.monotonic()
    done = 0
    last_time: float | None = None
    try:
        reader.start()
        if progress is not None:
            progress(VideoProgress(0, total, None, duration, 0.0))
        finished = False
        while not finished:
            batch: list[_Prepared] = []
            failure: BaseException | None = None
            while len(batch) < batch_size:
                item = reader.get(cancelled)
                if item is None:
                    return  # cancelled: what was yielded is kept by the caller
                if item is _END:
                    finished = True
                    break
                if isinstance(item, _Failed):
                    failure, finished = item.error, True
                    break
                batch.append(item)
            if batch:
                if cancelled():
                    return
                results = _classify_batch(classifier, batch, top_k)
                done += len(results)
                last_time = results[-1].time_s
                yield from results
                if progress is not None:
                    progress(VideoProgress(done, total, last_time, duration, time.monotonic() - began))
            if failure is not None:
                raise failure
    finally:
        reader.shutdown()
        source.close()


def _classify_batch(classifier: ImageClassifier, batch: list[_Prepared], top_k: int) -> list[FrameResult]:
    import numpy as np

    arrays = np.stack([item.array for item in batch])
    probabilities, flags = classifier.probabilities_and_unusual(arrays)
    predictions = classifier.top_k(probabilities, top_k)
    unusual: list[bool | None] = [None] * len(batch) if flags is None else [bool(flag) for flag in flags]
    return [
        FrameResult(item.index, item.time_s, preds, odd)
        for item, preds, odd in zip(batch, predictions, unusual, strict=True)
    ]
