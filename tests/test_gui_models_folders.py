"""Newcomer problems, driven through the window: folders of sub-folders, *My models*, plain model names,
Manage Models…, and the batch export of the shown rows.

The tiny 3-class ResNet stands in for a model; the app's data folder is a temporary one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gui.helpers import WAIT_MS, make_window
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox, QPushButton, QWidget

from resnet_gui.core import library
from resnet_gui.core.batch import read_rows
from resnet_gui.gui.batch_view import COL_FOLDER, BatchView
from resnet_gui.gui.controller import Controller


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """hymenoptera-like: val/ants (3 photos) and val/bees (2), nothing directly in val/."""
    rng = np.random.default_rng(5)
    val = tmp_path / "hymenoptera" / "val"
    for sub, count in (("ants", 3), ("bees", 2)):
        (val / sub).mkdir(parents=True)
        for index in range(count):
            array = np.zeros((48, 64, 3), dtype=np.uint8)
            array[:] = rng.integers(0, 255, 3)
            Image.fromarray(array).save(val / sub / f"{sub}{index}.jpg")
    return val


def bundle(folder: Path, name: str, source: Path, date: str = "2025-05-01T10:00:00+00:00") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    shutil.copy(source, path)
    sidecar = {
        "format": library.BUNDLE_FORMAT,
        "name": name,
        "categories": ["ant", "bee", "cat"],
        "date": date,
    }
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    (folder / f"{name}.checkpoint.safetensors").write_bytes(b"resume")
    return path


def when_modal(handle: Callable[[QWidget], None]) -> None:
    """Answer the next modal dialog (a message box, an input dialog) once it is shown, as a user would."""

    def poll() -> None:
        widget = QApplication.activeModalWidget()
        if widget is None or not widget.isVisible():
            QTimer.singleShot(20, poll)
            return
        handle(widget)

    QTimer.singleShot(0, poll)


def button(widget: QWidget, text: str) -> QPushButton:
    found = [b for b in widget.findChildren(QPushButton) if b.text().replace("&", "") == text]
    assert found, f"no button {text!r} in {[b.text() for b in widget.findChildren(QPushButton)]}"
    return found[0]


def combo_texts(window) -> list[str]:
    combo = window.model_combo
    return [combo.itemText(i) for i in range(combo.count())]


def pick(qtbot, window, text: str) -> None:
    """Choose an entry of the model picker by its text (the popup's item, activated)."""
    combo = window.model_combo
    index = combo.findText(text)
    assert index >= 0, f"{text!r} is not in {combo_texts(window)}"
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def save(widget: QWidget, path: Path) -> Path:
    QApplication.processEvents()  # the layouts catch up with the texts just set
    widget.grab().save(str(path))
    return path


# ---------------------------------------------------------------- 1. folders of sub-folders


def test_classify_folder_looks_into_sub_folders_and_filters_by_folder(
    qtbot, window, photos, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(photos))
    window.batch_action.trigger()
    view: BatchView = window.batch_view
    qtbot.waitUntil(lambda: view.progress is not None and view.progress.finished, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not view.running, timeout=WAIT_MS)
    assert len(view.model.rows) == 5
    assert view.folder_label.text().endswith("5 photos in 2 folders: ants 3, bees 2")
    assert view.rate_label.text().startswith("Done: 5 images")
    assert not view.table.isColumnHidden(COL_FOLDER) and view.folder_combo.isVisible()
    assert [view.folder_combo.itemText(i) for i in range(view.folder_combo.count())] == [
        "All folders",
        "ants (3)",
        "bees (2)",
    ]
    shown = {view.proxy.index(i, COL_FOLDER).data() for i in range(view.proxy.rowCount())}
    assert shown == {"ants", "bees"}
    # The user picks "bees" in the folder filter with the keyboard.
    view.folder_combo.setFocus()
    qtbot.keyClick(view.folder_combo, Qt.Key.Key_Down)
    qtbot.keyClick(view.folder_combo, Qt.Key.Key_Down)
    assert view.folder_combo.currentText() == "bees (2)"
    assert [row.path.parent.name for row in view.proxy.visible_rows()] == ["bees", "bees"]
    assert view.shown_label.text() == "Showing 2 of 5 rows"
    shot = save(view, tmp_path / "batch-sub-folders.png")
    assert shot.stat().st_size > 0

    # Export CSV: asked "shown rows or all rows"; the shown ones are written, in a job.
    out = tmp_path / "bees.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(out), ""))
    asked = []

    def answer(box: QWidget) -> None:
        asked.append(box.text())
        button(box, "Shown Rows (2)").click()

    when_modal(answer)
    with qtbot.waitSignal(view.export_finished, timeout=WAIT_MS) as finished:
        qtbot.mouseClick(view.export_button, Qt.MouseButton.LeftButton)
    assert finished.args[0] == out
    assert asked == ["The filters show 2 of the 5 rows. Which rows should the CSV hold?"]
    assert [row.path.parent.name for row in read_rows(out)] == ["bees", "bees"]
    assert view.rate_label.text() == f"Saved 2 rows to {out}."
    # … and "all rows" writes all five.
    when_modal(lambda box: button(box, "All Rows (5)").click())
    with qtbot.waitSignal(view.export_finished, timeout=WAIT_MS):
        qtbot.mouseClick(view.export_button, Qt.MouseButton.LeftButton)
    assert len(read_rows(out)) == 5

    # Sort into Folders asks the same question; "shown rows" sorts the two bees only.
    sorted_into = tmp_path / "sorted"
    monkeypatch.setattr(view, "ask_sort_options", lambda: (sorted_into, "copy", None))
    monkeypatch.setattr(view, "confirm_plan", lambda plan, where: True)
    asked.clear()
    when_modal(answer)
    with qtbot.waitSignal(view.sort_finished, timeout=WAIT_MS) as sorted_signal:
        qtbot.mouseClick(view.sort_button, Qt.MouseButton.LeftButton)
    assert asked == ["The filters show 2 of the 5 rows. Which files should be sorted?"]
    assert sorted(action.source.parent.name for action in sorted_signal.args[0].done) == ["bees", "bees"]
    assert sum(1 for path in sorted_into.rglob("*") if path.is_file()) == 2


def test_a_folder_without_images_says_so_without_a_full_bar(qtbot, window, tmp_path) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no photo")
    view = window.open_batch(empty)
    qtbot.waitUntil(lambda: view.progress is not None and not view.running, timeout=WAIT_MS)
    assert "holds no images" in view.rate_label.text() and "sub-folders" in view.rate_label.text()
    assert view.progress_bar.value() == 0 and view.progress_bar.text() == "No images"


def test_open_folder_with_sub_folders_fills_the_strip_and_says_where(
    qtbot, window, photos, monkeypatch
) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(photos))
    shown = []

    def said(message) -> bool:  # the window has shown it by now (it was connected first)
        shown.append(window.statusBar().currentMessage())
        return message.level == "info"

    with qtbot.waitSignal(window.controller.message, timeout=WAIT_MS, check_params_cb=said):
        window.open_folder_action.trigger()
    assert shown[-1] == "Opening 5 photos in 2 folders: ants 3, bees 2 of “val”."
    qtbot.waitUntil(lambda: window.strip.count() == 5, timeout=WAIT_MS)


# ---------------------------------------------------------------- 2, 11. the model picker


def test_the_picker_lists_my_models_and_keeps_them_after_switching(
    qtbot, tmp_path, isolated_dirs, classifier, tiny_weights_file, monkeypatch
) -> None:
    trained = bundle(library.models_dir(), "ants-bees", tiny_weights_file)
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    texts = combo_texts(window)
    mine = "ants-bees — 3 classes: ant, bee, cat · 2025-05-01"
    assert "My models" in texts and mine in texts
    assert (
        texts.index("My models") < texts.index(mine) < texts.index("Needs a download or the Keras file first")
    )
    # Plain names, what needs a download said in plain words.
    assert "ResNet-18 (ImageNet, 70 % correct) — needs a 45 MB download" in texts
    assert "ResNet-50 (ImageNet) — needs the Keras file" in texts
    assert not any("IMAGENET1K" in text or "KERAS_IMAGENET" in text for text in texts)
    index = window.model_combo.findText("ResNet-18 (ImageNet, 70 % correct) — needs a 45 MB download")
    tip = window.model_combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
    assert "internet" in tip and "--" not in tip
    assert "Manage My Models…" in texts

    pick(qtbot, window, mine)
    qtbot.waitUntil(lambda: window.controller.model_info.ref == f"file:{trained}", timeout=WAIT_MS)
    assert window.model_combo.currentText() == mine
    # The toolbar says what the model knows in words; where its weights come from is the tooltip.
    assert window.weights_label.text() == "Knows 3 classes: ant, bee, cat"
    assert window.weights_label.toolTip() == f"Weights: file {trained}"

    # A bundle opened from elsewhere joins My models, and both stay after switching away.
    desk = bundle(tmp_path / "desk", "pets", tiny_weights_file, date="2025-06-02T10:00:00+00:00")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(desk), ""))
    window.choose_weights_action.trigger()
    pets = "pets — 3 classes: ant, bee, cat · 2025-06-02"
    qtbot.waitUntil(lambda: pets in combo_texts(window), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.model_combo.currentText() == pets, timeout=WAIT_MS)
    pick(qtbot, window, mine)
    qtbot.waitUntil(lambda: window.controller.model_info.ref == f"file:{trained}", timeout=WAIT_MS)
    texts = combo_texts(window)
    assert pets in texts and mine in texts and texts.index(pets) < texts.index(mine)  # newest first

    window.model_combo.showPopup()
    qtbot.wait(100)
    popup = window.model_combo.view().window()
    save(popup, tmp_path / "model-picker.png")
    window.model_combo.hidePopup()


def test_the_cifar_nets_have_a_section_of_their_own(qtbot, tmp_path, isolated_dirs, classifier) -> None:
    """The registry's CIFAR nets (family "cifar") are listed apart, after the ImageNet models."""
    from resnet_gui.core.models import model_names, registry
    from resnet_gui.gui.main_window import SMALL_UNTRAINED_NOTE

    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    texts = combo_texts(window)
    section = texts.index("Small photos (CIFAR-10, 32×32)")
    cifar = [name for name in model_names() if registry()[name].small_images and registry()[name].weights]
    entries = [text for text in texts if text.startswith("CIFAR ")]
    assert len(entries) == len(cifar) == 6 and all(texts.index(text) > section for text in entries)
    assert "CIFAR ResNet-20 (CIFAR-10) — needs its weights imported" in entries
    imagenet_later = texts.index("Needs a download or the Keras file first")
    assert imagenet_later < section < texts.index(SMALL_UNTRAINED_NOTE)
    assert "ResNet-50-D (ImageNet) — needs a 102 MB download" in texts[:section]


# ---------------------------------------------------------------- 2. Manage Models…


def test_manage_models_renames_and_deletes_with_confirmation(
    qtbot, tmp_path, isolated_dirs, classifier, tiny_weights_file, monkeypatch
) -> None:
    trained = bundle(library.models_dir(), "ants", tiny_weights_file)
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    assert window.manage_models_action in window.menuBar().actions()[3].menu().actions()
    window.manage_models_action.trigger()
    dialog = window.models_dialog
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=WAIT_MS)
    assert [dialog.table.item(0, c).text() for c in range(3)] == [
        "ants",
        "3 classes: ant, bee, cat",
        "2025-05-01",
    ]
    qtbot.mouseClick(
        dialog.table.viewport(),
        Qt.MouseButton.LeftButton,
        pos=dialog.table.visualItemRect(dialog.table.item(0, 0)).center(),
    )
    assert dialog.rename_button.isEnabled()
    save(dialog, tmp_path / "manage-models.png")

    # Show in Folder opens the bundle's folder.
    opened = []
    monkeypatch.setattr(
        "resnet_gui.gui.models_dialog.QDesktopServices.openUrl", lambda url: opened.append(url)
    )
    qtbot.mouseClick(dialog.show_button, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened] == [str(trained.parent)]

    # Rename: the bundle, its sidecar and its checkpoint move together.
    def rename(box: QWidget) -> None:
        assert isinstance(box, QInputDialog)
        box.setTextValue("insects")
        box.accept()

    when_modal(rename)
    with qtbot.waitSignal(dialog.changed, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.rename_button, Qt.MouseButton.LeftButton)
    folder = library.models_dir()
    assert sorted(p.name for p in folder.iterdir()) == [
        "insects.checkpoint.safetensors",
        "insects.json",
        "insects.safetensors",
    ]
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1 and dialog.table.item(0, 0).text() == "insects")
    qtbot.waitUntil(lambda: any(t.startswith("insects — ") for t in combo_texts(window)), timeout=WAIT_MS)

    # Delete, cancelled: the question names every file; nothing goes.
    seen = []

    def cancel(box: QWidget) -> None:
        seen.append(box.informativeText())
        box.button(QMessageBox.StandardButton.Cancel).click()

    when_modal(cancel)
    qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT_MS)
    for name in ("insects.safetensors", "insects.json", "insects.checkpoint.safetensors"):
        assert str(folder / name) in seen[0]
    assert "cannot be undone" in seen[0]
    assert len(list(folder.iterdir())) == 3

    # Delete, confirmed: the three files go, and the picker forgets the model.
    when_modal(lambda box: button(box, "Delete").click())
    with qtbot.waitSignal(dialog.changed, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.delete_button, Qt.MouseButton.LeftButton)
    assert list(folder.iterdir()) == []
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not any(t.startswith("insects") for t in combo_texts(window)), timeout=WAIT_MS)
    assert "No models of yours yet" in dialog.status.text()


def test_with_only_the_keras_model_it_comes_first_in_plain_words(
    qtbot, tmp_path, isolated_dirs, classifier
) -> None:
    from resnet_gui.core.models import KERAS_WEIGHTS, RESNET50_V1, get_model_spec

    keras = get_model_spec(RESNET50_V1).get_weights(KERAS_WEIGHTS).path
    keras.parent.mkdir(parents=True)
    keras.write_bytes(b"present")  # only its presence is checked for the list
    window = make_window(qtbot, tmp_path / "settings.ini", controller=Controller(classifier=classifier))
    texts = combo_texts(window)
    assert texts[:2] == ["tiny-resnet18", "Ready to use"]  # the model in use, then what is ready
    assert texts[2] == "ResNet-50 (ImageNet, on this computer)"
