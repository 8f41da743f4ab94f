"""The camera as a live source: a thin layer over Qt Multimedia feeding core's newest-frame slot.

Qt Multimedia ships in PySide6-Addons (``pip install 'resnet-gui[camera]'``) and loads system
libraries (PulseAudio, FFmpeg) that a machine may lack, so it is imported here on first use only:
:func:`camera_support` says which cameras there are, or in one sentence why there are none, and
the rest of the app never notices. :class:`CameraFeed` is a :class:`~resnet_gui.core.live.LiveSource`:
``QCamera`` → ``QMediaCaptureSession`` → ``QVideoSink``, each frame turned into an RGB array and put
into the slot (the model takes the newest; the ones it had no time for are counted as dropped).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QImage

from resnet_gui.core.live import FrameSlot
from resnet_gui.core.video import VideoFrame

__all__ = ["CAMERA_HINT", "CameraChoice", "CameraFeed", "CameraSupport", "camera_support", "qimage_to_rgb"]

CAMERA_HINT = "pip install 'resnet-gui[camera]'"


@dataclass(frozen=True)
class CameraChoice:
    """A camera as the picker lists it."""

    id: bytes
    description: str
    is_default: bool = False


@dataclass(frozen=True)
class CameraSupport:
    """The cameras found, or (none found) why not, in one sentence for the window."""

    cameras: tuple[CameraChoice, ...] = ()
    reason: str = ""

    @property
    def available(self) -> bool:
        return bool(self.cameras)


def live_action_label(support: CameraSupport) -> tuple[str, str] | None:
    """View → Live Camera's text and status tip where there is no camera (None: keep "Live Camera…")."""
    if support.available:
        return None
    return "&Live Camera (No Camera: Play a Video)…", f"{support.reason} A video file can be played instead."


def import_multimedia() -> Any:
    """``PySide6.QtMultimedia``; ImportError (or OSError, a missing system library) when it cannot load."""
    from PySide6 import QtMultimedia

    return QtMultimedia


def camera_support() -> CameraSupport:
    """Which cameras this computer has (Qt Multimedia's video inputs), or why there are none."""
    try:
        multimedia = import_multimedia()
    except (ImportError, OSError) as error:
        detail = str(error).strip().rstrip(".")
        return CameraSupport(
            reason="The camera needs Qt Multimedia, which could not be loaded here "
            f"({detail or type(error).__name__}; install it with {CAMERA_HINT})."
        )
    inputs = multimedia.QMediaDevices.videoInputs()
    if not inputs:
        return CameraSupport(reason="No camera was found on this computer.")
    default = multimedia.QMediaDevices.defaultVideoInput()
    default_id = bytes(default.id().data()) if not default.isNull() else b""
    cameras = tuple(
        CameraChoice(
            bytes(device.id().data()),
            device.description() or "Camera",
            bytes(device.id().data()) == default_id,
        )
        for device in inputs
    )
    return CameraSupport(cameras=cameras)


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """A QImage as an H×W×3 uint8 RGB array (a copy: the frame's memory is Qt's)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    height, width = rgb.height(), rgb.width()
    stride = rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


class CameraFeed(QObject):
    """One camera playing into a :class:`FrameSlot` (a :class:`~resnet_gui.core.live.LiveSource`).

    Made and started in the UI thread; frames arrive from Qt Multimedia's thread and go straight into
    the slot. ``error`` is what Qt said when the camera failed (it cannot be opened, it was
    unplugged); the slot is then closed, as at :meth:`stop`.
    """

    def __init__(self, camera: CameraChoice, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.camera = camera
        self.error: BaseException | None = None
        self.frames = 0
        self._slot: FrameSlot | None = None
        self._began = 0.0
        self._session: Any = None
        self._qcamera: Any = None
        self._sink: Any = None

    @property
    def name(self) -> str:
        return self.camera.description

    def start(self, slot: FrameSlot) -> None:
        multimedia = import_multimedia()
        device = next(
            (d for d in multimedia.QMediaDevices.videoInputs() if bytes(d.id().data()) == self.camera.id),
            None,
        )
        if device is None:
            raise OSError(f"The camera “{self.camera.description}” is no longer connected.")
        self._slot = slot
        self._began = time.monotonic()
        self._qcamera = multimedia.QCamera(device, self)
        self._sink = multimedia.QVideoSink(self)
        self._session = multimedia.QMediaCaptureSession(self)
        self._session.setCamera(self._qcamera)
        self._session.setVideoSink(self._sink)
        self._sink.videoFrameChanged.connect(self._frame_arrived)
        self._qcamera.errorOccurred.connect(self._failed)
        self._qcamera.start()

    def _frame_arrived(self, frame: Any) -> None:
        slot = self._slot
        if slot is None or not frame.isValid():
            return
        image = frame.toImage()
        if image.isNull():
            return
        slot.put(VideoFrame(self.frames, time.monotonic() - self._began, qimage_to_rgb(image)))
        self.frames += 1

    def _failed(self, _error: Any, text: str) -> None:
        self.error = OSError(f"The camera “{self.camera.description}” stopped: {text or 'it failed'}.")
        self.stop()

    def stop(self) -> None:
        if self._qcamera is not None:
            self._sink.videoFrameChanged.disconnect(self._frame_arrived)
            self._qcamera.stop()
            self._qcamera = None
        if self._slot is not None:
            self._slot.close()
            self._slot = None
