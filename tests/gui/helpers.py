"""Building a main window around an injected model, and waiting for what it shows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from resnet_gui.gui.controller import Controller
from resnet_gui.gui.main_window import MainWindow
from resnet_gui.gui.settings import AppSettings

WAIT_MS = 20_000


@contextmanager
def ui_ticks(interval_ms: int = 10) -> Iterator[list[float]]:
    """Times of a fast UI-thread timer's ticks while the block runs: gaps in them are UI freezes."""
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    try:
        yield ticks
    finally:
        timer.stop()


def longest_gap(ticks: list[float], since: float = 0.0) -> float:
    """The longest time between two ticks (after ``since``): how long the UI thread was blocked."""
    times = [t for t in ticks if t >= since]
    assert len(times) > 10, "the timer never ran"
    return float(np.diff(times).max())


def stalled_share(ticks: list[float], since: float = 0.0, stall: float = 0.1) -> float:
    """The share of the time (after ``since``) spent in gaps longer than ``stall`` seconds.

    A freeze the app causes (work on the UI thread, once per batch or epoch) adds up to a large
    share; one late tick because a loaded machine did not schedule the process barely counts."""
    times = np.array([t for t in ticks if t >= since])
    assert len(times) > 10, "the timer never ran"
    gaps = np.diff(times)
    return float(gaps[gaps > stall].sum() / (times[-1] - times[0]))


def make_window(
    qtbot, settings_path: Path, classifier=None, *, controller: Controller | None = None
) -> MainWindow:
    """A shown main window with its own settings file; waits until its start-up ran."""
    controller = controller or Controller(classifier=classifier)
    window = MainWindow(controller=controller, settings=AppSettings(settings_path))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: controller.started, timeout=WAIT_MS)
    if classifier is not None:
        qtbot.waitUntil(lambda: controller.model_info is not None, timeout=WAIT_MS)
    return window


def drop(widget: QWidget, mime: QMimeData) -> None:
    """Drag ``mime`` onto ``widget`` and drop it, as a file manager does (Qt drops only after an enter)."""
    where = widget.rect().center()  # Qt: drag events take a QPoint, the drop a QPointF
    rest = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(where, *rest)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted(), "the widget refused the drag"
    QApplication.sendEvent(widget, QDragMoveEvent(where, *rest))
    dropped = QDropEvent(QPointF(where), *rest)
    QApplication.sendEvent(widget, dropped)
    assert dropped.isAccepted()


def wait_predictions(qtbot, window: MainWindow, name: str | None = None) -> None:
    """Until the predictions panel shows bars (for the image called ``name``, when given)."""

    def ready() -> bool:
        image = window.controller.current_image
        return (
            window.predictions.view.state == "ready"
            and bool(window.predictions.bars)
            and (name is None or (image is not None and image.source.name == name))
        )

    qtbot.waitUntil(ready, timeout=WAIT_MS)


def wait_explanation(qtbot, window: MainWindow, method: str | None = None, label: str | None = None) -> None:
    def ready() -> bool:
        explanation = window.controller.explanation
        picture = window.image_view.picture
        return (
            explanation is not None
            and (method is None or explanation.method == method)
            and (label is None or explanation.label == label)
            and picture is not None
            and picture.captions[0] != picture.source_name
        )

    qtbot.waitUntil(ready, timeout=WAIT_MS)


def shown_labels(window: MainWindow) -> list[str]:
    return [bar.row.label for bar in window.predictions.bars]


def expected_labels(classifier, image, k: int) -> list[str]:
    """What core itself predicts for a PIL image: the GUI must show the same."""
    [predictions] = classifier.classify_images([image], top_k=k)
    return [p.label for p in predictions]


def click(qtbot, widget: QWidget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(widget.width() // 2, widget.height() // 2))


def overlay_of(window: MainWindow) -> np.ndarray:
    """The overlay the controller should show now, computed again with core's function."""
    from resnet_gui.core.explain.maps import overlay

    controller = window.controller
    image = controller.current_image
    assert image is not None and image.display is not None and controller.explanation is not None
    return overlay(
        image.display,
        controller.explanation.map_on_image,
        colormap=controller.colormap,
        alpha=controller.alpha,
    )
