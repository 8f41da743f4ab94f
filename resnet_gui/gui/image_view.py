"""The centre of the window: the photo (with its overlay), or an invitation to drop one."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QMimeData, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from resnet_gui.gui.data import Picture
from resnet_gui.gui.qtutil import app_icon, muted, soft, to_qimage

PANEL_GAP = 16
CAPTION_GAP = 6
MARGIN = 16


class ImageView(QWidget):
    """Paints a :class:`Picture` (one or two panels, scaled to fit, captions under them).

    Accepts drops of files, folders and images; what was dropped goes out as ``mime_dropped`` so
    the window handles drops, pastes and the open dialog the same way.
    """

    mime_dropped = Signal(QMimeData)
    first_painted = Signal()
    #: Small pictures are scaled up to fill the view (a video or camera frame, as players do); a
    #: photo is shown at most at its own size.
    enlarge = False

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.Base)
        self._picture: Picture | None = None
        self._pixmaps: list[QPixmap] = []
        self._scaled: dict[int, QPixmap] = {}
        self._drag_active = False
        self._painted = False

    # -- content -------------------------------------------------------------------------------

    @property
    def picture(self) -> Picture | None:
        return self._picture

    def set_picture(self, picture: Picture | None) -> None:
        self._picture = picture
        self._pixmaps = [QPixmap.fromImage(to_qimage(panel)) for panel in picture.panels] if picture else []
        self._scaled.clear()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(800, 560)

    # -- drag and drop -------------------------------------------------------------------------

    @staticmethod
    def _acceptable(mime: QMimeData) -> bool:
        return mime.hasUrls() or mime.hasImage()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._acceptable(event.mimeData()):
            event.acceptProposedAction()
            self._drag_active = True
            self.update()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._acceptable(event.mimeData()):
            event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._drag_active = False
        self.update()

    def dropEvent(self, event: QDropEvent) -> None:
        self._drag_active = False
        self.update()
        mime = event.mimeData()
        if not self._acceptable(mime):
            event.ignore()
            return
        event.acceptProposedAction()
        self.mime_dropped.emit(mime)

    # -- painting ------------------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._scaled.clear()
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self._pixmaps:
            self._paint_panels(painter)
        else:
            self._paint_empty(painter)
        if self._drag_active:
            pen = QPen(self.palette().color(QPalette.ColorRole.Highlight), 3)
            painter.setPen(pen)
            painter.setBrush(soft(self.palette().color(QPalette.ColorRole.Highlight), 30))
            painter.drawRoundedRect(QRectF(self.rect()).adjusted(4, 4, -4, -4), 10, 10)
        painter.end()
        if not self._painted:
            self._painted = True
            self.first_painted.emit()

    def _caption_height(self) -> int:
        if self._picture is None:
            return 0
        shown = len(self._pixmaps) > 1 or self._picture.captions[0] != self._picture.source_name
        return self.fontMetrics().height() + CAPTION_GAP if shown else 0

    def panel_rects(self) -> list[QRect]:
        """Where each panel is drawn (fitted, centred): for painting, and for tests of the layout."""
        count = len(self._pixmaps)
        if not count:
            return []
        caption = self._caption_height()
        area = self.rect().adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN - caption)
        slot_width = (area.width() - PANEL_GAP * (count - 1)) / count
        rects = []
        for index, pixmap in enumerate(self._pixmaps):
            size = QSize(pixmap.width(), pixmap.height())
            bound = QSize(max(1, int(slot_width)), max(1, area.height()))
            if self.enlarge or size.width() > bound.width() or size.height() > bound.height():
                size = size.scaled(bound, Qt.AspectRatioMode.KeepAspectRatio)
            left = area.left() + index * (slot_width + PANEL_GAP) + (slot_width - size.width()) / 2
            top = area.top() + (area.height() - size.height()) / 2
            rects.append(QRect(round(left), round(top), size.width(), size.height()))
        return rects

    def _scaled_pixmap(self, index: int, size: QSize) -> QPixmap:
        """The panel scaled once per size (smooth), at the screen's pixel density."""
        cached = self._scaled.get(index)
        ratio = self.devicePixelRatioF()
        target = QSize(round(size.width() * ratio), round(size.height() * ratio))
        if cached is None or cached.size() != target:
            source = self._pixmaps[index]
            if source.size() == target:
                cached = QPixmap(source)
            else:
                cached = source.scaled(
                    target, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
                )
            cached.setDevicePixelRatio(ratio)
            self._scaled[index] = cached
        return cached

    def _paint_panels(self, painter: QPainter) -> None:
        palette = self.palette()
        show_captions = self._caption_height() > 0
        for index, rect in enumerate(self.panel_rects()):
            painter.drawPixmap(rect.topLeft(), self._scaled_pixmap(index, rect.size()))
            painter.setPen(QPen(soft(palette.color(QPalette.ColorRole.Shadow), 60), 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(rect).adjusted(-0.5, -0.5, 0.5, 0.5))
            if show_captions and self._picture is not None:
                caption = self._picture.captions[index] if index < len(self._picture.captions) else ""
                text_rect = QRect(
                    rect.left(), rect.bottom() + CAPTION_GAP, rect.width(), self.fontMetrics().height()
                )
                painter.setPen(palette.color(QPalette.ColorRole.Text))
                elided = self.fontMetrics().elidedText(caption, Qt.TextElideMode.ElideRight, rect.width())
                painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, elided)

    def _paint_empty(self, painter: QPainter) -> None:
        palette = self.palette()
        frame = QRectF(self.rect()).adjusted(24, 24, -24, -24)
        pen = QPen(soft(palette.color(QPalette.ColorRole.Text), 70), 2, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(frame, 14, 14)

        icon_side = 96
        title_font = QFont(self.font())
        title_font.setPointSizeF(self.font().pointSizeF() * 1.8)
        title_font.setBold(True)
        line_height = self.fontMetrics().height()
        block = icon_side + 20 + int(line_height * 1.8) + 12 + line_height * 3
        top = frame.center().y() - block / 2
        icon = app_icon()
        if not icon.isNull():
            pixmap = icon.pixmap(QSize(icon_side, icon_side), self.devicePixelRatioF())
            painter.setOpacity(0.85)
            painter.drawPixmap(
                round(frame.center().x() - icon_side / 2), round(top), icon_side, icon_side, pixmap
            )
            painter.setOpacity(1.0)
        y = top + icon_side + 20
        painter.setFont(title_font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        title_height = int(line_height * 1.8)
        painter.drawText(
            QRectF(frame.left(), y, frame.width(), title_height),
            Qt.AlignmentFlag.AlignCenter,
            "Drop photos here",
        )
        y += title_height + 12
        painter.setFont(self.font())
        painter.setPen(muted(palette))
        lines = (
            "or press Ctrl+O to open files, Ctrl+V to paste an image.\n"
            "Drop a folder to classify every photo in it."
        )
        painter.drawText(
            QRectF(frame.left() + 16, y, frame.width() - 32, line_height * 3),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
            lines,
        )

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        self.update()
