"""The painted charts: the live curve chart, the clickable confusion matrix, the reliability diagram
and the faithfulness curves (offscreen Qt)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QRect, Qt
from PySide6.QtGui import QColor, QHelpEvent, QImage
from PySide6.QtWidgets import QApplication, QToolTip

from resnet_gui.core.calibration import ReliabilityBin, describe_bin
from resnet_gui.core.explain.maps import DeletionResult, RoadResult
from resnet_gui.gui.charts import (
    AFTER_COLOR,
    BEFORE_COLOR,
    ConfusionMatrixView,
    CurveChart,
    FaithfulnessChart,
    ReliabilityDiagram,
)

TRAIN = QColor("#3b82f6")
VAL = QColor("#f97316")


def colour_count(image: QImage, color: QColor, tolerance: int = 10) -> int:
    """Pixels within ``tolerance`` (per channel) of ``color``."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = image.width(), image.height()
    data = np.frombuffer(image.constBits(), np.uint8, image.bytesPerLine() * height)
    pixels = data.reshape(height, image.bytesPerLine())[:, : width * 3].reshape(height, width, 3).astype(int)
    target = np.array([color.red(), color.green(), color.blue()])
    return int((np.abs(pixels - target).max(axis=2) <= tolerance).sum())


def distinct_colours(image: QImage) -> int:
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    data = np.frombuffer(image.constBits(), np.uint32, image.width() * image.height())
    return len(np.unique(data))


# -- CurveChart ----------------------------------------------------------------------------------------


@pytest.fixture()
def chart(qtbot) -> CurveChart:
    widget = CurveChart("Accuracy", percent=True)
    widget.add_series("train", TRAIN)
    widget.add_series("val", VAL, dashed=True)
    qtbot.addWidget(widget)
    widget.resize(420, 260)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_points_are_kept_in_order_and_non_finite_values_skipped(chart: CurveChart) -> None:
    chart.add_point("train", 1, 0.61)
    chart.add_point("train", 2, float("nan"))
    chart.add_point("train", 3, math.inf)
    chart.add_point("train", 4, None)  # type: ignore[arg-type]
    chart.add_point("train", float("nan"), 0.7)
    chart.add_point("train", 5, np.float32(0.8))
    assert chart.points("train") == [(1.0, 0.61), (5.0, pytest.approx(0.8))]
    assert chart.points("val") == []
    assert chart.points("unknown") == []
    chart.grab()  # painting with skipped values does not raise


def test_percent_range_includes_values_and_tops_at_one(chart: CurveChart) -> None:
    assert chart.y_range() == (0.5, 1.0)  # empty: the usual accuracy band
    chart.add_point("train", 1, 0.93)
    assert chart.y_range() == (0.5, 1.0)
    chart.add_point("val", 1, 0.32)
    low, high = chart.y_range()
    assert low <= 0.32 and high == 1.0
    assert low == pytest.approx(0.3)


def test_value_range_starts_at_zero_and_leaves_headroom(qtbot) -> None:
    chart = CurveChart("Loss")
    qtbot.addWidget(chart)
    assert chart.y_range() == (0.0, 1.0)
    for epoch, loss in enumerate([2.3, 1.4, 0.9], start=1):
        chart.add_point("train", epoch, loss)
    low, high = chart.y_range()
    assert low == 0.0
    assert 2.3 * 1.1 <= high <= 2.3 * 1.5
    # A "nice" top: a few 1/2/2.5/5 steps, not 2.53.
    assert any(math.isclose(high / step, round(high / step)) for step in (0.5, 1.0))


def test_tooltip_shows_the_latest_value_of_each_series(qtbot) -> None:
    chart = CurveChart("Loss")
    qtbot.addWidget(chart)
    chart.add_series("train", TRAIN)
    chart.add_series("val", VAL)
    chart.add_point("train", 4, 0.5)
    chart.add_point("train", 5, 0.412)
    chart.add_point("val", 5, 0.38)
    assert "train: 0.412, val: 0.380 (epoch 5)" in chart.toolTip()
    assert chart.accessibleDescription() == "train: 0.412, val: 0.380 (epoch 5)"

    percent = CurveChart("Accuracy", percent=True)
    qtbot.addWidget(percent)
    percent.add_point("val", 3, 0.9123)
    assert "val: 91.2" in percent.toolTip()
    assert "(epoch 3)" in percent.toolTip()


def test_rendering_draws_the_series(chart: CurveChart) -> None:
    empty = chart.grab().toImage()
    assert not empty.isNull() and empty.width() > 0
    # Only the legend sample uses the series colour before there is data.
    before = colour_count(empty, TRAIN)
    for epoch in range(1, 9):
        chart.add_point("train", epoch, 0.6 + epoch * 0.04)
        chart.add_point("val", epoch, 0.55 + epoch * 0.04)
    image = chart.grab().toImage()
    assert colour_count(image, TRAIN) > before + 150
    assert colour_count(image, VAL) > 100
    assert distinct_colours(image) > distinct_colours(empty)


def test_empty_chart_renders(qtbot) -> None:
    chart = CurveChart("Loss")
    qtbot.addWidget(chart)
    chart.resize(360, 220)
    pixmap = chart.grab()
    assert not pixmap.isNull()
    assert distinct_colours(pixmap.toImage()) > 1  # title and "No data yet", not a blank box
    tiny = CurveChart("Loss")
    qtbot.addWidget(tiny)
    tiny.add_point("train", 1, 1.0)
    tiny.resize(40, 30)  # far below the minimum: must not raise
    assert not tiny.grab().isNull()


def test_markers_boundaries_and_clear(chart: CurveChart) -> None:
    for epoch in range(1, 6):
        chart.add_point("train", epoch, 0.7 + epoch * 0.05)
    without = chart.grab().toImage()
    chart.set_marker(3, "best epoch 3")
    chart.add_boundary(4, "stage 2")
    assert chart.marker() == (3.0, "best epoch 3")
    assert chart.boundaries() == [(4.0, "stage 2")]
    with_lines = chart.grab().toImage()
    assert with_lines != without  # the lines and their labels were drawn

    chart.set_marker(None)
    assert chart.marker() is None
    chart.add_boundary(float("nan"), "ignored")
    assert chart.boundaries() == [(4.0, "stage 2")]

    chart.set_marker(5, "best")
    chart.clear()
    assert chart.points("train") == []
    assert chart.marker() is None and chart.boundaries() == []
    assert chart.series_names() == ["train", "val"]  # declared series stay, for the legend
    chart.add_point("train", 1, 0.8)
    assert chart.points("train") == [(1.0, 0.8)]


def test_x_axis_covers_points_and_reserved_epochs(chart: CurveChart) -> None:
    chart.add_point("train", 1, 0.8)
    assert chart.x_range() == (1.0, 2.0)
    chart.add_point("train", 3, 0.85)
    chart.add_boundary(4, "stage 2")
    assert chart.x_range() == (1.0, 4.0)
    chart.set_x_max(10)
    assert chart.x_range() == (1.0, 10.0)


# -- ConfusionMatrixView -------------------------------------------------------------------------------


@pytest.fixture()
def matrix_view(qtbot) -> ConfusionMatrixView:
    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    view.set_matrix(np.array([[50, 2], [10, 40]]), ["ants", "bees"], ["ants", "bees"])
    view.resize(500, 400)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_clicking_a_cell_selects_it_and_emits(qtbot, matrix_view: ConfusionMatrixView) -> None:
    rect = matrix_view.cell_rect(1, 0)
    assert matrix_view.cell_at(rect.center()) == (1, 0)
    with qtbot.waitSignal(matrix_view.cell_clicked, timeout=1000) as blocker:
        qtbot.mouseClick(matrix_view, Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [1, 0]
    assert matrix_view.selected() == (1, 0)


def test_clicking_outside_the_grid_emits_nothing(qtbot, matrix_view: ConfusionMatrixView) -> None:
    top_left = matrix_view.cell_rect(0, 0).topLeft()
    outside = [
        QPoint(2, 2),
        top_left - QPoint(5, 5),
        matrix_view.cell_rect(1, 1).bottomRight() + QPoint(3, 3),
    ]
    for point in outside:
        assert matrix_view.cell_at(point) is None
        with qtbot.assertNotEmitted(matrix_view.cell_clicked, wait=50):
            qtbot.mouseClick(matrix_view, Qt.MouseButton.LeftButton, pos=point)
    assert matrix_view.selected() is None


def test_arrow_keys_move_the_selection_and_enter_emits(qtbot, matrix_view: ConfusionMatrixView) -> None:
    assert matrix_view.focusPolicy() == Qt.FocusPolicy.StrongFocus
    matrix_view.setFocus()
    with qtbot.assertNotEmitted(matrix_view.cell_clicked, wait=20):
        qtbot.keyClick(matrix_view, Qt.Key.Key_Down)  # nothing selected yet: starts at the first cell
        assert matrix_view.selected() == (0, 0)
        qtbot.keyClick(matrix_view, Qt.Key.Key_Down)
        qtbot.keyClick(matrix_view, Qt.Key.Key_Right)
    assert matrix_view.selected() == (1, 1)
    with qtbot.waitSignal(matrix_view.cell_clicked, timeout=1000) as blocker:
        qtbot.keyClick(matrix_view, Qt.Key.Key_Return)
    assert blocker.args == [1, 1]

    # Clamped at the edges.
    qtbot.keyClick(matrix_view, Qt.Key.Key_Down)
    qtbot.keyClick(matrix_view, Qt.Key.Key_Right)
    assert matrix_view.selected() == (1, 1)
    for _ in range(3):
        qtbot.keyClick(matrix_view, Qt.Key.Key_Left)
        qtbot.keyClick(matrix_view, Qt.Key.Key_Up)
    assert matrix_view.selected() == (0, 0)
    qtbot.keyClick(matrix_view, Qt.Key.Key_Right)
    with qtbot.waitSignal(matrix_view.cell_clicked, timeout=1000) as blocker:
        qtbot.keyClick(matrix_view, Qt.Key.Key_Space)
    assert blocker.args == [0, 1]


def test_select_emits_and_rejects_cells_outside(qtbot, matrix_view: ConfusionMatrixView) -> None:
    with qtbot.waitSignal(matrix_view.cell_clicked, timeout=1000) as blocker:
        matrix_view.select(0, 1)
    assert blocker.args == [0, 1]
    assert matrix_view.selected() == (0, 1)
    with pytest.raises(IndexError):
        matrix_view.select(2, 0)
    # A new matrix of the same shape keeps the selection; a smaller one drops it when it no longer fits.
    matrix_view.set_matrix(np.array([[5, 1], [1, 5]]), ["a", "b"], ["a", "b"])
    assert matrix_view.selected() == (0, 1)
    matrix_view.set_matrix(np.array([[5]]), ["a"], ["a"])
    assert matrix_view.selected() is None


def test_cell_colours_encode_share_and_correctness(matrix_view: ConfusionMatrixView) -> None:
    """Strength is the alpha of the fill (drawn over Base); hue tells right from wrong."""
    strong, weaker = matrix_view.cell_color(0, 0), matrix_view.cell_color(1, 1)  # 50/52 vs 40/50
    assert strong.alpha() > weaker.alpha()
    mistake = matrix_view.cell_color(1, 0)  # 10 of 50 bees called ants
    small_mistake = matrix_view.cell_color(0, 1)  # 2 of 52
    assert mistake.alpha() > small_mistake.alpha() > 20  # a lone mistake still shows
    hue_gap = abs(strong.hslHue() - mistake.hslHue())
    assert min(hue_gap, 360 - hue_gap) > 60
    assert strong.hslHue() == weaker.hslHue()
    assert mistake.hslHue() == small_mistake.hslHue()

    matrix_view.set_matrix(np.array([[50, 0], [10, 40]]), ["ants", "bees"], ["ants", "bees"])
    assert matrix_view.cell_color(0, 1).alpha() <= 16  # an empty cell is (nearly) the background


def test_painted_cells_show_their_colours(matrix_view: ConfusionMatrixView) -> None:
    image = matrix_view.grab().toImage()
    base = matrix_view.palette().color(matrix_view.backgroundRole())
    for row, column in [(0, 0), (1, 0)]:
        rect = matrix_view.cell_rect(row, column)
        corner = image.pixelColor(rect.left() + 6, rect.top() + 6)  # away from the text in the middle
        assert corner != base
    strong = image.pixelColor(matrix_view.cell_rect(0, 0).topLeft() + QPoint(6, 6))
    weak = image.pixelColor(matrix_view.cell_rect(0, 1).topLeft() + QPoint(6, 6))
    assert strong.hsvSaturation() > weak.hsvSaturation()


def test_tooltips_describe_the_cell(qtbot, matrix_view: ConfusionMatrixView) -> None:
    assert matrix_view.cell_tooltip(1, 0) == "10 “bees” images predicted as “ants” (20\u00a0% of bees)"
    assert matrix_view.cell_tooltip(0, 0) == "50 of 52 “ants” images predicted correctly (96\u00a0%)"
    matrix_view.set_matrix(np.array([[1, 1], [0, 3]]), ["ants", "bees"], ["ants", "bees"])
    assert matrix_view.cell_tooltip(0, 1).startswith("1 “ants” image predicted as")

    centre = matrix_view.cell_rect(0, 1).center()
    event = QHelpEvent(QEvent.Type.ToolTip, centre, matrix_view.mapToGlobal(centre))
    QApplication.sendEvent(matrix_view, event)
    assert QToolTip.text() == matrix_view.cell_tooltip(0, 1)
    QToolTip.hideText()


def test_extra_other_column(qtbot) -> None:
    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    view.set_matrix(np.array([[50, 2, 3], [10, 40, 0]]), ["ants", "bees"], ["ants", "bees", "(other)"])
    view.resize(500, 400)
    view.show()
    last = view.cell_rect(1, 2)
    assert not last.isEmpty()
    assert view.rect().contains(last)
    assert view.cell_at(last.center()) == (1, 2)
    with qtbot.waitSignal(view.cell_clicked, timeout=1000) as blocker:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=last.center())
    assert blocker.args == [1, 2]
    assert view.cell_color(0, 2).hslHue() == view.cell_color(0, 1).hslHue()  # (other) is a mistake
    assert not view.grab().isNull()


def test_shape_mismatch_is_rejected(qtbot) -> None:
    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    with pytest.raises(ValueError, match="does not match"):
        view.set_matrix(np.zeros((2, 3)), ["a", "b"], ["a", "b"])


@pytest.mark.parametrize("size", [(500, 400), (260, 200), (900, 700)])
def test_large_matrix_fits_the_widget(qtbot, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 4, (20, 21))
    np.fill_diagonal(matrix, rng.integers(20, 60, 20))
    names = [f"class number {i} with a long name" for i in range(20)]
    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    view.set_matrix(matrix, names, [*names, "(other)"])
    view.resize(*size)
    view.show()
    assert not view.grab().isNull()
    rects = [view.cell_rect(r, c) for r in range(20) for c in range(21)]
    for rect in rects:
        assert not rect.isEmpty()
        assert view.rect().contains(rect)
    # The cells tile the grid: no gaps or overlaps between neighbours.
    assert view.cell_rect(0, 0).right() + 1 == view.cell_rect(0, 1).left()
    assert view.cell_rect(0, 0).bottom() + 1 == view.cell_rect(1, 0).top()
    assert view.cell_at(view.cell_rect(19, 20).center()) == (19, 20)


def test_resizing_moves_the_cells(qtbot, matrix_view: ConfusionMatrixView) -> None:
    before = QRect(matrix_view.cell_rect(1, 1))
    matrix_view.resize(300, 240)
    after = matrix_view.cell_rect(1, 1)
    assert after != before
    assert matrix_view.rect().contains(after)
    assert matrix_view.cell_at(after.center()) == (1, 1)


def test_empty_view(qtbot) -> None:
    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    view.resize(300, 200)
    assert view.selected() is None
    assert view.cell_rect(0, 0).isEmpty()
    assert view.cell_at(QPoint(150, 100)) is None
    assert distinct_colours(view.grab().toImage()) > 1  # the muted message
    with qtbot.assertNotEmitted(view.cell_clicked, wait=20):
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(150, 100))
        qtbot.keyClick(view, Qt.Key.Key_Return)
    view.set_matrix(np.array([[1, 0], [0, 1]]), ["a", "b"], ["a", "b"])
    view.clear()
    assert view.cell_rect(0, 0).isEmpty()


def test_painting_keeps_none_alive(qtbot) -> None:
    """The Qt binding must not drop references to None (PySide6 6.12.0 on Python < 3.12 does).

    That binding loses one reference per void call (setPen, drawRect, update…): one paint of this
    matrix loses thousands and Python soon aborts with "deallocating None". pyproject.toml excludes
    it; this test fails if such a binding is installed anyway.
    """
    names = [f"c{i}" for i in range(21)]
    view = ConfusionMatrixView()
    qtbot.addWidget(view)
    view.set_matrix(np.arange(20 * 21).reshape(20, 21) % 7, names[:20], names)
    view.resize(420, 360)
    chart = CurveChart("Loss")
    qtbot.addWidget(chart)
    for epoch in range(1, 30):
        chart.add_point("train", epoch, 1 / epoch)
    before = sys.getrefcount(None)
    view.grab()
    chart.grab()
    assert sys.getrefcount(None) >= before - 20
    before = sys.getrefcount(None)
    for size in range(300, 320):
        view.resize(size, size)  # a new size: the whole grid is painted afresh
        view.grab()
        chart.grab()
    assert sys.getrefcount(None) >= before - 4 * 20


# -- ReliabilityDiagram ----------------------------------------------------------------------------


def _bins(points: dict[int, tuple[int, float, float]], bins: int = 5) -> tuple[ReliabilityBin, ...]:
    """A table of ``bins`` bins; ``points`` gives bin index -> (photos, mean confidence, accuracy)."""
    table = []
    for index in range(bins):
        count, confidence, accuracy = points.get(index, (0, None, None))
        table.append(ReliabilityBin(index / bins, (index + 1) / bins, count, confidence, accuracy))
    return tuple(table)


BEFORE = _bins({2: (3, 0.5, 0.2), 4: (40, 0.97, 0.6)})
AFTER = _bins({2: (10, 0.55, 0.8), 3: (20, 0.7, 0.35), 4: (13, 0.9, 0.95)})


@pytest.fixture()
def diagram(qtbot) -> ReliabilityDiagram:
    widget = ReliabilityDiagram()
    qtbot.addWidget(widget)
    widget.resize(380, 360)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _pixel(image: QImage, x: float, y: float) -> QColor:
    ratio = image.devicePixelRatio()
    return image.pixelColor(round(x * ratio), round(y * ratio))


def _near(color: QColor, target: QColor, tolerance: int = 12) -> bool:
    return (
        max(
            abs(color.red() - target.red()),
            abs(color.green() - target.green()),
            abs(color.blue() - target.blue()),
        )
        <= tolerance
    )


def test_reliability_points_are_painted_where_their_bins_say(diagram: ReliabilityDiagram) -> None:
    diagram.set_bins(BEFORE, AFTER)
    assert diagram.bins("before") == BEFORE and diagram.bins("after") == AFTER
    plot = diagram.plot_rect()
    assert plot.width() == pytest.approx(plot.height())  # a square: the diagonal is at 45 degrees
    for series, table in (("before", BEFORE), ("after", AFTER)):
        for index, bin_ in enumerate(table):
            point = diagram.point_position(series, index)
            if not bin_.count:
                assert point is None  # an empty bin has no point
                continue
            assert point is not None
            assert point.x() == pytest.approx(plot.left() + bin_.confidence * plot.width())
            assert point.y() == pytest.approx(plot.bottom() - bin_.accuracy * plot.height())
    image = diagram.grab().toImage()
    # Each bin's dot is painted in its series' colour, at its place (after on top of before).
    for index in (2, 3, 4):
        point = diagram.point_position("after", index)
        assert _near(_pixel(image, point.x(), point.y()), AFTER_COLOR), index
    for index in (2, 4):
        point = diagram.point_position("before", index)
        assert _near(_pixel(image, point.x(), point.y()), BEFORE_COLOR), index
    # A bin with more photos has a bigger dot.
    assert colour_count(image, AFTER_COLOR) > colour_count(image, BEFORE_COLOR) > 50


def test_reliability_without_after_scaling_paints_before_only(diagram: ReliabilityDiagram) -> None:
    diagram.set_bins(BEFORE, None)
    assert diagram.bins("after") is None and diagram.point_position("after", 4) is None
    image = diagram.grab().toImage()
    assert colour_count(image, AFTER_COLOR) == 0 and colour_count(image, BEFORE_COLOR) > 50
    assert "before scaling" in diagram.accessibleDescription()
    assert "after" not in diagram.accessibleDescription()
    diagram.clear()
    assert diagram.bins("before") is None
    cleared = diagram.grab().toImage()
    assert colour_count(cleared, BEFORE_COLOR) == 0 and distinct_colours(cleared) > 1  # the empty text


def test_reliability_tooltip_tells_the_bin_under_the_mouse(diagram: ReliabilityDiagram) -> None:
    diagram.set_bins(BEFORE, AFTER)
    point = diagram.point_position("after", 3)
    assert diagram.bin_at(point) == ("after", 3)
    assert diagram.bin_tooltip("after", 3) == "After scaling: " + describe_bin(AFTER[3])
    assert "it is right 35 % of the time (20 photos)" in diagram.bin_tooltip("after", 3)
    plot = diagram.plot_rect()
    assert diagram.bin_at(plot.topLeft()) is None  # nothing there


# -- FaithfulnessChart -----------------------------------------------------------------------------


def _road() -> RoadResult:
    removed = np.arange(1, 10) / 10
    return RoadResult(
        score=0.3,
        verdict="faithful",
        sentence="Faithful.",
        suggestion=None,
        removed=removed,
        morf=np.linspace(0.8, 0.0, 9),
        lerf=np.full(9, 0.95),
        original=0.97,
        random_score=0.05,
        label="cat",
    )


@pytest.fixture()
def faithfulness(qtbot) -> FaithfulnessChart:
    widget = FaithfulnessChart()
    qtbot.addWidget(widget)
    widget.resize(320, 200)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_faithfulness_chart_shows_the_road_curves_from_the_untouched_photo(
    faithfulness: FaithfulnessChart,
) -> None:
    road = _road()
    empty = faithfulness.grab().toImage()
    faithfulness.set_result(road, "cat")
    assert faithfulness.result() is road
    important, unimportant = faithfulness.series_names()
    assert "important" in important and "unimportant" in unimportant
    expected_x = [0.0, *(road.removed * 100)]
    assert [x for x, _ in faithfulness.points(important)] == pytest.approx(expected_x)
    assert [y for _, y in faithfulness.points(important)] == pytest.approx([0.97, *road.morf])
    assert [y for _, y in faithfulness.points(unimportant)] == pytest.approx([0.97, *road.lerf])
    assert faithfulness.y_range() == (0.0, 1.0)
    assert "“cat”" in faithfulness.title
    assert "90" in faithfulness.summary() and "removed" in faithfulness.summary()
    image = faithfulness.grab().toImage()
    assert colour_count(image, BEFORE_COLOR) > colour_count(empty, BEFORE_COLOR) + 100
    assert colour_count(image, AFTER_COLOR) > 100
    faithfulness.set_result(None)
    assert faithfulness.series_names() == [] and faithfulness.result() is None


def test_faithfulness_chart_shows_deletion_against_random_squares(faithfulness: FaithfulnessChart) -> None:
    fractions = np.linspace(0.0, 1.0, 11)
    deletion = DeletionResult(fractions, np.linspace(0.9, 0.1, 11), 0.5, np.linspace(0.9, 0.5, 11), 0.7)
    faithfulness.set_result(deletion, "cat")
    names = faithfulness.series_names()
    assert len(names) == 2 and "random" in names[1]
    assert [x for x, _ in faithfulness.points(names[0])] == pytest.approx(list(fractions * 100))
    assert [y for _, y in faithfulness.points(names[1])] == pytest.approx(list(deletion.random_curve))
    assert faithfulness._series[names[1]].dashed  # the yardstick


def test_reliability_legend_wraps_when_narrow_and_tiny_sizes_paint(diagram: ReliabilityDiagram) -> None:
    diagram.set_bins(BEFORE, AFTER)
    diagram.resize(600, 360)
    wide_top = diagram.plot_rect().top()
    diagram.resize(200, 360)
    assert diagram.plot_rect().top() > wide_top  # the legend took a second line
    assert diagram.plot_rect().right() <= diagram.width()
    diagram.resize(40, 30)  # far below the minimum: must not raise
    assert not diagram.grab().isNull()
