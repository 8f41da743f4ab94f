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
        assert button.text() == TRAINING_MODES[key].choice_text
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


# -- the results page's confidence tab -----------------------------------------------------------


def _report(tmp_path: Path, calibrated: bool):
    """An evaluation of 40 photos of ants/bees whose confidences are known, calibrated or not."""
    import numpy as np

    from resnet_gui.core.calibration import expected_calibration_error, reliability
    from resnet_gui.core.training.evaluate import EvaluationCalibration, EvaluationReport, compute_metrics

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 40)
    sure = rng.uniform(0.55, 1.0, 40)
    right = rng.random(40) < 0.75
    predicted = np.where(right, labels, 1 - labels)
    plain = np.zeros((40, 2))
    plain[np.arange(40), predicted] = sure
    plain[np.arange(40), 1 - predicted] = 1 - sure
    scaled = plain**0.7 / (plain**0.7).sum(axis=1, keepdims=True)
    calibration = EvaluationCalibration(
        temperature=1.4 if calibrated else None,
        ece_before=expected_calibration_error(plain, labels),
        ece_after=expected_calibration_error(scaled, labels) if calibrated else None,
        reliability_before=tuple(reliability(plain, labels)),
        reliability_after=tuple(reliability(scaled, labels)) if calibrated else None,
    )
    classes = ("ants", "bees")
    confusion, per_class, accuracy = compute_metrics(labels.tolist(), predicted.tolist(), classes)
    return EvaluationReport(
        "tiny", tmp_path, classes, classes, confusion, per_class, accuracy, 40, calibration=calibration
    )


class _Loaded:
    def __init__(self, metadata: dict[str, str]) -> None:
        self.metadata = metadata


class _Classifier:
    def __init__(self, metadata: dict[str, str]) -> None:
        self.loaded = _Loaded(metadata)


def _results_page(wizard: FinetuneWizard, report, metadata: dict[str, str]):
    from resnet_gui.gui.finetune.tasks import Evaluated

    wizard.session.evaluated = Evaluated(report, _Classifier(metadata))
    page = wizard.results_page
    page.initializePage()
    page.tabs.setCurrentIndex(1)
    page.resize(1100, 720)
    page.layout().activate()
    return page


def test_results_page_shows_the_calibration_and_its_diagram(
    qtbot, wizard: FinetuneWizard, tmp_path: Path
) -> None:
    from screenshots import screenshot_folder

    report = _report(tmp_path, calibrated=True)
    page = _results_page(wizard, report, {})
    calibration = report.calibration
    # Core's sentences, in plain words: the ECE before and after, and the busiest bin.
    assert page.calibration_label.text() == "\n".join(calibration.sentences())
    assert f"{calibration.ece_before * 100:.1f} % before scaling" in page.calibration_label.text()
    assert "it is right" in page.calibration_label.text()
    assert page.reliability.isVisibleTo(page) and page.reliability_note.isVisibleTo(page)
    assert page.reliability.bins("before") == calibration.reliability_before
    assert page.reliability.bins("after") == calibration.reliability_after
    qtbot.wait(50)
    assert page.grab().save(str(screenshot_folder() / "results-calibration.png"))


def test_results_page_says_why_there_is_no_calibration(qtbot, wizard: FinetuneWizard, tmp_path: Path) -> None:
    import json

    from screenshots import screenshot_folder

    note = "Too few validation photos (1) to calibrate the confidence."
    metadata = {"metrics": json.dumps({"calibration": {"note": note}})}
    page = _results_page(wizard, _report(tmp_path, calibrated=False), metadata)
    assert page.calibration_label.text() == note  # one sentence, the bundle's own reason
    assert not page.reliability.isVisibleTo(page) and not page.reliability_note.isVisibleTo(page)
    assert page.reliability.bins("before") is None  # no chart left over from an earlier report
    assert page.grab().save(str(screenshot_folder() / "results-no-calibration.png"))
    # A model that says nothing about it: the generic sentence, still one.
    page = _results_page(wizard, _report(tmp_path, calibrated=False), {"metrics": "not json"})
    assert "holds no calibration" in page.calibration_label.text()
    assert page.calibration_label.text().count(". ") == 0


def test_most_confident_mistakes_lists_the_wrong_photos_worst_first(
    qtbot, wizard: FinetuneWizard, tmp_path: Path
) -> None:
    import dataclasses

    from resnet_gui.core.training.evaluate import WrongPrediction

    wrong = [
        WrongPrediction(tmp_path / f"p{i}.jpg", "ants", "bees", confidence, 1 - confidence)
        for i, confidence in enumerate([0.6, 0.95, 0.8])
    ]
    report = dataclasses.replace(_report(tmp_path, calibrated=True), most_confident_wrong=tuple(wrong))
    page = _results_page(wizard, report, {})
    page.tabs.setCurrentIndex(0)
    page.top_losses_button.click()
    shown = [page.cell_list.item(row).toolTip() for row in range(page.cell_list.count())]
    assert shown == [str(tmp_path / name) for name in ("p1.jpg", "p2.jpg", "p0.jpg")]
    assert "3" in page.cell_label.text() and "most confident" in page.cell_label.text()
