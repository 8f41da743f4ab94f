"""The predictions panel: the top-k classes as labelled bars, readable at a glance, clickable."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QEnterEvent,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.gui.data import PredictionRow, PredictionsView
from resnet_gui.gui.qtutil import (
    PANEL_TITLE_SCALE,
    heading,
    keep_space_when_hidden,
    muted,
    soft,
    visible_accent,
)

MAX_K = 20
NOT_SURE = "not sure"
UNUSUAL = "This photo looks unlike the photos the model was trained on: its answer may mean little."
HINT = "Click a prediction to see where the model looked."
NEW_CLASS = "A New Class…"
WRONG_TIP = "Say what the photo really shows: it is copied into that class's training photos"


def format_percent(probability: float) -> str:
    """98.87 -> "98.9 %"; tiny values stay honest ("<0.1 %") instead of rounding to zero."""
    percent = probability * 100
    if 0 < percent < 0.1:
        return "<0.1\u00a0%"
    return f"{percent:.1f}\u00a0%"


class PredictionBar(QWidget):
    """One prediction: rank, label, percentage and a bar; the best one is larger and bold."""

    clicked = Signal(int)  # class index

    def __init__(self, row: PredictionRow, parent: QWidget | None = None, unsure: bool = False) -> None:
        super().__init__(parent)
        self.row = row
        self.unsure = unsure and row.rank == 1  # the best guess is below the "not sure" threshold
        self.selected = False
        self._hover = False
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(
            f"“{row.label}” (class {row.index}): {row.probability * 100:.2f} %\n"
            "Click to see which parts of the photo led to it."
        )
        self.setAccessibleName(
            f"{row.rank}. {row.label}, {format_percent(row.probability)}"
            + (f", {NOT_SURE}" if self.unsure else "")
        )
        self.setFixedHeight(self.sizeHint().height())

    def _label_font(self) -> QFont:
        font = QFont(self.font())
        if self.row.rank == 1:
            font.setPointSizeF(font.pointSizeF() * 1.25)
            font.setBold(True)
        return font

    def sizeHint(self) -> QSize:
        text_height = self.fontMetrics().height() * (1.3 if self.row.rank == 1 else 1.0)
        return QSize(240, int(text_height + 22))

    def set_selected(self, selected: bool) -> None:
        if selected != self.selected:
            self.selected = selected
            self.update()

    def enterEvent(self, event: QEnterEvent) -> None:
        self._hover = True
        self.update()

    def leaveEvent(self, event: QEvent) -> None:
        self._hover = False
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.clicked.emit(self.row.index)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.clicked.emit(self.row.index)
        else:
            super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        highlight = visible_accent(palette)  # a dark Highlight on a dark window is made lighter
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        box = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        if self.selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(soft(highlight, 48))
            painter.drawRoundedRect(box, 6, 6)
            painter.setBrush(highlight)
            painter.drawRoundedRect(QRectF(box.left(), box.top() + 4, 4, box.height() - 8), 2, 2)
        elif self._hover or self.hasFocus():
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(soft(palette.color(QPalette.ColorRole.Text), 18))
            painter.drawRoundedRect(box, 6, 6)

        inner = box.adjusted(12, 5, -10, -7)
        font = self._label_font()
        metrics_height = self.fontMetrics().height() * (1.3 if self.row.rank == 1 else 1.0)
        text_rect = QRectF(inner.left(), inner.top(), inner.width(), metrics_height)

        # Rank, then label (elided), then the percentage on the right.
        painter.setFont(self.font())
        painter.setPen(muted(palette))
        rank_width = self.fontMetrics().horizontalAdvance("20") + 6
        painter.drawText(
            QRectF(text_rect.left(), text_rect.top(), rank_width, text_rect.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            str(self.row.rank),
        )
        painter.setFont(font)
        metrics = QFontMetrics(font)
        percent = format_percent(self.row.probability)
        percent_width = metrics.horizontalAdvance(percent) + 4
        if self.unsure:  # "not sure" in plain muted italics, left of the percentage
            tag_font = QFont(self.font())
            tag_font.setItalic(True)
            tag = f"{NOT_SURE}  "
            tag_width = QFontMetrics(tag_font).horizontalAdvance(tag)
            painter.setFont(tag_font)
            painter.setPen(muted(palette))
            left = text_rect.right() - percent_width - tag_width
            painter.drawText(
                QRectF(left, text_rect.top(), tag_width, text_rect.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                tag,
            )
            painter.setFont(font)
            percent_width += tag_width
        label_rect = QRectF(
            text_rect.left() + rank_width,
            text_rect.top(),
            text_rect.width() - rank_width - percent_width - 8,
            text_rect.height(),
        )
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(
            label_rect,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            metrics.elidedText(self.row.label, Qt.TextElideMode.ElideRight, int(label_rect.width())),
        )
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, percent)

        # The bar: a track the full width, filled to the probability.
        bar_height = 6 if self.row.rank == 1 else 5
        track = QRectF(
            label_rect.left(), inner.bottom() - bar_height, inner.right() - label_rect.left(), bar_height
        )
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(soft(palette.color(QPalette.ColorRole.Text), 28))
        painter.drawRoundedRect(track, bar_height / 2, bar_height / 2)
        fill = QRectF(track)
        fill.setWidth(max(bar_height, track.width() * min(max(self.row.probability, 0.0), 1.0)))
        painter.setBrush(highlight)
        painter.drawRoundedRect(fill, bar_height / 2, bar_height / 2)
        painter.end()


class PredictionsPanel(QWidget):
    """Title, top-k spin box, copy button, and the bars (or a line saying why there are none)."""

    target_clicked = Signal(int)  # class index
    top_k_changed = Signal(int)
    copy_requested = Signal()
    threshold_changed = Signal(float)  # the "not sure" threshold, 0-1
    bars_rebuilt = Signal()  # new bars: the window puts them in the Tab order
    correction_chosen = Signal(str)  # "Wrong?": the class the photo really is
    new_class_requested = Signal()  # "Wrong?" → a class the model does not know yet

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = PredictionsView("empty")
        self.bars: list[PredictionBar] = []

        title = heading("Predictions", PANEL_TITLE_SCALE)

        self.top_k = QSpinBox()
        self.top_k.setRange(1, MAX_K)
        self.top_k.setValue(5)
        self.top_k.setPrefix("Top ")
        self.top_k.setToolTip("How many classes to list")
        self.top_k.setAccessibleName("Number of predictions")
        self.top_k.valueChanged.connect(self.top_k_changed)

        self.copy_button = QToolButton()
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy the predictions as text (Ctrl+Shift+C)")
        self.copy_button.clicked.connect(self.copy_requested)

        # "Wrong?": only with a model fine-tuned here (it knows where its training photos are).
        self.wrong_menu = QMenu(self)
        self.wrong_button = QToolButton()
        self.wrong_button.setText("Wrong?")
        self.wrong_button.setToolTip(WRONG_TIP)
        self.wrong_button.setAccessibleName("Wrong? Pick the right class")
        self.wrong_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.wrong_button.setMenu(self.wrong_menu)
        self.wrong_button.hide()
        self._correction_classes: tuple[str, ...] = ()
        self._correction_actions: dict[str, QAction] = {}

        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(self.wrong_button)
        header.addWidget(self.top_k)
        header.addWidget(self.copy_button)

        self.corrected = QLabel()
        self.corrected.setWordWrap(True)
        self.corrected.setContentsMargins(4, 0, 4, 0)
        self.corrected.setAccessibleName("Your correction")
        self.corrected.hide()

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setContentsMargins(4, 6, 4, 6)

        self.rows = QVBoxLayout()
        self.rows.setContentsMargins(0, 0, 0, 0)
        self.rows.setSpacing(2)

        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.hint.setContentsMargins(4, 4, 4, 0)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.hint.setMinimumHeight(self.fontMetrics().lineSpacing() * 2 + 6)  # the "not sure" line is longer

        # A model that knows few classes forces every photo into one of them: say which they are.
        self.known = QLabel()
        self.known.setWordWrap(True)
        self.known.setContentsMargins(4, 0, 4, 0)
        self.known.setAccessibleName("Classes this model knows")
        self.known.hide()

        self.threshold = QSpinBox()
        self.threshold.setRange(1, 99)
        self.threshold.setValue(50)
        self.threshold.setSuffix(" %")
        self.threshold.setAccessibleName("Not sure below")
        self.threshold.setToolTip(
            "A prediction whose best class is under this probability is marked “not sure”"
        )
        self.threshold.valueChanged.connect(lambda value: self.threshold_changed.emit(value / 100.0))
        threshold_label = QLabel("Mark as not sure below")
        threshold_label.setBuddy(self.threshold)
        threshold_row = QHBoxLayout()
        threshold_row.setContentsMargins(4, 0, 0, 0)
        threshold_row.addWidget(threshold_label)
        threshold_row.addStretch(1)
        threshold_row.addWidget(self.threshold)
        keep_space_when_hidden(self.hint)  # the explanation panel below must not jump when it hides

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(header)
        layout.addWidget(self.known)
        layout.addWidget(self.corrected)
        layout.addWidget(self.status)
        layout.addLayout(self.rows)
        layout.addWidget(self.hint)
        layout.addLayout(threshold_row)
        self._apply_palette()
        self.set_view(self.view)

    def _apply_palette(self) -> None:
        for label in (self.hint, self.known, self.corrected):
            palette = label.palette()
            palette.setColor(QPalette.ColorRole.WindowText, muted(self.palette()))
            label.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (event.Type.PaletteChange, event.Type.ApplicationPaletteChange):
            self._apply_palette()

    def set_view(self, view: PredictionsView) -> None:
        """Show ``view``: rebuilds the bars only when the rows changed (a selection just repaints)."""
        rows_changed = (
            view.rows != self.view.rows or view.unsure != self.view.unsure or (not self.bars and view.rows)
        )
        self.view = view
        if rows_changed or not view.rows:
            self._rebuild(view.rows)
        for bar in self.bars:
            bar.set_selected(bar.row.index == view.selected)
        texts = {
            "empty": "Open a photo to see what the model recognises in it.",
            "loading": view.message or "Loading the model…",
            "classifying": view.message or "Classifying…",
            "failed": view.message,
            "ready": "",
        }
        text = texts.get(view.state, view.message)
        self.status.setText(text)
        self.status.setVisible(bool(text))
        ready = view.state == "ready" and bool(view.rows)
        if ready and view.unusual:
            self.hint.setText(UNUSUAL)
        elif ready and view.unsure:
            self.hint.setText(
                f"Not sure: no class reaches {view.threshold * 100:.0f} %. The photo may show something "
                "this model does not know."
            )
        else:
            self.hint.setText(HINT)
        self.hint.setVisible(ready and (view.unusual or view.unsure or view.selected is None))
        self.known.setText(f"This model only knows: {', '.join(view.known)}" if view.known else "")
        self.known.setVisible(bool(view.known))
        self.set_threshold(view.threshold)
        self.copy_button.setEnabled(view.state == "ready" and bool(view.rows))

    def set_corrections(
        self, classes: tuple[str, ...], enabled: bool, corrected: str = "", reason: str = ""
    ) -> None:
        """Offer "Wrong?" with ``classes`` (hidden when empty); ``corrected``: what the user said
        this photo is; ``reason``: why it cannot be corrected now (the button's tooltip)."""
        if classes != self._correction_classes:
            self._correction_classes = classes
            self.wrong_menu.clear()
            self._correction_actions = {}
            for name in classes:
                action = self.wrong_menu.addAction(f"It Is “{name}”")
                action.triggered.connect(lambda _=False, name=name: self.correction_chosen.emit(name))
                self._correction_actions[name] = action
            self.wrong_menu.addSeparator()
            self.wrong_menu.addAction(NEW_CLASS).triggered.connect(self.new_class_requested)
        ready = self.view.state == "ready" and bool(self.view.rows)
        answer = self.view.rows[0].label if ready else ""
        for name, action in self._correction_actions.items():
            action.setEnabled(name != answer)  # the model's own answer is no correction
        self.wrong_button.setVisible(bool(classes))
        self.wrong_button.setEnabled(enabled and ready)
        self.wrong_button.setToolTip(reason or WRONG_TIP)
        self.corrected.setText(f"You said this photo is “{corrected}”." if corrected else "")
        self.corrected.setVisible(bool(corrected))

    def set_threshold(self, threshold: float) -> None:
        """Show ``threshold`` (0-1) in the spin box without reporting it as the user's choice."""
        self.threshold.blockSignals(True)
        self.threshold.setValue(round(threshold * 100))
        self.threshold.blockSignals(False)

    def _rebuild(self, rows: tuple[PredictionRow, ...]) -> None:
        for bar in self.bars:
            self.rows.removeWidget(bar)
            bar.deleteLater()
        self.bars = []
        for row in rows:
            bar = PredictionBar(row, self, unsure=self.view.unsure)
            bar.clicked.connect(self.target_clicked)
            self.rows.addWidget(bar)
            self.bars.append(bar)
        self.bars_rebuilt.emit()
