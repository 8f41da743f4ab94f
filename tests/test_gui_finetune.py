"""The fine-tuning wizard, driven as a user would: folder, health report, settings, training, results.

A real MainWindow (offscreen) with the tiny 3-class ResNet as the classifier and as the base model;
the dataset is two classes of generated shapes with one corrupt file and one duplicate. Learning
quality on real photos is tested in test_training_real.py; this checks the wizard's plumbing: the
report's ticks decide the split, the curves get every epoch, stop keeps a model, a matrix cell
lists exactly its photos with a Grad-CAM, and "use this model now" makes it the classifier's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from gui.helpers import WAIT_MS, longest_gap, make_window, ui_ticks
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWizard
from screenshots import screenshot_folder
from test_training import make_shapes

from resnet_gui.core.training import read_bundle_info
from resnet_gui.gui.finetune import (
    PAGE_HEALTH,
    PAGE_RESULTS,
    PAGE_SAVE,
    PAGE_SETTINGS,
    PAGE_TRAINING,
    BaseModelOption,
    FinetuneWizard,
    base_model_options,
    save_copy,
)

TRAIN_WAIT_MS = 120_000
SHOTS = screenshot_folder()


@pytest.fixture()
def window(qtbot, tmp_path: Path, classifier, isolated_dirs):
    """The shared window fixture's, with the app's data folder (saved models, caches) in tmp_path."""
    return make_window(qtbot, tmp_path / "settings.ini", classifier)


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    """12 circles and 12 squares, a file that is not an image, and a copy of one square."""
    root = make_shapes(tmp_path / "shapes", {"circle": 12, "square": 12})
    (root / "circle" / "broken.jpg").write_bytes(b"not a jpeg at all")
    shutil.copyfile(root / "square" / "square000.png", root / "square" / "copy-of-square000.png")
    return root


def open_wizard(qtbot, window, tiny_weights_file: Path) -> FinetuneWizard:
    wizard = FinetuneWizard(
        window.controller,
        window.settings,
        base_models=[BaseModelOption(str(tiny_weights_file), "Tiny ResNet-18")],
        parent=window,
    )
    window.adopt_finetune_wizard(wizard)
    qtbot.addWidget(wizard)
    wizard.show()
    qtbot.waitExposed(wizard)
    return wizard


def go_to_settings(qtbot, wizard: FinetuneWizard, folder: Path) -> None:
    wizard.folder_page.path_edit.setText(str(folder))
    assert wizard.folder_page.isComplete()
    wizard.next()
    assert wizard.currentId() == PAGE_HEALTH
    qtbot.waitUntil(lambda: wizard.health_page.isComplete(), timeout=WAIT_MS)
    wizard.next()
    assert wizard.currentId() == PAGE_SETTINGS
    qtbot.waitUntil(lambda: wizard.settings_page.base is not None, timeout=WAIT_MS)


def fast_settings(wizard: FinetuneWizard, epochs: int = 6) -> None:
    page = wizard.settings_page
    page.mode_buttons["head"].setChecked(True)
    page.epochs.setValue(epochs)
    page.batch_size.setValue(8)
    page.patience.setValue(0)


def next_to_training(qtbot, wizard: FinetuneWizard) -> None:
    """Next on the settings page: it looks at the destination in a job, then goes on by itself."""
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_TRAINING, timeout=WAIT_MS)


def train_to_results(qtbot, wizard: FinetuneWizard) -> None:
    next_to_training(qtbot, wizard)
    assert wizard.currentId() == PAGE_TRAINING
    qtbot.waitUntil(lambda: wizard.training_page.isComplete(), timeout=TRAIN_WAIT_MS)
    wizard.next()
    assert wizard.currentId() == PAGE_RESULTS


def test_base_model_options_put_local_resnet50_first() -> None:
    from resnet_gui.gui.data import ModelChoice

    choices = [
        ModelChoice("resnet18:IMAGENET1K_V1", "ResNet-18", "IMAGENET1K_V1", "downloadable", True),
        ModelChoice("resnet50:IMAGENET1K_V2", "ResNet-50", "IMAGENET1K_V2", "downloadable", True),
        ModelChoice("resnet50_v1:KERAS", "ResNet-50 v1", "KERAS", "imported", True),
        ModelChoice("resnet34:IMAGENET1K_V1", "ResNet-34", "IMAGENET1K_V1", "missing", True),
    ]
    options = base_model_options(choices)
    assert [o.ref for o in options] == [
        "resnet50_v1:KERAS",
        "resnet50:IMAGENET1K_V2",
        "resnet18:IMAGENET1K_V1",
    ]
    assert "downloads" in options[1].label and "downloads" not in options[0].label


def test_health_page_flags_files_and_the_ticks_decide_the_split(
    qtbot, window, dataset: Path, tiny_weights_file: Path
) -> None:
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    go_to_settings(qtbot, wizard, dataset)
    health = wizard.health_page
    broken = dataset / "circle" / "broken.jpg"
    pair = {dataset / "square" / "copy-of-square000.png", dataset / "square" / "square000.png"}
    # Both problems are listed and ticked by default: the unreadable file, and one of the two copies.
    assert broken in health.excluded()
    (copy,) = pair & health.excluded()
    (original,) = pair - {copy}
    assert health.classes_table.rowCount() == 2
    warnings = health.warnings.text()
    assert "1 file cannot be read" in warnings and "1 file is an exact copy" in warnings
    # Thumbnails arrive for the examples of each class.
    qtbot.waitUntil(
        lambda: all(
            label.pixmap() is not None and not label.pixmap().isNull()
            for label in health._example_labels.values()
        ),
        timeout=WAIT_MS,
    )
    split = wizard.settings_page.split()
    used = {s.path for s in (*split.train, *split.val)}
    assert copy not in used and broken not in used and original in used
    # The user keeps the copy: it is then trained on or validated.
    health.set_excluded(copy, False)
    health.set_excluded(broken, False)
    assert copy not in health.excluded() and broken in health.excluded()
    # Back to the first page and forward again with the same folder: the report and ticks stay.
    report = health.checked
    wizard.back()
    wizard.back()
    wizard.next()
    assert health.checked is report and copy not in health.excluded()
    wizard.next()
    split = wizard.settings_page.split()
    used = {s.path for s in (*split.train, *split.val)}
    assert copy in used and broken not in used
    # The estimate is measured and shown with the sizes of the split.
    wizard.settings_page._update_estimate()
    text = wizard.settings_page.estimate.text()
    assert f"{len(split.train)} photos to train on, {len(split.val)} to validate" in text
    assert "Each epoch" in text
    # The share kept for validation is typed as a percentage, and the split and the estimate follow.
    box = wizard.settings_page.val_percent
    assert box.text() == "20 %"
    box.selectAll()
    qtbot.keyClicks(box, "40")
    box.interpretText()
    assert box.value() == 40
    wider = wizard.settings_page.split()
    assert len(wider.val) > len(split.val) and len(wider.train) + len(wider.val) == len(split.train) + len(
        split.val
    )
    assert f"{len(wider.val)} to validate" in wizard.settings_page.estimate.text()
    box.setValue(20)

    # What the user sees of the report: docs/screenshots/13 (the README's picture of it).
    wizard.back()
    assert wizard.currentId() == PAGE_HEALTH
    health.set_excluded(copy, True)
    wizard.resize(1080, 620)
    qtbot.waitUntil(lambda: not health._file_items[copy][0].icon(1).isNull(), timeout=WAIT_MS)
    qtbot.wait(100)
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert wizard.grab().save(str(SHOTS / "13-finetune-health-flagged.png"))


def test_settings_show_the_estimate_of_each_mode_and_refuse_bad_values(
    qtbot, window, dataset: Path, tiny_weights_file: Path, monkeypatch
) -> None:
    from resnet_gui.core.training.estimate import estimate_run

    wizard = open_wizard(qtbot, window, tiny_weights_file)
    go_to_settings(qtbot, wizard, dataset)
    page = wizard.settings_page
    shown = {}
    for mode in ("head", "partial", "full"):
        page.mode_buttons[mode].setChecked(True)
        split = page.split()
        # The page shows core's estimate from the costs it measured, for the settings on the page.
        assert page.last_estimate == estimate_run(
            page.base.costs, page.config(), len(split.train), len(split.val)
        )
        shown[mode] = (page.epochs.value(), page.last_estimate.epoch_seconds)
    assert shown["head"][0] > shown["partial"][0]  # each mode brings its own default epochs
    assert shown["head"][1] < min(shown["partial"][1], shown["full"][1])  # head epochs use cached features
    page.lr_edit.setText("fast please")
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args, **kwargs: warnings.append(args[2]))
    assert not page.validatePage()
    assert "learning rate" in warnings[0]


def test_wizard_trains_shows_curves_results_and_hands_over_the_model(
    qtbot, window, dataset: Path, tiny_weights_file: Path, tmp_path: Path
) -> None:
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    go_to_settings(qtbot, wizard, dataset)
    fast_settings(wizard, epochs=6)
    out = tmp_path / "models" / "shapes-tiny.safetensors"
    wizard.settings_page.out_edit.setText(str(out))
    train_to_results(qtbot, wizard)

    training = wizard.training_page
    result = training.result
    assert result.status == "finished" and result.bundle == out and out.is_file()
    history = [e for e in result.history if e.stage == "train"]
    assert len(history) == 6
    # One point per epoch on each curve, with the values of the run.
    loss = training.loss_chart.points("validation")
    assert [x for x, _ in loss] == [1, 2, 3, 4, 5, 6]
    assert np.allclose([y for _, y in loss], [e.val_loss for e in history])
    accuracy = training.accuracy_chart.points("train")
    assert np.allclose([y for _, y in accuracy], [e.train_accuracy for e in history])

    # Results: the matrix counts every validation photo; a cell lists exactly its photos.
    report = training.evaluated.report
    results = wizard.results_page
    split_val = len(wizard.plan.split.val)
    assert report.count == split_val == int(report.confusion.sum())
    assert results.per_class.rowCount() == 2
    for row in range(2):
        for column in range(report.confusion.shape[1]):
            results.show_cell(row, column)
            assert results.cell_list.count() == report.confusion[row, column]
    # Clicking a non-empty cell on the matrix shows its first photo with the Grad-CAM overlay.
    row, column = map(int, np.argwhere(report.confusion > 0)[0])
    matrix = results.matrix
    with qtbot.waitSignal(matrix.cell_clicked, timeout=WAIT_MS):
        qtbot.mouseClick(matrix, Qt.MouseButton.LeftButton, pos=matrix.cell_rect(row, column).center())
    assert results.cell_list.count() == report.confusion[row, column]
    qtbot.waitUntil(lambda: results.explained is not None, timeout=WAIT_MS)
    explained = results.explained
    expected = [
        p for p in report.predictions if p[1] == report.classes[row] and p[2] == report.columns[column]
    ]
    assert explained.path in {p[0] for p in expected}
    assert explained.label == report.columns[column]
    assert explained.photo.shape == explained.overlay.shape
    assert not np.array_equal(explained.photo, explained.overlay)  # the heat map is drawn on it
    assert results.preview.picture is not None and len(results.preview.picture.panels) == 2

    # Save Report writes the evaluation's files; they hold the same matrix as the page.
    results.save_report(tmp_path / "report")
    qtbot.waitUntil(lambda: results.saved_report is not None, timeout=WAIT_MS)
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["confusion_matrix"] == report.confusion.tolist() and saved["count"] == split_val
    assert (tmp_path / "report" / "confusion_matrix.png").stat().st_size > 1000
    assert "report.json" in results.report_label.text()

    # The bundle's own record agrees with the page.
    info = read_bundle_info(out)
    assert info.categories == ["circle", "square"]
    assert json.loads(json.dumps(info.training))["mode"] == "head"

    wizard.next()
    assert wizard.currentId() == PAGE_SAVE
    # The mode in the words of the settings page, not the CLI's key.
    assert "How much learned: Quick;" in wizard.save_page.details.text()
    assert wizard.settings_page.mode_buttons["head"].text() == "Quick (recommended)"
    copy = save_copy(out, tmp_path / "elsewhere" / "my-model")
    assert copy.is_file() and copy.with_suffix(".json").is_file()
    assert copy.read_bytes() == out.read_bytes()
    assert wizard.save_page.use_now.isChecked()
    wizard.button(QWizard.WizardButton.FinishButton).click()
    qtbot.waitUntil(
        lambda: window.controller.model_info is not None and window.controller.model_info.num_classes == 2,
        timeout=WAIT_MS,
    )
    assert window.controller.classifier.categories == ("circle", "square")
    assert str(out) in window.controller.model_info.ref


def slow_settings(wizard: FinetuneWizard) -> None:
    """Every layer trains for up to 400 epochs: slow enough to stop in the middle."""
    fast_settings(wizard, epochs=400)
    wizard.settings_page.mode_buttons["full"].setChecked(True)
    wizard.settings_page.epochs.setValue(400)
    wizard.settings_page.patience.setValue(0)


def train_epochs(training) -> list[float]:
    """The x of each validation point of the fine-tuning stage (after the classifier-only probe)."""
    return [x for x, _ in training.loss_chart.points("validation") if x > training._offset]


def test_stop_keeps_the_best_model_and_resume_goes_on(
    qtbot, window, dataset: Path, tiny_weights_file: Path, tmp_path: Path
) -> None:
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    go_to_settings(qtbot, wizard, dataset)
    slow_settings(wizard)
    out = tmp_path / "stopped.safetensors"
    wizard.settings_page.out_edit.setText(str(out))
    next_to_training(qtbot, wizard)
    training = wizard.training_page
    qtbot.waitUntil(
        lambda: training._stage == "train" and len(train_epochs(training)) >= 2, timeout=TRAIN_WAIT_MS
    )
    # The UI thread keeps running its event loop while training runs; Back waits for the run to end.
    with ui_ticks() as ticks:
        qtbot.wait(1000)
    gap = longest_gap(ticks)
    assert gap < 0.25, f"the UI thread was blocked for {gap * 1000:.0f} ms"
    assert training.running()
    assert not wizard.button(QWizard.WizardButton.BackButton).isEnabled()
    training.stop_button.click()
    qtbot.waitUntil(lambda: training.result is not None, timeout=TRAIN_WAIT_MS)
    assert training.result.status == "cancelled"
    assert training.result.bundle == out and out.is_file()  # the best weights so far
    assert training.result.checkpoint is not None and training.resume_button.isVisible()
    qtbot.waitUntil(lambda: training.isComplete(), timeout=TRAIN_WAIT_MS)  # evaluated all the same
    before = train_epochs(training)
    # The results say which stage the kept weights come from when deeper training did not help.
    wizard.next()
    note = "Quick mode would have done as well" in wizard.results_page.headline.text()
    assert note == (training.result.best_stage == "probe")
    wizard.back()

    # Resume goes on from the checkpoint: its epochs continue the curves.
    training.resume_button.click()
    qtbot.waitUntil(lambda: len(train_epochs(training)) >= len(before) + 2, timeout=TRAIN_WAIT_MS)
    training.stop()
    qtbot.waitUntil(lambda: training.result is not None and not training.running(), timeout=TRAIN_WAIT_MS)
    after = train_epochs(training)
    assert after[: len(before)] == before
    assert after[len(before)] == before[-1] + 1  # epoch numbering goes on, nothing re-done
    assert after == sorted(set(after))


def test_closing_while_training_asks_and_stops(
    qtbot, window, dataset: Path, tiny_weights_file: Path, tmp_path: Path, monkeypatch
) -> None:
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    go_to_settings(qtbot, wizard, dataset)
    slow_settings(wizard)
    wizard.settings_page.out_edit.setText(str(tmp_path / "closing.safetensors"))
    next_to_training(qtbot, wizard)
    training = wizard.training_page
    qtbot.waitUntil(lambda: len(training.loss_chart.points("validation")) >= 1, timeout=TRAIN_WAIT_MS)
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: answers.pop(0))
    wizard.reject()  # "No": training goes on
    assert wizard.isVisible() and training.running()
    wizard.reject()  # "Yes": stopped
    assert not wizard.isVisible()
    qtbot.waitUntil(lambda: not training.running(), timeout=TRAIN_WAIT_MS)
    assert training.result is not None and training.result.status == "cancelled"


def test_a_folder_without_classes_is_explained(
    qtbot, window, tmp_path: Path, tiny_weights_file: Path
) -> None:
    folder = tmp_path / "flat"
    folder.mkdir()
    (folder / "photo.png").write_bytes(b"")
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    wizard.folder_page.path_edit.setText(str(folder))
    wizard.next()
    qtbot.waitUntil(lambda: bool(wizard.health_page.error), timeout=WAIT_MS)
    assert "class" in wizard.health_page.error
    assert not wizard.health_page.isComplete()


def test_main_window_opens_the_wizard_with_its_shortcut(qtbot, window) -> None:
    assert window.finetune_action.shortcut().toString() == "Ctrl+T"
    window.finetune_action.trigger()
    wizard = window.finetune_wizard
    assert wizard is not None and wizard.isVisible()
    qtbot.addWidget(wizard)
    window.finetune_action.trigger()
    assert window.finetune_wizard is wizard  # the open one is raised, not a second one
    wizard.reject()


def test_a_second_run_never_overwrites_the_first_model(
    qtbot, window, dataset: Path, tiny_weights_file: Path, isolated_dirs: Path
) -> None:
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    go_to_settings(qtbot, wizard, dataset)
    fast_settings(wizard, epochs=2)
    suggested = Path(wizard.settings_page.out_edit.text())
    assert suggested.parent == isolated_dirs / "data" / "models"  # the app's data folder
    next_to_training(qtbot, wizard)
    training = wizard.training_page
    qtbot.waitUntil(training.isComplete, timeout=TRAIN_WAIT_MS)
    first = training.result.bundle
    assert first == suggested and first.is_file()
    first_bytes = first.read_bytes()
    assert "cache" not in training.eta.text()  # the first run reads every photo
    wizard.back()  # change a setting and train again
    assert wizard.currentId() == PAGE_SETTINGS
    wizard.settings_page.epochs.setValue(3)
    next_to_training(qtbot, wizard)
    qtbot.waitUntil(lambda: training.result is not None and training.isComplete(), timeout=TRAIN_WAIT_MS)
    second = training.result.bundle
    assert second != first and second.is_file()
    assert first.read_bytes() == first_bytes
    # The same photos, model and seed: the features come from the first run's cache, and it says so.
    assert "earlier run's cache" in training.eta.text()


def test_a_folder_dropped_on_the_first_page_is_taken(
    qtbot, window, dataset: Path, tiny_weights_file: Path
) -> None:
    from gui.helpers import drop

    from resnet_gui.gui.qtutil import file_urls_mime

    wizard = open_wizard(qtbot, window, tiny_weights_file)
    page = wizard.folder_page
    assert not page.isComplete()
    drop(page, file_urls_mime([dataset]))
    assert page.folder() == dataset and page.isComplete()
    wizard.next()
    assert window.settings.finetune_folder == str(dataset)  # remembered for next time


def test_a_run_cut_off_by_closing_the_app_is_offered_for_resume(
    qtbot, window, dataset: Path, tiny_weights_file: Path, isolated_dirs: Path, monkeypatch
) -> None:
    from resnet_gui.core.training import checkpoint_path

    wizard = open_wizard(qtbot, window, tiny_weights_file)
    go_to_settings(qtbot, wizard, dataset)
    slow_settings(wizard)
    out = Path(wizard.settings_page.out_edit.text())
    next_to_training(qtbot, wizard)
    training = wizard.training_page
    qtbot.waitUntil(
        lambda: training._stage == "train" and len(train_epochs(training)) >= 2, timeout=TRAIN_WAIT_MS
    )
    done = len(train_epochs(training))
    training._job.abort()  # what closing the app does to a running job: no result, no bundle
    qtbot.waitUntil(lambda: training._job.done, timeout=TRAIN_WAIT_MS)
    assert checkpoint_path(out).is_file() and not out.exists()
    wizard.hide()

    # A new wizard with the same folder, model and mode proposes the same file, finds the
    # checkpoint and offers to resume; the resumed run goes on after the epochs already done.
    asked: list[str] = []

    def answer(*args, **kwargs):
        asked.append(args[1])
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    again = open_wizard(qtbot, window, tiny_weights_file)
    go_to_settings(qtbot, again, dataset)
    again.settings_page.mode_buttons["full"].setChecked(True)
    again.settings_page.epochs.setValue(7)  # ignored: a resumed run keeps its own settings
    assert Path(again.settings_page.out_edit.text()) == out
    next_to_training(qtbot, again)
    assert asked == ["Resume the interrupted run?"]
    assert again.plan.resume and again.plan.config.epochs == 400
    resumed = again.training_page
    qtbot.waitUntil(lambda: len(resumed.loss_chart.points("validation")) >= 1, timeout=TRAIN_WAIT_MS)
    first_x = resumed.loss_chart.points("validation")[0][0]
    resumed.stop()
    qtbot.waitUntil(lambda: resumed.result is not None and not resumed.running(), timeout=TRAIN_WAIT_MS)
    assert first_x >= done + 1  # no epoch of the cut-off run was done again
    assert resumed.result.bundle == out and out.is_file()


def test_next_on_the_settings_page_looks_at_the_destination_off_the_ui_thread(
    qtbot, window, dataset: Path, tiny_weights_file: Path, tmp_path: Path, monkeypatch
) -> None:
    import threading

    from resnet_gui.core.training import planning

    threads: list[int] = []
    real = planning.find_interrupted_run

    def recording(*args, **kwargs):
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(planning, "find_interrupted_run", recording)
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    go_to_settings(qtbot, wizard, dataset)
    fast_settings(wizard, epochs=1)
    wizard.settings_page.out_edit.setText(str(tmp_path / "looked-at.safetensors"))
    next_to_training(qtbot, wizard)
    assert threads and threading.get_ident() not in threads  # read in a job, not by the UI thread
    qtbot.waitUntil(wizard.training_page.isComplete, timeout=TRAIN_WAIT_MS)
