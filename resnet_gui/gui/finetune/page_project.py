"""The class editor: make the classes of a labelling project in the app, then train on it.

A page of the wizard, shown after the first page when the user chose *Start from scratch*. On the
left the classes with their photo counts (Add class, rename by double-click or F2, Merge into…,
Delete, Undo); on the right the selected class's photos as thumbnails. Photos and folders dropped
on a class (or on the thumbnails) are copied into it, Ctrl+V pastes an image or copied files, and
a thumbnail dragged onto another class moves there. Everything that touches the disk runs as a job
(:meth:`FinetuneSession.start_job`): copying many photos shows progress and can be cancelled, the
window never freezes. The project itself is core's :class:`~resnet_gui.core.projects.LabellingProject`;
when the user goes on, the health check, training and results pages use its folder like any other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QMimeData, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from resnet_gui.core.projects import AddResult, LabellingProject, remember_project
from resnet_gui.gui.controller import describe_error
from resnet_gui.gui.finetune.common import error_html, square_icon, wrapped
from resnet_gui.gui.finetune.session import FinetuneSession
from resnet_gui.gui.qtutil import heading, local_paths
from resnet_gui.gui.workers import TaskContext

PHOTO_MIME = "application/x-resnet-gui-project-photos"
"""What a thumbnail dragged inside the editor carries: the photos' paths, one a line."""
THUMB_SIDE = 96
CLASS_ICON_SIDE = 40
NAME_ROLE = Qt.ItemDataRole.UserRole
PATH_ROLE = Qt.ItemDataRole.UserRole


# --- jobs (run on the worker pool) ---------------------------------------------------------------


@dataclass(frozen=True)
class ProjectListing:
    """What the editor shows of a project: its classes (in order) with their photos."""

    name: str
    classes: tuple[tuple[str, tuple[Path, ...]], ...]
    undo: str
    """What Undo would undo, in words (empty: nothing)."""

    def photos(self, class_name: str) -> tuple[Path, ...]:
        return next((photos for name, photos in self.classes if name == class_name), ())

    @property
    def total(self) -> int:
        return sum(len(photos) for _, photos in self.classes)


def list_project(context: TaskContext, project: LabellingProject) -> ProjectListing:
    """The project's classes and photos, read from its folder."""
    classes = tuple((name, tuple(project.photos(name))) for name in project.class_names())
    return ProjectListing(project.name, classes, project.undo_description())


def edit_project(context: TaskContext, change: Callable[[], Any]) -> Any:
    """One quick change of the project (rename, merge, delete, move, undo), off the UI thread."""
    return change()


def add_to_class(
    context: TaskContext, project: LabellingProject, class_name: str, paths: Sequence[str]
) -> AddResult:
    """Copy files and folders into a class, reporting progress; cancellable between files."""

    def progress(done: int, total: int) -> None:
        context.progress(done / max(1, total), f"Copying photo {done} of {total}…")

    context.progress(None, "Looking at the files…")
    return project.add_files(class_name, paths, cancel=context.is_cancelled, progress=progress)


def add_pasted(context: TaskContext, project: LabellingProject, class_name: str, rgb: np.ndarray) -> Path:
    return project.add_image(class_name, rgb, "pasted")


def export_project(context: TaskContext, project: LabellingProject, chosen: Path) -> Path:
    """Export into the folder the user chose when it is empty, else into a new folder inside it."""

    def progress(done: int, total: int) -> None:
        context.progress(done / max(1, total), f"Exporting photo {done} of {total}…")

    dest = chosen if chosen.is_dir() and not any(chosen.iterdir()) else chosen / project.root.name
    return project.export_as_folders(dest, cancel=context.is_cancelled, progress=progress)


def open_project(context: TaskContext, root: Path) -> LabellingProject:
    project = LabellingProject.open(root)
    remember_project(project.root)
    return project


def create_project(context: TaskContext, name: str) -> LabellingProject:
    project = LabellingProject.create(name)
    remember_project(project.root)
    return project


def qimage_rgb(image: QImage) -> np.ndarray:
    """A QImage (a pasted picture) as an H×W×3 uint8 RGB array (a copy)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    height, width, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


def photo_mime(paths: Sequence[Path]) -> QMimeData:
    """What a dragged thumbnail carries (also file URLs, so a file manager takes a copy)."""
    mime = QMimeData()
    mime.setData(PHOTO_MIME, "\n".join(os.fspath(p) for p in paths).encode("utf-8", "surrogateescape"))
    mime.setUrls([QUrl.fromLocalFile(os.fspath(p)) for p in paths])
    return mime


def dragged_photos(mime: QMimeData) -> list[Path]:
    if not mime.hasFormat(PHOTO_MIME):
        return []
    text = bytes(mime.data(PHOTO_MIME).data()).decode("utf-8", "surrogateescape")
    return [Path(line) for line in text.splitlines() if line]


# --- widgets -------------------------------------------------------------------------------------


class ClassList(QTreeWidget):
    """The classes with their counts: rename in place, and the drop target for photos and files."""

    photos_dropped = Signal(str, object)  # class name, list of project photos (a move)
    files_dropped = Signal(str, object)  # class name, list of local paths (a copy)

    def __init__(self) -> None:
        super().__init__()
        self.setColumnCount(2)
        self.setHeaderLabels(["Class", "Photos"])
        self.setRootIsDecorated(False)
        self.setIconSize(QSize(CLASS_ICON_SIDE, CLASS_ICON_SIDE))
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)

    def class_at(self, event: QDropEvent | QDragMoveEvent) -> str | None:
        item = self.itemAt(event.position().toPoint())
        return None if item is None else str(item.data(0, NAME_ROLE))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if mime.hasFormat(PHOTO_MIME) or local_paths(mime):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self.class_at(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        target = self.class_at(event)
        mime = event.mimeData()
        if target is None:
            event.ignore()
            return
        photos = dragged_photos(mime)
        if photos:
            self.photos_dropped.emit(target, photos)
        else:
            self.files_dropped.emit(target, local_paths(mime))
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()


class PhotoGrid(QListWidget):
    """The selected class's photos as thumbnails: dragged out to move, files dropped in to copy."""

    files_dropped = Signal(object)  # list of local paths
    delete_pressed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.setGridSize(QSize(THUMB_SIDE + 28, THUMB_SIDE + 40))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Static)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)

    def mimeData(self, items: Sequence[QListWidgetItem]) -> QMimeData:  # type: ignore[override]
        return photo_mime([Path(str(item.data(PATH_ROLE))) for item in items])

    def mimeTypes(self) -> list[str]:
        return [PHOTO_MIME, "text/uri-list"]

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction | Qt.DropAction.CopyAction

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if not mime.hasFormat(PHOTO_MIME) and local_paths(mime):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if not event.mimeData().hasFormat(PHOTO_MIME):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = local_paths(event.mimeData())
        if paths and not event.mimeData().hasFormat(PHOTO_MIME):
            self.files_dropped.emit(paths)
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def keyPressEvent(self, event: Any) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selectedItems():
            self.delete_pressed.emit()
            return
        super().keyPressEvent(event)

    def selected_photos(self) -> list[Path]:
        return [Path(str(item.data(PATH_ROLE))) for item in self.selectedItems()]


# --- the page ------------------------------------------------------------------------------------


class ProjectPage(QWizardPage):
    """The class editor over the session's labelling project."""

    listing_changed = Signal()
    """A new listing of the project arrived (the tests and the status line wait for it)."""

    def __init__(self, session: FinetuneSession) -> None:
        super().__init__()
        self.session = session
        self.project: LabellingProject | None = None
        self.listing: ProjectListing | None = None
        self.thumbnails: dict[Path, np.ndarray | None] = {}
        self.dirty = True
        """Whether the photos changed since the health check last saw them."""
        self._copy_job: Any = None
        self._pending = 0
        self._renaming: set[str] = set()
        """Classes whose rename is under way (their items' text is already the new name)."""
        """Changes of the project started and not yet finished."""
        self._list_requests = self._list_shown = 0
        self._deferred: tuple[int, Callable[[], Any] | None, ProjectListing] | None = None
        self._refreshing = False
        self._pending_select: str | None = None
        self.setTitle("Make your classes")
        self.setSubTitle(
            "Add a class and name it, then drop photos or folders on it, or paste them (Ctrl+V). "
            "Drag a photo onto another class to move it. Photos are copied into the project: "
            "yours stay where they are."
        )
        self.setAcceptDrops(True)

        self.heading = heading("Project")
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo)
        self.export_button = QPushButton("Export as Folders…")
        self.export_button.setToolTip("Copy the photos to a folder of your choice, one sub-folder per class.")
        self.export_button.clicked.connect(self.export)
        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(self.undo_button)
        top.addWidget(self.export_button)

        self.classes = ClassList()
        self.classes.itemSelectionChanged.connect(self._class_selected)
        self.classes.itemChanged.connect(self._class_edited)
        self.classes.itemDelegate().closeEditor.connect(self._editor_closed)
        self.classes.photos_dropped.connect(self.move_photos)
        self.classes.files_dropped.connect(self.add_files)
        self.add_class_button = QPushButton("Add Class")
        self.add_class_button.clicked.connect(self.add_class)
        self.rename_button = QPushButton("Rename")
        self.rename_button.setToolTip("Or double-click the class, or press F2.")
        self.rename_button.clicked.connect(self.start_rename)
        self.merge_button = QPushButton("Merge Into")
        self.merge_menu = QMenu(self.merge_button)
        self.merge_menu.aboutToShow.connect(self._fill_merge_menu)
        self.merge_button.setMenu(self.merge_menu)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_class)
        class_buttons = QHBoxLayout()
        for button in (self.add_class_button, self.rename_button, self.merge_button, self.delete_button):
            class_buttons.addWidget(button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.classes, 1)
        left_layout.addLayout(class_buttons)

        self.class_title = QLabel()
        self.grid = PhotoGrid()
        self.grid.files_dropped.connect(self._files_dropped_on_grid)
        self.grid.delete_pressed.connect(self.remove_selected_photos)
        self.add_photos_button = QPushButton("Add Photos…")
        self.add_photos_button.clicked.connect(self.browse_photos)
        self.add_folder_button = QPushButton("Add Folder…")
        self.add_folder_button.clicked.connect(self.browse_folder)
        self.paste_button = QPushButton("Paste")
        self.paste_button.setToolTip("Paste a copied image or copied files into the class (Ctrl+V).")
        self.paste_button.clicked.connect(self.paste)
        self.camera_button = QPushButton("Add from Camera…")
        self.camera_button.setVisible(False)  # shown by set_camera_capture, where the app has a camera
        self.camera_button.clicked.connect(self._capture)
        self._camera_capture: Callable[[LabellingProject, str], None] | None = None
        photo_buttons = QHBoxLayout()
        for button in (self.add_photos_button, self.add_folder_button, self.paste_button, self.camera_button):
            photo_buttons.addWidget(button)
        photo_buttons.addStretch(1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.class_title)
        right_layout.addWidget(self.grid, 1)
        right_layout.addLayout(photo_buttons)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([300, 700])

        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel Copying")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_copy)
        self.status = wrapped()
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addLayout(bottom)
        layout.addWidget(self.status)

        QShortcut(QKeySequence.StandardKey.Paste, self, self.paste)
        QShortcut(QKeySequence.StandardKey.Undo, self, self.undo)
        self._update_buttons()

    # -- the project --

    def set_project(self, project: LabellingProject) -> None:
        """Edit ``project`` (a new one, or one reopened to add photos and train again)."""
        self.project = project
        self.listing = None
        self.thumbnails.clear()
        self.dirty = True
        self.status.setText("")
        self.heading.setText(f"Project: {project.name}")
        self.classes.clear()
        self.grid.clear()
        self.refresh()

    def show_project(self, project: LabellingProject) -> None:
        """The first page chose ``project``: shown, unless it is the one already shown (kept as it is)."""
        if self.project is None or self.project.root != project.root:
            self.set_project(project)
        else:
            self.refresh()  # photos may have come in meanwhile (the live camera's Capture to class)

    def refresh(self, select: str | None = None, then: Callable[[], Any] | None = None) -> None:
        """Read the project's folder again (in a job) and redraw; ``then`` runs after the redraw."""
        if self.project is None:
            return
        if select is not None:
            self._pending_select = select
        self._list_requests += 1
        self.session.start_job(
            "project-list",
            list_project,
            self.project,
            on_result=partial(self._listed, self._list_requests, then),
            on_error=partial(self._listing_failed, self._list_requests),
        )

    def _listed(self, request: int, then: Callable[[], Any] | None, listing: ProjectListing) -> None:
        if self.classes.state() == QAbstractItemView.State.EditingState:
            # A name is being typed: redrawing would close its editor. Shown when the editor closes.
            self._deferred = (request, then, listing)
            return
        self._list_shown = request
        self._show_listing(listing)
        if then is not None:
            then()

    def _editor_closed(self, *_: Any) -> None:
        # Later, once the view has left its editing state (its own handler may run after this one).
        QTimer.singleShot(0, self._show_deferred)

    def _show_deferred(self) -> None:
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            self._listed(*deferred)

    def _listing_failed(self, request: int, error: BaseException) -> None:
        self._list_shown = request
        self.status.setText(error_html(describe_error(error, "read the project")))
        self._update_buttons()

    def _start(self, kind: str, func: Callable[..., Any], *args: Any, **handlers: Any) -> Any:
        """A change of the project (never superseded: each one's outcome is shown); the buttons wait
        until it has finished."""
        handlers.setdefault("on_error", self._failed)
        finished = handlers.pop("on_finished", None)
        self._pending += 1

        def done() -> None:
            self._pending -= 1
            if finished is not None:
                finished()
            self._update_buttons()

        job = self.session.start_job(kind, func, *args, supersede=False, on_finished=done, **handlers)
        self._update_buttons()
        return job

    @property
    def busy(self) -> bool:
        """Whether a change, a copy or an export of the project is running (its buttons wait)."""
        return self._pending > 0

    @property
    def settled(self) -> bool:
        """Nothing of the editor's running and the newest listing shown (what a test waits for)."""
        return self._pending == 0 and self._list_shown == self._list_requests

    def _failed(self, error: BaseException) -> None:
        self.status.setText(error_html(describe_error(error, "change the project")))
        self.refresh()

    def _changed(self, select: str | None = None) -> None:
        """After any change of the photos: the health check must look again."""
        self.dirty = True
        self.completeChanged.emit()
        self.refresh(select)

    def _show_listing(self, listing: ProjectListing) -> None:
        self.listing = listing
        self._renaming.clear()
        wanted = self._pending_select or self.current_class()
        self._pending_select = None
        self._refreshing = True
        try:
            self.classes.clear()
            for name, photos in listing.classes:
                item = QTreeWidgetItem([name, str(len(photos))])
                item.setData(0, NAME_ROLE, name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsDropEnabled)
                item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                first = self.thumbnails.get(photos[0]) if photos else None
                if first is not None:
                    item.setIcon(0, square_icon(first, CLASS_ICON_SIDE))
                self.classes.addTopLevelItem(item)
                if name == wanted:
                    item.setSelected(True)
                    self.classes.setCurrentItem(item)
            items = self.class_items()
            if self.classes.currentItem() is None and items:
                self.classes.setCurrentItem(items[0])
        finally:
            self._refreshing = False
        n = len(listing.classes)
        self.heading.setText(
            f"Project: {listing.name} — {n} class{'' if n == 1 else 'es'}, "
            f"{listing.total} photo{'' if listing.total == 1 else 's'}"
        )
        self.undo_button.setToolTip(f"Undo the {listing.undo}." if listing.undo else "Nothing to undo.")
        self._show_photos()
        self.completeChanged.emit()
        self._update_buttons()
        self.listing_changed.emit()

    def class_items(self) -> list[QTreeWidgetItem]:
        items = (self.classes.topLevelItem(index) for index in range(self.classes.topLevelItemCount()))
        return [item for item in items if item is not None]

    def _say_and_refresh(self, text: str, select: str | None = None) -> None:
        """A change's outcome: its sentence in the status line, then the project read again."""
        self.status.setText(text)
        self._changed(select)

    def current_class(self) -> str | None:
        item = self.classes.currentItem()
        return None if item is None else str(item.data(0, NAME_ROLE))

    def _class_selected(self) -> None:
        if not self._refreshing:
            self._show_photos()
            self._update_buttons()

    def _show_photos(self) -> None:
        name = self.current_class()
        self.grid.clear()
        if name is None or self.listing is None:
            self.class_title.setText("Add a class to start." if self.listing is not None else "")
            return
        photos = self.listing.photos(name)
        self.class_title.setText(
            f"<b>{name}</b>: {len(photos)} photo{'' if len(photos) == 1 else 's'}"
            + ("" if photos else " — drop photos or folders here, or use Add Photos…")
        )
        missing = []
        for photo in photos:
            item = QListWidgetItem(photo.name)
            item.setData(PATH_ROLE, os.fspath(photo))
            item.setToolTip(os.fspath(photo.name))
            thumb = self.thumbnails.get(photo)
            if thumb is not None:
                item.setIcon(square_icon(thumb, THUMB_SIDE))
            elif photo not in self.thumbnails:
                missing.append(photo)
            self.grid.addItem(item)
        if missing:
            self.session.start_job(
                "project-thumbnails",
                _thumbnails,
                missing,
                on_yield=self._thumbnail_ready,
            )
        # the first photo of every class is its icon: fetch those too
        firsts = [
            p[0] for _, p in self.listing.classes if p and p[0] not in self.thumbnails and p[0] not in missing
        ]
        if firsts:
            self.session.start_job("project-class-icons", _thumbnails, firsts, on_yield=self._thumbnail_ready)

    def _thumbnail_ready(self, value: tuple[Path, np.ndarray | None]) -> None:
        path, array = value
        self.thumbnails[path] = array
        if array is None:
            return
        for row in range(self.grid.count()):
            item = self.grid.item(row)
            if item.data(PATH_ROLE) == os.fspath(path):
                item.setIcon(square_icon(array, THUMB_SIDE))
                break
        # Not while a name is being typed: a change of the item would put its old name back in the editor
        # (the next listing sets the icon).
        if self.listing is not None and self.classes.state() != QAbstractItemView.State.EditingState:
            for class_item in self.class_items():
                photos = self.listing.photos(str(class_item.data(0, NAME_ROLE)))
                if photos and photos[0] == path:
                    class_item.setIcon(0, square_icon(array, CLASS_ICON_SIDE))

    def _update_buttons(self) -> None:
        ready = self.project is not None and self.listing is not None and not self.busy
        has_class = ready and self.current_class() is not None
        self.add_class_button.setEnabled(ready)
        for button in (
            self.rename_button,
            self.delete_button,
            self.add_photos_button,
            self.add_folder_button,
            self.paste_button,
            self.camera_button,
        ):
            button.setEnabled(has_class)
        self.merge_button.setEnabled(has_class and self.listing is not None and len(self.listing.classes) > 1)
        self.undo_button.setEnabled(ready and self.listing is not None and bool(self.listing.undo))
        self.export_button.setEnabled(ready and self.listing is not None and self.listing.total > 0)
        self.classes.setEnabled(self.project is not None and self._copy_job is None)

    # -- classes --

    def add_class(self) -> None:
        """A new class with a free name, its name selected for typing."""
        if self.project is None or self.listing is None:
            return
        taken = {name.lower() for name, _ in self.listing.classes}
        name = next(
            candidate
            for candidate in (f"New class {n}" if n > 1 else "New class" for n in range(1, 10_000))
            if candidate.lower() not in taken
        )
        project = self.project
        self._start(
            "project-edit",
            edit_project,
            partial(project.add_class, name),
            on_result=lambda _: self._after_add_class(name),
        )

    def _after_add_class(self, name: str) -> None:
        self.refresh(select=name, then=self.start_rename)

    def start_rename(self) -> None:
        item = self.classes.currentItem()
        if item is not None:
            self.classes.setFocus()
            self.classes.editItem(item, 0)

    def _class_edited(self, item: QTreeWidgetItem, column: int) -> None:
        if self._refreshing or column != 0 or self.project is None:
            return
        old = str(item.data(0, NAME_ROLE))
        new = item.text(0).strip()
        if new == old or old in self._renaming:  # a later change of the item (an icon) is no new rename
            return
        self._renaming.add(old)
        self._start(
            "project-edit",
            edit_project,
            partial(self.project.rename_class, old, new),
            on_error=partial(self._rename_failed, old, new),
            on_result=lambda _: self._say_and_refresh(f"Renamed “{old}” to “{new}”.", new),
        )

    def _rename_failed(self, old: str, new: str, error: BaseException) -> None:
        """The class keeps its name at once (the listing that follows says the same)."""
        self._refreshing = True
        try:
            for item in self.class_items():
                if item.data(0, NAME_ROLE) == old:
                    item.setText(0, old)
        finally:
            self._refreshing = False
        self._failed(error)

    def _fill_merge_menu(self) -> None:
        self.merge_menu.clear()
        source = self.current_class()
        if self.listing is None or source is None:
            return
        for name, _ in self.listing.classes:
            if name != source:
                action = self.merge_menu.addAction(name)
                action.triggered.connect(partial(self.merge_into, source, name))

    def merge_into(self, source: str, into: str) -> None:
        """Move every photo of ``source`` into ``into`` and remove ``source`` (Undo brings it back)."""
        if self.project is None:
            return
        self._start(
            "project-edit",
            edit_project,
            partial(self.project.merge_classes, source, into),
            on_result=lambda _: self._say_and_refresh(
                f"Merged “{source}” into “{into}”; Undo separates them again.", into
            ),
        )

    def delete_class(self) -> None:
        name = self.current_class()
        if self.project is None or self.listing is None or name is None:
            return
        count = len(self.listing.photos(name))
        if count:
            answer = QMessageBox.question(
                self,
                "Delete class?",
                f"Delete the class “{name}” and its {count} photo{'' if count == 1 else 's'} from the "
                "project? Your own photos are not touched, and Undo brings the class back.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self._start(
            "project-edit",
            edit_project,
            partial(self.project.delete_class, name),
            on_result=lambda n: self._say_and_refresh(
                f"Deleted the class “{name}” ({_photos(n)}); Undo brings it back."
            ),
        )

    def undo(self) -> None:
        if self.project is None or self.busy or self.listing is None or not self.listing.undo:
            return
        self._start(
            "project-edit",
            edit_project,
            self.project.undo_last,
            on_result=self._undone,
        )

    def _undone(self, change: Any) -> None:
        if change is not None:
            self.status.setText(change.description)
        self._changed()

    # -- photos --

    def move_photos(self, to_class: str, photos: Sequence[Path]) -> None:
        """Photos of the project dropped on a class: moved there."""
        if self.project is None:
            return
        project = self.project

        def move() -> int:
            return sum(1 for photo in photos if project.move_photo(photo, to_class) != photo)

        self._start(
            "project-edit",
            edit_project,
            move,
            on_result=lambda n: self._say_and_refresh(f"Moved {_photos(n)} to “{to_class}”."),
        )

    def remove_selected_photos(self) -> None:
        photos = self.grid.selected_photos()
        if self.project is None or not photos:
            return
        self._start(
            "project-edit",
            edit_project,
            partial(self.project.remove_photos, photos),
            on_result=lambda n: self._say_and_refresh(
                f"Removed {_photos(n)} from the project (Undo brings them back)."
            ),
        )

    def _files_dropped_on_grid(self, paths: list[str]) -> None:
        name = self.current_class()
        if name is not None:
            self.add_files(name, paths)

    def add_files(self, class_name: str, paths: Sequence[str]) -> None:
        """Copy files and folders into ``class_name`` in a job, with progress and Cancel."""
        if self.project is None or not paths:
            return
        if self._copy_job is not None:
            self.status.setText("Photos are still being copied; wait for them, or Cancel.")
            return
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setText("Cancel Copying")  # not the wizard's Cancel beside it
        self.cancel_button.setVisible(True)
        self.status.setText(f"Adding photos to “{class_name}”…")
        self._copy_job = self._start(
            "project-add",
            add_to_class,
            self.project,
            class_name,
            list(paths),
            on_progress=self._copy_progress,
            on_result=partial(self._files_added, class_name),
            on_error=self._copy_failed,
            on_finished=partial(self._copy_finished, "Cancelled; the photos copied so far are kept."),
        )

    def _copy_progress(self, fraction: float | None, text: str) -> None:
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(fraction * 1000))
        self.status.setText(text)

    def _files_added(self, class_name: str, result: AddResult) -> None:
        text = result.summary()
        if result.skipped:
            shown = ", ".join(skip.path.name for skip in result.skipped[:3])
            text += f" Skipped: {shown}{'…' if len(result.skipped) > 3 else ''}."
        self.status.setText(text)
        self._changed(select=class_name)

    def _copy_failed(self, error: BaseException) -> None:
        self.status.setText(error_html(describe_error(error, "copy the photos")))
        self._changed()

    def _copy_finished(self, cancelled_text: str) -> None:
        """A copy or an export ended: ``cancelled_text`` is said when it was cancelled."""
        job, self._copy_job = self._copy_job, None
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        if job is not None and job.aborted:
            self.status.setText(cancelled_text)
            self._changed()
        self._update_buttons()

    def cancel_copy(self) -> None:
        if self._copy_job is not None:
            self._copy_job.abort()

    def browse_photos(self) -> None:
        name = self.current_class()
        if name is None:
            return
        from resnet_gui.core.images import IMAGE_EXTENSIONS

        patterns = " ".join(f"*{ext}" for ext in IMAGE_EXTENSIONS)
        files, _ = QFileDialog.getOpenFileNames(
            self,
            f"Add photos to “{name}”",
            self.session.settings.last_folder or str(Path.home()),
            f"Images ({patterns});;All files (*)",
        )
        if files:
            self.add_files(name, files)

    def browse_folder(self) -> None:
        name = self.current_class()
        if name is None:
            return
        folder = QFileDialog.getExistingDirectory(
            self, f"Add a folder of photos to “{name}”", self.session.settings.last_folder or str(Path.home())
        )
        if folder:
            self.add_files(name, [folder])

    def paste(self) -> None:
        """Ctrl+V: copied files are added to the class; a copied image is saved into it."""
        name = self.current_class()
        if self.project is None or name is None:
            self.status.setText("Choose or add a class to paste into.")
            return
        mime = QApplication.clipboard().mimeData()
        paths = local_paths(mime) if mime is not None else []
        if paths:
            self.add_files(name, paths)
            return
        image = QApplication.clipboard().image()
        if image.isNull():
            self.status.setText("The clipboard holds no image and no files.")
            return
        self._start(
            "project-edit",
            add_pasted,
            self.project,
            name,
            qimage_rgb(image),
            on_result=lambda photo: self._say_and_refresh(f"Pasted as {photo.name}.", name),
        )

    def set_camera_capture(self, capture: Callable[[LabellingProject, str], None] | None) -> None:
        """Show "Add from Camera…", which calls ``capture(project, class name)`` (the live view's
        *Capture to class…*, saving frames with :meth:`LabellingProject.add_image`); call
        :meth:`refresh` when frames were saved. None hides the button again."""
        self._camera_capture = capture
        self.camera_button.setVisible(capture is not None)
        self._update_buttons()

    def _capture(self) -> None:
        name = self.current_class()
        if self._camera_capture is not None and self.project is not None and name is not None:
            self._camera_capture(self.project, name)

    # -- export --

    def export(self) -> None:
        """Copy the project to a folder as one sub-folder per class (an empty folder, or a new one in it)."""
        if self.project is None:
            return
        chosen = QFileDialog.getExistingDirectory(self, "Export the project's photos to", str(Path.home()))
        if not chosen or self._copy_job is not None:
            return
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setText("Cancel Export")  # the copy's button: one job at a time
        self.cancel_button.setVisible(True)
        self.status.setText(f"Exporting the photos to {chosen}…")
        self._copy_job = self._start(
            "project-export",
            export_project,
            self.project,
            Path(chosen),
            on_progress=self._copy_progress,
            on_result=self._exported,
            on_error=self._export_failed,
            on_finished=partial(self._copy_finished, "Export cancelled; nothing was written."),
        )

    def _exported(self, dest: Path) -> None:
        self.progress.setVisible(False)
        self.status.setText(f"Exported to {dest}, one folder per class.")

    def _export_failed(self, error: BaseException) -> None:
        self.progress.setVisible(False)
        self.status.setText(error_html(describe_error(error, "export the project")))

    # -- the wizard --

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_paths(event.mimeData()) and self.current_class() is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        name = self.current_class()
        paths = local_paths(event.mimeData())
        if name is not None and paths:
            self.add_files(name, paths)
            event.acceptProposedAction()

    def isComplete(self) -> bool:
        """Two classes with photos, and nothing still being copied."""
        if self.listing is None or self._copy_job is not None:
            return False
        return sum(1 for _, photos in self.listing.classes if photos) >= 2

    def validatePage(self) -> bool:
        """Hand the project's folder to the health check (again when photos changed since)."""
        if self.project is None or not self.isComplete():
            return False
        checked = self.session.checked
        if self.dirty or checked is None or self.session.folder != self.project.root:
            self.session.check_folder(self.project.root)
            self.dirty = False
        return True

    def nextId(self) -> int:
        from resnet_gui.gui.finetune.wizard import PAGE_HEALTH

        return PAGE_HEALTH


def _photos(count: int) -> str:
    return f"{count} photo{'' if count == 1 else 's'}"


def _thumbnails(context: TaskContext, paths: Sequence[Path]) -> Any:
    from resnet_gui.gui.tasks import batch_thumbnails

    return batch_thumbnails(context, paths, THUMB_SIDE)
