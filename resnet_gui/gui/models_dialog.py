"""Model → Manage Models…: the user's fine-tuned models: use, rename, delete, export, show in folder.

The listing, the rename and the delete are core's :mod:`resnet_gui.core.library`, each run as a job
of the controller; a delete first shows the exact files that will be removed and asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.library import LibraryEntry
from resnet_gui.gui import tasks
from resnet_gui.gui.controller import FILE_PREFIX, Controller, describe_error

ACTION_MANAGE_MODELS = "manage-models"
COLUMNS = ("Name", "Classes", "Trained", "Folder")
ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1


class ManageModelsDialog(QDialog):
    """The list of the user's models with Use, Rename…, Delete… and Show in Folder."""

    listed = Signal()  # the list was (re)filled
    changed = Signal()  # a model was renamed or deleted
    export_requested = Signal(object)  # (LibraryEntry,): Export… on a model

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.entries: list[LibraryEntry] = []
        self._busy = False
        self.setWindowTitle("My models")
        self.resize(760, 380)

        intro = QLabel(
            "The models you fine-tuned (kept in the app's folder) and those you opened. "
            "Pick one in the toolbar's model list to use it."
        )
        intro.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setAccessibleName("My models")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in enumerate((170, 260, 95)):
            self.table.setColumnWidth(column, width)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _index: self.use_selected())
        self.status = QLabel("Listing your models…")
        self.status.setWordWrap(True)

        self.use_button = QPushButton("Use")
        self.use_button.clicked.connect(self.use_selected)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self.rename_selected)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(self.delete_selected)
        self.show_button = QPushButton("Show in Folder")
        self.show_button.clicked.connect(self.show_selected)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the model as an ONNX or TorchScript file other programs run")
        self.export_button.clicked.connect(self.export_selected)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for button in (
            self.use_button,
            self.rename_button,
            self.delete_button,
            self.show_button,
            self.export_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._update_buttons()

    # ------------------------------------------------------------------ listing

    def refresh(self) -> None:
        """List the models again (in a job)."""
        self._busy = True
        self._update_buttons()
        self.controller.start_job(
            "library-list", tasks.list_my_models, on_result=self._listed, on_error=self._failed
        )

    def _listed(self, entries: Sequence[LibraryEntry]) -> None:
        selected = self.selected()
        self._busy = False
        self.entries = list(entries)
        self.table.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            cells = (entry.name, entry.classes_text, entry.day or "–", str(entry.path.parent))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(ENTRY_ROLE, entry)
                item.setToolTip(str(entry.path) if column != 1 else ", ".join(entry.categories))
                self.table.setItem(row, column, item)
        if self.entries:
            keep = next((i for i, e in enumerate(self.entries) if selected and e.path == selected.path), 0)
            self.table.selectRow(keep)
            count = len(self.entries)
            self.status.setText(f"{count} model{'s' if count != 1 else ''}.")
        else:
            self.status.setText(
                "No models of yours yet: Model → Fine-Tune on Your Photos… teaches one your own classes."
            )
        self._update_buttons()
        self.listed.emit()

    def _failed(self, error: BaseException) -> None:
        self._busy = False
        self.status.setText(describe_error(error, "do that"))
        self._update_buttons()

    def selected(self) -> LibraryEntry | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.table.item(rows[0].row(), 0).data(ENTRY_ROLE)

    def select(self, name: str) -> None:
        """Select the model called ``name`` (as a click on its row does)."""
        for row, entry in enumerate(self.entries):
            if entry.name == name:
                self.table.selectRow(row)
                return

    def _update_buttons(self) -> None:
        has = self.selected() is not None and not self._busy
        for button in (
            self.use_button,
            self.rename_button,
            self.delete_button,
            self.show_button,
            self.export_button,
        ):
            button.setEnabled(has)

    def _in_use(self, entry: LibraryEntry) -> bool:
        info = self.controller.model_info
        return info is not None and info.ref == f"{FILE_PREFIX}{entry.path}"

    # ------------------------------------------------------------------ actions

    def use_selected(self) -> None:
        entry = self.selected()
        if entry is not None:
            self.controller.load_model(weights_file=str(entry.path))
            self.status.setText(f"Loading {entry.name}…")

    def export_selected(self) -> None:
        entry = self.selected()
        if entry is not None:
            self.export_requested.emit(entry)

    def show_selected(self) -> None:
        entry = self.selected()
        if entry is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(entry.path.parent)))

    def ask_new_name(self, entry: LibraryEntry) -> str | None:
        name, ok = QInputDialog.getText(
            self, "Rename the model", f"New name for “{entry.name}”:", QLineEdit.EchoMode.Normal, entry.name
        )
        return name if ok and name.strip() and name.strip() != entry.name else None

    def rename_selected(self) -> None:
        entry = self.selected()
        if entry is None:
            return
        name = self.ask_new_name(entry)
        if name is None:
            return
        self._busy = True
        self._update_buttons()
        self.status.setText(f"Renaming {entry.name}…")
        self.controller.start_job(
            "library-rename",
            tasks.rename_my_model,
            entry.path,
            name,
            on_result=partial(self._renamed, entry),
            on_error=self._failed,
        )

    def _renamed(self, entry: LibraryEntry, new_path: Path) -> None:
        self.status.setText(f"Renamed “{entry.name}” to “{new_path.stem}”.")
        if self._in_use(entry):
            self.controller.load_model(weights_file=str(new_path))  # the settings must not keep the old path
        self._after_change()

    def confirm_delete(self, entry: LibraryEntry) -> bool:
        """Show the exact files a delete removes, and ask; the default button is Cancel."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Delete the model")
        box.setText(f"Delete the model “{entry.name}” for good?")
        files = "\n".join(str(path) for path in entry.files) or str(entry.path)
        in_use = "\n\nIt stays in use until you pick another model." if self._in_use(entry) else ""
        box.setInformativeText(
            f"These files will be deleted (not moved to the trash; this cannot be undone):\n{files}{in_use}"
        )
        delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.exec()
        return box.clickedButton() is delete

    def delete_selected(self) -> None:
        entry = self.selected()
        if entry is None or not self.confirm_delete(entry):
            return
        self._busy = True
        self._update_buttons()
        self.status.setText(f"Deleting {entry.name}…")
        self.controller.start_job(
            "library-delete",
            tasks.delete_my_model,
            entry.path,
            on_result=partial(self._deleted, entry),
            on_error=self._failed,
        )

    def _deleted(self, entry: LibraryEntry, removed: list[Path]) -> None:
        count = len(removed)
        self.status.setText(f"Deleted “{entry.name}” ({count} file{'s' if count != 1 else ''}).")
        self._after_change()

    def _after_change(self) -> None:
        self.changed.emit()
        self.controller.refresh_models()
        self.refresh()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh()
