"""Model → Export Model…: save a model as a file other programs run, checked against the model here.

The export itself is core's :func:`resnet_gui.core.export.pipeline.iter_export`, run as a job of the
controller: its progress fills the bar, and its parity result (and INT8's trade-off) is shown at the
end in core's own sentences. A file already at the destination is replaced only once the user says so.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from resnet_gui.core.errors import Cancelled, OutputExistsError
from resnet_gui.core.export.catalog import DEFAULT_FORMAT, EXPORT_FORMATS, QUANTIZATIONS
from resnet_gui.gui import tasks
from resnet_gui.gui.controller import Controller, describe_error
from resnet_gui.gui.settings import AppSettings

INT8 = "int8"


class ExportDialog(QDialog):
    """Format, INT8, destination and (for a fine-tuned model) its photos; progress; the check's result."""

    exported = Signal(object)  # core's ExportResult, or None when the export failed or was cancelled

    def __init__(
        self,
        controller: Controller,
        settings: AppSettings,
        parent: QWidget | None = None,
        *,
        weights_file: Path | None = None,
        model_name: str = "",
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = settings
        self.weights_file = weights_file
        self.result: Any = None  # the last ExportResult
        self._job: Any = None
        info = controller.model_info
        self.model_name = model_name or (info.name if info is not None else "the model")
        self.fine_tuned = weights_file is not None or _is_fine_tuned(controller)
        self.setWindowTitle("Export Model")
        self.setMinimumWidth(720)

        intro = QLabel(
            f"Save “{self.model_name}” as a file other programs can run: on a server, a phone or a web "
            "page. The file carries the model's class names and how to prepare a photo for it. After "
            "exporting, the app checks that the file gives the same answers as the model here."
        )
        intro.setWordWrap(True)
        self.format_combo = QComboBox()
        for entry in EXPORT_FORMATS.values():
            self.format_combo.addItem(entry.display_name, entry.key)
            self.format_combo.setItemData(
                self.format_combo.count() - 1, entry.description, Qt.ItemDataRole.ToolTipRole
            )
        self.format_note = QLabel()
        self.format_note.setWordWrap(True)
        remembered = self.format_combo.findData(settings.export_format or DEFAULT_FORMAT)
        self.format_combo.setCurrentIndex(max(0, remembered))
        self.format_combo.currentIndexChanged.connect(self._format_changed)
        self.int8_box = QCheckBox("Smaller and faster (INT8)")
        self.int8_note = QLabel(QUANTIZATIONS[INT8][:1].upper() + QUANTIZATIONS[INT8][1:] + ".")
        self.int8_note.setWordWrap(True)
        self.int8_box.setToolTip(
            "Calibrated on the photos the model was trained on; the check says how much it changes "
            "the answers, and how much smaller and faster it is on this computer."
        )
        self.int8_box.toggled.connect(self._update_enabled)
        self.out_edit = QLineEdit()
        self.out_edit.setAccessibleName("Save as")
        self.out_edit.textChanged.connect(self._update_enabled)
        out_browse = QPushButton("Change…")
        out_browse.clicked.connect(self._browse_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(out_browse)
        self.photos_edit = QLineEdit(self._default_photos())
        self.photos_edit.setAccessibleName("Training photos")
        self.photos_edit.setPlaceholderText("The folder with one sub-folder per class")
        self.photos_browse = QPushButton("Change…")
        self.photos_browse.clicked.connect(self._browse_photos)
        photos_row = QHBoxLayout()
        photos_row.addWidget(self.photos_edit, 1)
        photos_row.addWidget(self.photos_browse)
        self.photos_note = QLabel(
            "Its validation photos check the export and its training photos calibrate INT8. "
            "Left empty, the app's sample photos are used for the check."
        )
        self.photos_note.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Format", self.format_combo)
        form.addRow("", self.format_note)
        form.addRow("", self.int8_box)
        form.addRow("", self.int8_note)
        form.addRow("Save as", out_row)
        if self.fine_tuned:
            form.addRow("Photos it was trained on", photos_row)
            form.addRow("", self.photos_note)
        else:
            self.photos_note.hide()

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(self.status.fontMetrics().lineSpacing() * 7)  # no jump at the end

        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(lambda: self.start_export())
        self.show_button = QPushButton("Show in Folder")
        self.show_button.clicked.connect(self.show_in_folder)
        self.show_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.cancel_or_close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.show_button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._format_changed()

    # ------------------------------------------------------------------ choices

    def format_key(self) -> str:
        return str(self.format_combo.currentData() or DEFAULT_FORMAT)

    def quantize(self) -> str | None:
        return INT8 if self.int8_box.isEnabled() and self.int8_box.isChecked() else None

    def _format_changed(self, *_: Any) -> None:
        entry = EXPORT_FORMATS[self.format_key()]
        self.format_note.setText(f"Runs {entry.description.removeprefix('runs ')}.")
        self.int8_box.setEnabled(INT8 in entry.quantizations)
        text = self.out_edit.text().strip()
        if not text:
            folder = Path(self.settings.export_folder or Path.home())
            self.out_edit.setText(str(folder / f"{_file_stem(self.model_name)}{entry.suffix}"))
        else:
            current = Path(text)
            if current.suffix.lower() in {e.suffix for e in EXPORT_FORMATS.values()}:
                self.out_edit.setText(str(current.with_suffix(entry.suffix)))
        self._update_enabled()

    def _default_photos(self) -> str:
        recorded = _recorded_data_root(self.controller) if self.weights_file is None else ""
        return recorded or self.settings.finetune_folder

    def _browse_out(self) -> None:
        entry = EXPORT_FORMATS[self.format_key()]
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the model as", self.out_edit.text(), f"{entry.display_name} (*{entry.suffix})"
        )
        if path:
            self.out_edit.setText(path)

    def _browse_photos(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "The photos the model was trained on", self.photos_edit.text()
        )
        if folder:
            self.photos_edit.setText(folder)

    def running(self) -> bool:
        return self._job is not None and not self._job.done

    def _update_enabled(self, *_: Any) -> None:
        running = self.running()
        self.export_button.setEnabled(not running and bool(self.out_edit.text().strip()))
        for widget in (self.format_combo, self.out_edit, self.photos_edit, self.photos_browse):
            widget.setEnabled(not running)
        offers_int8 = INT8 in EXPORT_FORMATS[self.format_key()].quantizations
        self.int8_box.setEnabled(not running and offers_int8)
        self.int8_box.setVisible(offers_int8)
        self.int8_note.setVisible(offers_int8)
        self.close_button.setText("Cancel" if running else "Close")

    # ------------------------------------------------------------------ the export

    def request(self, overwrite: bool = False) -> tasks.ExportRequest:
        photos = self.photos_edit.text().strip() if self.fine_tuned else ""
        return tasks.ExportRequest(
            out=Path(self.out_edit.text().strip()).expanduser(),
            format=self.format_key(),
            quantize=self.quantize(),
            data_root=Path(photos).expanduser() if photos else None,
            overwrite=overwrite,
            weights_file=self.weights_file,
        )

    def start_export(self, overwrite: bool = False) -> None:
        if self.running() or not self.out_edit.text().strip():
            return
        if self.weights_file is None and self.controller.classifier is None:
            self.status.setText("No model is loaded yet.")
            return
        request = self.request(overwrite=overwrite)
        self.settings.export_format = request.format
        self.settings.export_folder = str(request.out.parent)
        self.result = None
        self.show_button.setEnabled(False)
        self.progress.setRange(0, 0)  # busy until the first step says how many photos
        self.status.setText("Starting…")
        self._job = self.controller.start_job(
            "export",
            tasks.export_model,
            self.controller.classifier,
            request,
            on_yield=self._on_progress,
            on_progress=self._on_loading,
            on_result=self._on_exported,
            on_error=partial(self._on_failed, request),
            on_finished=self._update_enabled,
        )
        self._update_enabled()

    def _on_loading(self, fraction: float | None, text: str) -> None:
        self.status.setText(text)

    def _on_progress(self, progress: Any) -> None:
        total = max(progress.total, 0)
        if total > 1:
            self.progress.setRange(0, total)
            self.progress.setValue(progress.done)
            self.status.setText(f"{progress.title}: {progress.done} of {total}…")
        else:
            self.progress.setRange(0, 0)
            self.status.setText(f"{progress.title}…")

    def _on_exported(self, result: Any) -> None:
        self.result = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        headline = (
            f"<b>Done: the exported file gives the same answers as the model here</b> "
            f"(checked on {_escape(result.photos)})."
        )
        self.status.setText("<br>".join([headline, *(_escape(line) for line in result.sentences())]))
        self.show_button.setEnabled(True)
        self.adjustSize()  # the dialog grows with the result's sentences rather than clipping them
        self.exported.emit(result)

    def _on_failed(self, request: tasks.ExportRequest, error: BaseException) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        if isinstance(error, OutputExistsError) and not request.overwrite:
            answer = QMessageBox.question(
                self, "Replace the file?", f"“{_shown_out(request).name}” already exists. Replace it?"
            )
            if answer == QMessageBox.StandardButton.Yes:
                self._job = None
                self.start_export(overwrite=True)
                return
            self.status.setText("Not exported: the file there was kept.")
        elif isinstance(error, Cancelled):
            self.status.setText(str(error))
        else:
            self.status.setText(_escape(describe_error(error, "export the model")))
        self.exported.emit(None)

    def cancel_or_close(self) -> None:
        if self.running():
            self._job.abort()
            self.status.setText("Export cancelled; nothing was written.")
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.exported.emit(None)
            return
        self.close()

    def keyPressEvent(self, event: Any) -> None:
        if event.matches(QKeySequence.StandardKey.Cancel) and self.running():
            self.cancel_or_close()
            return
        super().keyPressEvent(event)

    def show_in_folder(self) -> None:
        if self.result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.result.path).parent)))

    def closeEvent(self, event: Any) -> None:
        if self.running():
            self._job.abort()
        super().closeEvent(event)


def _shown_out(request: tasks.ExportRequest) -> Path:
    """The file the export writes (the format's suffix added when the name has none)."""
    suffix = EXPORT_FORMATS[request.format].suffix
    return request.out if request.out.suffix else request.out.with_name(request.out.name + suffix)


def _is_fine_tuned(controller: Controller) -> bool:
    classifier = controller.classifier
    return classifier is not None and "split" in classifier.loaded.metadata


def _recorded_data_root(controller: Controller) -> str:
    """The photo folder a fine-tuned model recorded (newer bundles say where they were trained)."""
    import json

    classifier = controller.classifier
    if classifier is None:
        return ""
    training = classifier.loaded.metadata.get("training")
    try:
        data = json.loads(training) if isinstance(training, str) else training
    except ValueError:
        return ""
    root = data.get("data_root") if isinstance(data, dict) else None
    return root if isinstance(root, str) else ""


def _file_stem(name: str) -> str:
    """A model's name as a file name: no path separators or characters file systems refuse."""
    cleaned = "".join("-" if ch in '/\\:*?"<>|' or ord(ch) < 32 else ch for ch in name).strip(" .")
    return cleaned or "model"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
