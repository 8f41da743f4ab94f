"""The batch window: a folder classified into a live table, filters, sorting, export, sorting files.

A real MainWindow (offscreen) with the tiny 3-class ResNet; the folder holds small generated
images and one corrupt file. The screenshot uses the real ResNet-50 on assets/samples.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from gui.helpers import WAIT_MS, drop, make_window, wait_explanation
from PIL import Image
from PySide6.QtCore import Qt
from screenshots import screenshot_folder

from resnet_gui.core.batch import class_folder_name, read_rows
from resnet_gui.core.engine import Classifier
from resnet_gui.gui import batch_view, main_window
from resnet_gui.gui.batch_view import (
    COL_CONFIDENCE,
    COL_FILE,
    COL_NOTE,
    COL_TOPK,
    EXPORT_ALL,
    FAILED,
    BatchView,
    SortOptionsDialog,
)
from resnet_gui.gui.qtutil import file_urls_mime

REPO = Path(__file__).resolve().parent.parent
IMAGES = 12


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Twelve small images of different colours and sizes, and a corrupt JPEG."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for index in range(IMAGES):
        height, width = 40 + 4 * index, 64 - 2 * index
        array = np.zeros((height, width, 3), dtype=np.uint8)
        array[:] = rng.integers(0, 255, 3)
        array[height // 4 : height // 2, width // 3 :] = rng.integers(0, 255, 3)
        Image.fromarray(array).save(folder / f"photo{index:02d}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    (folder / "notes.txt").write_text("not an image")
    return folder


def run_batch(qtbot, window, folder: Path) -> BatchView:
    view = window.open_batch(folder)
    qtbot.waitUntil(lambda: view.progress is not None and view.progress.finished, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not view.running, timeout=WAIT_MS)
    return view


def test_a_batch_fills_the_table_with_every_file(qtbot, window, classifier, folder) -> None:
    view = run_batch(qtbot, window, folder)
    rows = view.model.rows
    assert sorted(row.path.name for row in rows) == sorted(
        [f"photo{i:02d}.png" for i in range(IMAGES)] + ["broken.jpg"]
    )
    failed = [row for row in rows if not row.ok]
    assert [row.path.name for row in failed] == ["broken.jpg"]
    # Every classified row is what core predicts for the file.
    row = next(row for row in rows if row.ok)
    [expected] = classifier.classify_images([classifier.load(row.path)], top_k=3)
    assert row.labels == tuple(p.label for p in expected)
    # The table shows it: the failed row says why, the progress is complete.
    texts = {
        view.proxy.index(i, COL_FILE).data(): view.proxy.index(i, COL_TOPK).data() for i in range(len(rows))
    }
    assert texts["broken.jpg"] == failed[0].error
    assert view.progress_bar.value() == view.progress_bar.maximum() == IMAGES + 1
    assert view.progress.failed == 1
    assert view.rate_label.text().startswith("Done: 13 images")
    assert "images/s" in view.rate_label.text()
    assert view.export_button.isEnabled() and view.sort_button.isEnabled()
    # Thumbnails are decoded for the painted rows.
    qtbot.waitUntil(lambda: view.model.has_thumbnail(folder / "photo00.png"), timeout=WAIT_MS)
    assert not view.model.has_thumbnail(folder / "broken.jpg")


def test_cancel_stops_early_and_keeps_the_rows(qtbot, window, classifier, folder, monkeypatch) -> None:
    monkeypatch.setattr(batch_view, "BATCH_SIZE", 2)
    forward = classifier.logits

    def slow(batch):
        time.sleep(0.15)
        return forward(batch)

    monkeypatch.setattr(classifier, "logits", slow)
    view = window.open_batch(folder)
    assert view.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: len(view.model.rows) > 0, timeout=WAIT_MS)
    view.cancel()
    kept = len(view.model.rows)
    qtbot.waitUntil(lambda: view._job.done, timeout=WAIT_MS)
    qtbot.wait(50)  # any late signal of the cancelled job is dropped
    assert 0 < len(view.model.rows) == kept < IMAGES + 1
    assert view.rate_label.text().startswith("Cancelled after")
    assert not view.cancel_button.isEnabled()
    assert view.export_button.isEnabled()


def test_filters_and_sorting_work_on_the_proxy(qtbot, window, folder) -> None:
    view = run_batch(qtbot, window, folder)
    proxy = view.proxy
    total = IMAGES + 1
    assert proxy.rowCount() == total

    view.set_class_filter(FAILED)
    assert [row.path.name for row in proxy.visible_rows()] == ["broken.jpg"]
    assert view.shown_label.text() == f"Showing 1 of {total} rows"

    label = next(row.top1.label for row in view.model.rows if row.ok)
    view.set_class_filter(label)
    shown = proxy.visible_rows()
    assert shown and all(row.top1 is not None and row.top1.label == label for row in shown)
    assert len(shown) == sum(1 for row in view.model.rows if row.ok and row.top1.label == label)

    view.set_class_filter("")
    probabilities = sorted(row.top1.probability for row in view.model.rows if row.ok)
    threshold = probabilities[len(probabilities) // 2]
    view.confidence_spin.setValue(threshold * 100)
    shown = proxy.visible_rows()
    assert shown and all(row.top1.probability >= round(threshold * 100, 1) / 100 for row in shown)
    assert len(shown) < total
    view.confidence_spin.setValue(0)

    view.table.sortByColumn(COL_CONFIDENCE, Qt.SortOrder.DescendingOrder)
    shown = proxy.visible_rows()
    confidences = [row.top1.probability if row.ok else -1.0 for row in shown]
    assert confidences == sorted(confidences, reverse=True)
    assert shown[-1].path.name == "broken.jpg"
    view.table.sortByColumn(COL_FILE, Qt.SortOrder.AscendingOrder)
    names = [row.path.name for row in proxy.visible_rows()]
    assert names == sorted(names, key=str.lower)
    assert proxy.index(0, COL_CONFIDENCE).data() == ""  # broken.jpg first: no confidence


def test_export_csv_writes_every_row(qtbot, window, folder, tmp_path) -> None:
    view = run_batch(qtbot, window, folder)
    view.set_class_filter(FAILED)  # asked for all rows, the export holds every row, not only the shown ones
    with qtbot.waitSignal(view.export_finished, timeout=WAIT_MS) as finished:
        view.export_csv(tmp_path / "out" / "results.csv", EXPORT_ALL)
    out = finished.args[0]
    assert out is not None and out.is_file()
    assert not list(out.parent.glob("*.partial"))
    written = read_rows(out)
    assert [(row.path, row.labels, row.error) for row in written] == [
        (row.path, row.labels, row.error) for row in view.model.rows
    ]
    for saved, row in zip(written, view.model.rows, strict=True):
        assert saved.probabilities == pytest.approx(row.probabilities, abs=1e-5)


def test_the_note_column_and_the_export_carry_the_two_flags(qtbot, tmp_path, tiny_weights_file) -> None:
    """A bundle with a not-sure and an OOD threshold: the Note says each in words, row by row, the
    exported CSV has the same flags, and the sort dialog offers the same threshold, exactly."""
    from test_batch_flags import csv_flags, make_flagged_bundle

    from resnet_gui.core.models import load_model

    bundle = make_flagged_bundle(tiny_weights_file, tmp_path / "bundle")
    classifier = Classifier(load_model(weights_file=bundle.path), "cpu")
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    view = run_batch(qtbot, window, bundle.folder)
    assert view.model.unsure_threshold == pytest.approx(bundle.unsure_threshold)
    expected_not_sure = bundle.not_sure()
    notes = {
        view.proxy.index(i, COL_FILE).data(): view.proxy.index(i, COL_NOTE).data()
        for i in range(view.proxy.rowCount())
    }
    assert notes == {
        name: " · ".join(
            words
            for words, flag in (
                ("not sure", expected_not_sure[name]),
                ("unlike the training photos", unusual),
            )
            if flag
        )
        for name, unusual in bundle.unusual.items()
    }
    assert {"not sure", "unlike the training photos"} <= {
        part for note in notes.values() for part in note.split(" · ")
    }
    unsure_row = next(
        i for i in range(view.proxy.rowCount()) if "not sure" in view.proxy.index(i, COL_NOTE).data()
    )
    tooltip = view.proxy.index(unsure_row, COL_NOTE).data(Qt.ItemDataRole.ToolTipRole)
    assert f"below {bundle.unsure_threshold * 100:.0f} %" in tooltip
    with qtbot.waitSignal(view.export_finished, timeout=WAIT_MS) as finished:
        view.export_csv(tmp_path / "export.csv", EXPORT_ALL)
    assert csv_flags(finished.args[0]) == {
        name: (str(expected_not_sure[name]).lower(), str(unusual).lower())
        for name, unusual in bundle.unusual.items()
    }
    dialog = SortOptionsDialog(str(tmp_path / "sorted"), view.model.unsure_threshold, view)
    assert dialog.options()[2] == view.model.unsure_threshold  # not rounded to the spin box's 0.1 %
    dialog.min_confidence.setValue(90.0)
    assert dialog.options()[2] == pytest.approx(0.9)


def test_sort_into_folders_copies_into_class_folders(qtbot, window, folder, tmp_path, monkeypatch) -> None:
    view = run_batch(qtbot, window, folder)
    destination = tmp_path / "sorted"
    shown_plans = []
    monkeypatch.setattr(view, "ask_sort_options", lambda: (destination, "copy", None))

    def confirm(plan, where):
        shown_plans.append((list(plan), where))
        return True

    monkeypatch.setattr(view, "confirm_plan", confirm)
    with qtbot.waitSignal(view.sort_finished, timeout=WAIT_MS) as finished:
        view.sort_button.click()
    report = finished.args[0]
    [(plan, where)] = shown_plans
    assert where == destination and len(plan) == IMAGES  # the corrupt file has no class
    assert len(report.done) == IMAGES and not report.failed
    for row in view.model.rows:
        if row.ok:
            copy = destination / class_folder_name(row.top1.label) / row.path.name
            assert copy.read_bytes() == row.path.read_bytes()
            assert row.path.exists()  # copied, not moved
    assert view.rate_label.text() == f"Copied {IMAGES} files into class folders."


def test_sort_confirmation_shows_the_plan(qtbot, window, folder, tmp_path, monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    view = run_batch(qtbot, window, folder)
    seen = {}

    def fake_exec(box):
        seen["text"], seen["details"] = box.text(), box.detailedText()
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    monkeypatch.setattr(view, "ask_sort_options", lambda: (tmp_path / "sorted", "move", 0.99))
    view.sort_into_folders()  # planned in a job (it looks at every file), then shown
    qtbot.waitUntil(lambda: "text" in seen, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not view.sorting, timeout=WAIT_MS)
    assert view.rate_label.text() == "Sort cancelled: nothing was copied, linked or moved."
    assert seen["text"].startswith(f"Move {IMAGES} files into")
    assert "_unsure" in seen["details"] and "move " in seen["details"]
    assert not (tmp_path / "sorted").exists()  # cancelled: nothing moved
    assert all(row.path.exists() for row in view.model.rows)


def test_double_click_opens_the_image_with_its_explanation(qtbot, window, folder) -> None:
    view = run_batch(qtbot, window, folder)
    view.table.sortByColumn(COL_FILE, Qt.SortOrder.DescendingOrder)
    index = view.proxy.index(0, COL_FILE)
    row = index.data(batch_view.ROW_ROLE)
    assert row.path.name == f"photo{IMAGES - 1:02d}.png"
    where = view.table.visualRect(index).center()
    viewport = view.table.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=where)
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=where)
    wait_explanation(qtbot, window, label=row.top1.label)
    assert window.controller.current_image.source.path == row.path
    assert window.controller.target == row.top1.index


def test_file_menu_and_dropped_folders_open_the_batch_window(
    qtbot, window, folder, monkeypatch, sample_images
) -> None:
    from PySide6.QtWidgets import QFileDialog

    assert window.batch_action.shortcut().toString() == "Ctrl+B"
    assert window.batch_action in window.menuBar().actions()[0].menu().actions()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(folder))
    window.batch_action.trigger()
    view = window.batch_view
    assert view is not None and view.isVisible() and view.folder == folder
    qtbot.waitUntil(lambda: not view.running, timeout=WAIT_MS)
    view.close()

    # A big folder dropped on the window: the question, answered "batch table" …
    asked = []
    monkeypatch.setattr(window, "ask_batch", lambda path, count, *_: asked.append((path, count)) or "batch")
    drop(window.image_view, file_urls_mime([folder]))
    qtbot.waitUntil(lambda: bool(asked), timeout=WAIT_MS)  # the folder is listed in a job
    assert asked == [(folder, IMAGES + 1)]
    assert window.batch_view is view and view.isVisible()
    qtbot.waitUntil(lambda: view.progress is not None and view.progress.finished, timeout=WAIT_MS)
    assert window.strip.count() == 0
    # … or "strip": the images open one by one, as before.
    monkeypatch.setattr(window, "ask_batch", lambda path, count, *_: "strip")
    drop(window.image_view, file_urls_mime([folder]))
    qtbot.waitUntil(lambda: window.strip.count() == IMAGES, timeout=WAIT_MS)
    # A small folder goes to the strip without a question.
    assert len(sample_images) < main_window.BATCH_OFFER_MIN
    few = sample_images[0].parent / "few"  # its own folder: sub-folders count too (the photos are one)
    few.mkdir()
    for image in sample_images:
        shutil.copy(image, few / image.name)
    asked.clear()
    monkeypatch.setattr(window, "ask_batch", lambda *args: asked.append(args) or "")
    drop(window.image_view, file_urls_mime([few]))
    qtbot.waitUntil(lambda: window.strip.count() == IMAGES + 3, timeout=WAIT_MS)
    assert asked == []


@pytest.mark.real_model
def test_screenshot_of_the_batch_window(qtbot, tmp_path, real_resnet50) -> None:
    from resnet_gui.core.models import RESNET50_V1, get_model_spec

    spec = get_model_spec(RESNET50_V1).get_weights()
    classifier = Classifier(dataclasses.replace(real_resnet50, weights_description=spec.description), "cpu")
    folder = tmp_path / "samples"
    folder.mkdir()
    for sample in sorted((REPO / "assets" / "samples").glob("*.jpg")):
        shutil.copy(sample, folder / sample.name)
    (folder / "scan-0042.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    window = make_window(qtbot, tmp_path / "settings.ini", classifier)
    view = run_batch(qtbot, window, folder)
    view.resize(980, 420)
    view.table.sortByColumn(COL_CONFIDENCE, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(
        lambda: all(view.model.has_thumbnail(row.path) for row in view.model.rows if row.ok), timeout=WAIT_MS
    )
    qtbot.wait(80)
    path = screenshot_folder() / "07-batch.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    assert view.grab().save(str(path))
    with Image.open(path) as image:
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 50, "a blank screenshot"
