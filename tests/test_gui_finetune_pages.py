"""The wizard's pages as views of one session: what they say and offer, without training a model.

The advanced settings explain themselves (a tooltip on each control), the training page's
message after a stop names only the buttons that are there, and the mode texts are core's table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget

from resnet_gui.core.modes import TRAINING_MODES
from resnet_gui.core.training import TrainResult
from resnet_gui.gui.controller import Controller
from resnet_gui.gui.finetune import BaseModelOption, FinetuneWizard
from resnet_gui.gui.settings import AppSettings


@pytest.fixture()
def wizard(qtbot, tmp_path: Path, isolated_dirs, tiny_weights_file: Path) -> Iterator[FinetuneWizard]:
    """The wizard on its own controller (no main window): these tests run no job."""
    controller = Controller()
    wizard = FinetuneWizard(
        controller,
        AppSettings(tmp_path / "settings.ini"),
        base_models=[BaseModelOption(str(tiny_weights_file), "Tiny ResNet-18")],
    )
    qtbot.addWidget(wizard)
    yield wizard
    controller.shutdown()


def test_every_advanced_setting_has_a_tooltip(wizard: FinetuneWizard) -> None:
    advanced = wizard.settings_page.advanced
    controls = [
        w
        for w in advanced.findChildren(QWidget)
        if isinstance(w, (QSpinBox, QDoubleSpinBox, QComboBox, QLineEdit)) and w.parent() is advanced
    ]
    assert len(controls) == 8
    tips = [control.toolTip() for control in controls]
    assert all(len(tip.split()) >= 12 for tip in tips), tips  # a sentence, not a label
    assert len(set(tips)) == len(tips)
    form = advanced.layout()
    assert all(form.labelForField(control).toolTip() == control.toolTip() for control in controls)


def test_mode_choices_show_core_s_titles_and_descriptions(wizard: FinetuneWizard) -> None:
    buttons = wizard.settings_page.mode_buttons
    assert list(buttons) == list(TRAINING_MODES)
    for key, button in buttons.items():
        assert button.text() == TRAINING_MODES[key].title
        assert button.toolTip() == TRAINING_MODES[key].description


def _stopped(checkpoint: Path | None) -> TrainResult:
    return TrainResult("cancelled", None, checkpoint, None, None, None, None, None, (), 1.0, 0.0)


@pytest.mark.parametrize("resumable", [False, True])
def test_a_stop_before_the_first_epoch_names_only_buttons_that_are_there(
    wizard: FinetuneWizard, tmp_path: Path, resumable: bool
) -> None:
    page = wizard.training_page
    wizard.show()
    wizard.session.run_event.emit(_stopped(tmp_path / "run.checkpoint.safetensors" if resumable else None))
    text = page.phase.text()
    assert "no model yet" in text
    assert page.resume_button.isVisibleTo(page) == resumable
    assert ("Resume" in text) == resumable
    assert "Back" in text
