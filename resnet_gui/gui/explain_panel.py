"""The explanation panel: method, view, opacity, colours, progress, faithfulness and export.

After *Check faithfulness* the panel shows the score's sentence and its curves (a
:class:`~resnet_gui.gui.charts.FaithfulnessChart` fed the core result the controller computed).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.explain.estimate import describe_seconds  # torch-free
from resnet_gui.gui.charts import FaithfulnessChart
from resnet_gui.gui.data import VIEW_IMAGE, VIEW_OVERLAY, VIEW_SIDE_BY_SIDE, ExplanationView, MethodChoice
from resnet_gui.gui.qtutil import (
    PANEL_TITLE_SCALE,
    colormap_icon,
    colormap_strip,
    heading,
    keep_space_when_hidden,
    muted,
    readable_text,
    to_qimage,
    visible_accent,
)

VIEW_LABELS = ((VIEW_OVERLAY, "Overlay"), (VIEW_SIDE_BY_SIDE, "Side by side"), (VIEW_IMAGE, "Photo"))
SCORE_TOOLTIP = (
    "Faithfulness (ROAD, Rong et al. 2022): the map's most important pixels are removed and filled\n"
    "in from their surroundings, then its least important ones, at 10 % to 90 % of the photo; a map\n"
    "that points at what the model really uses makes the class fall when its important pixels go and\n"
    "stay when the others go. A random map is scored the same way as the yardstick.\n"
    "It costs about 37 runs of the model."
)
SCORE_COST = "about 37 runs of the model"


def describe_score(result: Any, label: str) -> tuple[str, str]:
    """(score line, one-line meaning) of a core ``RoadResult`` or ``DeletionResult``, for people."""
    if getattr(result, "key", "") == "road":
        random = f", a random map {result.random_score:+.2f}" if result.random_score is not None else ""
        score = f"ROAD score {result.score:+.2f}{random} (higher is better)"
        mark = {"faithful": "✓", "weak": "~"}.get(result.verdict, "✗")
        return score, f"{mark} {result.summary(label)}"
    return describe_deletion(result, label)


def describe_deletion(deletion: Any, label: str) -> tuple[str, str]:
    """(score line, one-line meaning) of a core ``DeletionResult``, for people."""
    score = f"Deletion score {deletion.auc:.2f}, random order {deletion.random_auc:.2f} (lower is better)"
    if deletion.better_than_random:
        meaning = (
            f"✓ Faithful: hiding the map's brightest pixels first lowers “{label}” faster than "
            "hiding random pixels."
        )
    else:
        meaning = (
            f"✗ Not faithful: hiding the map's brightest pixels first lowers “{label}” no faster "
            "than hiding random pixels. Read this map with care, or try another method."
        )
    return score, meaning


class ColormapLegend(QWidget):
    """The colormap as a bar, from "less" to "more" important."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colormap = ""
        self._image = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.fontMetrics().height() + 16)

    def set_colormap(self, colormap: str) -> None:
        if colormap != self._colormap:
            self._colormap = colormap
            self._image = to_qimage(colormap_strip(colormap, 256, 1)) if colormap else None
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._image is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if not self.isEnabled():
            painter.setOpacity(0.35)
        bar = self.rect().adjusted(0, 0, 0, -(self.fontMetrics().height() + 4))
        painter.drawImage(bar, self._image)
        painter.setPen(muted(self.palette()))
        text = self.rect().adjusted(0, bar.height() + 2, 0, 0)
        painter.drawText(text, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, "less important")
        painter.drawText(text, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, "more important")
        painter.end()


class ExplanationPanel(QWidget):
    """Controls of the heat map; emits what the user changed, shows what the controller reports."""

    method_changed = Signal(str)
    view_changed = Signal(str)
    opacity_changed = Signal(float)
    colormap_changed = Signal(str)
    cancel_requested = Signal()
    score_requested = Signal()
    export_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._methods: dict[str, MethodChoice] = {}
        self._estimates: dict[str, float] = {}  # method -> seconds on this computer

        title = heading("Explanation", PANEL_TITLE_SCALE)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # Room for three lines whatever the state says (idle, running, ready), so nothing below moves.
        self.status.setMinimumHeight(self.fontMetrics().lineSpacing() * 3 + 2)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(8)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop computing (Esc)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        progress_row = QHBoxLayout()
        progress_row.setContentsMargins(0, 0, 0, 0)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self.progress_box = QWidget()
        self.progress_box.setLayout(progress_row)
        keep_space_when_hidden(self.progress_box)  # the controls below must not jump when it shows
        self.progress_box.hide()

        self.method = QComboBox()
        self.method.setAccessibleName("Explanation method")
        self.method.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.method.setMinimumContentsLength(14)
        self.method.currentIndexChanged.connect(self._method_picked)
        self.method_help = QLabel()
        self.method_help.setWordWrap(True)

        self.view_buttons = QButtonGroup(self)
        self.view_buttons.setExclusive(True)
        view_row = QHBoxLayout()
        view_row.setContentsMargins(0, 0, 0, 0)
        view_row.setSpacing(0)
        for key, text in VIEW_LABELS:
            button = QPushButton(text)
            button.setCheckable(True)
            button.setProperty("view", key)
            button.setAutoDefault(False)
            self.view_buttons.addButton(button)
            view_row.addWidget(button)
        self.view_buttons.buttons()[0].setChecked(True)
        self.view_buttons.buttonToggled.connect(lambda *_: self._paint_view_buttons())
        self.view_buttons.buttonClicked.connect(
            lambda button: self.view_changed.emit(button.property("view"))
        )

        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setAccessibleName("Overlay opacity")
        self.opacity.setToolTip("How strongly the map covers the photo")
        self.opacity_label = QLabel("50 %")
        self.opacity_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("100 %") + 4)
        self.opacity_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.opacity.valueChanged.connect(self._opacity_moved)
        opacity_row = QHBoxLayout()
        opacity_row.setContentsMargins(0, 0, 0, 0)
        opacity_row.addWidget(self.opacity, 1)
        opacity_row.addWidget(self.opacity_label)

        self.colormap = QComboBox()
        self.colormap.setAccessibleName("Colours of the map")
        self.colormap.setIconSize(QSize(48, 12))
        self.colormap.currentIndexChanged.connect(self._colormap_picked)
        self.legend = ColormapLegend()

        self.score_button = QPushButton("Check faithfulness")
        self.score_button.setToolTip(SCORE_TOOLTIP)
        self.score_button.setAutoDefault(False)
        self.score_button.clicked.connect(self.score_requested)
        self.score_label = QLabel()
        self.score_label.setWordWrap(True)
        self.score_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.score_label.setMinimumHeight(self.fontMetrics().lineSpacing() * 2 + 2)
        keep_space_when_hidden(self.score_label)  # hidden while computing: the export button stays put
        self.score_label.setToolTip(SCORE_TOOLTIP)
        self.score_meaning = QLabel()
        self.score_meaning.setWordWrap(True)
        # The curves behind the score: the class's probability as the map's pixels are removed.
        self.score_chart = FaithfulnessChart()
        self.score_chart.setMinimumHeight(170)
        self.score_chart.setMaximumHeight(220)
        self.score_chart.hide()
        # A map that scores badly: one click shows the same class with the method the score suggests.
        self.try_button = QPushButton()
        self.try_button.setAutoDefault(False)
        self.try_button.hide()
        self.try_button.clicked.connect(self._try_suggested)
        self._suggested = ""

        self.export_button = QPushButton("Export PNG…")
        self.export_button.setToolTip("Save the image as shown, with its overlay (Ctrl+E)")
        self.export_button.setAutoDefault(False)
        self.export_button.clicked.connect(self.export_requested)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        form.addRow("Method", self.method)
        form.addRow(self.method_help)  # the whole width: a narrow field column clipped its lines
        form.addRow("Show", view_row)
        form.addRow("Opacity", opacity_row)
        form.addRow("Colours", self.colormap)
        form.addRow("", self.legend)

        score_box = QVBoxLayout()
        score_box.setContentsMargins(0, 0, 0, 0)
        score_box.setSpacing(4)
        score_box.addWidget(self.score_button, 0, Qt.AlignmentFlag.AlignLeft)
        score_box.addWidget(self.score_label)
        score_box.addWidget(self.score_meaning)
        score_box.addWidget(self.score_chart)
        score_box.addWidget(self.try_button, 0, Qt.AlignmentFlag.AlignLeft)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(title)
        layout.addWidget(self.status)
        layout.addWidget(self.progress_box)
        layout.addLayout(form)
        layout.addSpacing(4)
        layout.addLayout(score_box)
        layout.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignLeft)
        self._apply_palette()
        self.set_view(ExplanationView("idle"))

    # -- palette ----------------------------------------------------------------------------------

    def _apply_palette(self) -> None:
        for label in (self.method_help, self.score_label):
            palette = label.palette()
            palette.setColor(QPalette.ColorRole.WindowText, muted(self.palette()))
            label.setPalette(palette)
        self._paint_view_buttons()

    def _paint_view_buttons(self) -> None:
        """The checked view button in the palette's Highlight / HighlightedText (a dark style's checked
        button was nearly the colour of the others); the others in the palette's plain button colours."""
        base = self.palette()
        for button in self.view_buttons.buttons():
            palette = QPalette(base)
            if button.isChecked():
                # The Highlight, lightened on a dark palette until it stands out from the window;
                # the text in HighlightedText, or in the window's text colour if that reads better.
                fill = visible_accent(base)
                role = QPalette.ColorRole
                text = readable_text(fill, base.color(role.HighlightedText), base.color(role.WindowText))
                for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
                    palette.setColor(group, QPalette.ColorRole.Button, fill)
                    palette.setColor(group, QPalette.ColorRole.ButtonText, text)
            button.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (event.Type.PaletteChange, event.Type.ApplicationPaletteChange):
            self._apply_palette()

    # -- filling the pickers ------------------------------------------------------------------------

    def set_methods(self, methods: tuple[MethodChoice, ...], current: str) -> None:
        """Fill the method picker from core's registry; slow methods say so in their name."""
        self._methods = {m.key: m for m in methods}
        self.method.blockSignals(True)
        self.method.clear()
        for method in methods:
            text = f"{method.display_name} (slow)" if method.slow else method.display_name
            self.method.addItem(text, method.key)
            self.method.setItemData(self.method.count() - 1, method.description, Qt.ItemDataRole.ToolTipRole)
        index = max(0, self.method.findData(current))
        self.method.setCurrentIndex(index)
        self.method.blockSignals(False)
        self._show_method_help()

    def set_colormaps(self, colormaps: tuple[str, ...], current: str) -> None:
        self.colormap.blockSignals(True)
        self.colormap.clear()
        for name in colormaps:
            self.colormap.addItem(colormap_icon(name), name.capitalize(), name)
        self.colormap.setCurrentIndex(max(0, self.colormap.findData(current)))
        self.colormap.blockSignals(False)
        self.legend.set_colormap(self.colormap.currentData() or "")

    def set_opacity(self, alpha: float) -> None:
        self.opacity.setValue(round(alpha * 100))
        self.opacity_label.setText(f"{self.opacity.value()} %")

    def set_view_mode(self, view: str) -> None:
        for button in self.view_buttons.buttons():
            if button.property("view") == view:
                button.setChecked(True)

    def set_estimates(self, estimates: dict[str, float]) -> None:
        """Each method's time measured on this computer (empty: not known yet)."""
        self._estimates = dict(estimates)
        self._show_method_help()

    def show_method(self, key: str) -> None:
        """Show ``key`` as the picked method without reporting it (the map of a photo shown again)."""
        index = self.method.findData(key)
        if index >= 0:
            self.method.blockSignals(True)
            self.method.setCurrentIndex(index)
            self.method.blockSignals(False)
            self._show_method_help()

    def current_method(self) -> str:
        return self.method.currentData() or ""

    def _try_suggested(self) -> None:
        index = self.method.findData(self._suggested)
        if index >= 0:
            self.method.setCurrentIndex(index)  # as picking it in the list does

    def _method_picked(self, index: int) -> None:
        self._show_method_help()
        key = self.method.itemData(index)
        if key:
            self.method_changed.emit(key)

    def _show_method_help(self) -> None:
        method = self._methods.get(self.method.currentData() or "")
        text = method.description if method else ""
        estimate = self._estimates.get(method.key) if method else None
        if estimate is not None:
            text += f" Takes {describe_seconds(estimate)} on this computer."
        self.method_help.setText(text)
        self.method_help.setVisible(method is not None)

    def _opacity_moved(self, value: int) -> None:
        self.opacity_label.setText(f"{value} %")
        self.opacity_changed.emit(value / 100.0)

    def _colormap_picked(self, index: int) -> None:
        name = self.colormap.itemData(index)
        if name:
            self.legend.set_colormap(name)
            self.colormap_changed.emit(name)

    # -- state from the controller -----------------------------------------------------------------

    def set_view(self, view: ExplanationView) -> None:
        """Show the controller's explanation state: progress, result, faithfulness."""
        running = view.state == "running" or view.scoring
        self.progress_box.setVisible(running)
        if running:
            if view.progress is None or view.scoring:
                self.progress.setRange(0, 0)  # busy
            else:
                self.progress.setRange(0, 1000)
                self.progress.setValue(round(view.progress * 1000))
        texts = {
            "idle": "Which parts of the photo led to a prediction: click one to see its map.",
            "cancelled": "Cancelled. Click a prediction to try again.",
        }
        text = texts.get(view.state, view.text)
        if view.state == "running" and view.slow:
            text = f"{view.text} This method is slow: it runs the model many times."
        if view.scoring:
            text = f"Checking faithfulness ({SCORE_COST})…"
        self.status.setText(text)
        ready = view.state == "ready"
        self.score_button.setEnabled(ready and not view.scoring and view.deletion is None)
        if view.deletion is not None:
            score, meaning = describe_score(view.deletion, view.label)
            self.score_label.setText(score)
            self.score_meaning.setText(meaning)
            self.score_meaning.setToolTip(view.deletion.summary(view.label))  # type: ignore[attr-defined]
            self._suggested = getattr(view.deletion, "suggestion", None) or ""
            if self.score_chart.result() is not view.deletion:
                self.score_chart.set_result(view.deletion, view.label)  # type: ignore[arg-type]
        elif ready:
            self.score_label.setText(f"Not checked yet: it costs {SCORE_COST}.")
            self.score_meaning.setText("")
        else:
            self.score_label.setText("")
            self.score_meaning.setText("")
        if view.deletion is None:
            self._suggested = ""
            self.score_chart.set_result(None)
        self.score_chart.setVisible(view.deletion is not None)
        suggested = self.method.findData(self._suggested) if self._suggested else -1
        if suggested >= 0:
            self.try_button.setText(f"Try {self.method.itemText(suggested)} on this photo")
        self.try_button.setVisible(suggested >= 0 and ready)
        self.score_label.setVisible(bool(self.score_label.text()))
        self.score_meaning.setVisible(bool(self.score_meaning.text()))
