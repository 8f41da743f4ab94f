"""Page 1: where the photos are (typed, browsed or dropped), or a labelling project made in the app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from resnet_gui.gui.controller import describe_error
from resnet_gui.gui.finetune.common import error_html, wrapped
from resnet_gui.gui.finetune.session import FinetuneSession
from resnet_gui.gui.qtutil import local_paths
from resnet_gui.gui.workers import TaskContext

PROJECT_ROLE = Qt.ItemDataRole.UserRole


def list_projects(context: TaskContext) -> list[tuple[Path, str]]:
    """The projects to reopen: the recent ones first, then the others in the projects folder."""
    from resnet_gui.core.projects import iter_project_folders, recent_projects

    seen: list[Path] = []
    for root in [*recent_projects(), *iter_project_folders()]:
        resolved = root.resolve()
        if resolved not in seen:
            seen.append(resolved)
    return [(root, project_label(root)) for root in seen]


def project_label(root: Path) -> str:
    """A project as a line of the list: its name and where it is."""
    import json

    try:
        name = json.loads((root / ".project" / "manifest.json").read_text("utf-8")).get("name") or root.name
    except (OSError, ValueError, AttributeError):
        name = root.name
    return f"{name}  —  {root}"


class FolderPage(QWizardPage):
    """Where the photos are. A folder can also be dropped on the page. Or: a labelling project."""

    project_chosen = Signal(object)
    """The LabellingProject the class editor (the next page) is to show."""

    def __init__(self, session: FinetuneSession) -> None:
        super().__init__()
        self.session = session
        self.setTitle("Choose your photos")
        self.setSubTitle(
            "Pick a folder with one sub-folder per class, named after the class (for example "
            "“ants” and “bees”), each holding that class's photos. A folder that already has "
            "“train” and “val” sub-folders, each split that way, is used as it is."
        )
        self.setAcceptDrops(True)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("A folder of class folders…")
        self.path_edit.setClearButtonEnabled(True)
        self.path_edit.textChanged.connect(self._changed)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self.note = wrapped()
        example = QLabel(
            "<pre>my photos/\n  ants/   ant1.jpg  ant2.jpg …\n  bees/   bee1.jpg  bee2.jpg …</pre>"
        )
        example.setTextFormat(Qt.TextFormat.RichText)
        tips = wrapped(
            "Tips: 50 or more photos per class give good results, 20 can be enough for easy cases. "
            "Photos are never changed or moved. The next page checks every photo first."
        )
        self.folder_choice = QRadioButton("A folder with one sub-folder per class")
        self.project_choice = QRadioButton("Start from scratch: make your classes here")
        self.choices = QButtonGroup(self)
        self.choices.addButton(self.folder_choice)
        self.choices.addButton(self.project_choice)
        self.folder_choice.setChecked(True)
        self.choices.buttonToggled.connect(self._choice_changed)
        self.folder_box = QWidget()
        folder_layout = QVBoxLayout(self.folder_box)
        folder_layout.setContentsMargins(24, 0, 0, 0)
        folder_layout.addLayout(row)
        folder_layout.addWidget(self.note)
        folder_layout.addWidget(example)
        folder_layout.addWidget(tips)

        self.project_box = QWidget()
        self.project_name = QLineEdit()
        self.project_name.setPlaceholderText("Name of a new project, for example “Garden birds”")
        self.project_name.textChanged.connect(self._project_name_typed)
        self.projects = QListWidget()
        self.projects.setMaximumHeight(150)
        self.projects.itemSelectionChanged.connect(self._project_picked)
        self.projects.itemDoubleClicked.connect(lambda _: self.wizard().next())
        open_other = QPushButton("Open a Project…")
        open_other.clicked.connect(self.browse_project)
        self.project_note = wrapped()
        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("New project:"))
        name_row.addWidget(self.project_name, 1)
        reopen_row = QHBoxLayout()
        self.reopen_label = QLabel("Or add photos to a project and train it again:")
        reopen_row.addWidget(self.reopen_label, 1)
        reopen_row.addWidget(open_other)
        project_layout = QVBoxLayout(self.project_box)
        project_layout.setContentsMargins(24, 0, 0, 0)
        project_layout.addWidget(
            wrapped(
                "Make your classes in the app: add a class, then drop, paste or browse its photos. "
                "The photos are copied into a project in the app's data folder (yours stay where they "
                "are), so you can come back, add more and train again."
            )
        )
        project_layout.addLayout(name_row)
        project_layout.addLayout(reopen_row)
        project_layout.addWidget(self.projects)
        project_layout.addWidget(self.project_note)
        self.project_ready: Any = None  # a LabellingProject, opened or made by a job
        self.projects_listed = False
        """Whether the list of projects to reopen has been read (it is, in a job)."""
        self._opening: str = ""

        layout = QVBoxLayout(self)
        layout.addWidget(self.folder_choice)
        layout.addWidget(self.folder_box)
        layout.addSpacing(8)
        layout.addWidget(self.project_choice)
        layout.addWidget(self.project_box)
        layout.addStretch(1)
        remembered = session.settings.finetune_folder
        if remembered and Path(remembered).is_dir():
            self.path_edit.setText(remembered)
        self._choice_changed()
        self.refresh_projects()

    # -- a labelling project --

    def project_mode(self) -> bool:
        return self.project_choice.isChecked()

    def _choice_changed(self, *_: Any) -> None:
        self.folder_box.setEnabled(not self.project_mode())
        self.project_box.setEnabled(self.project_mode())
        self.completeChanged.emit()

    def refresh_projects(self, select: Path | None = None) -> None:
        """List the projects to reopen (in a job: it reads the data folder)."""
        self.session.start_job(
            "projects-list", list_projects, on_result=lambda found: self._show_projects(found, select)
        )

    def _show_projects(self, found: list[tuple[Path, str]], select: Path | None) -> None:
        self.projects_listed = True
        self.projects.clear()
        self.projects.setVisible(bool(found))
        self.reopen_label.setText(
            "Or add photos to a project and train it again:" if found else "No projects yet."
        )
        for root, label in found:
            item = QListWidgetItem(label)
            item.setData(PROJECT_ROLE, str(root))
            self.projects.addItem(item)
            if select is not None and root == select.resolve():
                self.projects.setCurrentItem(item)
        self.completeChanged.emit()

    def picked_project(self) -> Path | None:
        items = self.projects.selectedItems()
        return Path(str(items[0].data(PROJECT_ROLE))) if items else None

    def _project_name_typed(self) -> None:
        if self.project_name.text().strip():
            self.projects.clearSelection()
        self.project_note.setText("")
        self.completeChanged.emit()

    def _project_picked(self) -> None:
        if self.projects.selectedItems():
            self.project_name.blockSignals(True)
            self.project_name.clear()
            self.project_name.blockSignals(False)
        self.project_note.setText("")
        self.completeChanged.emit()

    def choose_project(self, root: Path) -> None:
        """Select the project in ``root`` (File → Recent Projects), listing it if it is not yet."""
        self.project_choice.setChecked(True)
        self.project_name.clear()
        resolved = root.resolve()
        for row in range(self.projects.count()):
            item = self.projects.item(row)
            if Path(str(item.data(PROJECT_ROLE))) == resolved:
                self.projects.setCurrentItem(item)
                return
        item = QListWidgetItem(f"{resolved.name}  —  {resolved}")  # the job's listing names it properly
        item.setData(PROJECT_ROLE, str(resolved))
        self.projects.insertItem(0, item)
        self.projects.setVisible(True)
        self.projects.setCurrentItem(item)

    def browse_project(self) -> None:
        from resnet_gui.core.projects import projects_dir

        start = projects_dir() if projects_dir().is_dir() else Path.home()
        folder = QFileDialog.getExistingDirectory(self, "Open a labelling project", str(start))
        if folder:
            self.choose_project(Path(folder))

    def _start_project(self) -> None:
        """Open the picked project or make the named one, in a job; the page goes on when it is ready."""
        from resnet_gui.gui.finetune.page_project import create_project, open_project

        picked = self.picked_project()
        name = self.project_name.text().strip()
        request = f"open:{picked}" if picked is not None else f"new:{name}"
        if self._opening == request:
            return
        self._opening = request
        self.project_note.setText("Opening the project…")
        if picked is not None:
            self.session.start_job(
                "project-open",
                open_project,
                picked,
                on_result=self._project_opened,
                on_error=self._project_failed,
            )
        else:
            self.session.start_job(
                "project-open",
                create_project,
                name,
                on_result=self._project_opened,
                on_error=self._project_failed,
            )

    def _project_opened(self, project: Any) -> None:
        self._opening = ""
        self.project_ready = project
        self.project_note.setText("")
        self.choose_project(project.root)
        self.refresh_projects(select=project.root)
        self.wizard().next()

    def _project_failed(self, error: BaseException) -> None:
        self._opening = ""
        self.project_note.setText(error_html(describe_error(error, "open the project")))

    def folder(self) -> Path | None:
        text = self.path_edit.text().strip()
        return Path(text).expanduser() if text else None

    def browse(self) -> None:
        start = self.path_edit.text() or self.session.settings.finetune_folder or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Folder of class folders", start)
        if folder:
            self.path_edit.setText(folder)

    def _changed(self) -> None:
        folder = self.folder()
        self.note.setText("This folder does not exist." if folder is not None and not folder.is_dir() else "")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        if self.project_mode():
            return bool(self.project_name.text().strip()) or self.picked_project() is not None
        folder = self.folder()
        return folder is not None and folder.is_dir()

    def nextId(self) -> int:
        from resnet_gui.gui.finetune.wizard import PAGE_HEALTH, PAGE_PROJECT

        return PAGE_PROJECT if self.project_mode() else PAGE_HEALTH

    def validatePage(self) -> bool:
        """Hand the folder to the session, which checks it (unless it is the one already checked);
        or open (make) the project, in a job that moves on to the class editor when it is ready."""
        if self.project_mode():
            ready = self.project_ready
            picked = self.picked_project()
            if ready is not None and not self.project_name.text().strip() and picked == ready.root:
                self.project_chosen.emit(ready)
                return True
            self.project_ready = None
            self._start_project()
            return False
        folder = self.folder()
        if folder is None or not folder.is_dir():
            return False
        self.session.choose_folder(folder)
        return True

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(Path(p).is_dir() for p in local_paths(event.mimeData())):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        folders = [p for p in local_paths(event.mimeData()) if Path(p).is_dir()]
        if folders:
            self.path_edit.setText(folders[0])
            event.acceptProposedAction()
