"""The live view's core (issue #14): the newest-frame slot, a video played in real time, and the
live loop that classifies the newest frame whenever the model is free. No Qt, no camera.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from video_makers import make_photo_video, video_encoder

from resnet_gui.core.live import (
    FrameSlot,
    FrameSourceFeed,
    LiveResult,
    LiveSettings,
    PacedSource,
    live_results,
    run_live,
    video_file_feed,
)
from resnet_gui.core.video import VideoFileSource, VideoFrame

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FPS = 30
COLOURS = [(220, 30, 30), (30, 200, 40), (30, 40, 220), (230, 220, 40)]


def frame(index: int) -> VideoFrame:
    return VideoFrame(index, index / FPS, np.full((24, 32, 3), index % 256, dtype=np.uint8))


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s at 30 fps: four solid-colour "photos" of half a second each."""
    if video_encoder() is None:
        pytest.skip("PyAV with a video encoder makes the test videos (pip install 'resnet-gui[video]')")
    photos = [np.full((120, 160, 3), colour, dtype=np.uint8) for colour in COLOURS]
    return make_photo_video(tmp_path_factory.mktemp("live"), photos, fps=FPS, frames_per_photo=FPS // 2)


class SlowClassifier:
    """The tiny classifier, taking at least ``delay`` seconds per forward pass (a big model on a
    slow CPU); not a torch ``Classifier``, so it cannot draw heat maps."""

    def __init__(self, inner, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.preprocessing = inner.preprocessing
        self.categories = inner.categories
        self.lock = inner.lock

    def probabilities_and_unusual(self, batch: np.ndarray):
        time.sleep(self.delay)
        return self.inner.probabilities_and_unusual(batch)

    def top_k(self, probabilities: np.ndarray, k: int):
        return self.inner.top_k(probabilities, k)


class EndlessFeed:
    """A synthetic live source: puts a new frame every ``interval`` seconds until stopped."""

    name = "synthetic camera"
    error = None

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, slot: FrameSlot) -> None:
        def run() -> None:
            index = 0
            while not self.stopped.wait(self.interval):
                slot.put(frame(index))
                index += 1

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(2)


# --- the slot ----------------------------------------------------------------------------------


def test_the_slot_holds_only_the_newest_frame_and_counts_the_dropped() -> None:
    slot = FrameSlot()
    for index in range(1000):
        slot.put(frame(index))
    taken = slot.take(timeout=0)
    assert taken is not None and taken.index == 999
    assert slot.dropped == 999 and slot.received == 1000 and slot.taken == 1
    assert not slot.pending  # nothing queued behind it
    assert slot.take(timeout=0.01) is None


def test_taking_waits_for_a_frame_and_ends_on_close_or_cancel() -> None:
    slot = FrameSlot()
    threading.Timer(0.05, lambda: slot.put(frame(7))).start()
    taken = slot.take(timeout=5)
    assert taken is not None and taken.index == 7
    threading.Timer(0.05, slot.close).start()
    assert slot.take() is None and slot.closed  # a wait without timeout ends when the stream does
    slot.put(frame(8))
    assert not slot.pending  # a closed slot takes nothing
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    assert FrameSlot().take(cancel=stop) is None


def test_a_slow_consumer_sees_increasing_frames_and_every_frame_is_accounted_for() -> None:
    slot = FrameSlot()
    feed = EndlessFeed(0.002)
    feed.start(slot)
    seen = []
    for _ in range(15):
        taken = slot.take(timeout=2)
        assert taken is not None
        seen.append(taken.index)
        time.sleep(0.02)
    feed.stop()
    assert seen == sorted(set(seen))  # never an older frame after a newer one
    assert slot.dropped > 0
    assert slot.received == slot.taken + slot.dropped + int(slot.pending)


def test_discarding_is_not_dropping() -> None:
    slot = FrameSlot()
    slot.put(frame(0))
    slot.discard()
    assert not slot.pending and slot.dropped == 0 and slot.discarded == 1


# --- a video played in real time ----------------------------------------------------------------


def test_a_paced_video_gives_no_frame_before_its_time(video: Path) -> None:
    arrivals = []
    began = time.monotonic()
    source = PacedSource(VideoFileSource(video), speed=4.0)
    for item in source:
        arrivals.append((item.time_s, time.monotonic() - began))
    source.close()
    assert len(arrivals) == 2 * FPS
    first = arrivals[0][1]
    for time_s, arrived in arrivals:
        assert arrived - first >= time_s / 4.0 - 0.01


def test_interrupting_a_paced_video_ends_it(video: Path) -> None:
    source = PacedSource(VideoFileSource(video), speed=0.01)  # 200 s long at this speed
    threading.Timer(0.2, source.interrupt).start()
    began = time.monotonic()
    frames = list(source)
    source.close()
    assert len(frames) <= 2 and time.monotonic() - began < 30


def test_a_feed_closes_the_slot_and_the_file_when_the_video_ends(video: Path) -> None:
    slot = FrameSlot()
    feed = video_file_feed(video, speed=8.0)
    feed.start(slot)
    while slot.take(timeout=5) is not None:
        pass
    assert slot.closed and slot.received == 2 * FPS and feed.error is None
    feed.stop()
    assert not feed.running
    assert feed.source.source._closed  # the PacedSource closed the VideoFileSource


# --- the loop ----------------------------------------------------------------------------------


def decoded(path: Path) -> list[np.ndarray]:
    with VideoFileSource(path) as source:
        return [np.asarray(item.image) for item in source]


def test_the_loop_classifies_the_newest_frames_like_classifying_them_directly(
    video: Path, tiny_classifier
) -> None:
    """A model slower than the frame rate: frames are dropped, the results are those of the frames
    classified, in order, and equal to classifying those frames as photos."""
    from PIL import Image

    slow = SlowClassifier(tiny_classifier, delay=3 / FPS)
    results: list[LiveResult] = []
    stats = run_live(video_file_feed(video), slow, LiveSettings(top_k=3), on_result=results.append)
    assert stats.classified == len(results) >= 5
    assert stats.dropped > 0 and stats.received == 2 * FPS
    assert stats.classified + stats.dropped <= stats.received
    indices = [result.frame.index for result in results]
    assert indices == sorted(set(indices)) and indices[-1] >= 2 * FPS - 4  # kept up with the video
    frames = decoded(video)
    direct = tiny_classifier.classify_images([Image.fromarray(frames[i]) for i in indices], top_k=3)
    for result, expected in zip(results, direct, strict=True):
        assert np.array_equal(result.image, frames[result.frame.index])
        assert [p.label for p in result.predictions] == [p.label for p in expected]
        assert [p.probability for p in result.predictions] == pytest.approx(
            [p.probability for p in expected], abs=1e-5
        )
        assert result.heatmap is None and result.overlay is None
    assert results[-1].dropped <= stats.dropped
    assert [r.classified for r in results] == list(range(1, len(results) + 1))
    assert results[-1].fps > 0


def test_the_heat_map_is_drawn_on_the_frame_where_the_model_can(video: Path, tiny_classifier) -> None:
    slot = FrameSlot()
    slot.put(VideoFrame(0, 0.0, decoded(video)[0]))
    slot.close()
    [result] = live_results(slot, tiny_classifier, LiveSettings(heatmap=True))
    assert result.overlay is not None and result.heatmap is not None
    assert result.overlay.shape == result.image.shape and result.overlay.dtype == np.uint8
    assert result.heatmap.shape == result.image.shape[:2]
    seen = result.heatmap[np.isfinite(result.heatmap)]
    assert seen.size and seen.min() >= 0 and seen.max() <= 1
    assert not np.array_equal(result.overlay, result.image)

    slot = FrameSlot()
    slot.put(VideoFrame(0, 0.0, decoded(video)[0]))
    slot.close()
    [result] = live_results(slot, SlowClassifier(tiny_classifier, 0), LiveSettings(heatmap=True))
    assert result.overlay is None and "cannot draw heat maps" in result.heatmap_note


def _run_in_thread(slot: FrameSlot, classifier, settings: LiveSettings, stop: threading.Event):
    results: list[LiveResult] = []

    def run() -> None:
        results.extend(live_results(slot, classifier, settings, cancel=stop))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return results, thread


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_pause_classifies_nothing_and_resume_takes_the_newest_frame(tiny_classifier) -> None:
    slot, settings, stop = FrameSlot(), LiveSettings(paused=True), threading.Event()
    results, thread = _run_in_thread(slot, tiny_classifier, settings, stop)
    for index in range(20):
        slot.put(frame(index))
        time.sleep(0.01)
    wait_for(lambda: not slot.pending)
    assert results == [] and slot.discarded > 0
    settings.paused = False
    slot.put(frame(100))
    wait_for(lambda: len(results) == 1)
    assert results[0].frame.index == 100
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_cancel_stops_the_loop_and_the_source_promptly(tiny_classifier) -> None:
    feed = EndlessFeed(0.005)
    stop = threading.Event()
    results: list[LiveResult] = []

    def on_result(result: LiveResult) -> None:
        results.append(result)
        if len(results) == 3:
            stop.set()

    began = time.monotonic()
    stats = run_live(feed, tiny_classifier, on_result=on_result, cancel=stop)
    assert stats.classified == 3 == len(results)
    assert feed.stopped.is_set() and feed.thread is not None and not feed.thread.is_alive()
    assert time.monotonic() - began < 30


def test_a_source_error_ends_the_stream_and_is_kept(tiny_classifier) -> None:
    class Failing:
        name = "broken"
        duration_s = frame_rate = expected_frames = None

        def __iter__(self) -> Iterator[VideoFrame]:
            yield frame(0)
            raise OSError("the camera went away")

        def close(self) -> None:
            pass

    feed = FrameSourceFeed(Failing())
    stats = run_live(feed, tiny_classifier)
    assert stats.received == 1 and isinstance(feed.error, OSError)
