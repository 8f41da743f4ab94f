"""Screenshots of the app's main states, written to docs/screenshots/ (and checked for content).

They are the pictures of the README and a visual check of the layout: open them after a change.
The photos come from assets/samples; predictions and maps from the real ImageNet ResNet-50.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from gui.helpers import WAIT_MS, click, make_window, wait_explanation, wait_predictions
from PIL import Image
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory
from screenshots import screenshot_folder

from resnet_gui.core.engine import Classifier
from resnet_gui.core.models import RESNET50_V1, get_model_spec
from resnet_gui.gui.controller import Controller
from resnet_gui.gui.data import VIEW_SIDE_BY_SIDE

REPO = Path(__file__).resolve().parent.parent
SHOTS = screenshot_folder()
SAMPLES = REPO / "assets" / "samples"
SIZE = (1200, 780)


@pytest.fixture(scope="module")
def real_classifier(real_resnet50) -> Classifier:
    """The real model, described as the app describes it when it loads it from the registry."""
    spec = get_model_spec(RESNET50_V1).get_weights()
    return Classifier(dataclasses.replace(real_resnet50, weights_description=spec.description), "cpu")


def shoot(qtbot, window, name: str) -> Path:
    window.resize(*SIZE)
    qtbot.wait(80)  # layout and paint at the new size
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    assert window.grab().save(str(path))
    with Image.open(path) as image:
        assert image.size[0] >= SIZE[0] and image.size[1] >= SIZE[1]
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 50, "a blank screenshot"
    return path


def _open_samples(qtbot, window) -> None:
    window.controller.open_paths([SAMPLES / "coffee.jpg", SAMPLES / "chelsea.jpg", SAMPLES / "rocket.jpg"])
    qtbot.waitUntil(
        lambda: (
            all(image.classification is not None for image in window.controller.images)
            and len(window.controller.images) == 3
        ),
        timeout=WAIT_MS,
    )
    wait_predictions(qtbot, window, "coffee.jpg")


@pytest.mark.real_model
def test_screenshots_of_the_main_states(qtbot, tmp_path, real_classifier) -> None:
    window = make_window(qtbot, tmp_path / "settings.ini", real_classifier)
    shoot(qtbot, window, "01-empty.png")

    _open_samples(qtbot, window)
    assert window.predictions.bars[0].row.label == "espresso"
    shoot(qtbot, window, "02-predictions.png")

    click(qtbot, window.predictions.bars[0])
    wait_explanation(qtbot, window, label="espresso")
    shoot(qtbot, window, "03-overlay.png")

    window.controller.set_view(VIEW_SIDE_BY_SIDE)
    qtbot.waitUntil(lambda: len(window.image_view.picture.panels) == 2, timeout=WAIT_MS)
    window.explain_panel.score_button.click()
    qtbot.waitUntil(lambda: window.controller.explanation.deletion is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "ROAD score" in window.explain_panel.score_label.text(), timeout=WAIT_MS)
    shoot(qtbot, window, "04-side-by-side-with-score.png")
    # Scrolled down to the curves under the sentence: the chart shows the result's lines.
    chart = window.explain_panel.score_chart
    assert chart.result() is window.controller.explanation.deletion and len(chart.series_names()) == 2
    window.side_panel.ensureWidgetVisible(chart)
    shoot(qtbot, window, "04-faithfulness-curve.png")


def test_screenshot_of_an_error(qtbot, tmp_path, isolated_dirs) -> None:
    """No weights on the machine: the message says what to do, with buttons; the photo still shows."""
    window = make_window(qtbot, tmp_path / "settings.ini", controller=Controller(device="cpu"))
    window.controller.open_paths([SAMPLES / "chelsea.jpg"])
    shown = window.image_view
    qtbot.waitUntil(lambda: window.message_bar.isVisible() and shown.picture is not None, timeout=WAIT_MS)
    said = window.message_bar.text.text()
    assert "not on this computer yet" in said
    assert "resnet-gui " not in said and "--" not in said and "npm" not in said  # words, not commands
    # The loading line does not stay behind once the load has failed.
    panel = window.predictions
    qtbot.waitUntil(lambda: "No model is loaded" in _visible_text(panel), timeout=WAIT_MS)
    assert "Reading" not in _visible_text(panel)
    shoot(qtbot, window, "05-error-no-weights.png")


def _visible_text(widget) -> str:
    from PySide6.QtWidgets import QLabel

    return " ".join(label.text() for label in widget.findChildren(QLabel) if label.isVisible())


def _dark_palette() -> QPalette:
    """A dark palette like a desktop's dark mode (the app itself only uses palette roles)."""
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#2b2b2e",
        QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#1f1f22",
        QPalette.ColorRole.AlternateBase: "#333338",
        QPalette.ColorRole.Text: "#e6e6e6",
        QPalette.ColorRole.Button: "#37373c",
        QPalette.ColorRole.ButtonText: "#e6e6e6",
        QPalette.ColorRole.Highlight: "#3d8ee6",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#9a9aa2",
        QPalette.ColorRole.ToolTipBase: "#333338",
        QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.Mid: "#4a4a50",
        QPalette.ColorRole.Dark: "#18181a",
        QPalette.ColorRole.Light: "#4f4f55",
        QPalette.ColorRole.Midlight: "#414146",
        QPalette.ColorRole.Shadow: "#000000",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#7a7a80"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#7a7a80"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#7a7a80"))
    return palette


@pytest.mark.real_model
def test_screenshot_in_a_dark_palette(qtbot, tmp_path, real_classifier) -> None:
    app = QApplication.instance()
    old_palette, old_style = app.palette(), app.style().name()
    app.setStyle(QStyleFactory.create("Fusion"))
    app.setPalette(_dark_palette())
    try:
        window = make_window(qtbot, tmp_path / "settings.ini", real_classifier)
        _open_samples(qtbot, window)
        window.controller.select_image(1)
        wait_predictions(qtbot, window, "chelsea.jpg")
        click(qtbot, window.predictions.bars[0])
        wait_explanation(qtbot, window)
        shoot(qtbot, window, "06-dark-overlay.png")
        # Text follows the palette: the prediction bars paint with the dark palette's text colour.
        assert window.predictions.palette().color(QPalette.ColorRole.Text) == QColor("#e6e6e6")
        window.close()
    finally:
        app.setPalette(old_palette)
        app.setStyle(QStyleFactory.create(old_style))
