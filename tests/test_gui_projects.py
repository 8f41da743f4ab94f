"""A labelling project made, trained and retrained entirely in the app, driven as a user would.

Offscreen, with real events: the first page's *Start from scratch* choice, a project name typed,
Add Class with its name typed in place, photos of the hymenoptera set dropped on a class and on
the thumbnails, F2 to rename, a pasted image, Delete with its confirmation and Undo, then the
health page on the project's folder and a one-epoch head-only run with the tiny model. Then File →
Recent Projects reopens it, more photos go in, the counts follow and a second run trains on them.

A thumbnail dragged onto a class: Qt's ``QDrag.exec`` runs its own event loop that offscreen
platforms cannot drive, so the test builds the drag's data with the grid's own ``mimeData`` (what
``startDrag`` would carry) and sends the drop events to the class list (what the drop delivers).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from gui.helpers import WAIT_MS, make_window
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget, QWizard
from screenshots import screenshot_folder
from test_gui_finetune import fast_settings, open_wizard, train_to_results

from resnet_gui.core.projects import LabellingProject, recent_projects
from resnet_gui.core.training import read_bundle_info
from resnet_gui.gui.finetune import PAGE_FOLDER, PAGE_HEALTH, PAGE_PROJECT, PAGE_SETTINGS
from resnet_gui.gui.qtutil import file_urls_mime

SHOTS = screenshot_folder()
PER_CLASS = 12


@pytest.fixture()
def window(qtbot, tmp_path: Path, classifier, isolated_dirs):
    return make_window(qtbot, tmp_path / "settings.ini", classifier)


@pytest.fixture()
def photos(tmp_path: Path, hymenoptera: Path) -> dict[str, list[Path]]:
    """A few real photos per class, copied from the shared data set into the test's folder."""
    out: dict[str, list[Path]] = {}
    for name in ("ants", "bees"):
        folder = tmp_path / "my photos" / name
        folder.mkdir(parents=True)
        chosen = sorted((hymenoptera / "train" / name).glob("*.jpg"))[:18]
        out[name] = [Path(shutil.copy2(p, folder / p.name)) for p in chosen]
    return out


def drop_at(widget: QWidget, where: QPoint, mime) -> None:
    """Drag ``mime`` onto ``widget`` at ``where`` and drop it (Qt drops only after an enter and a move)."""
    rest = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(where, *rest)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted(), "the widget refused the drag"
    move = QDragMoveEvent(where, *rest)
    QApplication.sendEvent(widget, move)
    assert move.isAccepted(), "the widget refused the drag there"
    dropped = QDropEvent(QPointF(where), *rest)
    QApplication.sendEvent(widget, dropped)
    assert dropped.isAccepted()


def class_item(page, name: str):
    for index in range(page.classes.topLevelItemCount()):
        item = page.classes.topLevelItem(index)
        if item.text(0) == name:
            return item
    raise AssertionError(f"no class {name!r} in {page.listing}")


def drop_on_class(page, name: str, mime) -> None:
    item = class_item(page, name)
    drop_at(page.classes.viewport(), page.classes.visualItemRect(item).center(), mime)


def counts(page) -> dict[str, int]:
    return {name: len(photos) for name, photos in page.listing.classes} if page.listing else {}


def wait_counts(qtbot, page, expected: dict[str, int]) -> None:
    try:
        qtbot.waitUntil(lambda: page.settled and counts(page) == expected, timeout=WAIT_MS)
    except Exception:
        raise AssertionError(f"{counts(page)} != {expected}; {page.status.text()!r}") from None


def click_next(qtbot, wizard) -> None:
    qtbot.mouseClick(wizard.button(QWizard.WizardButton.NextButton), Qt.MouseButton.LeftButton)


def add_class_named(qtbot, page, name: str) -> None:
    """Add Class, then type the name into the in-place editor it opens, and Enter."""
    before = len(page.listing.classes)
    qtbot.mouseClick(page.add_class_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: (
            page.listing is not None
            and len(page.listing.classes) == before + 1
            and isinstance(QApplication.focusWidget(), QWidget)
            and QApplication.focusWidget() is not page.classes
        ),
        timeout=WAIT_MS,
    )
    editor = QApplication.focusWidget()
    editor.selectAll()  # type: ignore[attr-defined]
    qtbot.keyClicks(editor, name)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: name in dict(page.listing.classes) and page.settled, timeout=WAIT_MS)


def test_a_project_is_made_trained_and_retrained_in_the_app(
    qtbot, window, photos: dict[str, list[Path]], tiny_weights_file: Path, monkeypatch
) -> None:
    originals = {p: p.read_bytes() for ps in photos.values() for p in ps}
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    first = wizard.folder_page
    qtbot.mouseClick(
        first.project_choice, Qt.MouseButton.LeftButton, pos=QPoint(8, first.project_choice.height() // 2)
    )
    assert first.project_mode() and not first.isComplete()
    qtbot.waitUntil(lambda: first.projects_listed, timeout=WAIT_MS)
    assert not first.projects.isVisible() and first.reopen_label.text() == "No projects yet."
    qtbot.keyClicks(first.project_name, "Insects")
    assert first.isComplete()
    assert wizard.grab().save(str(SHOTS / "20-project-start.png"))
    click_next(qtbot, wizard)
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_PROJECT, timeout=WAIT_MS)
    page = wizard.project_page
    qtbot.waitUntil(lambda: page.listing is not None, timeout=WAIT_MS)
    assert page.project is not None and page.project.name == "Insects"
    assert counts(page) == {} and not page.isComplete()

    # Two classes: ants dropped on the class itself, bees on the thumbnail grid of the selected class.
    add_class_named(qtbot, page, "ants")
    drop_on_class(page, "ants", file_urls_mime(photos["ants"][:PER_CLASS]))
    wait_counts(qtbot, page, {"ants": PER_CLASS})
    add_class_named(qtbot, page, "bee")
    assert page.current_class() == "bee"
    drop_at(
        page.grid.viewport(), page.grid.viewport().rect().center(), file_urls_mime(photos["bees"][:PER_CLASS])
    )
    wait_counts(qtbot, page, {"ants": PER_CLASS, "bee": PER_CLASS})
    assert page.isComplete()

    # F2 renames in place.
    page.classes.setCurrentItem(class_item(page, "bee"))
    page.classes.setFocus()
    qtbot.keyClick(page.classes, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert editor is not page.classes
    editor.selectAll()  # type: ignore[attr-defined]
    qtbot.keyClicks(editor, "bees")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    wait_counts(qtbot, page, {"ants": PER_CLASS, "bees": PER_CLASS})
    assert "Renamed" in page.status.text()

    # A name that cannot be a class is refused in one sentence, and the class keeps its name.
    page.classes.editItem(class_item(page, "bees"), 0)
    editor = QApplication.focusWidget()
    editor.selectAll()  # type: ignore[attr-defined]
    qtbot.keyClicks(editor, "train")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "cannot be used" in page.status.text() and page.settled, timeout=WAIT_MS)
    wait_counts(qtbot, page, {"ants": PER_CLASS, "bees": PER_CLASS})

    # A thumbnail dragged onto the other class moves there; Undo brings it back.
    page.classes.setCurrentItem(class_item(page, "bees"))
    qtbot.waitUntil(lambda: page.grid.count() == PER_CLASS, timeout=WAIT_MS)
    thumb = page.grid.item(0)
    moved_name = thumb.text()
    page.grid.setCurrentItem(thumb)
    drop_on_class(page, "ants", page.grid.mimeData(page.grid.selectedItems()))
    wait_counts(qtbot, page, {"ants": PER_CLASS + 1, "bees": PER_CLASS - 1})
    assert (page.project.root / "ants" / moved_name).is_file()
    qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    wait_counts(qtbot, page, {"ants": PER_CLASS, "bees": PER_CLASS})
    assert (page.project.root / "bees" / moved_name).is_file()

    # A pasted image makes a photo of a third class; Delete asks first, and Undo restores it.
    add_class_named(qtbot, page, "junk")
    picture = np.zeros((40, 60, 3), np.uint8)
    picture[:, :30] = (200, 30, 30)
    QApplication.clipboard().setImage(QImage(picture.data, 60, 40, 180, QImage.Format.Format_RGB888).copy())
    page.classes.setFocus()
    qtbot.keyClick(page.classes, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    wait_counts(qtbot, page, {"ants": PER_CLASS, "bees": PER_CLASS, "junk": 1})
    asked: list[str] = []

    def answer(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    page.classes.setCurrentItem(class_item(page, "junk"))
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    wait_counts(qtbot, page, {"ants": PER_CLASS, "bees": PER_CLASS})
    assert asked and "junk" in asked[0]
    qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    wait_counts(qtbot, page, {"ants": PER_CLASS, "bees": PER_CLASS, "junk": 1})
    page.classes.setCurrentItem(class_item(page, "junk"))
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    wait_counts(qtbot, page, {"ants": PER_CLASS, "bees": PER_CLASS})

    # The editor's screenshot, with the thumbnails in.
    page.classes.setCurrentItem(class_item(page, "ants"))
    qtbot.waitUntil(
        lambda: (
            page.grid.count() == PER_CLASS
            and all(not page.grid.item(i).icon().isNull() for i in range(page.grid.count()))
        ),
        timeout=WAIT_MS,
    )
    assert wizard.grab().save(str(SHOTS / "20-project-editor.png"))

    # The user's photos were only read; the project is in the data folder, in the recent list.
    assert all(p.read_bytes() == data for p, data in originals.items())
    root = page.project.root
    assert recent_projects()[0] == root

    # Next: the health check and the training see the project's folder, exactly its two classes.
    click_next(qtbot, wizard)
    assert wizard.currentId() == PAGE_HEALTH
    qtbot.waitUntil(lambda: wizard.health_page.isComplete(), timeout=WAIT_MS)
    assert wizard.session.checked.dataset.root == root
    assert "in 2 classes (project “Insects”)" in wizard.health_page.summary.text()  # not "class folders"
    table = wizard.health_page.classes_table
    assert sorted(table.item(row, 0).text() for row in range(table.rowCount())) == ["ants", "bees"]
    wizard.next()
    assert wizard.currentId() == PAGE_SETTINGS
    qtbot.waitUntil(lambda: wizard.settings_page.base is not None, timeout=WAIT_MS)
    fast_settings(wizard, epochs=1)
    train_to_results(qtbot, wizard)
    first_bundle = wizard.session.result.bundle
    assert first_bundle is not None and first_bundle.is_file()
    assert read_bundle_info(first_bundle).categories == ["ants", "bees"]

    # Retrain: File → Recent Projects opens the project in the editor; more photos; the counts follow.
    menu = window.recent_projects_menu
    menu.aboutToShow.emit()
    (action,) = [a for a in menu.actions() if a.text() == root.name]
    action.trigger()
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_PROJECT, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: page.listing is not None and page.settled, timeout=WAIT_MS)
    assert counts(page) == {"ants": PER_CLASS, "bees": PER_CLASS}
    drop_on_class(page, "ants", file_urls_mime(photos["ants"]))  # 12 already in: 6 new
    wait_counts(qtbot, page, {"ants": 18, "bees": PER_CLASS})
    assert (
        "6 photos added" in page.status.text() and f"{PER_CLASS} already in the project" in page.status.text()
    )
    assert class_item(page, "ants").text(1) == "18"
    click_next(qtbot, wizard)
    qtbot.waitUntil(lambda: wizard.health_page.isComplete(), timeout=WAIT_MS)
    assert wizard.session.checked.report.training_counts == {"ants": 18, "bees": PER_CLASS}
    wizard.next()
    qtbot.waitUntil(lambda: wizard.settings_page.base is not None, timeout=WAIT_MS)
    fast_settings(wizard, epochs=1)
    train_to_results(qtbot, wizard)
    second_bundle = wizard.session.result.bundle
    assert second_bundle is not None and second_bundle.is_file() and second_bundle != first_bundle
    assert LabellingProject.open(root).counts() == {"ants": 18, "bees": PER_CLASS}


def test_back_to_the_first_page_keeps_the_folder_choice_working(
    qtbot, window, tmp_path: Path, tiny_weights_file: Path
) -> None:
    """Choosing a project, then going back and choosing a folder, goes to the health page as before."""
    from test_training import make_shapes

    folder = make_shapes(tmp_path / "shapes", {"circle": 6, "square": 6})
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    wizard.folder_page.project_choice.setChecked(True)
    qtbot.keyClicks(wizard.folder_page.project_name, "Tmp")
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_PROJECT, timeout=WAIT_MS)
    wizard.back()
    assert wizard.currentId() == PAGE_FOLDER
    wizard.folder_page.folder_choice.setChecked(True)
    wizard.folder_page.path_edit.setText(str(folder))
    wizard.next()
    assert wizard.currentId() == PAGE_HEALTH
    qtbot.waitUntil(lambda: wizard.health_page.isComplete(), timeout=WAIT_MS)
    assert wizard.session.checked.dataset.root == folder
    assert "(2 class folders)" in wizard.health_page.summary.text()


def test_export_as_folders_from_the_editor(
    qtbot, window, tmp_path: Path, tiny_weights_file: Path, monkeypatch
) -> None:
    from PySide6.QtWidgets import QFileDialog
    from test_training import make_shapes

    shapes = make_shapes(tmp_path / "shapes", {"circle": 3, "square": 2})
    project = LabellingProject.create("Shapes")
    for name in ("circle", "square"):
        project.add_class(name)
        project.add_files(name, [shapes / name])
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    assert wizard.open_project(project.root)
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_PROJECT, timeout=WAIT_MS)
    page = wizard.project_page
    wait_counts(qtbot, page, {"circle": 3, "square": 2})
    # A listing that arrives while a name is typed waits for the editor: the typing is not lost.
    page.classes.setCurrentItem(class_item(page, "square"))
    page.start_rename()
    editor = QApplication.focusWidget()
    page.refresh()
    qtbot.waitUntil(lambda: page._deferred is not None, timeout=WAIT_MS)
    assert page.classes.state() == page.classes.State.EditingState
    editor.selectAll()  # type: ignore[attr-defined]
    qtbot.keyClicks(editor, "squares")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    wait_counts(qtbot, page, {"circle": 3, "squares": 2})

    # Delete on a selected thumbnail takes the photo out (Undo puts it back).
    qtbot.waitUntil(lambda: page.grid.count() == 2, timeout=WAIT_MS)
    page.grid.setCurrentItem(page.grid.item(0))
    qtbot.keyClick(page.grid, Qt.Key.Key_Delete)
    wait_counts(qtbot, page, {"circle": 3, "squares": 1})
    qtbot.keyClick(page.classes, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    wait_counts(qtbot, page, {"circle": 3, "squares": 2})

    # Merge Into lists the other classes; merging and Undo.
    page.merge_menu.aboutToShow.emit()
    assert [a.text() for a in page.merge_menu.actions()] == ["circle"]
    page.merge_menu.actions()[0].trigger()
    wait_counts(qtbot, page, {"circle": 5})
    assert "Merged" in page.status.text()
    qtbot.mouseClick(page.undo_button, Qt.MouseButton.LeftButton)
    wait_counts(qtbot, page, {"circle": 3, "squares": 2})

    # The camera hook (the main window sets it to the live view's capture): it gets the project and
    # the selected class; None hides the button.
    assert not page.camera_button.isHidden()
    page.set_camera_capture(None)
    assert page.camera_button.isHidden()
    captured: list[tuple[Path, str]] = []

    def capture(project: LabellingProject, class_name: str) -> None:
        project.add_image(class_name, np.full((16, 16, 3), 90, np.uint8), "camera")
        captured.append((project.root, class_name))
        page.refresh()

    page.set_camera_capture(capture)
    assert not page.camera_button.isHidden()
    page.classes.setCurrentItem(class_item(page, "squares"))
    qtbot.mouseClick(page.camera_button, Qt.MouseButton.LeftButton)
    wait_counts(qtbot, page, {"circle": 3, "squares": 3})
    assert captured == [(project.root, "squares")]
    page.grid.setCurrentItem(
        next(page.grid.item(i) for i in range(page.grid.count()) if "camera" in page.grid.item(i).text())
    )
    qtbot.keyClick(page.grid, Qt.Key.Key_Delete)
    wait_counts(qtbot, page, {"circle": 3, "squares": 2})

    chosen = tmp_path / "exports"
    chosen.mkdir()
    (chosen / "something else.txt").write_text("mine")  # not empty: the export goes into a new folder
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(chosen))

    # Cancel during an export (each copy held until Cancel is clicked): nothing is written.
    import resnet_gui.core.projects as projects_module

    copy_started = threading.Event()
    cancel_clicked = threading.Event()
    real_copy = projects_module.shutil.copy2

    def held_copy(src, dst, **kwargs):
        copy_started.set()
        cancel_clicked.wait(WAIT_MS / 1000)
        return real_copy(src, dst, **kwargs)

    monkeypatch.setattr(projects_module.shutil, "copy2", held_copy)
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(copy_started.is_set, timeout=WAIT_MS)
    assert page.cancel_button.isVisible() and page.cancel_button.text() == "Cancel Export"
    assert "Exporting the photos to" in page.status.text()
    page.window().grab().save(str(Path(tempfile.gettempdir()) / "resnet-gui-export-cancel.png"))  # looked at
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    cancel_clicked.set()
    qtbot.waitUntil(lambda: "Export cancelled" in page.status.text(), timeout=WAIT_MS)
    assert not page.cancel_button.isVisible()
    assert sorted(p.name for p in chosen.iterdir()) == ["something else.txt"]  # no folder, no staging
    monkeypatch.setattr(projects_module.shutil, "copy2", real_copy)

    qtbot.waitUntil(page.export_button.isEnabled, timeout=WAIT_MS)
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Exported" in page.status.text(), timeout=WAIT_MS)
    out = chosen / project.root.name
    assert {p.name: len(list(p.iterdir())) for p in out.iterdir()} == {"circle": 3, "squares": 2}
    assert (chosen / "something else.txt").read_text() == "mine"


def test_add_from_camera_captures_frames_into_the_selected_class(
    qtbot, window, tmp_path: Path, tiny_weights_file: Path, monkeypatch
) -> None:
    """The editor's Add from Camera… opens the live view aimed at that class (any model: a first
    project has no fine-tuned one); holding the capture button fills the class, and the editor's
    count follows. No camera here: the live view plays a video file, as it offers to."""
    from PySide6.QtWidgets import QFileDialog
    from test_gui_live import no_camera
    from video_makers import make_photo_video, video_encoder

    if video_encoder() is None:
        pytest.skip("PyAV with a video encoder makes the test video (pip install 'resnet-gui[video]')")
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(3)]
    video = make_photo_video(tmp_path, frames, fps=30, frames_per_photo=60)
    project = LabellingProject.create("Desk")
    project.add_class("mug")
    project.add_class("pen")
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    assert wizard.open_project(project.root)
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_PROJECT, timeout=WAIT_MS)
    page = wizard.project_page
    wait_counts(qtbot, page, {"mug": 0, "pen": 0})
    page.classes.setCurrentItem(class_item(page, "mug"))
    assert page.camera_button.isVisible()

    monkeypatch.setattr("resnet_gui.gui.live_view.camera_support", no_camera)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(video), ""))
    qtbot.mouseClick(page.camera_button, Qt.MouseButton.LeftButton)
    view = window.live_view
    assert view is not None and view.isVisible()
    assert "mug" in view.hold_button.text() and view.hold_button.isEnabled()
    qtbot.mouseClick(view.video_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.results >= 3, timeout=WAIT_MS)
    qtbot.mousePress(view.hold_button, Qt.MouseButton.LeftButton)
    qtbot.wait(700)  # held: a frame every 150 ms
    qtbot.mouseRelease(view.hold_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: window.controller.settled("live-capture") and view.captured >= 2, timeout=WAIT_MS
    )  # settled, not just idle: the last frame's handler has run too (a CI run saw 5 files, 4 counted)
    captured = len(LabellingProject.open(project.root).photos("mug"))
    assert captured == view.captured >= 2
    wait_counts(qtbot, page, {"mug": captured, "pen": 0})
    view.close()


def test_thumbnails_of_any_shape_line_up_in_the_grid(
    qtbot, window, tmp_path: Path, tiny_weights_file: Path
) -> None:
    """A wide and a tall photo get icons of one square size, so their names sit on one line (a
    newcomer's real photos left a ragged grid of names before)."""
    from PIL import Image

    from resnet_gui.gui.finetune.page_project import THUMB_SIDE

    shapes = {"wide.png": (300, 100), "tall.png": (100, 300), "square.png": (200, 200)}
    for name, size in shapes.items():
        Image.new("RGB", size, (200, 40, 40)).save(tmp_path / name)
    project = LabellingProject.create("Shapes")
    project.add_class("red")
    project.add_files("red", [tmp_path / name for name in shapes])
    wizard = open_wizard(qtbot, window, tiny_weights_file)
    assert wizard.open_project(project.root)
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_PROJECT, timeout=WAIT_MS)
    page = wizard.project_page
    wait_counts(qtbot, page, {"red": 3})
    page.classes.setCurrentItem(class_item(page, "red"))
    grid = page.grid
    qtbot.waitUntil(
        lambda: grid.count() == 3 and all(not grid.item(i).icon().isNull() for i in range(3)), timeout=WAIT_MS
    )
    icons = [grid.item(i).icon().pixmap(grid.iconSize()) for i in range(3)]
    assert {(p.width(), p.height()) for p in icons} == {(THUMB_SIDE, THUMB_SIDE)}
    wide = next(
        p for p, i in zip(icons, range(3), strict=True) if grid.item(i).text() == "wide.png"
    ).toImage()
    # Centred: the wide photo's strip is red in the middle row, transparent at the top and bottom.
    assert wide.pixelColor(THUMB_SIDE // 2, THUMB_SIDE // 2).red() > 150
    assert (
        wide.pixelColor(THUMB_SIDE // 2, 2).alpha() == 0
        and wide.pixelColor(THUMB_SIDE // 2, THUMB_SIDE - 3).alpha() == 0
    )
    class_icon = class_item(page, "red").icon(0)
    assert not class_icon.isNull()
    side = page.classes.iconSize()
    assert (class_icon.pixmap(side).width(), class_icon.pixmap(side).height()) == (
        side.width(),
        side.height(),
    )
