"""The video window (issue #14): a video dropped on the main window (or picked with Ctrl+O) is
classified into a timeline; clicking the timeline and the arrow keys show other frames with their
predictions and heat map; Cancel keeps what was done; Export writes what the CLI writes; bad files
are one sentence and nothing else is lost.

A real MainWindow (offscreen) with the tiny 3-class ResNet; the videos are made here with PyAV from
the sample photos (one photo per second). The screenshot uses the real ResNet-50.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from gui.helpers import WAIT_MS, drop, make_window
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog
from screenshots import screenshot_folder
from video_makers import require_video_encoder

from resnet_gui.core.video import VideoFileSource
from resnet_gui.core.video_results import VIDEO_FORMATS
from resnet_gui.gui.qtutil import file_urls_mime
from resnet_gui.gui.video_view import VideoView, classify_frame

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parent.parent
SAMPLES = sorted((REPO / "assets" / "samples").glob("*.jpg"))
FPS = 10


def photo_video(
    path: Path, size: tuple[int, int] = (96, 64), seconds_each: float = 1.0, codec: str | None = None
) -> Path:
    """A video (Matroska: a cut file still plays) showing each sample photo for ``seconds_each``."""
    import av

    codec = codec or require_video_encoder()[0]
    frames = [np.asarray(Image.open(p).convert("RGB").resize(size)) for p in SAMPLES]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for array in frames:
            for _ in range(round(seconds_each * FPS)):
                for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return photo_video(tmp_path_factory.mktemp("video") / "samples.mkv")


def open_by_drop(qtbot, window, path: Path) -> VideoView:
    drop(window.image_view, file_urls_mime([path]))
    qtbot.waitUntil(lambda: window.video_view is not None and window.video_view.isVisible(), timeout=WAIT_MS)
    return window.video_view


def wait_run(qtbot, view: VideoView) -> None:
    with qtbot.waitSignal(view.run_finished, timeout=WAIT_MS):
        pass


def run_video(qtbot, window, path: Path, every: float | None = 0.5, timeout: int = WAIT_MS) -> VideoView:
    view = open_by_drop(qtbot, window, path)
    view.set_every(every)  # the run with the default sampling gives way to this one
    qtbot.waitUntil(lambda: not view.running and bool(view.results), timeout=timeout)
    qtbot.waitUntil(lambda: view.shown is not None, timeout=timeout)
    return view


def shown_labels(view: VideoView) -> list[str]:
    return [bar.row.label for bar in view.predictions.bars]


def test_a_dropped_video_is_classified_into_a_timeline(qtbot, window, video: Path) -> None:
    view = run_video(qtbot, window, video, every=0.5)
    assert [r.time_s for r in view.results] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    assert "Done: 6 frames" in view.rate_label.text()
    assert window.controller.current_image is None  # a video does not go to the photo strip
    segments = view.timeline.segments()
    assert segments and segments[0].start_s == 0.0 and segments[-1].end_s == pytest.approx(3.0, abs=0.05)
    covered = []
    for before, segment in zip([None, *segments], segments, strict=False):
        if before is not None:
            assert before.class_index != segment.class_index and before.end_s == segment.start_s
        rows = view.results[segment.first : segment.last + 1]
        assert {r.top1.index for r in rows} == {segment.class_index}
        covered += rows
    assert covered == view.results
    points = view.timeline.points
    assert [p.confidence for p in points] == [r.top1.probability for r in view.results]
    # what is painted: each frame's bar in its class's colour, as tall as its confidence
    widget = view.timeline_widget
    picture = widget.grab().toImage()
    ratio = picture.devicePixelRatio()
    track = widget.track()
    for position, point in enumerate(points):
        start, end = view.timeline.span(position)
        x = round((widget.x_of(start) + widget.x_of(end)) / 2 * ratio)
        low = picture.pixelColor(x, round((track.bottom() - 3) * ratio))
        assert (low.red(), low.green(), low.blue()) == view.timeline.colour(point.class_index)
        top_of_bar = track.bottom() - track.height() * point.confidence
        above = picture.pixelColor(x, round((top_of_bar - 4) * ratio))
        assert (above.red(), above.green(), above.blue()) != view.timeline.colour(point.class_index)
    # the first frame is shown with the run's predictions
    assert view.shown.from_run and view.shown.time_s == 0.0
    assert shown_labels(view) == [p.label for p in view.results[0].predictions]
    # the 96×64 frame fills the frame view (as players do), keeping its shape
    [rect] = view.image_view.panel_rects()
    area = view.image_view.rect()
    assert rect.width() > 2 * 96 and (
        rect.width() >= area.width() - 40 or rect.height() >= area.height() - 60
    )
    assert rect.width() / rect.height() == pytest.approx(96 / 64, rel=0.02)


def test_clicking_the_timeline_and_the_keys_show_other_frames(qtbot, window, video: Path) -> None:
    view = run_video(qtbot, window, video, every=0.5)
    widget = view.timeline_widget
    target = view.results[3]
    with qtbot.waitSignal(view.frame_shown, timeout=WAIT_MS) as shown:
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(round(widget.x_of(target.time_s)), 20))
    frame = shown.args[0]
    assert frame.from_run and frame.time_s == pytest.approx(target.time_s)
    assert shown_labels(view) == [p.label for p in target.predictions]
    assert view.position_s == pytest.approx(target.time_s)

    # between two classified frames: that frame is read and classified now
    between = 1.25
    with qtbot.waitSignal(view.frame_shown, timeout=WAIT_MS) as shown:
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(round(widget.x_of(between)), 20))
    frame = shown.args[0]
    assert not frame.from_run and between - 0.1 - 1e-6 <= frame.time_s <= between
    with VideoFileSource(video) as source:  # the same frame decoded in order, classified directly
        image = next(f.image for f in source if abs(f.time_s - frame.time_s) < 1e-6)
    expected, _ = classify_frame(window.controller.classifier, image, view.top_k)
    assert shown_labels(view) == [p.label for p in expected]

    # dragging: the frame under the mouse where the button is let go
    press, release = QPoint(round(widget.x_of(0.2)), 20), QPoint(round(widget.x_of(target.time_s)), 20)
    with qtbot.waitSignal(view.frame_shown, timeout=WAIT_MS) as shown:
        QTest.mousePress(widget, Qt.MouseButton.LeftButton, pos=press)
        for x in range(press.x(), release.x() + 1, 7):
            _move_with_button(widget, QPoint(x, 20))
        _move_with_button(widget, release)
        QTest.mouseRelease(widget, Qt.MouseButton.LeftButton, pos=release)
    qtbot.waitUntil(lambda: view.shown is not None and view.shown.time_s == target.time_s, timeout=WAIT_MS)
    assert view.position_s == pytest.approx(target.time_s)

    # Right steps to the next classified frame, Left back, End and Home to the ends
    for key, expected_time in (
        (Qt.Key.Key_Right, 2.0),
        (Qt.Key.Key_Left, 1.5),
        (Qt.Key.Key_End, 2.5),
        (Qt.Key.Key_Home, 0.0),
    ):
        with qtbot.waitSignal(view.frame_shown, timeout=WAIT_MS) as shown:
            QTest.keyClick(widget, key)
        assert shown.args[0].time_s == pytest.approx(expected_time)
        assert shown.args[0].from_run
    # between two classified frames, Left goes to the one before
    with qtbot.waitSignal(view.frame_shown, timeout=WAIT_MS):
        QTest.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(round(widget.x_of(between)), 20))
    with qtbot.waitSignal(view.frame_shown, timeout=WAIT_MS) as shown:
        QTest.keyClick(widget, Qt.Key.Key_Left)
    assert shown.args[0].time_s == pytest.approx(1.0) and shown.args[0].from_run


def _move_with_button(widget, where: QPoint) -> None:
    """A mouse move with the left button held (QTest.mouseMove cannot hold a button)."""
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    point = QPointF(where)
    event = QMouseEvent(
        QEvent.Type.MouseMove,
        point,
        QPointF(widget.mapToGlobal(where)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, event)


def test_the_heat_map_of_the_shown_frame_appears(qtbot, window, video: Path) -> None:
    view = open_by_drop(qtbot, window, video)
    with qtbot.waitSignal(view.explanation_shown, timeout=WAIT_MS) as explained:
        pass
    explanation = explained.args[0]
    assert explanation.target == view.shown.result.top1.index
    picture = view.image_view.picture
    assert picture is not None and explanation.method_name in picture.captions[0]
    assert picture.panels[0].shape == view.shown.display.shape
    assert not np.array_equal(picture.panels[0], view.shown.display)  # coloured by the map
    view.heatmap_box.click()  # off: the plain frame
    assert np.array_equal(view.image_view.picture.panels[0], view.shown.display)


def test_cancel_keeps_the_frames_done(qtbot, window, video: Path, monkeypatch) -> None:
    import time

    classifier = window.controller.classifier
    real = classifier.probabilities_and_unusual

    def slow(batch):
        time.sleep(0.15)  # a slow model, so the run is still going when Cancel is clicked
        return real(batch)

    monkeypatch.setattr(classifier, "probabilities_and_unusual", slow)
    view = open_by_drop(qtbot, window, video)
    view.set_every(None)  # every frame: 30
    qtbot.waitUntil(lambda: len(view.results) >= 4, timeout=WAIT_MS)
    with qtbot.waitSignal(view.run_finished, timeout=WAIT_MS):
        QTest.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    kept = list(view.results)
    assert 4 <= len(kept) < 30 and len(view.timeline) == len(kept)
    assert "Cancelled" in view.rate_label.text() and f"the {len(kept)} frames" in view.rate_label.text()
    qtbot.wait(300)
    assert view.results == kept and not view.cancel_button.isEnabled() and view.export_button.isEnabled()


def test_export_writes_what_the_cli_writes(
    qtbot, window, video: Path, tmp_path: Path, tiny_weights_file
) -> None:
    from resnet_gui.cli import main

    view = run_video(qtbot, window, video, every=0.5)
    out = tmp_path / "app.csv"
    with qtbot.waitSignal(view.export_finished, timeout=WAIT_MS) as finished:
        view.export(out)
    assert finished.args[0] == out
    cli_out = tmp_path / "cli.csv"
    args = ["classify-video", str(video), "--every", "0.5s", "--top-k", str(view.top_k)]
    args += ["--min-confidence", str(view.threshold), "--weights", str(tiny_weights_file)]
    assert main([*args, "--device", "cpu", "--backend", "torch", "--out", str(cli_out)]) == 0
    app_rows = list(csv.reader(out.open(encoding="utf-8")))
    cli_rows = list(csv.reader(cli_out.open(encoding="utf-8")))
    assert app_rows[0] == cli_rows[0] and len(app_rows) == len(cli_rows) == 7
    for app, cli in zip(app_rows[1:], cli_rows[1:], strict=True):
        for column, (a, c) in enumerate(zip(app, cli, strict=True)):
            header = app_rows[0][column]
            if header.startswith("probability"):
                assert float(a) == pytest.approx(float(c), abs=1e-5)
            else:
                assert a == c, header
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("app", ".app"))) == ["app.csv"]


def test_export_through_the_dialog_picks_json_and_ctrl_o_opens_videos(
    qtbot, window, video: Path, tmp_path: Path, monkeypatch
) -> None:
    import json

    chosen: dict[str, str] = {}

    def pick(parent, title, folder, filter_):
        chosen["filter"] = filter_
        return [str(video)], ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(pick))
    window.open_action.trigger()  # Ctrl+O
    assert "*.mp4" in chosen["filter"] and "*.mkv" in chosen["filter"] and "*.jpg" in chosen["filter"]
    qtbot.waitUntil(lambda: window.video_view is not None and window.video_view.isVisible(), timeout=WAIT_MS)
    view = window.video_view
    qtbot.waitUntil(lambda: not view.running and bool(view.results), timeout=WAIT_MS)
    out = tmp_path / "frames"
    json_filter = f"{VIDEO_FORMATS['json'].description} (*.json)"  # the filter the user picked
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a: (str(out), json_filter)))
    with qtbot.waitSignal(view.export_finished, timeout=WAIT_MS) as finished:
        view.export_button.click()
    assert finished.args[0] == tmp_path / "frames.json"
    document = json.loads((tmp_path / "frames.json").read_text())
    assert document["complete"] is True and len(document["frames"]) == len(view.results) == 3  # every 1 s


def test_several_videos_open_each_in_its_own_window_and_go_to_open_recent(
    qtbot, window, video: Path, tmp_path: Path
) -> None:
    from resnet_gui.gui.main_window import MAX_VIDEO_WINDOWS

    copies = [Path(video.parent / "samples.mkv")]
    for n in range(1, MAX_VIDEO_WINDOWS + 1):
        copies.append(tmp_path / f"clip {n}.mkv")
        copies[-1].write_bytes(video.read_bytes())
    two = copies[:2]
    drop(window.image_view, file_urls_mime(two))
    qtbot.waitUntil(lambda: sum(v.isVisible() for v in window.video_views) == 2, timeout=WAIT_MS)
    views = {v.path: v for v in window.video_views}
    assert set(views) == set(two)
    # Both run to the end: one window's run does not supersede the other's.
    for view in views.values():
        qtbot.waitUntil(lambda view=view: not view.running and len(view.results) == 3, timeout=WAIT_MS)
        assert view.stopped is None
    # Both are in File → Open Recent; picking one there brings its window back (closed or not).
    recent = [a.text() for a in window.recent_menu.actions()]
    assert all(str(p) in recent for p in two)
    first = views[two[0]]
    first.close()
    assert not first.isVisible()
    next(a for a in window.recent_menu.actions() if a.text() == str(two[0])).trigger()
    qtbot.waitUntil(first.isVisible, timeout=WAIT_MS)  # the closed window, used again
    assert len(window.video_views) == 2 and window.controller.current_image is None

    # More than MAX_VIDEO_WINDOWS at once: that many windows, and one sentence says so.
    for view in window.video_views:
        view.close()
    drop(window.image_view, file_urls_mime(copies))
    qtbot.waitUntil(
        lambda: sum(v.isVisible() for v in window.video_views) == MAX_VIDEO_WINDOWS, timeout=WAIT_MS
    )
    assert {v.path for v in window.video_views if v.isVisible()} == set(copies[:MAX_VIDEO_WINDOWS])
    text = window.message_bar.message.text
    assert f"You chose {len(copies)} videos: the first {MAX_VIDEO_WINDOWS} are open" in text
    for view in window.video_views:
        qtbot.waitUntil(lambda view=view: not view.running, timeout=WAIT_MS)


def test_a_video_named_on_the_command_line_opens_in_a_video_window(
    qtbot, classifier, video: Path, sample_images, tmp_path: Path
) -> None:
    from resnet_gui.gui.controller import Controller
    from resnet_gui.gui.main_window import MainWindow
    from resnet_gui.gui.settings import AppSettings

    controller = Controller(classifier=classifier)
    window = MainWindow(
        controller=controller,
        settings=AppSettings(tmp_path / "s.ini"),
        paths=[str(video), str(sample_images[0])],
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.video_view is not None and window.video_view.isVisible(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: controller.current_image is not None, timeout=WAIT_MS)  # the photo: the strip
    assert controller.current_image.source.name == sample_images[0].name
    qtbot.waitUntil(
        lambda: len(window.video_view.results) == 3 and not window.video_view.running, timeout=WAIT_MS
    )


def _type_into(qtbot, spin, text: str) -> None:
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)
    qtbot.keyClick(spin, Qt.Key.Key_Return)


def test_one_not_sure_threshold_for_the_app_and_its_video_windows(qtbot, window, video: Path) -> None:
    view = run_video(qtbot, window, video, every=1.0)
    _type_into(qtbot, view.predictions.threshold, "85")
    assert window.controller.threshold == pytest.approx(0.85)
    assert window.settings.unsure_threshold == pytest.approx(0.85)  # remembered, as the main window's
    assert window.predictions.threshold.value() == 85
    assert view.shown is not None
    assert view.predictions.view.unsure == view.shown.result.not_sure(0.85)
    _type_into(qtbot, window.predictions.threshold, "20")
    assert view.threshold == pytest.approx(0.2) and view.predictions.threshold.value() == 20
    assert view.predictions.view.threshold == pytest.approx(0.2)


def _audio_file(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4000), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def test_an_audio_only_file_is_one_sentence_and_nothing_is_lost(
    qtbot, window, video: Path, tmp_path: Path, sample_images
) -> None:
    pytest.importorskip("av")
    window.controller.open_paths([sample_images[0]])
    qtbot.waitUntil(lambda: window.controller.current_image is not None, timeout=WAIT_MS)
    view = run_video(qtbot, window, video, every=1.0)
    before = list(view.results)
    sound = _audio_file(tmp_path / "sound.mkv")
    # Dropped on the main window: it would open in a window of its own, which never shows.
    drop(window.image_view, file_urls_mime([sound]))
    qtbot.waitUntil(lambda: window.message_bar.message is not None, timeout=WAIT_MS)
    text = window.message_bar.message.text
    assert "no video stream: it holds only sound" in text and text.count(". ") == 0 and "\n" not in text
    assert [v.isVisible() for v in window.video_views] == [True, False]
    assert view.results == before and view.path == video  # the video shown before stays
    # Dropped on the video window itself: it is said there too, and its video stays.
    with qtbot.waitSignal(view.open_failed, timeout=WAIT_MS) as failed:
        drop(view, file_urls_mime([sound]))
    assert failed.args[0] == text
    assert view.message_bar.message is not None and view.message_bar.message.text == text
    assert view.results == before and view.path == video
    assert window.controller.current_image is not None  # and so does the photo


def _temp_screenshots() -> Path:
    import tempfile

    folder = Path(tempfile.gettempdir()) / "resnet-gui-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _unknown_codec(path: Path) -> Path:
    """An AVI whose video stream's FourCC no decoder knows."""
    source = photo_video(path.with_name("known.avi"), codec="mpeg4")
    data = source.read_bytes()
    assert b"FMP4" in data
    path.write_bytes(data.replace(b"FMP4", b"ZQZQ"))
    return path


def _corrupt(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(5).integers(0, 255, 20_000, dtype=np.uint8).tobytes())
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: _audio_file(d / "sound.mkv"), "no video stream: it holds only sound"),
        (lambda d: _unknown_codec(d / "odd.avi"), "codec is not one this FFmpeg build can decode"),
        (lambda d: _corrupt(d / "random.mp4"), "damaged or truncated"),
        (lambda d: d / "missing.mov", "there is no such file"),
    ],
    ids=["audio-only", "unsupported-codec", "corrupt", "missing"],
)
def test_a_bad_video_is_one_sentence_in_the_message_bar(qtbot, window, tmp_path: Path, make, words) -> None:
    pytest.importorskip("av")
    path = make(tmp_path)
    window.open_video(path)
    qtbot.waitUntil(lambda: window.message_bar.message is not None, timeout=WAIT_MS)
    text = window.message_bar.message.text
    assert words in text and path.name in text
    assert text.endswith(".") and text.count(". ") == 0 and "\n" not in text and "Traceback" not in text
    assert not window.video_view.isVisible() and window.video_view.results == []


def test_a_truncated_video_keeps_the_frames_before_the_damage(
    qtbot, window, video: Path, tmp_path: Path
) -> None:
    data = video.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    view = open_by_drop(qtbot, window, cut)
    view.set_every(0.5)
    qtbot.waitUntil(lambda: not view.running and view.message_bar.message is not None, timeout=WAIT_MS)
    text = view.message_bar.message.text
    assert "truncated or damaged" in text and " s of its 3.0 s" in text and "\n" not in text
    assert 1 <= len(view.results) < 6 and view.results[0].time_s == 0.0
    assert view.timeline.segments()[-1].end_s <= view.results[-1].time_s + 0.5  # not drawn to 3 s
    assert f"the {len(view.results)} frames classified before the damage" in view.rate_label.text()
    qtbot.waitUntil(lambda: view.shown is not None, timeout=WAIT_MS)
    view.grab().save(str(_temp_screenshots() / "video-truncated.png"))  # looked at, not in the README


def test_without_pyav_one_sentence(qtbot, window, video: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)
    drop(window.image_view, file_urls_mime([video]))
    qtbot.waitUntil(lambda: window.message_bar.message is not None, timeout=WAIT_MS)
    assert window.message_bar.message.text == "Reading videos needs PyAV: pip install 'resnet-gui[video]'"
    assert window.video_view is None or not window.video_view.isVisible()


def test_a_photo_drop_still_goes_to_the_strip(qtbot, window, sample_images) -> None:
    drop(window.image_view, file_urls_mime([sample_images[1]]))
    qtbot.waitUntil(lambda: window.controller.current_image is not None, timeout=WAIT_MS)
    assert window.video_view is None


def test_screenshot_of_the_video_window(qtbot, tmp_path: Path, real_resnet50) -> None:
    from resnet_gui.core.engine import Classifier
    from resnet_gui.core.models import RESNET50_V1, get_model_spec

    spec = get_model_spec(RESNET50_V1).get_weights()
    classifier = Classifier(dataclasses.replace(real_resnet50, weights_description=spec.description), "cpu")
    path = photo_video(tmp_path / "sample-photos.mkv", size=(720, 480), seconds_each=2.0)
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    view = run_video(qtbot, window, path, every=1.0, timeout=WAIT_MS * 6)  # the default: one run
    view.resize(1100, 720)
    target = next(result for result in view.results if result.time_s >= 3.0)  # the middle photo
    with qtbot.waitSignal(view.explanation_shown, timeout=WAIT_MS * 3):
        view.go_to(target.time_s)
    qtbot.wait(80)
    out = screenshot_folder() / "21-video-timeline.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    assert view.grab().save(str(out))
    with Image.open(out) as image:
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 50, "a blank screenshot"
    assert len({p.class_index for p in view.timeline.points}) >= 2  # the classes change over time
