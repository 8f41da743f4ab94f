"""The thumbnail strip of this session's images, and the message bar above the image."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.gui.data import UserMessage
from resnet_gui.gui.qtutil import padded_pixmap

THUMB = QSize(104, 72)
CELL_WIDTH = 136
TOP_PAD = 6  # room above each thumbnail, inside its icon
# The icon is as wide as the cell (the thumbnail centred in it): the caption gets that width.
ICON = QSize(CELL_WIDTH - 8, THUMB.height() + TOP_PAD)


class ThumbnailStrip(QListWidget):
    """One row of thumbnails, captioned with each image's best class; arrow keys move along it."""

    image_selected = Signal(int)
    remove_requested = Signal(int)  # the Delete key or the context menu on a thumbnail
    clear_requested = Signal()  # the context menu's "Remove All"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(ICON)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        text_height = self.fontMetrics().height()
        self.setGridSize(QSize(CELL_WIDTH, ICON.height() + text_height + 10))
        scrollbar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        self.setFixedHeight(self.gridSize().height() + scrollbar + 2 * self.frameWidth() + 4)
        self.setAccessibleName("Images of this session")
        self.currentRowChanged.connect(self._row_changed)
        self._names: list[str] = []
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)

    def _context_menu(self, where: QPoint) -> None:
        item = self.itemAt(where)
        menu = QMenu(self)
        if item is not None:
            row = self.row(item)
            remove = menu.addAction(f"Remove “{self._names[row]}”")
            remove.setShortcut(QKeySequence(Qt.Key.Key_Delete))
            remove.triggered.connect(lambda _=False, row=row: self.remove_requested.emit(row))
        clear = menu.addAction("Remove All Photos")
        clear.triggered.connect(self.clear_requested)
        self.context_menu = menu  # kept for tests
        menu.popup(self.viewport().mapToGlobal(where))

    def remove_image(self, index: int) -> None:
        """Take thumbnail ``index`` out (the controller removed its image); hidden when none is left."""
        if 0 <= index < self.count():
            self.blockSignals(True)
            self.takeItem(index)
            self.blockSignals(False)
            del self._names[index]
        if not self.count():
            self.hide()

    def clear_images(self) -> None:
        self.blockSignals(True)
        self.clear()
        self.blockSignals(False)
        self._names.clear()
        self.hide()

    def add_image(self, thumbnail: np.ndarray, name: str) -> None:
        canvas = padded_pixmap(thumbnail, ICON, THUMB, top=TOP_PAD)
        item = QListWidgetItem(QIcon(canvas), name)
        item.setToolTip(name)
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
        self._names.append(name)
        self.addItem(item)
        self.show()

    def set_caption(self, index: int, label: str, probability: float) -> None:
        """Caption a thumbnail with its best class; the label is shortened, never the percentage."""
        item = self.item(index)
        if item is None:
            return
        name = self._names[index]
        if not label:
            item.setText(name)
            item.setToolTip(name)
            return
        percent = f" {probability * 100:.0f}\u00a0%"
        metrics = self.fontMetrics()
        room = ICON.width() - 6 - metrics.horizontalAdvance(percent)
        item.setText(metrics.elidedText(label, Qt.TextElideMode.ElideRight, room) + percent)
        item.setToolTip(f"{name}\n{label}: {probability * 100:.1f} %")

    def set_current(self, index: int) -> None:
        if self.currentRow() != index:
            self.blockSignals(True)
            self.setCurrentRow(index)
            self.blockSignals(False)
        item = self.item(index)
        if item is not None:
            self.scrollToItem(item)

    def _row_changed(self, row: int) -> None:
        if row >= 0:
            self.image_selected.emit(row)


class MessageBar(QWidget):
    """A message over the image: an icon, the text (a core error's message), action buttons, close.

    It does not block the window the way a modal box would: the user can keep working, and a
    test can read it. Hidden, it takes no space.
    """

    action_triggered = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        frame.setAutoFillBackground(True)
        frame.setBackgroundRole(QPalette.ColorRole.AlternateBase)
        self.icon = QLabel()
        self.icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QHBoxLayout()
        self.buttons.setContentsMargins(0, 4, 0, 0)
        self.buttons.setSpacing(6)
        self.close_button = QToolButton()
        self.close_button.setAutoRaise(True)
        self.close_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_TitleBarCloseButton))
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.clear)
        body = QVBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(4)
        body.addWidget(self.text)
        body.addLayout(self.buttons)
        inner = QHBoxLayout(frame)
        inner.setContentsMargins(10, 8, 6, 8)
        inner.setSpacing(10)
        inner.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        inner.addLayout(body, 1)
        inner.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 0)
        outer.addWidget(frame)
        self.message: UserMessage | None = None
        self.hide()

    def show_message(self, message: UserMessage) -> None:
        self.message = message
        icons = {
            "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
            "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
            "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
        }
        side = self.fontMetrics().height() * 2
        icon = self.style().standardIcon(icons.get(message.level, icons["info"]))
        self.icon.setPixmap(icon.pixmap(QSize(side, side)))
        title = f"<b>{_escape(message.title)}</b><br>" if message.title else ""
        body = _escape(message.text).replace("\n", "<br>")
        self.text.setText(f"{title}{body}")
        while self.buttons.count():
            item = self.buttons.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for key, label in message.actions:
            button = QPushButton(label)
            button.setAutoDefault(False)
            button.clicked.connect(lambda _=False, key=key: self.action_triggered.emit(key))
            self.buttons.addWidget(button)
        self.buttons.addStretch(1)
        self.show()

    def clear(self) -> None:
        self.message = None
        self.hide()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
