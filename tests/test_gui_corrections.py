"""The correction loop in the app, driven as a user would: classify, "Wrong?", retrain, ask again.

A head-mode bundle is fine-tuned from the tiny ResNet on generated circles and squares (in
tmp_path; the app's data folder is a temporary one). The user opens a photo of something else,
says with "Wrong?" → "A New Class…" that it is a triangle, presses "Retrain with 1 new photo", and
the new model, handed to the classifier, answers "triangle" for that photo. The user's photo is
never touched; undo removes only the copy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from gui.helpers import WAIT_MS, click, drop, make_window, shown_labels, wait_predictions
from PIL import Image, ImageDraw
from PySide6.QtCore import QMimeData, Qt, QTimer, QUrl
from PySide6.QtWidgets import QApplication, QMenu
from screenshots import screenshot_folder
from test_training import make_shapes

from resnet_gui.core.engine import Classifier
from resnet_gui.core.models import load_model
from resnet_gui.core.training import TrainConfig, make_split, run_training, scan_dataset
from resnet_gui.gui.predictions import NEW_CLASS

RETRAIN_WAIT_MS = 120_000


def triangle_photo(path: Path) -> Path:
    """A big green triangle on white: nothing like the red circles and blue squares."""
    image = Image.new("RGB", (72, 72), (250, 250, 250))
    ImageDraw.Draw(image).polygon([(6, 66), (36, 6), (66, 66)], fill=(20, 190, 40))
    image.save(path)
    return path


@pytest.fixture()
def bundle(tmp_path: Path, tiny_weights_file: Path, isolated_dirs) -> Path:
    root = tmp_path / "shapes"
    make_shapes(root, {"circle": 8, "square": 8}, seed=1, split="train")
    make_shapes(root, {"circle": 3, "square": 3}, seed=2, split="val")
    config = TrainConfig(mode="head", epochs=30, batch_size=8, patience=0, workers=0)
    out = tmp_path / "models" / "shapes-head.safetensors"
    result = run_training(str(tiny_weights_file), make_split(scan_dataset(root)), out, config)
    assert result.bundle == out
    return out


def choose_in_menu(qtbot, menu: QMenu, text: str) -> None:
    """Pick ``text`` in the open popup menu with the keyboard, as a user would."""
    action = next(a for a in menu.actions() if a.text() == text)
    assert action.isEnabled()
    menu.setActiveAction(action)
    qtbot.keyClick(menu, Qt.Key.Key_Return)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_correct_a_photo_retrain_and_the_new_model_answers_the_corrected_class(
    qtbot, tmp_path: Path, bundle: Path, monkeypatch
) -> None:
    classifier = Classifier(load_model(str(bundle)), device="cpu")
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    photo = triangle_photo(tmp_path / "mystery.png")
    before = sha256(photo)

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    drop(window.image_view, mime)
    wait_predictions(qtbot, window, "mystery.png")
    assert shown_labels(window)[0] in ("circle", "square")  # the model can only say what it knows
    qtbot.waitUntil(lambda: window.corrections.view.available, timeout=WAIT_MS)
    button = window.predictions.wrong_button
    qtbot.waitUntil(button.isEnabled, timeout=WAIT_MS)
    assert button.isVisible() and not window.corrections_bar.isVisible()

    # "Wrong?" → "A New Class…" → "triangle".
    monkeypatch.setattr(
        "resnet_gui.gui.main_window.QInputDialog.getText", lambda *args, **kwargs: ("triangle", True)
    )
    QTimer.singleShot(200, lambda: choose_in_menu(qtbot, window.predictions.wrong_menu, NEW_CLASS))
    click(qtbot, button)
    qtbot.waitUntil(lambda: window.corrections.view.count == 1, timeout=WAIT_MS)
    copy = bundle_root(bundle) / "train" / "triangle" / "mystery.png"
    assert copy.is_file() and sha256(copy) == before
    assert photo.is_file() and sha256(photo) == before, "the user's photo was changed"
    assert window.corrections_bar.isVisible()
    assert window.corrections_bar.retrain_button.text() == "Retrain with 1 new photo"
    assert "triangle" in window.predictions.corrected.text()
    assert window.grab().save(str(screenshot_folder() / "corrections-banner.png"))

    # Retrain: the new model replaces the old one in the classifier and knows the new class.
    click(qtbot, window.corrections_bar.retrain_button)
    qtbot.waitUntil(
        lambda: (
            window.controller.classifier is not classifier
            and "triangle" in window.controller.classifier.categories
        ),
        timeout=RETRAIN_WAIT_MS,
    )
    new_bundle = window.controller.classifier.loaded.source
    assert new_bundle != bundle and bundle.is_file(), "retraining must not replace the model it started from"
    wait_predictions(qtbot, window, "mystery.png")
    qtbot.waitUntil(lambda: shown_labels(window)[0] == "triangle", timeout=WAIT_MS)
    # The corrections are part of the new model's data now: the banner is gone, the list empty.
    qtbot.waitUntil(lambda: window.corrections.view.available, timeout=WAIT_MS)
    assert window.corrections.view.count == 0 and not window.corrections_bar.isVisible()
    assert copy.is_file() and photo.is_file() and sha256(photo) == before
    assert window.grab().save(str(screenshot_folder() / "corrections-retrained.png"))
    QApplication.processEvents()


def test_undo_removes_only_the_copy(qtbot, tmp_path: Path, bundle: Path) -> None:
    classifier = Classifier(load_model(str(bundle)), device="cpu")
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    photo = make_shapes(tmp_path / "mine", {"square": 1}, seed=7) / "square" / "square000.png"
    before = sha256(photo)
    window.controller.open_paths([photo])
    wait_predictions(qtbot, window, "square000.png")
    qtbot.waitUntil(window.predictions.wrong_button.isEnabled, timeout=WAIT_MS)
    said = shown_labels(window)[0]
    other = "circle" if said == "square" else "square"
    menu = window.predictions.wrong_menu
    own = next(a for a in menu.actions() if a.text() == f"It Is “{said}”")
    assert not own.isEnabled(), "the model's own answer is offered as a correction"

    QTimer.singleShot(200, lambda: choose_in_menu(qtbot, menu, f"It Is “{other}”"))
    click(qtbot, window.predictions.wrong_button)
    qtbot.waitUntil(lambda: window.corrections.view.count == 1, timeout=WAIT_MS)
    copy = bundle_root(bundle) / "train" / other / "square000.png"
    assert copy.is_file()

    click(qtbot, window.corrections_bar.undo_button)
    qtbot.waitUntil(lambda: window.corrections.view.count == 0, timeout=WAIT_MS)
    assert not copy.exists() and photo.is_file() and sha256(photo) == before
    assert not window.corrections_bar.isVisible()
    assert window.predictions.corrected.text() == ""


def bundle_root(bundle: Path) -> Path:
    """The dataset folder the fixture trained on (beside the models folder)."""
    return bundle.parent.parent / "shapes"


def test_a_moved_dataset_folder_disables_wrong_and_says_why(qtbot, tmp_path: Path, bundle: Path) -> None:
    root = bundle_root(bundle)
    root.rename(root.with_name("shapes-moved"))
    classifier = Classifier(load_model(str(bundle)), device="cpu")
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    window.controller.open_paths([triangle_photo(tmp_path / "t.png")])
    wait_predictions(qtbot, window, "t.png")
    button = window.predictions.wrong_button
    qtbot.waitUntil(lambda: "moved" in button.toolTip(), timeout=WAIT_MS)
    assert button.isVisible() and not button.isEnabled()
    assert not window.corrections_bar.isVisible()
