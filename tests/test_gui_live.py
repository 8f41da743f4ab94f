"""View → Live Camera (issue #14), driven with real events from a video file played in real time
(this machine has no camera): results arrive, the bars follow them, frames are dropped when the model
is slower than the video, Pause freezes, Snapshot adds a photo to the strip, the heat map shows, a
fine-tuned model captures frames into a labelling project, and closing stops the loop.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog
from video_makers import make_photo_video, video_encoder

from resnet_gui.gui.camera import CameraSupport
from resnet_gui.gui.live_view import LIVE_JOB, CaptureTargetDialog, LiveView

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FPS = 30
WAIT_MS = 20_000
SCREENSHOTS = Path(os.environ.get("TMPDIR", "/tmp")) / "resnet-gui-screenshots"


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s at 30 fps of three random "photos" (two seconds each)."""
    if video_encoder() is None:
        pytest.skip("PyAV with a video encoder makes the test video (pip install 'resnet-gui[video]')")
    rng = np.random.default_rng(3)
    photos = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
    return make_photo_video(tmp_path_factory.mktemp("live-gui"), photos, fps=FPS, frames_per_photo=60)


def no_camera() -> CameraSupport:
    return CameraSupport(reason="No camera was found on this computer.")


def open_view(qtbot, window, video: Path, monkeypatch: pytest.MonkeyPatch) -> LiveView:
    """View → Live Camera…, then "Use a Video File Instead…" with the file dialog answering ``video``."""
    monkeypatch.setattr("resnet_gui.gui.live_view.camera_support", no_camera)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(video), ""))
    window.live_action.trigger()
    view = window.live_view
    assert isinstance(view, LiveView) and view.isVisible()
    assert "No camera was found" in view.source_note.text()
    qtbot.mouseClick(view.video_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.results >= 3, timeout=WAIT_MS)
    return view


def slow_down(monkeypatch: pytest.MonkeyPatch, classifier, seconds: float) -> None:
    """Make each forward pass take at least ``seconds`` (a big model on a slow CPU)."""
    original = classifier.probabilities_and_unusual

    def slow(batch):
        time.sleep(seconds)
        return original(batch)

    monkeypatch.setattr(classifier, "probabilities_and_unusual", slow)


def test_live_view_classifies_the_video_and_the_bars_follow(qtbot, window, video, monkeypatch) -> None:
    slow_down(monkeypatch, window.controller.classifier, 3 / FPS)
    view = open_view(qtbot, window, video, monkeypatch)
    result = view.last_result
    assert result is not None
    assert view.bars.labels() == [p.label for p in result.predictions]
    [direct] = window.controller.classifier.classify_images(
        [Image.fromarray(result.image)], top_k=len(result.predictions)
    )
    assert [p.label for p in direct] == view.bars.labels()
    assert view.preview.picture is not None
    [rect] = view.preview.panel_rects()  # a small frame is enlarged to the preview's size
    frame_height, frame_width = view.preview.picture.panels[0].shape[:2]
    assert rect.width() > frame_width and rect.width() / rect.height() == pytest.approx(
        frame_width / frame_height, rel=0.02
    )
    qtbot.waitUntil(lambda: view.last_result.dropped > 0, timeout=WAIT_MS)
    assert "dropped" in view.status.text() and "classified" in view.status.text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    view.grab().save(str(SCREENSHOTS / "live-view.png"))


def test_pause_stops_updates_and_space_resumes(qtbot, window, video, monkeypatch) -> None:
    view = open_view(qtbot, window, video, monkeypatch)
    qtbot.mouseClick(view.pause_button, Qt.MouseButton.LeftButton)
    assert view.pause_button.isChecked() and "paused" in view.status.text()
    qtbot.wait(150)  # a result classified just before the pause may still arrive, and is ignored
    frozen_results, frozen_frame = view.results, view.shown_frame
    qtbot.wait(400)
    assert view.results == frozen_results
    assert view.shown_frame is frozen_frame
    view.activateWindow()
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert not view.pause_button.isChecked()
    qtbot.waitUntil(lambda: view.results > frozen_results, timeout=WAIT_MS)


def test_snapshot_adds_the_frame_to_the_strip(qtbot, window, video, monkeypatch) -> None:
    view = open_view(qtbot, window, video, monkeypatch)
    before = window.strip.count()
    qtbot.mouseClick(view.pause_button, Qt.MouseButton.LeftButton)
    shown = view.shown_frame
    qtbot.mouseClick(view.snapshot_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.strip.count() == before + 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.controller.current_image is not None, timeout=WAIT_MS)
    image = window.controller.images[-1]
    assert image.source.name == "Camera snapshot 1"
    qtbot.waitUntil(lambda: image.display is not None, timeout=WAIT_MS)
    assert np.array_equal(image.display, shown)


def test_the_heat_map_checkbox_draws_the_overlay(qtbot, window, video, monkeypatch) -> None:
    view = open_view(qtbot, window, video, monkeypatch)
    assert view.heatmap_box.isEnabled()
    view.heatmap_box.click()
    qtbot.waitUntil(
        lambda: view.last_result is not None and view.last_result.overlay is not None, timeout=WAIT_MS
    )
    with qtbot.waitSignal(view.result_shown, timeout=WAIT_MS) as shown:
        pass
    result = shown.args[0]
    assert result.overlay is not None
    qtbot.wait(100)  # the preview timer does not replace the overlay by a plain frame
    panel = view.preview.picture.panels[0]
    assert panel.shape == result.image.shape
    assert not np.array_equal(panel, view.shown_frame)  # the frame with its heat map drawn on


def test_capture_to_class_adds_a_burst_of_frames_to_a_project(qtbot, window, video, monkeypatch) -> None:
    from resnet_gui.core.projects import LabellingProject, projects_dir

    classifier = window.controller.classifier
    monkeypatch.setitem(classifier.loaded.metadata, "training", json.dumps({"mode": "head"}))
    view = open_view(qtbot, window, video, monkeypatch)
    assert view.capture_button.isEnabled() and not view.hold_button.isEnabled()

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, CaptureTargetDialog):
            QTimer.singleShot(20, answer)
            return
        dialog.project.setCurrentIndex(dialog.project.count() - 1)  # New project…
        qtbot.keyClicks(dialog.new_name, "Desk things")
        dialog.class_name.setEditText("")
        qtbot.keyClicks(dialog.class_name.lineEdit(), "mug")
        dialog.accept()

    QTimer.singleShot(20, answer)
    qtbot.mouseClick(view.capture_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(view.hold_button.isEnabled, timeout=WAIT_MS)
    assert "mug" in view.hold_button.text()
    shown = view.results
    qtbot.mouseClick(view.video_button, Qt.MouseButton.LeftButton)  # from the start: frames that differ
    qtbot.waitUntil(lambda: view.results > shown + 1, timeout=WAIT_MS)
    qtbot.mousePress(view.hold_button, Qt.MouseButton.LeftButton)
    qtbot.wait(800)  # held: a frame every 150 ms
    qtbot.mouseRelease(view.hold_button, Qt.MouseButton.LeftButton)
    project = LabellingProject.open(projects_dir() / "Desk things")

    def all_reported() -> bool:  # every capture job done and its result shown
        return window.controller.settled("live-capture") and view.captured == len(project.photos("mug"))

    qtbot.waitUntil(lambda: view.captured >= 2, timeout=WAIT_MS)
    qtbot.waitUntil(all_reported, timeout=WAIT_MS)
    photos = project.photos("mug")
    assert len(photos) == view.captured >= 2
    assert all(
        project.record(photo) is not None and project.record(photo).source == "camera" for photo in photos
    )
    assert "captured to “mug” in Desk things" in view.status.text()


def test_capture_needs_a_finetuned_model(qtbot, window, video, monkeypatch) -> None:
    view = open_view(qtbot, window, video, monkeypatch)
    assert not view.capture_button.isEnabled()
    assert "fine-tuned" in view.capture_button.toolTip()


def test_closing_the_window_stops_the_loop_and_the_video(qtbot, window, video, monkeypatch) -> None:
    view = open_view(qtbot, window, video, monkeypatch)
    feed = view.feed
    view.close()
    qtbot.waitUntil(lambda: window.controller.settled(LIVE_JOB), timeout=WAIT_MS)
    assert feed is not None and not feed.running
    assert view.slot is not None and view.slot.closed
    count = view.results
    qtbot.wait(200)
    assert view.results == count


@pytest.mark.skipif(
    os.environ.get("RESNET_GUI_UPDATE_SCREENSHOTS") != "1",
    reason="refreshes docs/screenshots/22-live-view.png with the real model: RESNET_GUI_UPDATE_SCREENSHOTS=1",
)
def test_screenshot_of_the_live_view_with_the_real_model(qtbot, tmp_path, real_resnet50, monkeypatch) -> None:
    """The README's picture: the sample photos played as a video, the real ResNet-50, the heat map on."""
    from gui.helpers import make_window
    from screenshots import screenshot_folder

    from resnet_gui.core.engine import Classifier

    if video_encoder() is None:
        pytest.skip("PyAV with a video encoder makes the test video (pip install 'resnet-gui[video]')")
    coffee = Path(__file__).resolve().parent.parent / "assets" / "samples" / "coffee.jpg"
    video = make_photo_video(
        tmp_path, [coffee], fps=FPS, frames_per_photo=45 * FPS, size=(640, 480), name="coffee"
    )
    window = make_window(qtbot, tmp_path / "settings.ini", Classifier(real_resnet50, "cpu"))
    monkeypatch.setattr("resnet_gui.gui.live_view.camera_support", no_camera)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(video), ""))
    window.live_action.trigger()
    view = window.live_view
    view.resize(1100, 680)
    view.heatmap_box.click()
    qtbot.mouseClick(view.video_button, Qt.MouseButton.LeftButton)

    def espresso_with_heat_map() -> bool:
        result = view.last_result
        return result is not None and result.overlay is not None and result.predictions[0].label == "espresso"

    qtbot.waitUntil(espresso_with_heat_map, timeout=120_000)
    qtbot.waitUntil(lambda: view.last_result.dropped > 0, timeout=20_000)
    assert view.bars.labels()[0] == "espresso"
    qtbot.wait(50)  # the bars' layout settles
    view.grab().save(str(screenshot_folder() / "22-live-view.png"))
    view.close()
