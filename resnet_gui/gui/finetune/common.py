"""Small helpers the wizard's pages share: colours, sizes and how numbers and durations are written."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QLabel

from resnet_gui.gui.predictions import format_percent
from resnet_gui.gui.qtutil import padded_pixmap, to_qimage

THUMBNAIL_SIDE = 64
EXAMPLES_PER_CLASS = 6
TRAIN_COLOR = QColor(37, 99, 235)
VAL_COLOR = QColor(234, 88, 12)
WARNING_COLOR = QColor(180, 110, 0)
ERROR_COLOR = QColor(190, 40, 40)


def pixmap(array: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(to_qimage(array))


def square_icon(array: np.ndarray, side: int) -> QIcon:
    """A photo of any shape centred on a transparent square: in a grid, the names line up."""
    return QIcon(padded_pixmap(array, QSize(side, side)))


def percent(value: float | None) -> str:
    """The predictions panel's percentages, or a dash when there is no value (no validation)."""
    return "–" if value is None or not math.isfinite(value) else format_percent(value)


def duration(seconds: float | None) -> str:
    """The app's one way of writing a duration (the batch window's), or a dash when unknown."""
    from resnet_gui.core.batch import format_duration

    return "–" if seconds is None or not math.isfinite(seconds) else format_duration(seconds)


def device_name(device: str) -> str:
    return "CPU" if device == "cpu" else "GPU" if device.startswith("cuda") else device.upper()


def error_html(text: str) -> str:
    """An error sentence as the pages show it: bold, in the error colour."""
    return f"<b style='color:{ERROR_COLOR.name()}'>{text}</b>"


def wrapped(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label
