"""Videos (issue #14, core and CLI): the frame source, sampling, classifying frame by frame in
bounded memory, cancelling, damaged and wrong inputs, and ``resnet-gui classify-video``'s files.

The videos are made here with PyAV: 3 s at 10 fps, one solid colour (with a little noise) per
second, so the frames at 0.5 s steps are known and can be classified directly for comparison.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from video_makers import require_video_encoder

from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.video import (
    FrameResult,
    FrameSource,
    NotAVideoError,
    VideoFrame,
    VideoSupportMissingError,
    classify_video,
    parse_interval,
    require_av,
)
from resnet_gui.core.video_results import (
    VIDEO_FORMATS,
    VideoRun,
    read_video_results,
    video_format_for,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FPS, SECONDS, SIZE = 10, 3, (96, 64)
COLOURS = [(220, 30, 30), (30, 200, 40), (30, 40, 220)]
NEEDS_AV = "PyAV (pip install 'resnet-gui[video]') makes and reads the test videos"


def make_video(
    path: Path, codec: str | None = None, seconds: int = SECONDS, fps: int = FPS, seed: int = 0
) -> Path:
    av = pytest.importorskip("av", reason=NEEDS_AV)
    codec = codec or require_video_encoder()[0]
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        for index in range(seconds * fps):
            colour = np.array(COLOURS[(index // fps) % len(COLOURS)], dtype=np.int16)
            noise = rng.integers(-25, 25, (SIZE[1], SIZE[0], 3))
            array = np.clip(colour + noise, 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, suffix = require_video_encoder()
    return make_video(tmp_path_factory.mktemp("video") / f"colours{suffix}")


def decoded_frames(path: Path) -> list:
    """Every frame of ``path`` as (time, PIL image), decoded directly with PyAV."""
    av = require_av()
    with av.open(str(path)) as container:
        return [(float(frame.time), frame.to_image()) for frame in container.decode(video=0)]


# --- the frame source --------------------------------------------------------------------------


def test_probe_says_what_the_video_is(video: Path) -> None:
    from resnet_gui.core.video import probe_video

    info = probe_video(video)
    assert info.duration_s == pytest.approx(SECONDS, abs=0.05)
    assert info.frame_rate == pytest.approx(FPS)
    assert (info.width, info.height) == SIZE
    assert info.codec and not info.has_audio
    assert "3.0 s" in info.summary() and "96x64" in info.summary()


@pytest.mark.parametrize(
    ("every", "times"),
    [
        (0.5, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]),
        (2.0, [0.0, 2.0]),
        (0.25, [0.0, 0.3, 0.5, 0.8, 1.0, 1.3, 1.5, 1.8, 2.0, 2.3, 2.5, 2.8]),  # first frame at or after
        (None, [i / FPS for i in range(SECONDS * FPS)]),
    ],
)
def test_sampling_keeps_one_frame_per_interval(video: Path, every: float | None, times: list[float]) -> None:
    from resnet_gui.core.video import VideoFileSource

    with VideoFileSource(video, every) as source:
        assert isinstance(source, FrameSource)
        frames = list(source)
        assert source.expected_frames == len(times)
    assert [frame.time_s for frame in frames] == pytest.approx(times)
    assert [frame.index for frame in frames] == [round(t * FPS) for t in times]
    assert all(frame.image.size == SIZE and frame.image.mode == "RGB" for frame in frames)


def test_frame_colours_follow_the_video(video: Path) -> None:
    from resnet_gui.core.video import VideoFileSource

    with VideoFileSource(video, 1.0) as source:
        means = [np.asarray(frame.image).reshape(-1, 3).mean(axis=0) for frame in source]
    assert [int(np.argmax(mean)) for mean in means] == [0, 1, 2]  # red, green, blue seconds


def test_predictions_equal_classifying_the_frames_directly(video: Path, tiny_classifier) -> None:
    from resnet_gui.core.video import VideoFileSource

    results = list(classify_video(tiny_classifier, VideoFileSource(video, 0.5), top_k=3, batch_size=4))
    frames = decoded_frames(video)
    assert [frames[r.index][0] for r in results] == pytest.approx([r.time_s for r in results])
    direct = tiny_classifier.classify_images([frames[result.index][1] for result in results], top_k=3)
    assert [r.time_s for r in results] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    for result, expected in zip(results, direct, strict=True):
        assert [p.label for p in result.predictions] == [p.label for p in expected]
        assert [p.probability for p in result.predictions] == pytest.approx(
            [p.probability for p in expected], abs=1e-5
        )
        assert result.unusual is None  # the tiny model has no out-of-distribution threshold


class CountingSource:
    """A synthetic source (like a camera) that counts the frames taken from it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.produced = 0
        self.closed = False

    name = "synthetic"
    duration_s = None
    frame_rate = 25.0
    expected_frames = None

    def __iter__(self) -> Iterator[VideoFrame]:
        rng = np.random.default_rng(1)
        for index in range(self.count):
            self.produced += 1
            yield VideoFrame(index, index / 25, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))

    def close(self) -> None:
        self.closed = True


def test_read_ahead_is_bounded(tiny_classifier) -> None:
    source = CountingSource(40)
    ahead = []
    done = 0
    for _ in classify_video(tiny_classifier, source, top_k=1, batch_size=2, queue_size=3):
        done += 1
        time.sleep(0.004)  # a slow consumer: the reader must wait, not pile frames up
        ahead.append(source.produced - done)
    assert done == 40 and source.closed
    # queue (3) + the frame being prepared (1) + the batch being classified and yielded (2 + 2)
    assert max(ahead) <= 3 + 1 + 2 * 2


def test_cancel_stops_promptly_and_keeps_the_results(tiny_classifier) -> None:
    source = CountingSource(10_000)
    stop = threading.Event()
    results = []
    began = time.monotonic()
    for result in classify_video(tiny_classifier, source, top_k=1, batch_size=4, cancel=stop):
        results.append(result)
        if len(results) == 6:
            stop.set()
    assert 6 <= len(results) <= 8  # the batch in hand is finished, no further one
    assert [r.index for r in results] == list(range(len(results)))
    assert source.closed and source.produced < 40
    assert time.monotonic() - began < 10


def test_a_source_error_comes_after_the_frames_before_it(tiny_classifier) -> None:
    class Failing(CountingSource):
        def __iter__(self) -> Iterator[VideoFrame]:
            yield from list(super().__iter__())[:5]
            raise NotAVideoError("The synthetic video broke.")

    source = Failing(50)
    results = []
    with pytest.raises(NotAVideoError, match="broke"):
        for result in classify_video(tiny_classifier, source, top_k=1, batch_size=3):
            results.append(result)
    assert len(results) == 5 and source.closed


def test_a_truncated_file_yields_its_early_frames_then_says_where_it_stopped(
    video: Path, tmp_path: Path
) -> None:
    from resnet_gui.core.video import VideoDamagedError, VideoFileSource

    data = video.read_bytes()
    cut = tmp_path / f"cut{video.suffix}"
    cut.write_bytes(data[: len(data) // 2])
    frames = []
    with pytest.raises(VideoDamagedError) as caught, VideoFileSource(cut, 0.5) as source:
        frames.extend(source)
    assert frames and frames[0].time_s == 0.0
    assert caught.value.stopped_at_s is not None and 0.0 < caught.value.stopped_at_s < 2.5
    message = str(caught.value)
    assert "truncated or damaged" in message and f"{caught.value.stopped_at_s:.1f} s" in message
    assert "\n" not in message


def test_interval_parsing() -> None:
    assert parse_interval("0.5s") == parse_interval("0.5") == parse_interval("500ms") == 0.5
    assert parse_interval("2s") == 2.0 and parse_interval("all") is None
    for bad in ("0", "-1s", "fast", "nan", ""):
        with pytest.raises(ValueError, match="between 1 ms and 24 hours"):
            parse_interval(bad)


def test_without_pyav_one_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    with pytest.raises(VideoSupportMissingError, match=r"needs PyAV: pip install 'resnet-gui\[video\]'"):
        require_av()
    from resnet_gui.core.video import probe_video

    with pytest.raises(ResNetGuiError, match="needs PyAV"):
        probe_video("anything.mp4")


def test_the_core_module_imports_neither_av_nor_torch() -> None:
    code = (
        "import sys, resnet_gui.core.video, resnet_gui.core.video_results, resnet_gui.cli_video; "
        "print(sorted({'av', 'torch', 'PySide6'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- results files -----------------------------------------------------------------------------


def _results() -> list[FrameResult]:
    from resnet_gui.core.engine import Prediction

    return [
        FrameResult(0, 0.0, (Prediction("=HYPERLINK(1)", 2, 0.75), Prediction("bee, honey", 1, 0.25))),
        FrameResult(5, 0.5, (Prediction("ant", 0, 0.4), Prediction("-cat", 3, 0.35)), unusual=True),
    ]


@pytest.mark.parametrize("name", list(VIDEO_FORMATS))
def test_results_round_trip(tmp_path: Path, name: str) -> None:
    from resnet_gui.core.outputs import OUTPUT_KINDS

    video_format = VIDEO_FORMATS[name]
    path = tmp_path / f"results{video_format.suffixes[0]}"
    assert video_format_for(path) is video_format
    with open(path, "wb") as handle:
        writer = video_format.writer(handle, VideoRun("v.mp4", "tiny", 0.5, 0.5, top_k=2))
        for result in _results():
            writer.write(result)
        writer.finish(None)
    back = read_video_results(path)
    assert [(r.index, r.time_s, r.predictions, r.unusual) for r in back] == [
        (r.index, r.time_s, r.predictions, r.unusual) for r in _results()
    ]
    assert OUTPUT_KINDS[video_format.kind].recognise(path)  # a later run may replace it
    text = path.read_text("utf-8")
    if name == "csv":
        assert "'=HYPERLINK(1)" in text and ",'-cat," in text  # escaped against formula injection
        assert text.splitlines()[1].endswith(",false,")  # 0.75 is not under 0.5; no OOD verdict
    if name == "json":
        document = json.loads(text)
        assert document["complete"] is True and document["every_s"] == 0.5
        assert [frame["not_sure"] for frame in document["frames"]] == [False, True]


# --- the command line --------------------------------------------------------------------------


def classify_video_cli(*args: str | Path, weights: Path) -> int:
    from resnet_gui.cli import main

    return main(
        [
            "classify-video",
            *map(str, args),
            "--weights",
            str(weights),
            "--device",
            "cpu",
            "--backend",
            "torch",
        ]
    )


@pytest.mark.parametrize("name", ["csv", "json", "jsonl"])
def test_cli_writes_the_frames(video: Path, tmp_path: Path, tiny_weights_file: Path, capsys, name) -> None:
    out = tmp_path / f"results.{name}"
    code = classify_video_cli(
        video, "--every", "0.5s", "--top-k", "2", "--out", out, weights=tiny_weights_file
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Classified 6 frames, 0.00 s to 2.50 s" in captured.out and "Traceback" not in captured.err
    rows = read_video_results(out)
    assert [row.time_s for row in rows] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    assert all(len(row.predictions) == 2 for row in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary or lock file left


def test_cli_table_on_stdout(video: Path, tiny_weights_file: Path, capsys) -> None:
    code = classify_video_cli(video, "--every", "1", "--top-k", "1", weights=tiny_weights_file)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0].split() == ["TIME", "FRAME", "TOP-1", "PROB"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["0.00", "s", "0"],
        ["1.00", "s", "10"],
        ["2.00", "s", "20"],
    ]
    assert "Classified 3 frames" in captured.err


def test_cli_truncated_file_keeps_the_frames_before_the_damage(
    video: Path, tmp_path: Path, tiny_weights_file: Path, capsys
) -> None:
    data = video.read_bytes()
    cut = tmp_path / f"cut{video.suffix}"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "results.json"
    code = classify_video_cli(cut, "--every", "0.5", "--out", out, weights=tiny_weights_file)
    captured = capsys.readouterr()
    assert code == 3
    errors = [line for line in captured.err.splitlines() if line.startswith("resnet-gui: error:")]
    assert len(errors) == 1 and "truncated or damaged" in errors[0]
    document = json.loads(out.read_text())
    assert document["complete"] is False and "truncated" in document["stopped"]
    assert 1 <= len(document["frames"]) < 6 and document["frames"][0]["time_s"] == 0.0


def _audio_file(path: Path) -> Path:
    av = pytest.importorskip("av", reason=NEEDS_AV)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4000), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def _unknown_codec(path: Path) -> Path:
    """An AVI whose video stream's FourCC no decoder knows."""
    source = make_video(path.with_name("known.avi"), "mpeg4", seconds=1)
    data = source.read_bytes()
    assert data.count(b"FMP4") >= 1
    path.write_bytes(data.replace(b"FMP4", b"ZQZQ"))
    source.unlink()
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: d / "missing.mp4", "there is no such file"),
        (
            lambda d: (d / "notes.txt").write_text("hello, not a video\n" * 20) and d / "notes.txt",
            "not a video",
        ),
        (lambda d: (d / "empty.mp4").write_bytes(b"") or d / "empty.mp4", "the file is empty"),
        (lambda d: _audio_file(d / "sound.wav"), "no video stream: it holds only sound"),
        (lambda d: _unknown_codec(d / "odd.avi"), "codec is not one this FFmpeg build can decode"),
        (lambda d: d, "it is a folder"),
    ],
    ids=["missing", "text", "empty", "audio-only", "unknown-codec", "folder"],
)
def test_cli_bad_inputs_are_one_sentence(
    tmp_path: Path, tiny_weights_file: Path, capsys, make, words
) -> None:
    pytest.importorskip("av", reason=NEEDS_AV)
    folder = tmp_path / "inputs"
    folder.mkdir()
    path = make(folder)
    out = tmp_path / "results.csv"
    before = set(folder.iterdir())
    code = classify_video_cli(path, "--out", out, weights=tiny_weights_file)
    captured = capsys.readouterr()
    assert code == 3
    assert captured.err.count("\n") == 1 and captured.err.startswith("resnet-gui: error: ")
    assert words in captured.err and "Traceback" not in captured.err
    assert not out.exists() and list(tmp_path.glob(".results*")) == []
    assert set(folder.iterdir()) == before  # nothing beside the input either


def test_cli_a_picture_is_not_a_video(tmp_path: Path, tiny_weights_file: Path, capsys) -> None:
    pytest.importorskip("av", reason=NEEDS_AV)
    from PIL import Image

    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (40, 30), "red").save(photo)
    assert classify_video_cli(photo, weights=tiny_weights_file) == 3
    assert "is a picture, not a video; classify it with `resnet-gui classify`" in capsys.readouterr().err


def test_cli_interrupt_writes_the_frames_done(
    video: Path, tmp_path: Path, tiny_weights_file: Path, monkeypatch, capsys
) -> None:
    import contextlib

    from resnet_gui import cli_training
    from resnet_gui.core import video as video_module

    stop = threading.Event()
    real_classify = video_module.classify_video

    def classify_then_interrupt(*args, **kwargs):
        for count, result in enumerate(real_classify(*args, **kwargs), start=1):
            yield result
            if count == 2:
                stop.set()  # what the first Ctrl-C does

    @contextlib.contextmanager
    def fake_ctrl_c(say):
        yield stop.is_set

    monkeypatch.setattr(cli_training, "_ctrl_c_cancels", fake_ctrl_c)
    monkeypatch.setattr(video_module, "classify_video", classify_then_interrupt)
    out = tmp_path / "results.csv"
    code = classify_video_cli(
        video, "--every", "0.5", "--batch-size", "2", "--out", out, weights=tiny_weights_file
    )
    captured = capsys.readouterr()
    assert code == 130
    assert "Interrupted at 0.50 s: the 2 frames classified so far are in" in captured.err
    assert [row.time_s for row in read_video_results(out)] == [0.0, 0.5]


def test_cli_refuses_to_overwrite_the_video(video: Path, tiny_weights_file: Path, capsys) -> None:
    before = video.read_bytes()
    code = classify_video_cli(video, "--out", video, "--format", "csv", weights=tiny_weights_file)
    assert code != 0 and video.read_bytes() == before
    assert "resnet-gui: error:" in capsys.readouterr().err


def test_cli_bad_every_is_refused_by_the_parser(video: Path, tiny_weights_file: Path, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        classify_video_cli(video, "--every", "soon", weights=tiny_weights_file)
    assert caught.value.code == 2 and "between 1 ms and 24 hours" in capsys.readouterr().err


def test_help_imports_neither_torch_nor_pyav() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "resnet_gui", "classify-video", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "DISPLAY": "", "WAYLAND_DISPLAY": ""},
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.startswith("usage: resnet-gui classify-video")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "resnet_gui.cli_video" in imported
    assert not {name for name in imported if name.split(".")[0] in ("torch", "av", "captum")}


def test_cli_format_without_out_writes_to_stdout(video: Path, tiny_weights_file: Path, capsys) -> None:
    code = classify_video_cli(video, "--every", "1s", "--format", "jsonl", weights=tiny_weights_file)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [record["time_s"] for record in records] == [0.0, 1.0, 2.0]
    assert "Classified 3 frames" in captured.err


def test_a_rotated_video_is_turned_upright(tmp_path: Path) -> None:
    av = pytest.importorskip("av", reason=NEEDS_AV)
    from resnet_gui.core.video import VideoFileSource

    codec, _ = require_video_encoder()
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        if not hasattr(stream, "set_display_rotation"):
            pytest.skip("this PyAV cannot write a display rotation")
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(90)  # shown turned 90° counter-clockwise
        array = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        array[:16, :16] = 255  # a white corner, top left as coded
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")), *stream.encode()]:
            container.mux(packet)
    with VideoFileSource(path) as source:
        image = next(iter(source)).image
    assert image.size == (SIZE[1], SIZE[0])
    pixels = np.asarray(image).mean(axis=2)
    assert pixels[-8:, :8].mean() > 200 and pixels[:8, :8].mean() < 50  # now bottom left
