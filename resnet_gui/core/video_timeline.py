"""A classified video as a timeline, and reading the one frame shown at a moment of it.

* :data:`VIDEO_SAMPLING` is the one table of "classify one frame every …" choices (the app's
  *Every* menu; the CLI's ``--every`` accepts these and any other interval).
* :func:`read_frame_at` seeks a video file to the keyframe before a time and decodes forward to the
  frame shown at that time (the last frame at or before it): the same picture sequential decoding
  gives, without decoding the video from its start. Scrubbing calls it once per position.
* :class:`VideoTimeline` holds the top-1 class and its confidence of each classified frame, in time
  order (small: no pictures), gives each class a colour from :data:`TIMELINE_PALETTE` in order of
  first appearance, and cuts the frames into run-length :class:`TimelineSegment` bands for drawing.

No Qt, no torch; PyAV (``av``) is imported only when a frame is read.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from resnet_gui.core.video import (
    FrameResult,
    VideoDamagedError,
    VideoFrame,
    _open_container,
    _rate,
    _shown,
    require_av,
)

__all__ = [
    "TIMELINE_PALETTE",
    "VIDEO_SAMPLING",
    "SamplingChoice",
    "TimelinePoint",
    "TimelineSegment",
    "VideoTimeline",
    "read_frame_at",
]


@dataclass(frozen=True)
class SamplingChoice:
    """One entry of the *Every* menu: its words and the interval (None: every frame)."""

    key: str  # what ``resnet-gui classify-video --every`` takes for the same choice
    text: str
    every_s: float | None


#: How often a frame is classified: the app's menu (the first is its default) and the tests' table.
VIDEO_SAMPLING: tuple[SamplingChoice, ...] = (
    SamplingChoice("1s", "Every 1 s", 1.0),
    SamplingChoice("0.5s", "Every 0.5 s", 0.5),
    SamplingChoice("0.25s", "Every 0.25 s", 0.25),
    SamplingChoice("2s", "Every 2 s", 2.0),
    SamplingChoice("5s", "Every 5 s", 5.0),
    SamplingChoice("all", "Every frame", None),
)

#: The colours of the classes on the timeline (RGB), given in order of first appearance, then reused.
#: Tableau 10: distinct from each other, readable on light and dark backgrounds.
TIMELINE_PALETTE: tuple[tuple[int, int, int], ...] = (
    (78, 121, 167),
    (242, 142, 43),
    (89, 161, 79),
    (225, 87, 89),
    (176, 122, 161),
    (237, 201, 72),
    (118, 183, 178),
    (255, 157, 167),
    (156, 117, 95),
    (186, 176, 172),
)


# --- one frame at a time -----------------------------------------------------------------------


def read_frame_at(path: str | Path, time_s: float) -> VideoFrame:
    """The frame shown ``time_s`` seconds after the video's first frame: the last one at or before it
    (the first frame for a time before it, the last frame for one past the end).

    Seeks to the keyframe before the time and decodes forward, so a moment of a long video costs
    at most one group of pictures to decode. Its ``index`` counts frames from the first at the
    video's frame rate. One :class:`~resnet_gui.core.video.VideoError` sentence when the file cannot
    be read there.
    """
    path = Path(path)
    av = require_av()
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 1)
        start = _first_pts(container, stream)
        target = Fraction(max(0.0, float(time_s))).limit_denominator(1_000_000)
        found = None
        try:
            if target > 0:
                pts = int(start + target / time_base)
                container.seek(pts, stream=stream, backward=True, any_frame=False)
                found = _decode_to(container, stream, start, target, time_base)
            if found is None or found[0] > target:
                # Before the first frame, or the seek landed past it: decode from the start.
                container.seek(int(start), stream=stream, backward=True, any_frame=False)
                found = _decode_to(container, stream, start, target, time_base)
        except av.error.FFmpegError as error:
            raise VideoDamagedError(
                f"Cannot show the video '{_shown(path)}' at {float(target):.1f} s: it is damaged there "
                f"({error.strerror or error}).",
                stopped_at_s=float(target),
            ) from None
        if found is None:
            raise VideoDamagedError(
                f"Cannot show the video '{_shown(path)}' at {float(target):.1f} s: no frame of it can "
                "be decoded (it is damaged or truncated).",
                stopped_at_s=None,
            )
        offset, frame = found
        rate = _rate(stream)
        index = round(float(offset) * rate) if rate else 0
        image = frame.to_image()
        rotation = getattr(frame, "rotation", 0) or 0
        if rotation % 360:
            image = image.rotate(rotation, expand=True)
        return VideoFrame(index, float(offset), image)
    finally:
        container.close()


def _first_pts(container: Any, stream: Any) -> Fraction:
    """The presentation time stamp (in the stream's time base) of the first frame sequential decoding
    gives, which :class:`~resnet_gui.core.video.VideoFileSource` counts its times from."""
    for frame in container.decode(stream):
        if frame.pts is not None:
            return Fraction(frame.pts)
    return Fraction(stream.start_time or 0)


def _decode_to(
    container: Any, stream: Any, start: Fraction, target: Fraction, time_base: Fraction
) -> tuple[Fraction, Any] | None:
    """Decode from where the container was sought to the last frame at or before ``target``:
    (its offset from the first frame, the frame); the first frame decoded when all are past it."""
    best: tuple[Fraction, Any] | None = None
    tolerance = Fraction(1, 1_000_000)
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        offset = (Fraction(frame.pts) - start) * time_base
        if offset < 0:
            continue
        if offset > target + tolerance:
            return best if best is not None else (offset, frame)
        best = (offset, frame)
    return best


# --- the timeline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelinePoint:
    """One classified frame on the timeline: when, which top-1 class, how sure (0-1)."""

    time_s: float
    frame: int
    class_index: int
    label: str
    confidence: float


@dataclass(frozen=True)
class TimelineSegment:
    """A run of consecutive classified frames with the same top-1 class: one band of colour.

    It spans from its first frame's time to the next segment's first time (the last one: to
    :attr:`VideoTimeline.last_end_s`); ``first`` and ``last`` index :attr:`VideoTimeline.points`."""

    start_s: float
    end_s: float
    class_index: int
    label: str
    first: int
    last: int


@dataclass
class VideoTimeline:
    """The top-1 class of each classified frame, in time order, and what drawing it needs."""

    duration_s: float | None = None
    #: The run reached the video's end: the last band runs to it. Until then (a run going on,
    #: cancelled, or stopped by damage) the last band covers one step, not the frames not seen.
    complete: bool = False
    points: list[TimelinePoint] = field(default_factory=list)
    _times: list[float] = field(default_factory=list, repr=False)
    _colours: dict[int, tuple[int, int, int]] = field(default_factory=dict, repr=False)

    def add(self, result: FrameResult) -> TimelinePoint | None:
        """Add a frame's result (kept in time order; a frame already there is replaced)."""
        top1 = result.top1
        if top1 is None:
            return None
        point = TimelinePoint(result.time_s, result.index, top1.index, top1.label, float(top1.probability))
        where = bisect.bisect_left(self._times, point.time_s)
        if where < len(self._times) and math.isclose(self._times[where], point.time_s, abs_tol=1e-9):
            self.points[where] = point
        else:
            self._times.insert(where, point.time_s)
            self.points.insert(where, point)
        self.colour(point.class_index)
        return point

    def clear(self) -> None:
        self.points.clear()
        self._times.clear()
        self._colours.clear()
        self.complete = False

    def __len__(self) -> int:
        return len(self.points)

    @property
    def end_s(self) -> float:
        """Where the timeline ends: the video's duration, else just past the last frame classified."""
        last = self.points[-1].time_s if self.points else 0.0
        if self.duration_s is not None and self.duration_s > last:
            return self.duration_s
        return last + self.step_s

    @property
    def last_end_s(self) -> float:
        """Where the last band ends: the video's end once the run reached it, else one step on."""
        if not self.points:
            return 0.0
        if self.complete:
            return self.end_s
        return min(self.points[-1].time_s + self.step_s, self.end_s)

    @property
    def step_s(self) -> float:
        """The usual time between classified frames (the median gap), 1 s when it cannot be told."""
        gaps = sorted(b - a for a, b in zip(self._times, self._times[1:], strict=False) if b > a)
        return gaps[len(gaps) // 2] if gaps else 1.0

    def colour(self, class_index: int) -> tuple[int, int, int]:
        """The colour of a class: the palette's next one when the class first appears."""
        colour = self._colours.get(class_index)
        if colour is None:
            colour = TIMELINE_PALETTE[len(self._colours) % len(TIMELINE_PALETTE)]
            self._colours[class_index] = colour
        return colour

    def segments(self) -> list[TimelineSegment]:
        """The runs of equal top-1 classes, in time order, covering the timeline without gaps."""
        segments: list[TimelineSegment] = []
        first = 0
        for position in range(1, len(self.points) + 1):
            if (
                position == len(self.points)
                or self.points[position].class_index != self.points[first].class_index
            ):
                point = self.points[first]
                end = self.points[position].time_s if position < len(self.points) else self.last_end_s
                segments.append(
                    TimelineSegment(point.time_s, end, point.class_index, point.label, first, position - 1)
                )
                first = position
        return segments

    def span(self, position: int) -> tuple[float, float]:
        """The time one point covers: from its frame to the next classified frame (or the end)."""
        start = self.points[position].time_s
        end = self.points[position + 1].time_s if position + 1 < len(self.points) else self.last_end_s
        return start, end

    def legend(self) -> list[tuple[int, str, float]]:
        """(class index, label, seconds of the timeline it covers), most time first."""
        seconds: dict[int, float] = {}
        labels: dict[int, str] = {}
        for segment in self.segments():
            seconds[segment.class_index] = (
                seconds.get(segment.class_index, 0.0) + segment.end_s - segment.start_s
            )
            labels[segment.class_index] = segment.label
        return sorted(((i, labels[i], s) for i, s in seconds.items()), key=lambda item: (-item[2], item[0]))

    def at_or_before(self, time_s: float) -> int | None:
        """The position of the last classified frame at or before ``time_s`` (None: before the first)."""
        where = bisect.bisect_right(self._times, time_s + 1e-9) - 1
        return where if where >= 0 else None

    def nearest(self, time_s: float) -> int | None:
        """The position of the classified frame closest to ``time_s`` (None: no frames yet)."""
        if not self.points:
            return None
        where = bisect.bisect_left(self._times, time_s)
        candidates = [p for p in (where - 1, where) if 0 <= p < len(self.points)]
        return min(candidates, key=lambda p: (abs(self._times[p] - time_s), p))

    def step(self, time_s: float, delta: int) -> int | None:
        """The position ``delta`` classified frames after (or before) the one at ``time_s``, clamped."""
        if not self.points:
            return None
        here = self.at_or_before(time_s)
        if here is None:
            return 0 if delta > 0 else None if delta < 0 else 0
        if delta < 0 and not math.isclose(self._times[here], time_s, abs_tol=1e-6):
            delta += 1  # between two frames: one step back is the frame before
        return min(max(here + delta, 0), len(self.points) - 1)
