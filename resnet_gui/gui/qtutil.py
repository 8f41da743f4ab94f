"""Small bridges between numpy and Qt, and the app's icon."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QSize, Qt, QUrl
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QLabel, QWidget

from resnet_gui.core.images import IMAGE_EXTENSIONS
from resnet_gui.core.video import VIDEO_EXTENSIONS


def to_qimage(array: np.ndarray) -> QImage:
    """uint8 RGB (H, W, 3) (or (H, W) grey, or RGBA) to a QImage that owns its pixels."""
    data = np.asarray(array)
    if data.dtype != np.uint8:
        data = np.clip(np.rint(data), 0, 255).astype(np.uint8)
    if data.ndim == 2:
        data = np.repeat(data[:, :, None], 3, axis=2)
    if data.shape[2] == 4:
        fmt = QImage.Format.Format_RGBA8888
    else:
        data = data[:, :, :3]
        fmt = QImage.Format.Format_RGB888
    data = np.ascontiguousarray(data)
    height, width = data.shape[:2]
    return QImage(data.data, width, height, data.strides[0], fmt).copy()


def padded_pixmap(array: np.ndarray, canvas: QSize, fit: QSize | None = None, top: int = 0) -> QPixmap:
    """``array`` scaled into a ``fit``-sized box (the whole canvas by default) and centred in it, the
    box ``top`` pixels below the top of a transparent ``canvas``: icons of one size, so a grid of
    photos of any shape lines up and every name sits on the same line."""
    box = fit or canvas
    result = QPixmap(canvas)
    result.fill(Qt.GlobalColor.transparent)
    scaled = QPixmap.fromImage(to_qimage(array)).scaled(
        box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    painter = QPainter(result)
    left = (canvas.width() - scaled.width()) // 2
    painter.drawPixmap(left, top + (box.height() - scaled.height()) // 2, scaled)
    painter.end()
    return result


def local_paths(mime: QMimeData) -> list[str]:
    """The local files and folders in dropped or pasted data (other URLs are ignored)."""
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def file_urls_mime(paths: list[str | Path]) -> QMimeData:
    """MIME data holding file URLs, as a file manager drags them."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


ICON_FOLDER = Path(__file__).resolve().parent / "icons"
"""The app's icons ship inside the package (package data), so a wheel install has them too."""


def icon_folders() -> list[Path]:
    """Where the app's icons may be: a PyInstaller bundle's copy, or the package's own folder."""
    folders = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        folders.append(Path(bundle) / "resnet_gui" / "gui" / "icons")
    folders.append(ICON_FOLDER)
    return folders


@cache
def app_icon() -> QIcon:
    """The app icon: the SVG plus every PNG size found (an empty icon if none is installed)."""
    icon = QIcon()
    for folder in icon_folders():
        if not folder.is_dir():
            continue
        svg = folder / "resnet-gui.svg"
        if svg.is_file():
            icon.addFile(str(svg))
        for png in sorted(folder.glob("resnet-gui-*.png")):
            size = png.stem.rsplit("-", 1)[-1]
            if size.isdigit():
                icon.addFile(str(png), QSize(int(size), int(size)))
        if not icon.isNull():
            break
    return icon


def colormap_strip(colormap: str, width: int = 256, height: int = 1) -> np.ndarray:
    """A horizontal gradient of ``colormap`` (uint8 RGB), for legends and menu icons."""
    from resnet_gui.core.explain.maps import colorize

    row = colorize(np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :], colormap)[:, :, :3]
    return np.ascontiguousarray(np.repeat(row, height, axis=0))


def colormap_icon(colormap: str, width: int = 48, height: int = 14) -> QIcon:
    return QIcon(QPixmap.fromImage(to_qimage(colormap_strip(colormap, width, height))))


def soft(color: QColor, alpha: int) -> QColor:
    """``color`` (a palette colour) made translucent: for selections and tracks derived from the palette."""
    result = QColor(color)
    result.setAlpha(alpha)
    return result


def muted(palette: QPalette) -> QColor:
    """The palette's colour for secondary text."""
    return palette.color(QPalette.ColorRole.PlaceholderText)


PANEL_TITLE_SCALE = 1.15
"""The side panels' titles ("Predictions", "Explanation") are this much larger than the text."""


def bold_font(base: QFont, scale: float = 1.0) -> QFont:
    """``base`` in bold, ``scale`` times its size: the app's titles and headings."""
    font = QFont(base)
    font.setBold(True)
    if scale != 1.0:
        font.setPointSizeF(font.pointSizeF() * scale)
    return font


def heading(text: str, scale: float = 1.0) -> QLabel:
    """A bold label over a section (``scale`` 1.15 for a panel's title)."""
    label = QLabel(text)
    label.setFont(bold_font(label.font(), scale))
    return label


def keep_space_when_hidden(widget: QWidget) -> None:
    """Let ``widget`` keep its room in the layout while hidden, so what is below it never jumps."""
    policy = widget.sizePolicy()
    policy.setRetainSizeWhenHidden(True)
    widget.setSizePolicy(policy)


def relative_luminance(color: QColor) -> float:
    """WCAG 2 relative luminance of ``color`` (0 black … 1 white)."""

    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF()) + 0.0722 * channel(color.blueF())


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG 2 contrast ratio of two colours: 1 (the same) … 21 (black on white)."""
    light, dark = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def visible_accent(palette: QPalette, minimum: float = 3.0) -> QColor:
    """The palette's Highlight, made lighter (dark palette) or darker (light one) until it stands out
    from the Window colour by ``minimum`` (WCAG's ratio for graphics): bars stay visible on any palette."""
    background = palette.color(QPalette.ColorRole.Window)
    color = QColor(palette.color(QPalette.ColorRole.Highlight))
    lighten = relative_luminance(background) < 0.5
    for _ in range(40):  # small steps: just past the minimum, so light text on it stays readable
        if contrast_ratio(color, background) >= minimum:
            break
        color = color.lighter(106) if lighten else color.darker(106)
        if lighten and color.value() >= 255:  # lighter() is stuck at full value: raise lightness instead
            color = QColor.fromHslF(
                max(0.0, color.hslHueF()), color.hslSaturationF(), min(1.0, color.lightnessF() + 0.08)
            )
    return color


def readable_text(fill: QColor, *candidates: QColor) -> QColor:
    """Of ``candidates`` (the palette's text colours first), then white and black, the one that reads
    best on ``fill``."""
    options = [*candidates, QColor(255, 255, 255), QColor(0, 0, 0)]
    return max(options, key=lambda color: contrast_ratio(color, fill) + (0.5 if color in candidates else 0))


def file_filter(*groups: tuple[str, tuple[str, ...]]) -> str:
    """A file dialog's filter: each (title, suffixes) group, then "All files (*)"."""
    parts = [f"{title} ({' '.join(f'*{suffix}' for suffix in suffixes)})" for title, suffixes in groups]
    return ";;".join([*parts, "All files (*)"])


VIDEO_FILTER = file_filter(("Videos", VIDEO_EXTENSIONS))
#: The open dialog's filter: photos and videos together first (Ctrl+O opens either), then each.
MEDIA_FILTER = file_filter(
    ("Images and videos", (*IMAGE_EXTENSIONS, *VIDEO_EXTENSIONS)),
    ("Images", IMAGE_EXTENSIONS),
    ("Videos", VIDEO_EXTENSIONS),
)
