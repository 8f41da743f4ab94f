"""What a newcomer tripped over: few-class models, jumping layout, focus-bound keys, lost maps, a window
larger than the screen, a dark palette, stale messages, slow methods, and removing photos.

Every test drives a real MainWindow (offscreen) with the tiny 3-class model, through key and mouse
events; the estimate and metadata logic is also tested in core, without Qt.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from gui.helpers import WAIT_MS, click, make_window, wait_explanation, wait_predictions
from PIL import Image
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow, QPushButton

from resnet_gui.core.engine import Classifier
from resnet_gui.core.explain.estimate import (
    PassTimes,
    describe_seconds,
    estimate_seconds,
    measure_pass_times,
    method_passes,
)
from resnet_gui.core.metadata import metadata_unsure_threshold
from resnet_gui.gui.data import VIEW_OVERLAY, VIEW_SIDE_BY_SIDE
from resnet_gui.gui.qtutil import contrast_ratio, file_urls_mime, visible_accent
from resnet_gui.gui.settings import AppSettings


def _open(qtbot, window, *paths: Path) -> None:
    window.controller.open_paths(list(paths))
    qtbot.waitUntil(lambda: window.strip.count() == len(paths), timeout=WAIT_MS)
    wait_predictions(qtbot, window, paths[0].name)


def _pick_method(qtbot, window, key: str) -> None:
    """Choose a method in the picker with the keyboard, as a user does."""
    combo = window.explain_panel.method
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    for _ in range(combo.count()):
        if combo.currentData() == key:
            return
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentData() == key


def _top(widget, window) -> int:
    return widget.mapTo(window, QPoint(0, 0)).y()


# ---------------------------------------------------------------- 3. few classes, not sure


def test_core_reads_the_bundles_unsure_threshold() -> None:
    assert metadata_unsure_threshold({}) is None
    assert metadata_unsure_threshold({"metrics": json.dumps({"unsure_threshold": 0.7})}) == 0.7
    assert metadata_unsure_threshold({"metrics": {"unsure_threshold": 65}}) == 0.65
    for bad in ("{", json.dumps({"unsure_threshold": "high"}), json.dumps({"unsure_threshold": 2.5e3})):
        assert metadata_unsure_threshold({"metrics": bad}) is None


def test_a_model_with_few_classes_lists_them_and_marks_unsure_predictions(
    qtbot, window, sample_images, tmp_path
) -> None:
    _open(qtbot, window, sample_images[0])
    panel = window.predictions
    assert panel.known.isVisible() and panel.known.text() == "This model only knows: ant, bee, cat"
    top = panel.bars[0].row.probability
    assert panel.threshold.value() == 50  # the default
    # The user raises the threshold over the top probability: the prediction is "not sure".
    panel.threshold.setFocus()
    panel.threshold.selectAll()
    qtbot.keyClicks(panel.threshold, "99")
    qtbot.keyClick(panel.threshold, Qt.Key.Key_Enter)
    qtbot.waitUntil(lambda: panel.view.unsure, timeout=WAIT_MS)
    assert top < 0.99 and panel.bars[0].unsure and "not sure" in panel.bars[0].accessibleName()
    assert panel.hint.isVisible() and panel.hint.text().startswith("Not sure: no class reaches 99 %")
    qtbot.waitUntil(lambda: window.controller.settled("explain"), timeout=WAIT_MS)
    qtbot.wait(50)  # the new bars laid out
    window.side_panel.grab().save(str(tmp_path / "not-sure.png"))
    assert AppSettings(tmp_path / "settings.ini").unsure_threshold == pytest.approx(0.99)
    panel.threshold.selectAll()
    qtbot.keyClicks(panel.threshold, "1")
    qtbot.keyClick(panel.threshold, Qt.Key.Key_Enter)
    qtbot.waitUntil(lambda: not panel.view.unsure, timeout=WAIT_MS)
    assert not panel.bars[0].unsure


def test_a_bundles_threshold_is_the_default(qtbot, tmp_path, tiny_weights_file, sample_images) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from resnet_gui.core.models import load_model

    with safe_open(str(tiny_weights_file), "pt") as source:
        tensors = {key: source.get_tensor(key) for key in source.keys()}  # noqa: SIM118
        metadata = dict(source.metadata())
    metadata["metrics"] = json.dumps({"test_accuracy": 0.9, "unsure_threshold": 0.8})
    bundle = tmp_path / "bundle.safetensors"
    save_file(tensors, str(bundle), metadata=metadata)
    classifier = Classifier(load_model(weights_file=bundle), "cpu")
    window = make_window(qtbot, tmp_path / "fresh.ini", classifier)
    _open(qtbot, window, sample_images[0])
    assert window.predictions.threshold.value() == 80
    assert window.predictions.view.unsure == (window.predictions.bars[0].row.probability < 0.8)


# ---------------------------------------------------------------- 4. no layout jumps


def test_the_controls_below_do_not_move_when_progress_shows_and_hides(qtbot, window, sample_images) -> None:
    _open(qtbot, window, sample_images[2])
    panel = window.explain_panel
    _pick_method(qtbot, window, "occlusion")
    qtbot.waitUntil(lambda: window.controller.settled("explain"), timeout=WAIT_MS)
    # The method's description gains its measured time once the model is timed: wait for that text
    # (an expected change), so only the progress row's showing and hiding is measured.
    qtbot.waitUntil(lambda: bool(window.controller.estimates), timeout=WAIT_MS)
    qtbot.wait(50)
    controls = (panel.method, panel.opacity, panel.export_button)
    before = [_top(w, window) for w in controls]
    explain_top = _top(panel, window)
    window.image_view.setFocus()
    qtbot.keyClick(window.image_view, Qt.Key.Key_2)  # another class: the progress shows
    qtbot.waitUntil(lambda: panel.progress_box.isVisible(), timeout=WAIT_MS)
    qtbot.wait(20)
    assert [_top(w, window) for w in controls] == before
    assert _top(panel, window) == explain_top
    wait_explanation(qtbot, window, method="occlusion")
    qtbot.waitUntil(lambda: not panel.progress_box.isVisible(), timeout=WAIT_MS)
    qtbot.wait(20)
    assert [_top(w, window) for w in controls] == before
    assert _top(panel, window) == explain_top


# ---------------------------------------------------------------- 5. window-wide keys, Tab order


def test_arrows_and_digits_work_with_the_focus_in_the_strip_and_the_predictions(
    qtbot, window, sample_images
) -> None:
    _open(qtbot, window, *sample_images)
    controller = window.controller
    window.activateWindow()
    strip = window.strip
    strip.setFocus()
    qtbot.keyClick(strip, Qt.Key.Key_Right)
    assert controller.current == 1
    wait_predictions(qtbot, window, sample_images[1].name)
    qtbot.keyClick(strip, Qt.Key.Key_2)  # the list's type-ahead search took the digits
    assert controller.target == window.predictions.bars[1].row.index
    bar = window.predictions.bars[0]
    click(qtbot, bar)
    bar.setFocus()
    qtbot.keyClick(bar, Qt.Key.Key_3)
    assert controller.target == window.predictions.bars[2].row.index
    qtbot.keyClick(bar, Qt.Key.Key_Left)  # the scroll area took the arrows
    assert controller.current == 0
    # The opacity slider keeps its arrow keys.
    wait_predictions(qtbot, window, sample_images[0].name)
    slider = window.explain_panel.opacity
    slider.setFocus()
    value = slider.value()
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    assert slider.value() == value + 1 and controller.current == 0


def test_tab_follows_the_layout(qtbot, window, sample_images) -> None:
    _open(qtbot, window, *sample_images[:2])
    wait_explanation(qtbot, window)  # the top-1 map and its bars have settled
    qtbot.waitUntil(lambda: bool(window.controller.estimates), timeout=WAIT_MS)
    window.activateWindow()
    window.image_view.setFocus()
    seen = [window.image_view]
    for _ in range(8):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    predictions = window.predictions
    expected = [
        window.image_view,
        window.strip,
        predictions.top_k,
        predictions.copy_button,
        *predictions.bars,
        predictions.threshold,
        window.explain_panel.method,
    ]
    assert seen == expected[: len(seen)]


# ---------------------------------------------------------------- 6. maps come back


def test_the_chosen_map_comes_back_with_its_photo_and_after_a_model_switch(
    qtbot, window, sample_images, tiny_weights_file, monkeypatch
) -> None:
    _open(qtbot, window, *sample_images[:2])
    wait_explanation(qtbot, window)  # no choice yet: the top-1 map is shown
    assert window.controller.explanation.target == window.predictions.bars[0].row.index
    second = window.predictions.bars[1].row
    _pick_method(qtbot, window, "gradcam++")
    click(qtbot, window.predictions.bars[1])
    wait_explanation(qtbot, window, method="gradcam++", label=second.label)
    _pick_method(qtbot, window, "gradcam")
    click(qtbot, window.predictions.bars[1])
    _pick_method(qtbot, window, "gradcam++")
    wait_explanation(qtbot, window, method="gradcam++", label=second.label)
    window.image_view.setFocus()
    qtbot.keyClick(window.image_view, Qt.Key.Key_Right)
    wait_predictions(qtbot, window, sample_images[1].name)
    wait_explanation(qtbot, window, label=window.predictions.bars[0].row.label)
    qtbot.keyClick(window.image_view, Qt.Key.Key_Left)
    wait_explanation(qtbot, window, method="gradcam++", label=second.label)
    assert window.explain_panel.current_method() == "gradcam++"
    # Another model (the same classes): the map of the chosen class is shown again.
    generation = window.controller.model_generation
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tiny_weights_file), ""))
    window.choose_weights_action.trigger()
    qtbot.waitUntil(lambda: window.controller.model_generation > generation, timeout=WAIT_MS)
    wait_explanation(qtbot, window, method="gradcam++", label=second.label)


# ---------------------------------------------------------------- 7. the window fits the screen


def test_a_saved_geometry_larger_than_the_screen_is_fitted(qtbot, tmp_path, classifier) -> None:
    available = QApplication.primaryScreen().availableGeometry()
    big = QMainWindow()
    big.setGeometry(available.left() + 50, available.top() + 40, available.width() * 2, available.height())
    settings = AppSettings(tmp_path / "settings.ini")
    settings.geometry = big.saveGeometry()
    settings.sync()
    for path in (tmp_path / "settings.ini", tmp_path / "no-geometry.ini"):  # restored, and the default
        window = make_window(qtbot, path, classifier)
        frame = window.frameGeometry()
        assert available.contains(frame), (frame, available)
        window.close()


# ---------------------------------------------------------------- 8. a dark palette


@pytest.fixture()
def dark_palette(qtbot):
    app = QApplication.instance()
    previous = app.palette()
    palette = QPalette()
    for role, color in (
        (QPalette.ColorRole.Window, "#202124"),
        (QPalette.ColorRole.WindowText, "#e8eaed"),
        (QPalette.ColorRole.Base, "#17181a"),
        (QPalette.ColorRole.AlternateBase, "#2a2b2e"),
        (QPalette.ColorRole.Text, "#e8eaed"),
        (QPalette.ColorRole.Button, "#303134"),
        (QPalette.ColorRole.ButtonText, "#e8eaed"),
        (QPalette.ColorRole.Highlight, "#1c3d6b"),  # a dark blue: the bars vanished in it
        (QPalette.ColorRole.HighlightedText, "#ffffff"),
        (QPalette.ColorRole.PlaceholderText, "#9aa0a6"),
    ):
        palette.setColor(role, QColor(color))
    app.setPalette(palette)
    yield palette
    app.setPalette(previous)


def test_a_dark_palette_keeps_everything_readable(qtbot, dark_palette, window, sample_images, tmp_path):
    _open(qtbot, window, sample_images[1])
    wait_explanation(qtbot, window)
    panel = window.explain_panel
    window.side_panel.grab().save(str(tmp_path / "dark-side-panel.png"))
    window.grab().save(str(tmp_path / "dark-window.png"))
    # The checked view button wears the Highlight, with readable text; the others do not.
    buttons = {b.property("view"): b for b in panel.view_buttons.buttons()}
    checked = buttons[VIEW_OVERLAY]
    assert checked.isChecked()
    fill = checked.palette().color(QPalette.ColorRole.Button)
    assert fill == visible_accent(dark_palette)  # the Highlight, lightened to stand out
    assert contrast_ratio(fill, dark_palette.color(QPalette.ColorRole.Window)) >= 3.0
    assert contrast_ratio(checked.palette().color(QPalette.ColorRole.ButtonText), fill) >= 4.5
    other = buttons[VIEW_SIDE_BY_SIDE].palette().color(QPalette.ColorRole.Button)
    assert other == dark_palette.color(QPalette.ColorRole.Button)
    middle = QPoint(checked.width() // 2, 3)
    shot_checked = checked.grab().toImage().pixelColor(middle)
    shot_other = buttons[VIEW_SIDE_BY_SIDE].grab().toImage().pixelColor(middle)
    assert contrast_ratio(shot_checked, shot_other) >= 1.5, (shot_checked.name(), shot_other.name())
    # Clicking another one moves the highlight.
    click(qtbot, buttons[VIEW_SIDE_BY_SIDE])
    assert buttons[VIEW_SIDE_BY_SIDE].palette().color(QPalette.ColorRole.Button) == fill
    # The bars' fill stands out from the window (3:1, WCAG's ratio for graphics).
    bar = window.predictions.bars[0]
    image = bar.grab().toImage()
    background = dark_palette.color(QPalette.ColorRole.Window)
    row = image.height() - 10
    best = max(contrast_ratio(image.pixelColor(x, row), background) for x in range(40, 60))
    assert best >= 3.0, best
    # The method's description is not clipped: it gets the height its wrapped lines need.
    help_label = panel.method_help
    assert help_label.height() >= help_label.heightForWidth(help_label.width())


# ---------------------------------------------------------------- 9. stale messages


def test_messages_end_with_their_action(
    qtbot, window, sample_images, tmp_path, tiny_weights_file, monkeypatch
) -> None:
    # Loading a model shows its steps with a busy bar, and nothing of it stays afterwards.
    steps = []
    window.controller.model_loading.connect(steps.append)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tiny_weights_file), ""))
    generation = window.controller.model_generation
    window.choose_weights_action.trigger()
    assert not window.load_progress.isHidden()
    qtbot.waitUntil(lambda: window.controller.model_generation > generation, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.controller.settled("model"), timeout=WAIT_MS)
    assert any(step.startswith("Reading the weights file") for step in steps)
    assert any(step.startswith("Preparing") for step in steps)
    assert "Loading" not in window.busy_label.text() and "Reading" not in window.busy_label.text()
    assert window.load_progress.isHidden()
    # "Opening…" goes when the opening failed.
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    window.controller.open_paths([broken])
    qtbot.waitUntil(lambda: window.message_bar.isVisible(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.controller.settled("decode"), timeout=WAIT_MS)
    assert "Opening" not in window.busy_label.text()
    # An empty folder's banner goes once a later folder opens fine.
    empty = tmp_path / "empty"
    empty.mkdir()
    window.open_mime(file_urls_mime([empty]))
    qtbot.waitUntil(
        lambda: window.message_bar.message is not None
        and "holds no images" in window.message_bar.message.text,
        timeout=WAIT_MS,
    )
    good = tmp_path / "good"
    good.mkdir()
    Image.open(sample_images[0]).save(good / "photo.jpg")
    window.open_mime(file_urls_mime([good]))
    qtbot.waitUntil(lambda: window.strip.count() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.message_bar.message is None, timeout=WAIT_MS)
    assert not window.message_bar.isVisible()


# ---------------------------------------------------------------- 10. slow methods


def test_core_estimates_a_methods_time_from_one_measured_pass(classifier) -> None:
    times = measure_pass_times(classifier)
    assert 0 < times.per_batched_image <= times.single < 30
    for parameter in classifier.model.parameters():
        assert parameter.grad is None
    fake = PassTimes(single=0.5, per_batched_image=0.25)
    assert estimate_seconds("gradcam", fake) == 0.5
    assert estimate_seconds("guided_gradcam", fake) == 1.0
    assert estimate_seconds("integrated_gradients", fake) == 32 * 0.25
    assert estimate_seconds("integrated_gradients", fake, {"n_steps": 64}) == 64 * 0.25
    assert estimate_seconds("occlusion", fake) > estimate_seconds("smoothgrad", fake) > 1.0
    assert method_passes("saliency") == (1.0, False)
    assert describe_seconds(0.3) == "under a second"
    assert describe_seconds(4.6) == "about 5 s"
    assert describe_seconds(300) == "about 5 min"
    with pytest.raises(KeyError):
        method_passes("nope")


def test_core_labels_saliency_and_guided_gradcam_honestly() -> None:
    from resnet_gui.core.explain.catalog import CATALOG

    for key in ("saliency", "guided_gradcam"):
        assert CATALOG[key].cost == "medium" and "fast" not in CATALOG[key].description


def test_a_slow_method_says_how_long_moves_steadily_and_keeps_the_old_map(qtbot, window, sample_images):
    _open(qtbot, window, sample_images[2])
    wait_explanation(qtbot, window, method="gradcam")
    old = window.image_view.picture
    panel = window.explain_panel
    qtbot.waitUntil(lambda: bool(window.controller.estimates), timeout=WAIT_MS)
    _pick_method(qtbot, window, "integrated_gradients")
    assert "on this computer" in panel.method_help.text()  # before running it
    progress = []
    window.controller.explanation_changed.connect(
        lambda view: progress.append(view.progress) if view.state == "running" else None
    )
    # The map is recomputed with the new method: the Grad-CAM map stays shown meanwhile.
    qtbot.waitUntil(lambda: panel.progress_box.isVisible(), timeout=WAIT_MS)
    assert "on this computer" in panel.status.text()
    assert window.image_view.picture is old
    wait_explanation(qtbot, window, method="integrated_gradients")
    steps = [p for p in progress if p is not None]
    assert steps == sorted(steps) and len(set(steps)) >= 6, steps  # per internal batch, not 0-50-75
    assert max(b - a for a, b in pairwise(steps)) <= 0.2


# ---------------------------------------------------------------- 12. removing photos, menus, export


def test_photos_can_be_removed_with_delete_the_context_menu_and_clear(qtbot, window, sample_images) -> None:
    _open(qtbot, window, *sample_images)
    window.activateWindow()
    strip = window.strip
    strip.setFocus()
    qtbot.keyClick(strip, Qt.Key.Key_Delete)
    assert strip.count() == 2 and len(window.controller.images) == 2
    assert window.controller.current_image.source.name == sample_images[1].name
    wait_predictions(qtbot, window, sample_images[1].name)
    # The context menu of a thumbnail: Remove, and Remove All.
    rect = strip.visualItemRect(strip.item(1))
    strip.customContextMenuRequested.emit(rect.center())
    menu = strip.context_menu
    texts = [action.text() for action in menu.actions()]
    assert texts == [f"Remove “{sample_images[2].name}”", "Remove All Photos"]
    menu.actions()[0].trigger()
    menu.close()
    names = [window.strip.item(i).toolTip().split("\n")[0] for i in range(strip.count())]
    assert names == [sample_images[1].name]
    window.open_mime(file_urls_mime([sample_images[0]]))
    qtbot.waitUntil(lambda: strip.count() == 2, timeout=WAIT_MS)
    window.clear_action.trigger()  # File → Clear Photos
    assert strip.count() == 0 and not strip.isVisible() and not window.controller.images
    qtbot.waitUntil(lambda: window.image_view.picture is None, timeout=WAIT_MS)
    assert window.predictions.view.state == "empty" and not window.clear_action.isEnabled()


def test_view_menu_items_are_exclusive_radio_items(qtbot, window, sample_images) -> None:
    group = window.view_group
    assert group.isExclusive() and set(group.actions()) == set(window.view_actions.values())
    _open(qtbot, window, sample_images[0])
    window.activateWindow()
    qtbot.keyClick(window.image_view, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert [a.isChecked() for a in window.view_actions.values()] == [False, True, False]
    assert group.checkedAction() is window.view_actions[VIEW_SIDE_BY_SIDE]


def test_the_exported_png_names_the_class_and_shows_the_legend(
    qtbot, window, sample_images, tmp_path, monkeypatch
) -> None:
    _open(qtbot, window, sample_images[1])
    wait_explanation(qtbot, window)
    target = tmp_path / "export.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    window.activateWindow()
    qtbot.keyClick(window.image_view, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    saved = np.asarray(Image.open(target).convert("RGB"))
    shown = window.image_view.picture.panels[0]
    band = saved[shown.shape[0] :]
    assert np.array_equal(saved[: shown.shape[0]], shown) and band.shape[0] > 30
    # The legend's bar: the colormap from its first colour to its last, left to right.
    from resnet_gui.core.explain.maps import colorize

    ends = colorize(np.array([[0.0, 1.0]], dtype=np.float32), window.controller.colormap)[0, :, :3]
    colourful = band.max(axis=2).astype(int) - band.min(axis=2)  # saturation: white and grey text are ~0
    row = band[int(np.argmax((colourful > 60).sum(axis=1)))]
    coloured = np.flatnonzero(row.max(axis=1).astype(int) - row.min(axis=1) > 20)
    first, last = row[coloured[0]].astype(int), row[coloured[-1]].astype(int)
    assert np.abs(first - ends[0]).sum() < 60 and np.abs(last - ends[1]).sum() < 60, (first, last, ends)
    # And some dark text (the caption) in the band.
    assert (band.min(axis=2) < 80).sum() > 50


def test_very_large_images_can_be_allowed_until_quitting_only(qtbot, tmp_path, classifier) -> None:
    from resnet_gui.core.images import DEFAULT_MAX_IMAGE_PIXELS, get_max_image_pixels, set_max_image_pixels

    settings_path = tmp_path / "settings.ini"
    window = make_window(qtbot, settings_path, classifier)
    set_max_image_pixels(10_000)
    try:
        wide = tmp_path / "panorama.png"
        Image.new("RGB", (300, 100), (40, 90, 200)).save(wide)
        window.controller.open_paths([wide])
        qtbot.waitUntil(lambda: window.message_bar.isVisible(), timeout=WAIT_MS)
        (button,) = [b for b in window.message_bar.findChildren(QPushButton) if "Allow" in b.text()]
        seen = {}

        def answer() -> None:
            box = window.allow_large_box
            seen["text"] = box.informativeText()
            seen["buttons"] = [b.text() for b in box.buttons()]
            [choice] = [b for b in box.buttons() if b.text() == "Allow Until I Quit"]
            qtbot.mouseClick(choice, Qt.MouseButton.LeftButton)

        QTimer.singleShot(0, answer)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert "Always Allow" in seen["buttons"]
        assert "Edit → Allow Very Large Images" in seen["text"]  # where to undo it
        qtbot.waitUntil(lambda: window.strip.count() == 1, timeout=WAIT_MS)
        assert get_max_image_pixels() is None and window.allow_large_action.isChecked()
        assert not AppSettings(settings_path).allow_large_images  # not permanent
    finally:
        set_max_image_pixels(DEFAULT_MAX_IMAGE_PIXELS)
