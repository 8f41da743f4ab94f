"""Model → About This Model…: what the model in use is made of, and a drawing of one residual block.

The description is core's :func:`resnet_gui.core.describe.describe_model`, computed in a job of the
controller (copying the model's shapes and counting its FLOPs takes a moment): the dialog only ever
receives its dataclasses. :class:`BlockDiagramView` paints one :class:`BlockDiagram` with QPainter:
the input, the main path's layers top to bottom, the ⊕ where the shortcut (drawn beside them) is
added back, what follows the addition, and the output.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.describe import (
    BLOCK_WORDS,
    SHORTCUT_WORDS,
    BlockDiagram,
    DiagramLayer,
    ModelDescription,
    amount,
    describe_model,
    preprocessing_words,
)
from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.gui.controller import Controller, describe_error

#: Box colours by layer kind (light fills, dark text: readable in light and dark themes alike).
KIND_COLOURS: dict[str, str] = {
    "conv": "#cfe2ff",
    "norm": "#fff3bf",
    "act": "#d3f9d8",
    "pool": "#e5dbff",
    "fc": "#ffe8cc",
}
SHORTCUT_COLOUR = "#e8590c"
BOX_WIDTH = 190
BOX_HEIGHT = 24
GAP = 10
MARGIN = 14
ADD_RADIUS = 11


class NotDescribable(ResNetGuiError):
    """The model in use has no PyTorch module to look into (an ONNX file)."""


def describe_in_use(context: Any, classifier: Any) -> ModelDescription:
    """The job: the model in use, described (its weights are never copied; its lock is held while its
    shapes are copied)."""
    loaded = getattr(classifier, "loaded", None)
    if loaded is None:
        raise NotDescribable(
            "This model is an ONNX file: it can classify, but its layers cannot be shown here "
            "(open its PyTorch weights file to see inside)."
        )
    context.progress(None, "Measuring the model…")
    return describe_model(loaded, lock=classifier.lock)


class BlockDiagramView(QWidget):
    """One residual block: input → the main path's boxes → ⊕ ← the shortcut beside them → output."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.diagram: BlockDiagram | None = None
        self.painted: list[str] = []  # the boxes' texts of the last paint, in order (for tests)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setAccessibleName("Drawing of one residual block")

    def set_diagram(self, diagram: BlockDiagram | None) -> None:
        self.diagram = diagram
        self.setToolTip(_diagram_words(diagram) if diagram is not None else "")
        self.setMinimumSize(self.sizeHint())
        self.updateGeometry()
        self.update()

    def _rows(self) -> int:
        diagram = self.diagram
        if diagram is None:
            return 4
        return len(diagram.main_path) + len(diagram.after_add) + 2 + (1 if diagram.has_add else 0)

    def sizeHint(self) -> QSize:
        width = 2 * MARGIN + BOX_WIDTH + 3 * GAP + BOX_WIDTH
        return QSize(width, 2 * MARGIN + self._rows() * (BOX_HEIGHT + GAP))

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event: QPaintEvent) -> None:
        self.painted = []
        diagram = self.diagram
        if diagram is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        ink = palette.color(QPalette.ColorRole.WindowText)
        font = QFont(self.font())
        painter.setFont(font)
        main_x = MARGIN
        side_x = MARGIN + BOX_WIDTH + 3 * GAP
        y = MARGIN
        step = BOX_HEIGHT + GAP
        c_in, h_in, w_in = diagram.in_shape
        c_out, h_out, w_out = diagram.out_shape

        input_box = QRectF(main_x, y, BOX_WIDTH, BOX_HEIGHT)
        self._box(painter, input_box, f"input: {h_in}×{w_in}, {c_in} channels", None, ink)
        boxes = [input_box]
        for layer in diagram.main_path:
            y += step
            box = QRectF(main_x, y, BOX_WIDTH, BOX_HEIGHT)
            self._arrow(
                painter, QPointF(box.center().x(), box.top() - GAP), QPointF(box.center().x(), box.top()), ink
            )
            self._box(painter, box, layer.label, layer, ink)
            boxes.append(box)
        last = boxes[-1]
        if diagram.has_add:
            y += step
            centre = QPointF(main_x + BOX_WIDTH / 2, y + BOX_HEIGHT / 2)
            self._arrow(
                painter, QPointF(centre.x(), last.bottom()), QPointF(centre.x(), centre.y() - ADD_RADIUS), ink
            )
            self._add(painter, centre, ink)
            self._shortcut(painter, diagram, boxes[diagram.branch], centre, side_x)
            last = QRectF(centre.x() - ADD_RADIUS, centre.y() - ADD_RADIUS, 2 * ADD_RADIUS, 2 * ADD_RADIUS)
        else:
            note = QRectF(side_x, MARGIN + step, BOX_WIDTH, BOX_HEIGHT * 2)
            painter.setPen(ink)
            painter.drawText(
                note, Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap, "no shortcut: a plain block"
            )
            self.painted.append("no shortcut")
        for layer in diagram.after_add:
            y += step
            box = QRectF(main_x, y, BOX_WIDTH, BOX_HEIGHT)
            self._arrow(
                painter, QPointF(box.center().x(), last.bottom()), QPointF(box.center().x(), box.top()), ink
            )
            self._box(painter, box, layer.label, layer, ink)
            last = box
        y += step
        output_box = QRectF(main_x, y, BOX_WIDTH, BOX_HEIGHT)
        self._arrow(
            painter,
            QPointF(output_box.center().x(), last.bottom()),
            QPointF(output_box.center().x(), output_box.top()),
            ink,
        )
        self._box(painter, output_box, f"output: {h_out}×{w_out}, {c_out} channels", None, ink)
        painter.end()

    def _box(
        self, painter: QPainter, rect: QRectF, text: str, layer: DiagramLayer | None, ink: QColor
    ) -> None:
        if layer is None:  # the input and output: outlined, in the window's own colours
            painter.setPen(QPen(ink, 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            text_colour = ink
        else:
            painter.setPen(QPen(QColor("#495057"), 1))
            painter.setBrush(QColor(KIND_COLOURS.get(layer.kind, "#f1f3f5")))
            text_colour = QColor("#212529")
        painter.drawRoundedRect(rect, 5, 5)
        painter.setPen(text_colour)
        shown = painter.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, int(rect.width()) - 8)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, shown)
        self.painted.append(text)

    @staticmethod
    def _arrow(painter: QPainter, start: QPointF, end: QPointF, colour: QColor) -> None:
        painter.setPen(QPen(colour, 1.5))
        painter.drawLine(start, end)
        head = QPainterPath()
        dx, dy = end.x() - start.x(), end.y() - start.y()
        length = max((dx * dx + dy * dy) ** 0.5, 1e-6)
        ux, uy = dx / length, dy / length
        size = 6.0
        head.moveTo(end)
        head.lineTo(end.x() - size * ux + size * 0.5 * uy, end.y() - size * uy - size * 0.5 * ux)
        head.lineTo(end.x() - size * ux - size * 0.5 * uy, end.y() - size * uy + size * 0.5 * ux)
        head.closeSubpath()
        painter.setBrush(colour)
        painter.drawPath(head)
        painter.setBrush(Qt.BrushStyle.NoBrush)

    def _add(self, painter: QPainter, centre: QPointF, ink: QColor) -> None:
        painter.setPen(QPen(ink, 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(centre, ADD_RADIUS, ADD_RADIUS)
        painter.drawLine(QPointF(centre.x() - 6, centre.y()), QPointF(centre.x() + 6, centre.y()))
        painter.drawLine(QPointF(centre.x(), centre.y() - 6), QPointF(centre.x(), centre.y() + 6))
        self.painted.append("⊕")

    def _shortcut(
        self, painter: QPainter, diagram: BlockDiagram, source: QRectF, add: QPointF, side_x: float
    ) -> None:
        """From below ``source`` out to the side, down past the shortcut's boxes, into the ⊕."""
        colour = QColor(SHORTCUT_COLOUR)
        pen = QPen(colour, 2)
        lane = side_x + BOX_WIDTH / 2
        start = QPointF(source.right(), source.center().y())
        labels = diagram.shortcut_labels
        boxes = diagram.shortcut or tuple(DiagramLayer(label, "act") for label in labels)
        identity = not diagram.shortcut
        top = source.bottom() + GAP
        bottom = add.y() - ADD_RADIUS - GAP - BOX_HEIGHT
        count = len(boxes)
        spacing = (bottom - top - count * BOX_HEIGHT) / (count + 1) if count else 0
        painter.setPen(pen)
        painter.drawLine(start, QPointF(lane, start.y()))
        y = start.y()
        for index, layer in enumerate(boxes):
            box_top = top + spacing * (index + 1) + BOX_HEIGHT * index
            box_top = max(box_top, y + GAP)
            box = QRectF(side_x, box_top, BOX_WIDTH, BOX_HEIGHT)
            painter.setPen(pen)
            painter.drawLine(QPointF(lane, y), QPointF(lane, box.top()))
            if identity:  # words on the line, no box: nothing is computed on this path
                painter.setPen(pen)
                painter.drawLine(QPointF(lane, box.top()), QPointF(lane, box.bottom()))
                words = painter.fontMetrics().boundingRect(layer.label).width() + 8
                gap = QRectF(lane - words / 2, box.top() + 3, words, box.height() - 6)
                painter.fillRect(gap, self.palette().color(QPalette.ColorRole.Window))
                painter.setPen(colour)
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, layer.label)
                self.painted.append(layer.label)
            else:
                self._box(painter, box, layer.label, layer, colour)
            y = box.bottom()
        painter.setPen(pen)
        painter.drawLine(QPointF(lane, y), QPointF(lane, add.y()))
        self._arrow(painter, QPointF(lane, add.y()), QPointF(add.x() + ADD_RADIUS, add.y()), colour)
        painter.setPen(colour)
        caption = QRectF(source.right() + 4, start.y() - BOX_HEIGHT, lane - source.right(), BOX_HEIGHT - 2)
        painter.drawText(caption, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, "shortcut")


def _diagram_words(diagram: BlockDiagram) -> str:
    main = " → ".join(layer.label for layer in diagram.main_path)
    if not diagram.has_add:
        return f"{diagram.caption()} {main}; no shortcut."
    shortcut = " → ".join(diagram.shortcut_labels)
    after = " → ".join(layer.label for layer in diagram.after_add)
    return f"{diagram.caption()} Main path: {main}. Shortcut: {shortcut}. Added, then: {after or 'nothing'}."


def description_html(description: ModelDescription) -> str:
    """The description as a small HTML page for the dialog's label."""
    e = html.escape
    rows = [
        ("Block type", BLOCK_WORDS.get(description.block_type, description.block_type)),
    ]
    if description.block_detail not in ("", description.block_type):
        rows.append(("", description.block_detail))
    height, width = description.input_size
    rows += [
        ("Parameters", f"{description.parameters:,} ({description.parameters / 1e6:.1f} million)"),
        (
            "Work per photo",
            f"{amount(description.flops)} FLOPs for one {height}×{width} photo "
            f"({amount(description.multiply_adds)} multiply-adds)",
        ),
        ("Input", f"{height}×{width} pixels: {preprocessing_words(description.preprocessing)}"),
        ("Classes", f"{description.num_classes:,}"),
        ("Weights", description.weights_source),
    ]
    if description.weights_file is not None:
        rows.append(("Weights file", str(description.weights_file)))
    facts = "".join(
        f"<tr><td valign='top'><b>{e(key)}</b></td><td>&nbsp;&nbsp;</td><td>{e(value)}</td></tr>"
        for key, value in rows
    )
    stages = "".join(
        f"<tr><td>{index}</td><td>{e(stage.name)}</td><td align='right'>{stage.blocks}</td>"
        f"<td align='right'>{stage.out_channels}</td>"
        f"<td align='right'>{stage.out_size[0]}×{stage.out_size[1]}</td>"
        f"<td>&nbsp;{e(_first_and_others(stage.shortcuts))}</td></tr>"
        for index, stage in enumerate(description.stages, 1)
    )
    header = "".join(
        f"<th align='{align}'>&nbsp;{e(name)}&nbsp;</th>"
        for name, align in (
            ("Stage", "left"),
            ("Module", "left"),
            ("Blocks", "right"),
            ("Channels", "right"),
            ("Size out", "right"),
            ("Shortcut (first / rest)", "left"),
        )
    )
    shortcuts = "".join(
        f"<li>{e(SHORTCUT_WORDS.get(kind, kind))}</li>" for kind in description.shortcut_kinds()
    )
    return (
        f"<h3>{e(description.display_name)}</h3>"
        f"<p>Before the stages (the stem): {e(' · '.join(description.stem) or 'nothing')}.<br>"
        f"After them (the head): {e(' · '.join(description.head) or 'nothing')}.</p>"
        f"<table cellspacing='0' cellpadding='2'><tr>{header}</tr>{stages}</table>"
        f"<p><b>Shortcuts</b></p><ul style='margin-top:0'>{shortcuts}</ul>"
        f"<table cellspacing='0' cellpadding='1'>{facts}</table>"
        "<p><small>FLOPs counted by PyTorch's own FLOP counter, which counts one multiply-add as 2 FLOPs "
        "(convolutions and the classifier; batch norm, ReLU and pooling are not counted).</small></p>"
    )


def _first_and_others(kinds: tuple[str, ...]) -> str:
    """A stage's shortcuts for the table: "projection / identity", or one word when all are alike."""
    return " / ".join(dict.fromkeys(kinds[:2])) or "none"


class AboutModelDialog(QDialog):
    """The description of the model in use (computed in a job) and a drawing of one of its blocks."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.description: ModelDescription | None = None
        self._job: Any = None
        self.setWindowTitle("About This Model")
        self.resize(1000, 700)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.facts = QLabel()
        self.facts.setTextFormat(Qt.TextFormat.RichText)
        self.facts.setWordWrap(True)
        self.facts.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        facts_scroll = QScrollArea()
        facts_scroll.setWidgetResizable(True)
        facts_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        facts_scroll.setWidget(self.facts)

        self.diagram_title = QLabel("<b>What “residual” means here</b>")
        self.diagram_caption = QLabel("")
        self.diagram_caption.setWordWrap(True)
        self.diagram_view = BlockDiagramView()
        self.diagram_note = QLabel("")
        self.diagram_note.setWordWrap(True)
        diagram_panel = QWidget()
        diagram_column = QVBoxLayout(diagram_panel)
        diagram_column.setContentsMargins(0, 0, 0, 0)
        diagram_column.addWidget(self.diagram_title)
        diagram_column.addWidget(self.diagram_caption)
        diagram_column.addWidget(self.diagram_view)
        diagram_column.addWidget(self.diagram_note)
        diagram_column.addStretch(1)
        diagram_scroll = QScrollArea()
        diagram_scroll.setWidgetResizable(True)
        diagram_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        diagram_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        diagram_scroll.setWidget(diagram_panel)
        diagram_scroll.setFixedWidth(self.diagram_view.sizeHint().width() + 24)

        body = QHBoxLayout()
        body.addWidget(facts_scroll, 1)
        body.addWidget(diagram_scroll)

        self.copy_button = QPushButton("Copy as Text")
        self.copy_button.clicked.connect(self.copy_text)
        self.copy_button.setEnabled(False)
        close = QPushButton("Close")
        close.setDefault(True)
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_button)
        buttons.addStretch(1)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addLayout(body, 1)
        layout.addLayout(buttons)
        controller.model_changed.connect(self._model_changed)
        self.refresh()

    def running(self) -> bool:
        return self._job is not None and not self._job.done

    def refresh(self) -> None:
        """Describe the model in use now (in a job; the last description stays until the new one comes)."""
        classifier = self.controller.classifier
        if classifier is None:
            self.status.setText("No model is loaded yet: its description appears once it is.")
            return
        self.status.setText("Measuring the model: building its layers and counting its FLOPs…")
        self._job = self.controller.start_job(
            "describe-model",
            describe_in_use,
            classifier,
            on_result=self._described,
            on_error=self._failed,
        )

    def _model_changed(self, info: Any) -> None:
        if self.isVisible():
            self.refresh()

    def _described(self, description: ModelDescription) -> None:
        self.description = description
        self.status.setText("")
        self.status.hide()
        self.facts.setText(description_html(description))
        diagram = description.block_diagram() if description.diagrams else None
        self.diagram_view.set_diagram(diagram)
        if diagram is not None:
            self.diagram_caption.setText(diagram.caption())
            self.diagram_note.setText(_residual_note(description, diagram))
        self.copy_button.setEnabled(True)

    def _failed(self, error: BaseException) -> None:
        self.status.show()
        self.status.setText(describe_error(error, "describe the model"))

    def copy_text(self) -> None:
        if self.description is not None:
            QApplication.clipboard().setText("\n".join(self.description.lines()))


def _residual_note(description: ModelDescription, diagram: BlockDiagram) -> str:
    """A sentence under the drawing: what the shortcut does, and what the other blocks do."""
    if not diagram.has_add:
        return (
            "This is a plain network: nothing goes around the layers, so each block must learn the "
            "whole change on its own (the 2015 paper's comparison for its residual networks)."
        )
    others = sum(stage.blocks for stage in description.stages) - 1
    around = (
        "The orange path carries the block's input around its layers and ⊕ adds it back, so the "
        "layers only learn a change (a residual) to it."
    )
    if diagram.shortcut_kind == "identity":
        return around
    return (
        f"{around} This block changes the shape, so its shortcut does too ({diagram.shortcut_kind}); "
        f"most of the other {others} blocks add their input unchanged (identity)."
    )
