"""Model → Export Model… and Manage Models' Export…, driven through the window with the tiny model:
the file is written and checked, its result shown in words; an existing file is replaced only when
the user says so; INT8 without calibration photos and Cancel are one clear sentence each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gui.helpers import WAIT_MS, make_window
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from screenshots import screenshot_folder

from resnet_gui.core import library

pytest.importorskip("onnxruntime", reason="the export extra (make test installs it)")

EXPORT_WAIT_MS = 120_000


def answer_next_question(button: QMessageBox.StandardButton, asked: list[str]) -> None:
    """Click ``button`` in the next modal message box, as a user would."""

    def poll() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            asked.append(box.text())
            box.button(button).click()
        else:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(20, poll)


def export(qtbot, dialog) -> object:
    with qtbot.waitSignal(dialog.exported, timeout=EXPORT_WAIT_MS) as done:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running(), timeout=EXPORT_WAIT_MS)
    # The job is done in its thread before the dialog's finished handler has run on the UI thread
    # (a stop's CI caught "Cancel" still on the button): wait for that handler too.
    qtbot.waitUntil(lambda: dialog.close_button.text() == "Close", timeout=EXPORT_WAIT_MS)
    return done.args[0]


def test_export_model_writes_a_checked_onnx_file_and_says_so(qtbot, window, tmp_path, monkeypatch) -> None:
    from resnet_gui.core.export.onnx_graph import read_onnx_metadata

    assert window.export_model_action in window.menuBar().actions()[3].menu().actions()
    assert window.export_model_action.isEnabled()
    window.export_model_action.trigger()
    dialog = window.model_export_dialog
    qtbot.waitExposed(dialog)
    assert dialog.format_key() == "onnx" and dialog.int8_box.isEnabled()
    out = tmp_path / "exports" / "tiny.onnx"
    dialog.out_edit.setText(str(out))
    result = export(qtbot, dialog)
    assert result is not None and result.parity.passed and out.is_file(), dialog.status.text()
    info = read_onnx_metadata(out)
    assert info.categories == window.controller.classifier.categories
    assert "Parity check passed" in dialog.status.text()
    assert dialog.show_button.isEnabled() and dialog.close_button.text() == "Close"
    opened = []
    monkeypatch.setattr(
        "resnet_gui.gui.export_dialog.QDesktopServices.openUrl", lambda url: opened.append(url)
    )
    qtbot.mouseClick(dialog.show_button, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened] == [str(out.parent)]
    shot = screenshot_folder() / "15-export-done.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert dialog.grab().save(str(shot))
    with Image.open(shot) as image:
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 20, "a blank screenshot"
    assert window.settings.export_folder == str(out.parent)  # remembered for next time

    # Exporting again to the same file: asked first; "No" keeps the file as it was.
    before = out.read_bytes()
    asked: list[str] = []
    answer_next_question(QMessageBox.StandardButton.No, asked)
    assert export(qtbot, dialog) is None
    assert asked == ["“tiny.onnx” already exists. Replace it?"]
    assert out.read_bytes() == before and "kept" in dialog.status.text()
    # … and "Yes" replaces it.
    answer_next_question(QMessageBox.StandardButton.Yes, asked)
    replaced = export(qtbot, dialog)
    assert len(asked) == 2 and replaced is not None and replaced.parity.passed and out.is_file()


def test_torchscript_and_an_int8_export_without_calibration_photos(qtbot, window, tmp_path) -> None:
    dialog = window.export_model()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("torchscript"))
    assert not dialog.int8_box.isEnabled()
    assert dialog.out_edit.text().endswith(".pt")  # the suffix follows the format
    out = tmp_path / "tiny.pt"
    dialog.out_edit.setText(str(out))
    result = export(qtbot, dialog)
    assert result is not None and out.is_file() and result.format == "torchscript"

    # INT8 of a model that was not fine-tuned here has no training photos to calibrate on: one sentence.
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("onnx"))
    dialog.int8_box.setChecked(True)
    dialog.out_edit.setText(str(tmp_path / "tiny-int8.onnx"))
    assert export(qtbot, dialog) is None
    text = dialog.status.text()
    assert "calibrat" in text and "Traceback" not in text and not (tmp_path / "tiny-int8.onnx").exists()


def test_cancel_stops_the_export_and_writes_nothing(qtbot, window, tmp_path) -> None:
    dialog = window.export_model()
    out = tmp_path / "cancelled.onnx"
    dialog.out_edit.setText(str(out))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.running() and dialog.close_button.text() == "Cancel"
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running(), timeout=EXPORT_WAIT_MS)
    assert dialog.status.text() == "Export cancelled; nothing was written."
    assert dialog.isVisible()  # Cancel stops the export; it does not close the dialog
    assert not out.exists() and not list(tmp_path.glob("cancelled*"))


def test_manage_models_exports_a_model_of_the_library(
    qtbot, tmp_path, isolated_dirs, classifier, tiny_weights_file
) -> None:
    folder = library.models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    bundle = folder / "insects.safetensors"
    bundle.write_bytes(tiny_weights_file.read_bytes())
    bundle.with_suffix(".json").write_text(
        json.dumps({"format": library.BUNDLE_FORMAT, "name": "insects", "categories": ["ant", "bee", "cat"]})
    )
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    models = window.manage_models()
    qtbot.waitUntil(lambda: models.table.rowCount() == 1, timeout=WAIT_MS)
    models.table.selectRow(0)
    assert models.export_button.isEnabled()
    qtbot.mouseClick(models.export_button, Qt.MouseButton.LeftButton)
    dialog = window.model_export_dialog
    assert dialog.weights_file == bundle and dialog.model_name == "insects"
    assert Path(dialog.out_edit.text()).name == "insects.onnx"
    out = tmp_path / "insects.onnx"
    dialog.out_edit.setText(str(out))
    result = export(qtbot, dialog)
    assert result is not None and result.parity.passed and out.is_file()


def test_the_runtime_menu_moves_classification_to_onnxruntime(
    qtbot, tmp_path, isolated_dirs, classifier, sample_images
) -> None:
    from gui.helpers import shown_labels, wait_predictions

    from resnet_gui.core.runtime import BACKENDS

    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    model_menu = window.menuBar().actions()[3].menu()
    [runtime] = [action.menu() for action in model_menu.actions() if action.text() == "&Runtime"]
    assert [action.text() for action in runtime.actions()] == [b.name for b in BACKENDS.values()]
    window.controller.open_paths([sample_images[0]])
    wait_predictions(qtbot, window)
    with_torch = shown_labels(window)
    assert window.device_label.text() == "Device: cpu · PyTorch"

    window.backend_actions["onnxruntime"].trigger()  # as a click on the menu item does
    qtbot.waitUntil(lambda: window.controller.model_info.backend == "onnxruntime", timeout=EXPORT_WAIT_MS)
    assert window.settings.backend == "onnxruntime"  # remembered for the next start
    assert window.device_label.text() == "Device: cpu · ONNX Runtime"
    assert any(isolated_dirs.rglob("*.onnx"))  # the graph is cached in the app's data folder
    wait_predictions(qtbot, window)
    assert shown_labels(window) == with_torch  # the same answers, from the other runtime
    # Explanations still run on PyTorch (they need gradients): the map of the top class appears.
    window.controller.select_target(window.controller.rows()[0].index)
    qtbot.waitUntil(lambda: window.controller.explanation is not None, timeout=EXPORT_WAIT_MS)
