"""Model → Review Training Photos…, driven as a user would: a red photo filed under "blue".

A head-mode bundle fine-tuned from the tiny ResNet on noisy blue and red photos, one red photo
in the blue folder. The dialog lists it; choosing "Move to “red”" changes nothing on disk until
Apply…, whose plan names the move; after it the photo is in red/, and Undo Last Apply puts it back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gui.helpers import WAIT_MS, make_window
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from screenshots import screenshot_folder
from test_review import COLOURS
from test_review import _coloured as coloured

from resnet_gui.core.engine import Classifier
from resnet_gui.core.models import load_model
from resnet_gui.core.training import TrainConfig, make_split, run_training, scan_dataset
from resnet_gui.gui.review_dialog import MOVE, ReviewDialog


@pytest.fixture()
def colours_bundle(tmp_path: Path, tiny_weights_file: Path, isolated_dirs) -> tuple[Path, Path]:
    root = tmp_path / "colours"
    for label, (name, rgb) in enumerate(COLOURS.items()):
        for index in range(10):
            coloured(root / name / f"{name}{index:02d}.png", rgb, seed=100 * label + index)
    wrong = coloured(root / "blue" / "blue_but_red.png", COLOURS["red"], seed=999)
    config = TrainConfig(mode="head", epochs=8, batch_size=8, workers=0)
    split = make_split(scan_dataset(root), val_fraction=0.2, seed=0)
    result = run_training(str(tiny_weights_file), split, tmp_path / "colours.safetensors", config)
    assert result.bundle is not None
    return result.bundle, wrong


def press_in_message_box(button_text: str) -> None:
    """Click the button called ``button_text`` of the open message box (the plan), as a user would."""
    box = QApplication.activeModalWidget()
    assert isinstance(box, QMessageBox), box
    press_in_message_box.shown = (box.text(), box.detailedText())  # type: ignore[attr-defined]
    [button] = [b for b in box.buttons() if b.text() == button_text]
    button.click()


def test_review_moves_a_mislabelled_photo_only_on_apply_and_undo_puts_it_back(
    qtbot, tmp_path: Path, colours_bundle
) -> None:
    bundle, wrong = colours_bundle
    classifier = Classifier(load_model(str(bundle)), device="cpu")
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    qtbot.waitUntil(window.review_action.isEnabled, timeout=WAIT_MS)
    window.review_action.trigger()
    dialog = window.findChild(ReviewDialog)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.result_scan is not None, timeout=WAIT_MS)
    names = [dialog.table.item(row, 0).text() for row in range(dialog.table.rowCount())]
    assert wrong.name in names, names
    row = names.index(wrong.name)
    assert dialog.table.item(row, 1).text().startswith("blue")
    assert dialog.table.item(row, 2).text().startswith("red")
    assert not dialog.apply_button.isEnabled()

    combo = dialog.combos[row]
    combo.setCurrentIndex(combo.findText(MOVE.format("red")))
    qtbot.waitUntil(dialog.apply_button.isEnabled, timeout=WAIT_MS)
    assert wrong.is_file(), "a choice moved the photo before Apply"
    assert dialog.grab().save(str(screenshot_folder() / "review-dialog.png"))

    QTimer.singleShot(300, lambda: press_in_message_box("Move 1 Photo"))
    dialog.apply_button.click()
    moved = wrong.parent.parent / "red" / wrong.name
    qtbot.waitUntil(moved.is_file, timeout=WAIT_MS)
    assert not wrong.exists()
    text, details = press_in_message_box.shown  # type: ignore[attr-defined]
    assert "Move 1 photo" in text and "blue/blue_but_red.png" in details and "red/blue_but_red.png" in details
    qtbot.waitUntil(dialog.undo_button.isEnabled, timeout=WAIT_MS)

    dialog.undo_button.click()
    qtbot.waitUntil(wrong.is_file, timeout=WAIT_MS)
    assert not moved.exists()


def test_the_choice_survives_closing_the_dialog(qtbot, tmp_path: Path, colours_bundle) -> None:
    bundle, wrong = colours_bundle
    classifier = Classifier(load_model(str(bundle)), device="cpu")
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    qtbot.waitUntil(window.review_action.isEnabled, timeout=WAIT_MS)
    first = window.review_training_photos()
    assert first is not None
    qtbot.waitUntil(lambda: first.result_scan is not None, timeout=WAIT_MS)
    names = [first.table.item(r, 0).text() for r in range(first.table.rowCount())]
    first.combos[names.index(wrong.name)].setCurrentIndex(first.combos[0].findText("Leave out of training"))
    qtbot.waitUntil(first.apply_button.isEnabled, timeout=WAIT_MS)
    first.close()

    second = window.review_training_photos()
    assert second is not None
    qtbot.waitUntil(lambda: second.result_scan is not None, timeout=WAIT_MS)
    names = [second.table.item(r, 0).text() for r in range(second.table.rowCount())]
    assert second.combos[names.index(wrong.name)].currentText() == "Leave out of training"
    assert second.apply_button.isEnabled() and wrong.is_file()
