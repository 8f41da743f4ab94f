"""Small painted charts: live training curves, a clickable confusion matrix, a reliability diagram
(the wizard's results) and the faithfulness curves of a heat map (the explanation panel).

All are plain QWidgets drawn with QPainter (no matplotlib: they repaint every epoch and must stay
cheap), fed plain numbers, numpy arrays and core's dataclasses (never tensors), and coloured from
the palette so dark mode works.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QHelpEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from resnet_gui.core.calibration import ReliabilityBin, describe_bin
from resnet_gui.core.explain.maps import DeletionResult, RoadResult, faithfulness_curves
from resnet_gui.gui.qtutil import bold_font, muted, soft

NBSP = "\u00a0"
PAD = 8

# Series declared implicitly (add_point before add_series) cycle through these; they read on light and dark.
DEFAULT_SERIES_COLORS = ("#3b82f6", "#f97316", "#10b981", "#a855f7", "#ef4444", "#0ea5e9")
# Confusion-matrix hues: right answers and mistakes (blue-green against orange-red, not pure green/red).
CORRECT_COLOR = QColor("#1f9d6b")
MISTAKE_COLOR = QColor("#e4572e")
MAX_CELL = 120  # px: a 2x2 matrix in a big window stays a compact grid
# Reliability and faithfulness: the same two hues as the matplotlib PNG (core.calibration).
BEFORE_COLOR = QColor("#f97316")
AFTER_COLOR = QColor("#3b82f6")


def _finite(value: float | None) -> bool:
    return value is not None and isinstance(value, (int, float, np.number)) and math.isfinite(value)


def _nice_step(raw: float) -> float:
    """The smallest 1/2/2.5/5 x 10^k step >= ``raw``: tick labels people can read."""
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    exponent = math.floor(math.log10(raw))
    for mantissa in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = mantissa * 10**exponent
        if step >= raw * (1 - 1e-9):
            return step
    return 10.0 ** (exponent + 1)


def _step_decimals(step: float) -> int:
    """Decimals needed to print multiples of ``step`` exactly (0.25 -> 2, 0.2 -> 1, 5 -> 0)."""
    for decimals in range(7):
        scaled = step * 10**decimals
        if abs(scaled - round(scaled)) < 1e-6:
            return decimals
    return 6


def format_share(fraction: float) -> str:
    """0.083 -> "8 %"; a small non-zero share stays visible ("<1 %") instead of rounding to zero."""
    percent = fraction * 100
    if 0 < percent < 1:
        return f"<1{NBSP}%"
    return f"{percent:.0f}{NBSP}%"


def _luminance(color: QColor) -> float:
    """Relative luminance (WCAG), to pick black or white text on a fill."""

    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF()) + 0.0722 * channel(color.blueF())


def _over(color: QColor, background: QColor) -> QColor:
    """``color`` (with alpha) composited over an opaque ``background``: what the eye sees."""
    alpha = color.alphaF()
    return QColor.fromRgbF(
        color.redF() * alpha + background.redF() * (1 - alpha),
        color.greenF() * alpha + background.greenF() * (1 - alpha),
        color.blueF() * alpha + background.blueF() * (1 - alpha),
    )


def _contrast_text(fill: QColor) -> QColor:
    return QColor(24, 24, 24) if _luminance(fill) > 0.36 else QColor(250, 250, 250)


@dataclass
class _Series:
    name: str
    color: QColor
    dashed: bool = False
    points: list[tuple[float, float]] = field(default_factory=list)


class CurveChart(QWidget):
    """A live line chart of named series over epochs (loss, accuracy), with "best" and stage markers."""

    emphasise_last = True
    """Draw the last point of each series larger (the latest epoch)."""

    def __init__(self, title: str, *, percent: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.percent = percent
        self._series: dict[str, _Series] = {}
        self._marker: tuple[float, str] | None = None
        self._boundaries: list[tuple[float, str]] = []
        self._x_max: float | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName(f"{title} chart")
        self._update_summary()

    # -- data -------------------------------------------------------------------------------------------

    def add_series(self, name: str, color: QColor, *, dashed: bool = False) -> None:
        """Declare a series (legend order); declaring it again restyles it and keeps its points."""
        series = self._series.get(name)
        if series is None:
            self._series[name] = _Series(name, QColor(color), dashed)
        else:
            series.color, series.dashed = QColor(color), dashed
        self.update()

    def add_point(self, name: str, x: float, y: float) -> None:
        """Append a point (an unknown series is declared with a default colour); nan/inf/None are skipped."""
        if name not in self._series:
            color = DEFAULT_SERIES_COLORS[len(self._series) % len(DEFAULT_SERIES_COLORS)]
            self._series[name] = _Series(name, QColor(color))
        if not (_finite(x) and _finite(y)):
            return
        self._series[name].points.append((float(x), float(y)))
        self._update_summary()
        self.update()

    def points(self, name: str) -> list[tuple[float, float]]:
        series = self._series.get(name)
        return list(series.points) if series else []

    def series_names(self) -> list[str]:
        return list(self._series)

    def set_marker(self, x: float | None, text: str = "") -> None:
        """One solid vertical line (e.g. the best epoch so far); None removes it."""
        self._marker = (float(x), text) if _finite(x) else None
        self.update()

    def marker(self) -> tuple[float, str] | None:
        return self._marker

    def add_boundary(self, x: float, text: str) -> None:
        """A dotted vertical line with a label, e.g. where stage 2 (fine-tuning all layers) starts."""
        if _finite(x):
            self._boundaries.append((float(x), text))
            self.update()

    def boundaries(self) -> list[tuple[float, str]]:
        return list(self._boundaries)

    def set_x_max(self, x: float | None) -> None:
        """Reserve the x axis up to ``x`` (the planned epochs) so the curve grows left to right."""
        self._x_max = float(x) if _finite(x) else None
        self.update()

    def clear(self) -> None:
        """Drop all points, the marker and the boundaries; the declared series (and legend) stay."""
        for series in self._series.values():
            series.points.clear()
        self._marker = None
        self._boundaries.clear()
        self._update_summary()
        self.update()

    def summary(self) -> str:
        """The latest value of each series, e.g. "train: 0.412, val: 0.380 (epoch 5)"."""
        latest = [(s.name, s.points[-1]) for s in self._series.values() if s.points]
        if not latest:
            return "No data yet"
        values = ", ".join(f"{name}: {self._format_value(y)}" for name, (_, y) in latest)
        epoch = max(x for _, (x, _) in latest)
        return f"{values} (epoch {self._format_x(epoch)})"

    def _update_summary(self) -> None:
        text = self.summary()
        self.setToolTip(f"{self.title}: {text}")
        self.setAccessibleDescription(text)

    # -- scales -----------------------------------------------------------------------------------------

    def _all_points(self) -> list[tuple[float, float]]:
        return [p for s in self._series.values() for p in s.points]

    def y_range(self) -> tuple[float, float]:
        """The y range drawn: percent charts min(0.5, lowest) .. 1, others 0 .. about 1.1 x the maximum."""
        ys = [y for _, y in self._all_points()]
        if self.percent:
            low = min([0.5, *ys])
            high = max([1.0, *ys])
            return (math.floor(low * 10 + 1e-9) / 10, math.ceil(high * 10 - 1e-9) / 10)
        if not ys:
            return (0.0, 1.0)
        top = max(ys) * 1.1
        bottom = min(0.0, min(ys) * 1.1)
        if top <= 0:
            top = 1.0 if bottom == 0 else 0.0
        step = _nice_step((top - bottom) / 5)
        return (
            round(math.floor(bottom / step + 1e-9) * step, 10),
            round(math.ceil(top / step - 1e-9) * step, 10),
        )

    def x_range(self) -> tuple[float, float]:
        """Whole epochs covering the points, marker, boundaries and the reserved maximum."""
        xs = [x for x, _ in self._all_points()]
        xs += [x for x, _ in self._boundaries]
        if self._marker is not None:
            xs.append(self._marker[0])
        if self._x_max is not None:
            xs.append(self._x_max)
        if not xs:
            return (0.0, 1.0)
        low, high = math.floor(min(xs)), math.ceil(max(xs))
        return (float(low), float(max(high, low + 1)))

    def _format_value(self, y: float) -> str:
        if self.percent:
            return f"{y * 100:.1f}{NBSP}%"
        magnitude = abs(y)
        if magnitude >= 100:
            return f"{y:.0f}"
        if magnitude >= 10:
            return f"{y:.1f}"
        return f"{y:.3f}"

    @staticmethod
    def _format_x(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    # -- painting ---------------------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        return QSize(360, 220)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, 130)

    def _title_font(self) -> QFont:
        return bold_font(self.font())

    def _small_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.88))
        return font

    def _legend_items(self, metrics: QFontMetrics) -> list[tuple[_Series, int]]:
        return [(s, 18 + 5 + metrics.horizontalAdvance(s.name)) for s in self._series.values()]

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        text_color = palette.color(QPalette.ColorRole.Text)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.rect()).adjusted(PAD, PAD - 2, -PAD, -PAD + 2)

        # Header: the title, then the legend on the same line when it fits, otherwise wrapped below.
        title_font = self._title_font()
        title_metrics = QFontMetrics(title_font)
        small = self._small_font()
        small_metrics = QFontMetrics(small)
        line_height = max(title_metrics.height(), small_metrics.height())
        painter.setFont(title_font)
        painter.setPen(text_color)
        title_width = min(title_metrics.horizontalAdvance(self.title), int(area.width()))
        painter.drawText(
            QRectF(area.left(), area.top(), title_width + 2, line_height),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            title_metrics.elidedText(self.title, Qt.TextElideMode.ElideRight, title_width + 2),
        )
        items = self._legend_items(small_metrics)
        gap = 14
        legend_width = sum(width for _, width in items) + gap * max(0, len(items) - 1)
        if items and title_width + 24 + legend_width <= area.width():
            rows = [items]
            x0, y = area.right() - legend_width, area.top()
            header_bottom = area.top() + line_height
        else:
            rows, row, used = [], [], 0.0
            for item in items:
                if row and used + gap + item[1] > area.width():
                    rows.append(row)
                    row, used = [], 0.0
                used += (gap if row else 0) + item[1]
                row.append(item)
            if row:
                rows.append(row)
            x0, y = area.left(), area.top() + line_height + 2
            header_bottom = y + len(rows) * line_height
        painter.setFont(small)
        for row in rows:
            x = x0
            for series, width in row:
                mid = y + line_height / 2
                painter.setPen(self._series_pen(series, 2.5))
                painter.drawLine(QPointF(x, mid), QPointF(x + 18, mid))
                painter.setPen(text_color)
                painter.drawText(
                    QRectF(x + 23, y, width - 23 + 2, line_height),
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    series.name,
                )
                x += width + gap
            y += line_height

        body = QRectF(area.left(), header_bottom + 6, area.width(), area.bottom() - header_bottom - 6)
        if not self._all_points():
            painter.setFont(self.font())
            painter.setPen(muted(palette))
            painter.drawText(body, Qt.AlignmentFlag.AlignCenter, "No data yet")
            painter.end()
            return
        self._paint_plot(painter, body, small, small_metrics)
        painter.end()

    def _series_pen(self, series: _Series, width: float) -> QPen:
        pen = QPen(series.color, width)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        if series.dashed:
            pen.setStyle(Qt.PenStyle.CustomDashLine)
            pen.setDashPattern([3.0, 2.5])
        return pen

    def _paint_plot(self, painter: QPainter, body: QRectF, small: QFont, metrics: QFontMetrics) -> None:
        palette = self.palette()
        text_color = palette.color(QPalette.ColorRole.Text)
        line_height = metrics.height()

        # Label bands above the plot for the boundaries and the marker, so labels never cover curves.
        bands = int(bool(self._boundaries)) + int(self._marker is not None and bool(self._marker[1]))
        top = body.top() + bands * (line_height + 1) + (4 if bands else 0)
        bottom = body.bottom() - line_height - 4
        x_low, x_high = self.x_range()
        y_low, y_high = self.y_range()

        # Y ticks: as many as fit, on a readable step; their labels set the left margin.
        plot_height = max(1.0, bottom - top)
        max_ticks = max(2, int(plot_height // (line_height * 1.6)))
        y_step = _nice_step((y_high - y_low) / max_ticks)
        if self.percent:
            y_step = max(y_step, 0.05)
        first = math.ceil(y_low / y_step - 1e-9)
        y_ticks = [round(i * y_step, 10) for i in range(first, first + 1000) if i * y_step <= y_high + 1e-9]
        decimals = _step_decimals(y_step * (100 if self.percent else 1))
        labels = [f"{v * 100:.{decimals}f}{NBSP}%" if self.percent else f"{v:.{decimals}f}" for v in y_ticks]
        label_width = max(metrics.horizontalAdvance(text) for text in labels)
        x_label_width = metrics.horizontalAdvance(self._format_x(x_high))
        left = body.left() + label_width + 6
        right = body.right() - max(4, x_label_width / 2)
        inset = 5.0  # dots at the first/last epoch stay inside the axes
        plot = QRectF(left, top, max(1.0, right - left), plot_height)

        def px(x: float) -> float:
            return plot.left() + inset + (x - x_low) / (x_high - x_low) * max(1.0, plot.width() - 2 * inset)

        def py(y: float) -> float:
            return plot.bottom() - (y - y_low) / (y_high - y_low) * plot.height()

        # Grid, y labels, axes.
        painter.setFont(small)
        for value, text in zip(y_ticks, labels, strict=True):
            y = py(value)
            painter.setPen(QPen(soft(text_color, 24), 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(muted(palette))
            painter.drawText(
                QRectF(body.left(), y - line_height / 2, label_width, line_height),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                text,
            )
        painter.setPen(QPen(soft(text_color, 110), 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())

        # X ticks: whole epochs on a 1/2/5/10... step that leaves room for each label.
        slot = max(metrics.horizontalAdvance(text) for text in ("8888", self._format_x(x_high))) + 8
        max_x_ticks = max(1, int(plot.width() // slot))
        x_step = next(
            step
            for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 10**9)
            if (x_high - x_low) / step <= max_x_ticks
        )
        x_tick = math.ceil(x_low / x_step) * x_step
        while x_tick <= x_high + 1e-9:
            x = px(x_tick)
            painter.setPen(QPen(soft(text_color, 110), 1))
            painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 3))
            painter.setPen(muted(palette))
            painter.drawText(
                QRectF(x - slot / 2, plot.bottom() + 4, slot, line_height),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                self._format_x(x_tick),
            )
            x_tick += x_step

        # Boundaries (dotted, muted) and the marker (solid), with their labels in the bands above.
        band = 0
        if self._boundaries:
            for x_value, text in self._boundaries:
                self._paint_vertical(painter, px(x_value), plot, body.top(), text, metrics, marker=False)
            band = 1
        if self._marker is not None:
            x_value, text = self._marker
            label_top = body.top() + band * (line_height + 1)
            self._paint_vertical(painter, px(x_value), plot, label_top, text, metrics, marker=True)

        # The series: polylines with dots (dots dropped when points are too dense to tell apart).
        painter.save()
        painter.setClipRect(plot.adjusted(-4, -4, 4, 4))
        for series in self._series.values():
            if not series.points:
                continue
            path = QPainterPath()
            mapped = [QPointF(px(x), py(y)) for x, y in series.points]
            path.moveTo(mapped[0])
            for point in mapped[1:]:
                path.lineTo(point)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(self._series_pen(series, 2.0))
            painter.drawPath(path)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(series.color)
            dense = len(mapped) > plot.width() / 8
            for index, point in enumerate(mapped):
                last = self.emphasise_last and index == len(mapped) - 1
                if dense and not last:
                    continue
                radius = 3.2 if last else 2.4
                painter.drawEllipse(point, radius, radius)
        painter.restore()

    def _paint_vertical(
        self,
        painter: QPainter,
        x: float,
        plot: QRectF,
        label_top: float,
        text: str,
        metrics: QFontMetrics,
        *,
        marker: bool,
    ) -> None:
        palette = self.palette()
        text_color = palette.color(QPalette.ColorRole.Text)
        color = soft(text_color, 170) if marker else muted(palette)
        pen = QPen(color, 1.3 if marker else 1.2)
        if not marker:
            pen.setStyle(Qt.PenStyle.DotLine)
        painter.setPen(pen)
        line_top = label_top + metrics.height() if text else plot.top()
        painter.drawLine(QPointF(x, min(line_top, plot.top())), QPointF(x, plot.bottom()))
        if not text:
            return
        font = QFont(painter.font())
        font.setBold(marker)
        label_metrics = QFontMetrics(font)
        available = int(self.width() - 2 * PAD)
        text = label_metrics.elidedText(text, Qt.TextElideMode.ElideRight, available)
        width = label_metrics.horizontalAdvance(text) + 4
        left = min(max(x - width / 2, PAD), self.width() - PAD - width)
        painter.save()
        painter.setFont(font)
        painter.setPen(text_color if marker else muted(palette))
        painter.drawText(
            QRectF(left, label_top, width, metrics.height()),
            Qt.AlignmentFlag.AlignCenter,
            text,
        )
        painter.restore()


class FaithfulnessChart(CurveChart):
    """A heat map's faithfulness curves: the class's probability as more of the photo is removed.

    Fed core's :class:`~resnet_gui.core.explain.maps.RoadResult` or ``DeletionResult`` (the lines
    are :func:`~resnet_gui.core.explain.maps.faithfulness_curves`); x is the share of the photo
    removed, y the probability, 0 to 100 %.
    """

    emphasise_last = False
    # Lines in legend order: the map's two (or the map and random squares, dashed).
    COLORS = (BEFORE_COLOR, AFTER_COLOR)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Probability as pixels are removed", percent=True, parent=parent)
        self.setAccessibleName("Faithfulness chart")
        self._result: RoadResult | DeletionResult | None = None

    def set_result(self, result: RoadResult | DeletionResult | None, label: str = "") -> None:
        """Show ``result``'s curves (None: none), for the class called ``label``."""
        self._result = result
        self._series.clear()
        if result is not None:
            for curve, color in zip(faithfulness_curves(result), self.COLORS, strict=False):
                shown = muted(self.palette()) if curve.yardstick else color
                self.add_series(curve.name, shown, dashed=curve.yardstick)
                for removed, probability in zip(curve.removed, curve.probability, strict=True):
                    self.add_point(curve.name, float(removed) * 100.0, float(probability))
        self.title = f"“{label}” as pixels are removed" if label else "Probability as pixels are removed"
        self._update_summary()
        self.update()

    def result(self) -> RoadResult | DeletionResult | None:
        return self._result

    def y_range(self) -> tuple[float, float]:
        return (0.0, 1.0)

    @staticmethod
    def _format_x(x: float) -> str:
        return f"{x:.0f}{NBSP}%"

    def summary(self) -> str:
        """Each line's probability at the most removed, e.g. "important removed first: 0.1 %, …"."""
        latest = [(s.name, s.points[-1]) for s in self._series.values() if s.points]
        if not latest:
            return "Not checked yet"
        values = ", ".join(f"{name}: {self._format_value(y)}" for name, (_, y) in latest)
        return f"{values} with {self._format_x(max(x for _, (x, _) in latest))} removed"

    def sizeHint(self) -> QSize:
        return QSize(300, 190)


@dataclass(frozen=True)
class _Grid:
    """Where a confusion matrix is painted at the widget's current size."""

    xs: tuple[int, ...]  # column edges
    ys: tuple[int, ...]  # row edges
    row_labels: QRect  # true-class names, right-aligned against the grid
    column_labels: QRect  # predicted-class names, above the grid
    rotated: bool  # column names written bottom-to-top (they do not fit across a cell)
    true_title: QRect
    predicted_title: QRect
    label_font: QFont
    row_label_step: int  # draw every n-th name when rows are thinner than a line of text
    column_label_step: int

    @property
    def rect(self) -> QRect:
        return QRect(QPoint(self.xs[0], self.ys[0]), QPoint(self.xs[-1] - 1, self.ys[-1] - 1))


class ConfusionMatrixView(QWidget):
    """A confusion matrix as a heat map: rows are true classes, columns predictions; cells are clickable.

    A cell's colour says whether it holds right answers (diagonal) or mistakes, and its strength the
    share of that true class, so a class that is half confused stands out whatever its size.
    """

    cell_clicked = Signal(int, int)  # (true row, predicted column)

    def __init__(
        self, parent: QWidget | None = None, *, empty_text: str = "No evaluation results yet"
    ) -> None:
        super().__init__(parent)
        self.empty_text = empty_text
        self._matrix: np.ndarray | None = None
        self._rows: list[str] = []
        self._columns: list[str] = []
        self._selected: tuple[int, int] | None = None
        self._hover: tuple[int, int] | None = None
        self._version = 0  # bumped by every change of matrix, for the pixmap cache
        self._cache: tuple[tuple[object, ...], QPixmap] | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Confusion matrix")
        self.setAccessibleDescription(empty_text)

    # -- data -------------------------------------------------------------------------------------------

    def set_matrix(self, matrix: np.ndarray, rows: Sequence[str], columns: Sequence[str]) -> None:
        """Show ``matrix`` (counts, shape (len(rows), len(columns))); keeps the selection if it still fits."""
        data = np.nan_to_num(np.asarray(matrix, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if data.ndim != 2 or data.shape != (len(rows), len(columns)):
            raise ValueError(
                f"matrix shape {data.shape} does not match {len(rows)} rows x {len(columns)} columns"
            )
        self._matrix = np.clip(np.rint(data), 0, None).astype(np.int64)
        self._rows = [str(r) for r in rows]
        self._columns = [str(c) for c in columns]
        if self._selected is not None and not self._valid(*self._selected):
            self._selected = None
        self._hover = None
        self._version += 1
        total = int(self._matrix.sum())
        diagonal = min(self._matrix.shape)
        correct = int(np.trace(self._matrix[:diagonal, :diagonal]))
        accuracy = f", {format_share(correct / total)} correct" if total else ""
        shape = f"{len(self._rows)} true classes by {len(self._columns)} predicted classes"
        self.setAccessibleDescription(f"{shape}, {total} images{accuracy}")
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        """Back to the empty state."""
        self._matrix = None
        self._rows, self._columns = [], []
        self._selected = self._hover = None
        self._version += 1
        self._cache = None
        self.setAccessibleDescription(self.empty_text)
        self.update()

    def matrix(self) -> np.ndarray | None:
        return None if self._matrix is None else self._matrix.copy()

    def _valid(self, row: int, column: int) -> bool:
        return (
            self._matrix is not None
            and 0 <= row < self._matrix.shape[0]
            and 0 <= column < self._matrix.shape[1]
        )

    def selected(self) -> tuple[int, int] | None:
        return self._selected

    def select(self, row: int, column: int) -> None:
        """Highlight a cell and emit ``cell_clicked`` for it (as a click does)."""
        if not self._valid(row, column):
            raise IndexError(f"no cell ({row}, {column}) in this confusion matrix")
        self._selected = (row, column)
        self.update()
        self.cell_clicked.emit(row, column)

    def clear_selection(self) -> None:
        self._selected = None
        self.update()

    def row_share(self, row: int, column: int) -> float:
        """The cell's share of its true class (0 when the class has no images)."""
        assert self._matrix is not None
        total = int(self._matrix[row].sum())
        return float(self._matrix[row, column]) / total if total else 0.0

    def cell_color(self, row: int, column: int) -> QColor:
        """The cell's fill, drawn over the palette's Base colour.

        Hue: CORRECT_COLOR on the diagonal, MISTAKE_COLOR elsewhere. Alpha: the share of the true
        class (a lone mistake still shows; 100 % is opaque). Empty cells are a barely-there neutral.
        """
        if not self._valid(row, column):
            return QColor(Qt.GlobalColor.transparent)
        assert self._matrix is not None
        if self._matrix[row, column] == 0:
            return soft(self.palette().color(QPalette.ColorRole.Text), 10)
        share = self.row_share(row, column)
        color = QColor(CORRECT_COLOR if row == column else MISTAKE_COLOR)
        color.setAlpha(round(34 + 221 * share**0.6))
        return color

    def cell_tooltip(self, row: int, column: int) -> str:
        """E.g. "12 “ants” images predicted as “bees” (8 % of ants)"."""
        assert self._matrix is not None
        count = int(self._matrix[row, column])
        true_name, predicted = self._rows[row], self._columns[column]
        total = int(self._matrix[row].sum())
        noun = "image" if count == 1 else "images"
        share = format_share(self.row_share(row, column))
        if row == column:
            return f"{count} of {total} “{true_name}” images predicted correctly ({share})"
        return f"{count} “{true_name}” {noun} predicted as “{predicted}” ({share} of {true_name})"

    # -- geometry ---------------------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        if self._matrix is None:
            return QSize(420, 340)
        rows, columns = self._matrix.shape
        return QSize(min(760, 200 + 52 * columns), min(640, 120 + 44 * rows))

    def minimumSizeHint(self) -> QSize:
        return QSize(220, 180)

    def _grid(self) -> _Grid | None:
        if self._matrix is None:
            return None
        n_rows, n_columns = self._matrix.shape
        width, height = self.width(), self.height()
        title_font = self._title_font()
        title_height = QFontMetrics(title_font).height()
        font = QFont(self.font())
        metrics = QFontMetrics(font)
        line = metrics.height()

        row_name_width = max(metrics.horizontalAdvance(name) for name in self._rows) + 10
        row_name_width = max(2 * line, min(row_name_width, int(width * 0.28)))
        column_name_width = max(metrics.horizontalAdvance(name) for name in self._columns)
        left_block = title_height + 6 + row_name_width
        available_width = width - 2 * PAD - left_block

        def cells(header: float) -> tuple[float, float, float]:
            top_block = title_height + 4 + header
            available_height = height - 2 * PAD - top_block
            cell_w = max(0.0, available_width / n_columns)
            cell_h = max(0.0, available_height / n_rows)
            # Keep cells roughly square and no larger than MAX_CELL: a big window does not stretch them.
            return min(cell_w, cell_h * 1.5, MAX_CELL), min(cell_h, cell_w * 1.5, MAX_CELL), top_block

        cell_w, cell_h, top_block = cells(line + 6)
        rotated = column_name_width + 8 > cell_w
        if rotated:
            header = min(column_name_width + 10, max(3 * line, height * 0.22))
            cell_w, cell_h, top_block = cells(header)
        else:
            header = line + 6

        # Shrink label text for thin rows/columns, then thin out the labels if even that is not enough.
        thinnest = min(cell_h, cell_w if rotated else cell_h)
        if 0 < thinnest < line:
            font.setPointSizeF(max(6.0, font.pointSizeF() * max(0.7, thinnest / line)))
        small_line = QFontMetrics(font).height()
        row_step = max(1, math.ceil(small_line / max(cell_h, 1e-6) - 1e-6))
        column_step = max(1, math.ceil(small_line / max(cell_w, 1e-6) - 1e-6)) if rotated else 1

        grid_width, grid_height = cell_w * n_columns, cell_h * n_rows
        left = PAD + max(0.0, (width - 2 * PAD - left_block - grid_width) / 2)
        top = PAD + max(0.0, (height - 2 * PAD - top_block - grid_height) / 2)
        grid_left, grid_top = left + left_block, top + top_block
        xs = tuple(round(grid_left + i * cell_w) for i in range(n_columns + 1))
        ys = tuple(round(grid_top + i * cell_h) for i in range(n_rows + 1))
        return _Grid(
            xs=xs,
            ys=ys,
            row_labels=QRect(round(left + title_height + 6), ys[0], row_name_width - 6, ys[-1] - ys[0]),
            column_labels=QRect(xs[0], round(grid_top - header), xs[-1] - xs[0], round(header) - 2),
            rotated=rotated,
            true_title=QRect(round(left), ys[0], title_height, ys[-1] - ys[0]),
            predicted_title=QRect(xs[0], round(top), xs[-1] - xs[0], title_height),
            label_font=font,
            row_label_step=row_step,
            column_label_step=column_step,
        )

    def cell_rect(self, row: int, column: int) -> QRect:
        """Where cell (row, column) is painted now (an empty QRect when there is no such cell)."""
        grid = self._grid()
        if grid is None or not self._valid(row, column):
            return QRect()
        return QRect(
            grid.xs[column],
            grid.ys[row],
            grid.xs[column + 1] - grid.xs[column],
            grid.ys[row + 1] - grid.ys[row],
        )

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        grid = self._grid()
        if grid is None:
            return None
        x, y = pos.x(), pos.y()
        if not (grid.xs[0] <= x < grid.xs[-1] and grid.ys[0] <= y < grid.ys[-1]):
            return None
        column = next(i for i in range(len(grid.xs) - 1) if x < grid.xs[i + 1])
        row = next(i for i in range(len(grid.ys) - 1) if y < grid.ys[i + 1])
        return (row, column)

    def _title_font(self) -> QFont:
        return bold_font(self.font())

    # -- events -----------------------------------------------------------------------------------------

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            cell = self.cell_at(event.position().toPoint())
            if cell is not None:
                self.select(*cell)
                return
        super().mouseReleaseEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell != self._hover:
            self._hover = cell
            if cell is None:
                self.unsetCursor()
            else:
                self.setCursor(Qt.CursorShape.PointingHandCursor)
            self.update()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        if self._hover is not None:
            self._hover = None
            self.update()
        super().leaveEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text, area = self._tooltip_at(event.pos())
            if text:
                QToolTip.showText(event.globalPos(), text, self, area)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def _tooltip_at(self, pos: QPoint) -> tuple[str, QRect]:
        """The hover text at ``pos``: a cell's counts, or a (possibly elided) class name in full."""
        grid = self._grid()
        if grid is None or self._matrix is None:
            return "", QRect()
        cell = self.cell_at(pos)
        if cell is not None:
            return self.cell_tooltip(*cell), self.cell_rect(*cell)
        if grid.row_labels.contains(pos):
            row = next((i for i in range(len(self._rows)) if pos.y() < grid.ys[i + 1]), None)
            if row is not None:
                total = int(self._matrix[row].sum())
                return f"True class “{self._rows[row]}”: {total} images", QRect()
        if grid.column_labels.contains(pos):
            column = next((i for i in range(len(self._columns)) if pos.x() < grid.xs[i + 1]), None)
            if column is not None:
                total = int(self._matrix[:, column].sum())
                return f"Predicted as “{self._columns[column]}”: {total} images", QRect()
        return "", QRect()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._matrix is None:
            super().keyPressEvent(event)
            return
        moves = {
            Qt.Key.Key_Left: (0, -1),
            Qt.Key.Key_Right: (0, 1),
            Qt.Key.Key_Up: (-1, 0),
            Qt.Key.Key_Down: (1, 0),
        }
        key = event.key()
        if key in moves:
            if self._selected is None:
                self._selected = (0, 0)
            else:
                d_row, d_column = moves[key]
                n_rows, n_columns = self._matrix.shape
                row = min(max(self._selected[0] + d_row, 0), n_rows - 1)
                column = min(max(self._selected[1] + d_column, 0), n_columns - 1)
                self._selected = (row, column)
            self.update()
            event.accept()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            if self._selected is not None:
                self.cell_clicked.emit(*self._selected)
            event.accept()
        else:
            super().keyPressEvent(event)

    # -- painting ---------------------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (
            QEvent.Type.PaletteChange,
            QEvent.Type.ApplicationPaletteChange,
            QEvent.Type.FontChange,
            QEvent.Type.StyleChange,
        ):
            self._cache = None
            self.update()

    def _grid_pixmap(self, grid: _Grid) -> QPixmap:
        """Titles, labels and cells, rendered once per matrix, size, palette and selection.

        Hover and focus only draw frames over it, so moving the mouse over a 20x21 matrix stays cheap.
        """
        ratio = self.devicePixelRatioF()
        key = (
            self._version,
            self.size().toTuple(),
            ratio,
            self.palette().cacheKey(),
            self.font().key(),
            self._selected,
        )
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        pixmap = QPixmap(max(1, round(self.width() * ratio)), max(1, round(self.height() * ratio)))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        self._paint_titles(painter, grid)
        self._paint_labels(painter, grid)
        self._paint_cells(painter, grid)
        painter.end()
        self._cache = (key, pixmap)
        return pixmap

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        grid = self._grid()
        if grid is None or self._matrix is None:
            painter.setPen(muted(palette))
            painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, self.empty_text)
            painter.end()
            return
        painter.drawPixmap(0, 0, self._grid_pixmap(grid))

        text_color = palette.color(QPalette.ColorRole.Text)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self._hover is not None and self._hover != self._selected:
            painter.setPen(QPen(soft(text_color, 120), 1))
            painter.drawRect(QRectF(self.cell_rect(*self._hover)).adjusted(1, 1, -1, -1))
        if self._selected is not None:
            rect = QRectF(self.cell_rect(*self._selected))
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Base), 3))
            painter.drawRect(rect.adjusted(1.5, 1.5, -1.5, -1.5))
            painter.setPen(QPen(text_color, 2))
            painter.drawRect(rect.adjusted(1, 1, -1, -1))
            if self.hasFocus():
                painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 1))
                painter.drawRect(rect.adjusted(-1, -1, 1, 1))
        painter.end()

    def _paint_titles(self, painter: QPainter, grid: _Grid) -> None:
        painter.setFont(self._title_font())
        painter.setPen(muted(self.palette()))
        painter.drawText(QRectF(grid.predicted_title), Qt.AlignmentFlag.AlignCenter, "Predicted class")
        painter.save()
        title = QRectF(grid.true_title)
        painter.translate(title.center())
        painter.rotate(-90)
        painter.drawText(
            QRectF(-title.height() / 2, -title.width() / 2, title.height(), title.width()),
            Qt.AlignmentFlag.AlignCenter,
            "True class",
        )
        painter.restore()

    def _paint_labels(self, painter: QPainter, grid: _Grid) -> None:
        palette = self.palette()
        text_color = palette.color(QPalette.ColorRole.Text)
        painter.setFont(grid.label_font)
        metrics = QFontMetrics(grid.label_font)
        line = metrics.height()
        highlight_row = self._selected[0] if self._selected else None
        highlight_column = self._selected[1] if self._selected else None

        for row, name in enumerate(self._rows):
            if row % grid.row_label_step and row != highlight_row:
                continue
            y0, y1 = grid.ys[row], grid.ys[row + 1]
            rect = QRectF(grid.row_labels.left(), (y0 + y1) / 2 - line / 2, grid.row_labels.width(), line)
            self._label_font_for(painter, grid, row == highlight_row)
            painter.setPen(text_color)
            painter.drawText(
                rect,
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle, int(rect.width())),
            )

        extra = len(self._columns) > len(self._rows)
        for column, name in enumerate(self._columns):
            if column % grid.column_label_step and column != highlight_column:
                continue
            x0, x1 = grid.xs[column], grid.xs[column + 1]
            self._label_font_for(painter, grid, column == highlight_column)
            is_extra = extra and column >= len(self._rows)
            painter.setPen(muted(palette) if is_extra else text_color)
            label_metrics = painter.fontMetrics()
            area = grid.column_labels
            if grid.rotated:
                length = area.height() - 4
                text = label_metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, int(length))
                painter.save()
                painter.translate((x0 + x1) / 2, area.bottom() - 2)
                painter.rotate(-90)
                painter.drawText(
                    QRectF(0, -line / 2, length, line),
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    text,
                )
                painter.restore()
            else:
                rect = QRectF(x0 + 2, area.top(), x1 - x0 - 4, area.height())
                text = label_metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, int(rect.width()))
                painter.drawText(rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, text)

    @staticmethod
    def _label_font_for(painter: QPainter, grid: _Grid, bold: bool) -> None:
        font = QFont(grid.label_font)
        font.setBold(bold)
        painter.setFont(font)

    def _cell_fonts(self, grid: _Grid) -> tuple[QFont | None, QFont | None]:
        """Fonts for the counts and the row shares, or None where they do not fit the smallest cell.

        Decided once for the whole grid: rows a pixel thinner than others must not lose their numbers.
        """
        assert self._matrix is not None
        width = min(b - a for a, b in zip(grid.xs, grid.xs[1:], strict=False))
        height = min(b - a for a, b in zip(grid.ys, grid.ys[1:], strict=False))
        count_font = QFont(self.font())
        widest = str(int(self._matrix.max()))
        metrics = QFontMetrics(count_font)
        if metrics.height() > height:  # thin rows: a smaller font, down to a legible minimum
            count_font.setPointSizeF(max(6.5, count_font.pointSizeF() * height / metrics.height()))
            metrics = QFontMetrics(count_font)
        if metrics.height() > height + 2 or metrics.horizontalAdvance(widest) + 2 > width:
            return None, None
        share_font = QFont(count_font)
        share_font.setPointSizeF(max(6.5, share_font.pointSizeF() * 0.82))
        share_metrics = QFontMetrics(share_font)
        fits = (
            height >= metrics.height() + share_metrics.height() + 4
            and share_metrics.horizontalAdvance(f"100{NBSP}%") + 4 <= width
        )
        return count_font, share_font if fits else None

    def _paint_cells(self, painter: QPainter, grid: _Grid) -> None:
        assert self._matrix is not None
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(base)
        painter.drawRect(grid.rect)

        count_font, share_font = self._cell_fonts(grid)
        bold_font = QFont(count_font) if count_font else None
        if bold_font:
            bold_font.setBold(True)
        count_height = QFontMetrics(count_font).height() if count_font else 0
        share_height = QFontMetrics(share_font).height() if share_font else 0
        n_rows, n_columns = self._matrix.shape
        for row in range(n_rows):
            for column in range(n_columns):
                cell = QRectF(self.cell_rect(row, column))
                fill = self.cell_color(row, column)
                radius = 3.0 if cell.width() >= 28 and cell.height() >= 28 else 0.0
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(fill)
                painter.drawRoundedRect(cell.adjusted(0.5, 0.5, -0.5, -0.5), radius, radius)
                if count_font is None or bold_font is None:
                    continue

                count = int(self._matrix[row, column])
                ink = _contrast_text(_over(fill, base)) if count else muted(palette)
                painter.setFont(bold_font if row == column and count else count_font)
                painter.setPen(ink)
                if share_font is None or count == 0:
                    painter.drawText(cell, Qt.AlignmentFlag.AlignCenter, str(count))
                    continue
                top = cell.center().y() - (count_height + share_height) / 2
                painter.drawText(
                    QRectF(cell.left(), top, cell.width(), count_height),
                    Qt.AlignmentFlag.AlignCenter,
                    str(count),
                )
                faded = QColor(ink)
                faded.setAlpha(200)
                painter.setFont(share_font)
                painter.setPen(faded)
                painter.drawText(
                    QRectF(cell.left(), top + count_height, cell.width(), share_height),
                    Qt.AlignmentFlag.AlignCenter,
                    format_share(self.row_share(row, column)),
                )


class ReliabilityDiagram(QWidget):
    """How often the model is right against how sure it says it is: one point per bin of photos.

    Fed core's :class:`~resnet_gui.core.calibration.ReliabilityBin` tables ``before`` scaling (the
    plain softmax) and ``after`` (divided by the model's temperature; None: it has none). A bin's
    point sits at (its mean confidence, its accuracy) and grows with its photos; a calibrated
    model's points lie on the dashed diagonal. Hovering a point tells its bin in words.
    """

    SERIES = (("before", "before scaling", BEFORE_COLOR), ("after", "after scaling", AFTER_COLOR))

    def __init__(self, parent: QWidget | None = None, *, empty_text: str = "No calibration to show") -> None:
        super().__init__(parent)
        self.empty_text = empty_text
        self._bins: dict[str, tuple[ReliabilityBin, ...]] = {}
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Reliability diagram")
        self.setAccessibleDescription(empty_text)

    # -- data -------------------------------------------------------------------------------------------

    def set_bins(
        self, before: Sequence[ReliabilityBin], after: Sequence[ReliabilityBin] | None = None
    ) -> None:
        """Show these tables (each in bin order, as core's :func:`reliability` gives them)."""
        self._bins = {"before": tuple(before)}
        if after is not None:
            self._bins["after"] = tuple(after)
        lines = []
        for key, name, _ in self.SERIES:
            table = self._bins.get(key)
            if table is None:
                continue
            photos = sum(b.count for b in table)
            lines.append(f"{name}: {sum(1 for b in table if b.count)} bins with photos, {photos} photos")
        self.setAccessibleDescription("; ".join(lines))
        self.update()

    def clear(self) -> None:
        self._bins = {}
        self.setAccessibleDescription(self.empty_text)
        self.update()

    def bins(self, series: str) -> tuple[ReliabilityBin, ...] | None:
        """The table shown as ``series`` (``before`` or ``after``), None when there is none."""
        return self._bins.get(series)

    # -- geometry ---------------------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        return QSize(320, 300)

    def minimumSizeHint(self) -> QSize:
        return QSize(180, 170)

    def _small_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.88))
        return font

    def _legend(self) -> list[tuple[str, QColor, bool]]:
        """(name, colour, dashed) of each legend entry: the series shown, then the diagonal."""
        entries = [(name, color, False) for key, name, color in self.SERIES if key in self._bins]
        return [*entries, ("perfectly calibrated", muted(self.palette()), True)]

    def _legend_rows(self) -> list[list[tuple[str, QColor, bool, float]]]:
        """The legend entries with their widths, wrapped into rows that fit the widget."""
        metrics = QFontMetrics(self._small_font())
        available = self.width() - 2 * PAD
        rows: list[list[tuple[str, QColor, bool, float]]] = [[]]
        used = 0.0
        for name, color, dashed in self._legend():
            width = 20 + metrics.horizontalAdvance(name) + 2
            if rows[-1] and used + 12 + width > available:
                rows.append([])
                used = 0.0
            used += (12 if rows[-1] else 0) + width
            rows[-1].append((name, color, dashed, width))
        return rows

    def _header_height(self) -> float:
        title = QFontMetrics(bold_font(self.font())).height()
        return title + 2 + len(self._legend_rows()) * QFontMetrics(self._small_font()).height() + 6

    def plot_rect(self) -> QRectF:
        """The square the axes span (0 to 100 % both ways), in widget coordinates."""
        metrics = QFontMetrics(self._small_font())
        left = PAD + metrics.horizontalAdvance(f"100{NBSP}%") + 6
        top = PAD + self._header_height()
        bottom = self.height() - PAD - 2 * metrics.height() - 6
        right = self.width() - PAD - metrics.horizontalAdvance("100") / 2
        side = max(1.0, min(right - left, bottom - top))
        return QRectF(left + max(0.0, (right - left - side) / 2), top, side, side)

    def _radius(self, count: int, most: int) -> float:
        return 2.5 + 4.0 * math.sqrt(count / most) if most else 2.5

    def point_position(self, series: str, index: int) -> QPointF | None:
        """Where bin ``index`` of ``series`` is painted (None: no such bin, or it holds no photo)."""
        table = self._bins.get(series)
        if table is None or not 0 <= index < len(table):
            return None
        bin_ = table[index]
        if not bin_.count or bin_.confidence is None or bin_.accuracy is None:
            return None
        plot = self.plot_rect()
        return QPointF(
            plot.left() + float(bin_.confidence) * plot.width(),
            plot.bottom() - float(bin_.accuracy) * plot.height(),
        )

    def bin_at(self, pos: QPointF) -> tuple[str, int] | None:
        """The (series, bin index) whose point is nearest ``pos``, within its radius plus 3 px."""
        best: tuple[float, str, int] | None = None
        most = max((b.count for table in self._bins.values() for b in table), default=0)
        for key, table in self._bins.items():
            for index, bin_ in enumerate(table):
                point = self.point_position(key, index)
                if point is None:
                    continue
                distance = math.hypot(point.x() - pos.x(), point.y() - pos.y())
                if distance <= self._radius(bin_.count, most) + 3 and (best is None or distance < best[0]):
                    best = (distance, key, index)
        return None if best is None else (best[1], best[2])

    def bin_tooltip(self, series: str, index: int) -> str:
        """E.g. "After scaling: When the model says 93–100 % (on average 97 %), it is right …"."""
        table = self._bins.get(series) or ()
        name = dict((key, name) for key, name, _ in self.SERIES)[series]
        text = describe_bin(table[index]) if 0 <= index < len(table) else ""
        return f"{name.capitalize()}: {text}" if text else ""

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            hit = self.bin_at(QPointF(event.pos()))
            if hit is not None:
                QToolTip.showText(event.globalPos(), self.bin_tooltip(*hit), self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    # -- painting ---------------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        palette = self.palette()
        text_color = palette.color(QPalette.ColorRole.Text)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if not self._bins:
            painter.setPen(muted(palette))
            painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, self.empty_text)
            painter.end()
            return
        title_font = bold_font(self.font())
        small = self._small_font()
        small_metrics = QFontMetrics(small)
        line = small_metrics.height()
        area = QRectF(self.rect()).adjusted(PAD, PAD, -PAD, -PAD)

        # Title, then the legend: the series shown and the diagonal.
        painter.setFont(title_font)
        painter.setPen(text_color)
        title_height = QFontMetrics(title_font).height()
        painter.drawText(
            QRectF(area.left(), area.top(), area.width(), title_height),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            QFontMetrics(title_font).elidedText(
                "How often it is right, by how sure it is", Qt.TextElideMode.ElideRight, int(area.width())
            ),
        )
        painter.setFont(small)
        y = area.top() + title_height + 2
        for row in self._legend_rows():
            x = area.left()
            for name, color, dashed, width in row:
                mid = y + line / 2
                pen = QPen(color, 2.0 if not dashed else 1.3)
                if dashed:
                    pen.setStyle(Qt.PenStyle.DashLine)
                painter.setPen(pen)
                painter.drawLine(QPointF(x, mid), QPointF(x + 16, mid))
                if not dashed:
                    painter.setPen(Qt.PenStyle.NoPen)
                    painter.setBrush(color)
                    painter.drawEllipse(QPointF(x + 8, mid), 3.0, 3.0)
                    painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.setPen(text_color)
                painter.drawText(
                    QRectF(x + 20, y, width - 20, line),
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    name,
                )
                x += width + 12
            y += line

        plot = self.plot_rect()
        # Grid and ticks every 20 %, the axes, the diagonal.
        for step in range(6):
            value = step / 5
            gx = plot.left() + value * plot.width()
            gy = plot.bottom() - value * plot.height()
            painter.setPen(QPen(soft(text_color, 24), 1))
            painter.drawLine(QPointF(plot.left(), gy), QPointF(plot.right(), gy))
            painter.drawLine(QPointF(gx, plot.top()), QPointF(gx, plot.bottom()))
            painter.setPen(muted(palette))
            label = f"{step * 20}{NBSP}%"
            painter.drawText(
                QRectF(PAD, gy - line / 2, plot.left() - PAD - 6, line),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
            painter.drawText(
                QRectF(gx - 30, plot.bottom() + 3, 60, line),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                label,
            )
        painter.drawText(
            QRectF(plot.left(), plot.bottom() + 3 + line, plot.width(), line),
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            "how sure the model says it is",
        )
        painter.setPen(QPen(soft(text_color, 110), 1))
        painter.drawLine(plot.bottomLeft(), plot.bottomRight())
        painter.drawLine(plot.bottomLeft(), plot.topLeft())
        diagonal = QPen(muted(palette), 1.3)
        diagonal.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(diagonal)
        painter.drawLine(plot.bottomLeft(), plot.topRight())

        # The series: a line through the bins that hold photos, a dot per bin sized by its photos.
        most = max((b.count for table in self._bins.values() for b in table), default=0)
        for key, _name, color in self.SERIES:
            table = self._bins.get(key)
            if table is None:
                continue
            points = [
                (self.point_position(key, index), bin_.count)
                for index, bin_ in enumerate(table)
                if self.point_position(key, index) is not None
            ]
            if not points:
                continue
            path = QPainterPath()
            path.moveTo(points[0][0])  # type: ignore[arg-type]
            for point, _count in points[1:]:
                path.lineTo(point)  # type: ignore[arg-type]
            pen = QPen(color, 2.0)
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Base), 1))
            painter.setBrush(color)
            for point, count in points:
                radius = self._radius(count, most)
                painter.drawEllipse(point, radius, radius)  # type: ignore[arg-type]
        painter.end()
