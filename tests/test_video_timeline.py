"""Videos in the app (issue #14), the parts without Qt: reading the frame shown at a moment (seek +
decode forward, checked against decoding every frame in order), the timeline of top-1 classes, its
colours and bands, and the sampling table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from resnet_gui.core.engine import Prediction
from resnet_gui.core.video import FrameResult, VideoFileSource, parse_interval
from resnet_gui.core.video_timeline import (
    TIMELINE_PALETTE,
    VIDEO_SAMPLING,
    VideoTimeline,
    read_frame_at,
)

FPS, SECONDS, SIZE, GOP = 10, 3, (64, 48), 7
NEEDS_AV = "PyAV makes and reads the test videos"


#: The containers and codecs the seek is checked with (each where this PyAV build encodes it).
FORMATS = (("libx264", ".mp4"), ("libx264", ".mkv"), ("mpeg4", ".avi"), ("libvpx", ".webm"))


@pytest.fixture(scope="module", params=FORMATS, ids=[suffix for _, suffix in FORMATS])
def noisy_video(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 10 fps of random frames (each different), a keyframe every 7 frames: seeking lands
    on a keyframe before the target and must decode forward to the right frame."""
    av = pytest.importorskip("av", reason=NEEDS_AV)
    codec, suffix = request.param
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        pytest.skip(f"this PyAV build cannot encode {codec}")
    path = tmp_path_factory.mktemp("timeline") / f"noise{suffix}"
    rng = np.random.default_rng(3)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = GOP
        for _ in range(SECONDS * FPS):
            array = rng.integers(0, 255, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def sequential(noisy_video: Path) -> list:
    with VideoFileSource(noisy_video) as source:
        return [(frame.index, frame.time_s, np.asarray(frame.image)) for frame in source]


@pytest.mark.parametrize("time_s", [0.0, 0.05, 0.1, 0.69, 0.7, 0.71, 1.45, 2.0, 2.1, 2.9, 2.95, 99.0, -1.0])
def test_read_frame_at_equals_sequential_decoding(noisy_video: Path, sequential: list, time_s: float) -> None:
    times = [time for _, time, _ in sequential]
    shown = max((i for i, t in enumerate(times) if t <= time_s + 1e-9), default=0)  # at or just before
    frame = read_frame_at(noisy_video, time_s)
    index, expected_time, expected = sequential[shown]
    assert frame.time_s == pytest.approx(expected_time, abs=1e-6)
    assert frame.index == index
    assert np.array_equal(np.asarray(frame.image), expected)


def test_read_frame_at_a_bad_file_is_one_sentence(tmp_path: Path) -> None:
    from resnet_gui.core.video import VideoError

    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    with pytest.raises(VideoError) as caught:
        read_frame_at(text, 1.0)
    assert "\n" not in str(caught.value) and "notes.mp4" in str(caught.value)


def _result(time_s: float, index: int, label: str, probability: float) -> FrameResult:
    return FrameResult(round(time_s * FPS), time_s, (Prediction(label, index, probability),))


def _timeline(
    classes: list[tuple[int, str, float]], step: float = 0.5, duration: float = 3.0
) -> VideoTimeline:
    timeline = VideoTimeline(duration)
    for position, (index, label, probability) in enumerate(classes):
        timeline.add(_result(position * step, index, label, probability))
    return timeline


def test_segments_are_runs_of_the_same_top1_class() -> None:
    timeline = _timeline(
        [(1, "ant", 0.9), (1, "ant", 0.8), (2, "bee", 0.6), (1, "ant", 0.7), (1, "ant", 0.5)]
    )
    bands = [("ant", 0.0, 1.0, 0, 1), ("bee", 1.0, 1.5, 2, 2)]
    # until the run reaches the end, the last band covers one step (2.0 s + 0.5 s), not the rest
    segments = timeline.segments()
    assert [(s.label, s.start_s, s.end_s, s.first, s.last) for s in segments] == [
        *bands,
        ("ant", 1.5, 2.5, 3, 4),
    ]
    assert timeline.span(4) == (2.0, 2.5)
    timeline.complete = True  # then it runs to the video's end
    segments = timeline.segments()
    assert [(s.label, s.start_s, s.end_s, s.first, s.last) for s in segments] == [
        *bands,
        ("ant", 1.5, 3.0, 3, 4),
    ]
    assert timeline.legend() == [(1, "ant", pytest.approx(2.5)), (2, "bee", pytest.approx(0.5))]
    assert timeline.span(4) == (2.0, 3.0) and timeline.span(0) == (0.0, 0.5)


def test_colours_follow_first_appearance_and_stay() -> None:
    timeline = _timeline([(7, "c7", 0.5), (3, "c3", 0.5), (7, "c7", 0.5)])
    assert timeline.colour(7) == TIMELINE_PALETTE[0] and timeline.colour(3) == TIMELINE_PALETTE[1]
    many = _timeline([(i, f"c{i}", 0.5) for i in range(len(TIMELINE_PALETTE) + 2)], step=0.1)
    assert many.colour(len(TIMELINE_PALETTE)) == TIMELINE_PALETTE[0]  # the palette is reused


def test_results_arriving_out_of_order_are_kept_in_time_order() -> None:
    timeline = VideoTimeline(2.0)
    for time_s in (1.0, 0.0, 1.5, 0.5):
        timeline.add(_result(time_s, 0, "ant", 0.5))
    timeline.add(_result(0.5, 1, "bee", 0.9))  # the same frame again: replaced, not doubled
    assert [p.time_s for p in timeline.points] == [0.0, 0.5, 1.0, 1.5]
    assert timeline.points[1].label == "bee" and len(timeline) == 4


def test_finding_and_stepping_between_classified_frames() -> None:
    timeline = _timeline([(0, "a", 0.5)] * 4)  # 0.0, 0.5, 1.0, 1.5
    assert timeline.at_or_before(0.7) == 1 and timeline.at_or_before(-0.1) is None
    assert timeline.nearest(0.7) == 1 and timeline.nearest(0.8) == 2 and timeline.nearest(9) == 3
    assert timeline.step(0.5, +1) == 2 and timeline.step(0.5, -1) == 0
    assert timeline.step(0.7, -1) == 1  # between frames, Left goes to the frame before
    assert timeline.step(0.7, +1) == 2
    assert timeline.step(1.5, +1) == 3 and timeline.step(0.0, -1) == 0  # clamped at the ends
    assert VideoTimeline().step(1.0, 1) is None


def test_end_without_a_duration_is_one_step_past_the_last_frame() -> None:
    timeline = _timeline([(0, "a", 0.5)] * 3, step=0.5, duration=None)  # type: ignore[arg-type]
    assert timeline.end_s == pytest.approx(1.5)


@pytest.mark.parametrize("choice", VIDEO_SAMPLING, ids=[c.key for c in VIDEO_SAMPLING])
def test_each_sampling_choice_is_what_the_cli_takes(choice) -> None:
    assert parse_interval(choice.key) == choice.every_s


def test_importing_the_video_modules_loads_neither_pyav_nor_torch() -> None:
    """Opening the app must not pay for PyAV or torch because videos can be opened."""
    import subprocess
    import sys

    code = (
        "import sys, resnet_gui.core.video_timeline; core = {'av', 'torch', 'PySide6'} & set(sys.modules); "
        "import resnet_gui.gui.video_view; print(sorted(core), sorted({'av', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"
