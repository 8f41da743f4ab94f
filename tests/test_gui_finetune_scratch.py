"""The wizard suggests training from scratch for a folder of small photos, and trains that way.

Driven as a user would (offscreen, real clicks): the settings page preselects the mode and a CIFAR
ResNet, says why in one sentence, swaps the picker back when the user picks a pretrained mode, and
a short run from scratch ends with a bundle. The suggestion's logic is core's
(tests/test_training_scratch.py); this checks that the page shows and follows it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gui.helpers import WAIT_MS, make_window
from PySide6.QtCore import QPoint, Qt
from screenshots import screenshot_folder
from test_gui_finetune import TRAIN_WAIT_MS, go_to_settings, next_to_training, open_wizard
from test_training_scratch import small_shapes

from resnet_gui.core.training import read_bundle_info
from resnet_gui.gui.finetune import PAGE_TRAINING

SHOTS = screenshot_folder()


def click(qtbot, button) -> None:
    """A click on a radio button's circle (the middle of a wide button is past its text)."""
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))


@pytest.fixture()
def window(qtbot, tmp_path: Path, classifier, isolated_dirs):
    return make_window(qtbot, tmp_path / "settings.ini", classifier)


def test_small_photos_get_the_from_scratch_suggestion_and_train_from_scratch(
    qtbot, window, tmp_path: Path, tiny_weights_file: Path
) -> None:
    folder = small_shapes(tmp_path / "thumbnails", {"circle": 12, "square": 12})
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    go_to_settings(qtbot, wizard, folder)
    page = wizard.settings_page
    assert page.mode_buttons["scratch"].isChecked()
    assert page.suggestion.isVisible()
    assert page.suggestion.text().startswith("Your photos are small (typically 32×32)")
    assert page.model_combo.currentData() == "cifar_resnet20"
    assert page.base.loaded.architecture == "cifar_resnet20"
    assert page.epochs.value() == 15
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert wizard.grab().save(str(SHOTS / "finetune-scratch-suggestion.png"))

    # A pretrained mode brings the pretrained models back; the suggestion stays, for the record.
    click(qtbot, page.mode_buttons["head"])
    assert page.mode() == "head"
    assert page.model_combo.currentData() == str(tiny_weights_file)
    qtbot.waitUntil(
        lambda: page.base is not None and page.base.ref == str(tiny_weights_file), timeout=WAIT_MS
    )
    click(qtbot, page.mode_buttons["scratch"])
    assert page.model_combo.currentData() == "cifar_resnet20"
    qtbot.waitUntil(lambda: page.base is not None and page.base.ref == "cifar_resnet20", timeout=WAIT_MS)

    page.epochs.setValue(2)
    page.batch_size.setValue(8)
    next_to_training(qtbot, wizard)
    assert wizard.currentId() == PAGE_TRAINING
    qtbot.waitUntil(lambda: wizard.training_page.isComplete(), timeout=TRAIN_WAIT_MS)
    result = wizard.session.result
    assert result is not None and result.bundle is not None and len(result.history) == 2
    training = read_bundle_info(result.bundle).metadata["training"]
    assert '"mode": "scratch"' in training or (isinstance(training, dict) and training["mode"] == "scratch")


def test_large_photos_get_no_suggestion(qtbot, window, tmp_path: Path, tiny_weights_file: Path) -> None:
    from test_training import make_shapes

    folder = make_shapes(tmp_path / "photos", {"circle": 8, "square": 8})  # 72 px
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    go_to_settings(qtbot, wizard, folder)
    page = wizard.settings_page
    assert not page.suggestion.isVisible()
    assert page.mode() == "head" and page.model_combo.currentData() == str(tiny_weights_file)
