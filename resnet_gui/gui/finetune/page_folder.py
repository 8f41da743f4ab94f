"""Page 1: where the photos are (typed, browsed or dropped)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWizardPage,
)

from resnet_gui.gui.finetune.common import wrapped
from resnet_gui.gui.finetune.session import FinetuneSession
from resnet_gui.gui.qtutil import heading, local_paths


class FolderPage(QWizardPage):
    """Where the photos are. A folder can also be dropped on the page."""

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
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Folder"))
        layout.addLayout(row)
        layout.addWidget(self.note)
        layout.addSpacing(12)
        layout.addWidget(example)
        layout.addWidget(tips)
        layout.addStretch(1)
        remembered = session.settings.finetune_folder
        if remembered and Path(remembered).is_dir():
            self.path_edit.setText(remembered)

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
        folder = self.folder()
        return folder is not None and folder.is_dir()

    def validatePage(self) -> bool:
        """Hand the folder to the session, which checks it (unless it is the one already checked)."""
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
