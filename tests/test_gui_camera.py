"""The camera layer over Qt Multimedia (issue #14): without Qt Multimedia, or without a camera, the
live window says why in one sentence and still plays a video file; frames convert to RGB exactly;
a real camera, where there is one, feeds the newest-frame slot.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import PySide6
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from video_makers import make_photo_video, video_encoder

from resnet_gui.core.live import FrameSlot
from resnet_gui.gui import camera
from resnet_gui.gui.camera import CAMERA_HINT, CameraFeed, camera_support, qimage_to_rgb
from resnet_gui.gui.qtutil import to_qimage

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def hide_qt_multimedia(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without PySide6-Addons (or without the system libraries it loads)."""
    monkeypatch.setitem(sys.modules, "PySide6.QtMultimedia", None)  # import raises ImportError
    monkeypatch.delattr(PySide6, "QtMultimedia", raising=False)


def test_without_qt_multimedia_the_reason_is_one_sentence(monkeypatch) -> None:
    hide_qt_multimedia(monkeypatch)
    support = camera_support()
    assert not support.available
    assert support.reason.startswith("The camera needs Qt Multimedia") and CAMERA_HINT in support.reason
    assert support.reason.count(". ") == 0 and support.reason.endswith(".")


def test_without_a_camera_device_the_reason_says_so(monkeypatch) -> None:
    devices = SimpleNamespace(videoInputs=lambda: [], defaultVideoInput=lambda: None)
    monkeypatch.setattr(camera, "import_multimedia", lambda: SimpleNamespace(QMediaDevices=devices))
    support = camera_support()
    assert not support.available and support.reason == "No camera was found on this computer."


def test_the_view_menu_says_there_is_no_camera_before_the_window_opens(qtbot, window, monkeypatch) -> None:
    devices = SimpleNamespace(videoInputs=lambda: [], defaultVideoInput=lambda: None)
    monkeypatch.setattr(camera, "import_multimedia", lambda: SimpleNamespace(QMediaDevices=devices))
    assert window.live_action.text() == "&Live Camera…"
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    view_menu.aboutToShow.emit()  # what opening the menu does
    assert "No Camera" in window.live_action.text() and window.live_action.isEnabled()
    assert window.live_action.statusTip().startswith("No camera was found on this computer.")
    assert window.live_view is None  # only the menu looked: no window, no camera opened


def test_without_qt_multimedia_the_live_window_opens_says_why_and_plays_a_video(
    qtbot, window, monkeypatch, tmp_path: Path
) -> None:
    if video_encoder() is None:
        pytest.skip("PyAV with a video encoder makes the test video (pip install 'resnet-gui[video]')")
    hide_qt_multimedia(monkeypatch)
    video = make_photo_video(
        tmp_path, [np.full((60, 80, 3), 200, dtype=np.uint8)], fps=30, frames_per_photo=60
    )
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(video), ""))
    assert window.live_action.isEnabled()
    window.live_action.trigger()
    view = window.live_view
    assert view.isVisible()
    assert "Qt Multimedia" in view.source_note.text() and view.source_note.isVisible()
    assert not view.source_combo.isEnabled()
    assert "Qt Multimedia" in view.preview.placeholder
    assert "No Camera" in window.live_action.text() and "Qt Multimedia" in window.live_action.statusTip()
    assert window.live_action.isEnabled()
    qtbot.mouseClick(view.video_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.results >= 2, timeout=20_000)
    view.close()
    qtbot.waitUntil(lambda: window.controller.settled("live"), timeout=20_000)


@pytest.mark.parametrize("width", [64, 63, 1])  # odd widths: rows padded to 4 bytes in the QImage
def test_frames_convert_to_rgb_exactly(width: int) -> None:
    rng = np.random.default_rng(width)
    array = rng.integers(0, 255, (17, width, 3), dtype=np.uint8)
    assert np.array_equal(qimage_to_rgb(to_qimage(array)), array)


def test_a_real_camera_feeds_the_slot(qtbot) -> None:
    support = camera_support()
    if not support.available:
        pytest.skip(f"needs a camera device: {support.reason}")
    slot = FrameSlot()
    feed = CameraFeed(support.cameras[0])
    feed.start(slot)
    try:
        qtbot.waitUntil(lambda: slot.latest is not None or feed.error is not None, timeout=20_000)
        assert feed.error is None, str(feed.error)
        frame = slot.take(timeout=5)
        assert frame is not None and frame.image.ndim == 3 and frame.image.shape[2] == 3
    finally:
        feed.stop()
    assert slot.closed
