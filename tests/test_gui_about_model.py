"""Model → About This Model…: opened from the menu with the tiny model, described in a job (never on
the UI thread), and one residual block drawn: the main path's boxes, the shortcut, the ⊕."""

from __future__ import annotations

import threading

import pytest
from gui.helpers import WAIT_MS
from PIL import Image
from PySide6.QtGui import QColor
from screenshots import screenshot_folder

from resnet_gui.core.describe import describe_model
from resnet_gui.core.models import get_model_spec, registry
from resnet_gui.gui import about_model
from resnet_gui.gui.about_model import KIND_COLOURS, SHORTCUT_COLOUR, BlockDiagramView, NotDescribable

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def model_menu_actions(window) -> list:
    [menu] = [a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "Model"]
    return menu.actions()


def colours_of(widget) -> set[str]:
    image = widget.grab().toImage()
    return {
        image.pixelColor(x, y).name() for x in range(0, image.width(), 2) for y in range(0, image.height(), 2)
    }


def test_about_this_model_describes_the_model_in_use_and_draws_a_block(qtbot, window, monkeypatch) -> None:
    threads: list[threading.Thread] = []

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return describe_model(*args, **kwargs)

    monkeypatch.setattr(about_model, "describe_model", recording)
    assert window.about_model_action in model_menu_actions(window)
    window.about_model_action.trigger()
    dialog = window.about_model_dialog
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(lambda: dialog.description is not None, timeout=WAIT_MS)
    assert threads and threads[0] is not threading.main_thread()

    model = window.controller.classifier.loaded.model
    description = dialog.description
    assert description.parameters == sum(p.numel() for p in model.parameters())
    text = dialog.facts.text()
    assert "tiny-resnet18" in text
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        assert stage in text
    assert f"{description.parameters:,}" in text
    assert "64×64" in text and "FLOPs" in text and "multiply-add as 2 FLOPs" in text
    assert not dialog.status.isVisible()

    view = dialog.diagram_view
    diagram = view.diagram
    assert diagram is not None and diagram.name == "layer2.0"
    colours = colours_of(view)  # grabbing paints it
    for layer in (*diagram.main_path, *diagram.shortcut, *diagram.after_add):
        assert layer.label in view.painted
    assert "⊕" in view.painted
    assert view.painted[0] == "input: 16×16, 64 channels" and view.painted[-1] == "output: 8×8, 128 channels"
    assert QColor(KIND_COLOURS["conv"]).name() in colours  # the boxes are filled
    assert QColor(SHORTCUT_COLOUR).name() in colours  # the shortcut is drawn
    assert "3×3 conv, 128, /2" in view.toolTip()
    assert "shortcut" in dialog.diagram_note.text()

    dialog.copy_text()
    from PySide6.QtWidgets import QApplication

    assert QApplication.clipboard().text().startswith(description.display_name)

    shot = screenshot_folder() / "about-this-model.png"
    assert dialog.grab().save(str(shot))
    with Image.open(shot) as image:
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 20, "a blank screenshot"

    # The menu again: the same dialog, shown.
    window.about_model_action.trigger()
    assert window.about_model_dialog is dialog


def test_a_model_without_a_pytorch_module_is_one_sentence() -> None:
    with pytest.raises(NotDescribable) as raised:
        about_model.describe_in_use(None, object())
    assert str(raised.value).count(". ") == 0 and str(raised.value).endswith(").")


@pytest.mark.skipif("cifar_plain20" not in registry(), reason="the CIFAR models are not in the registry")
def test_a_plain_block_is_drawn_without_a_shortcut(qtbot) -> None:
    view = BlockDiagramView()
    qtbot.addWidget(view)
    view.set_diagram(describe_model(get_model_spec("cifar_plain20")).block_diagram())
    colours = colours_of(view)
    assert "no shortcut" in view.painted and "⊕" not in view.painted
    assert QColor(SHORTCUT_COLOUR).name() not in colours
    view.set_diagram(describe_model(get_model_spec("cifar_resnet20")).block_diagram())
    view.grab()
    assert "zero-pad 16→32 channels" in view.painted and "⊕" in view.painted
    shot = screenshot_folder() / "about-this-model-cifar-block.png"
    assert view.grab().save(str(shot))
