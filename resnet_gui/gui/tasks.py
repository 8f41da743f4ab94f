"""The long jobs the app runs in worker threads; each is a thin call into ``resnet_gui.core``.

Every function takes a :class:`~resnet_gui.gui.workers.TaskContext` first and returns (or yields)
plain data from :mod:`resnet_gui.gui.data`. None touches a widget. torch and the engine modules are
imported inside the functions, so importing this module stays cheap and the first of these jobs
(:func:`import_engine`) is what pays for ``import torch``, in the background.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from resnet_gui.core.errors import ImageLoadError, ImageTooLargeError
from resnet_gui.core.images import load_image, load_image_from_bytes
from resnet_gui.gui.data import (
    ChoiceStatus,
    Classification,
    DecodedImage,
    DecodeFailure,
    EngineInfo,
    ExplanationMap,
    ImageSource,
    MethodChoice,
    ModelChoice,
)
from resnet_gui.gui.workers import TaskContext

if TYPE_CHECKING:
    from resnet_gui.core.engine import Classifier

#: JPEGs are decoded (PIL draft mode) at the smallest scale whose short side is still this long:
#: plenty for a window, several times faster than decoding 12 MP.
DISPLAY_MIN_SIDE = 1024
#: Displayed images are capped at this long side, which bounds the memory and the time of overlays.
DISPLAY_MAX_SIDE = 2048
THUMBNAIL_SIDE = 160


@dataclass(frozen=True)
class FolderListed:
    """A folder was listed (with its sub-folders): how many image files it holds, and where."""

    folder: Path
    count: int
    summary: str = ""  # "153 photos in 2 folders: ants 70, bees 83"
    in_subfolders: bool = False  # some of the photos are in sub-folders
    counts: tuple[tuple[str, int], ...] = ()  # photos per sub-folder ("": the folder itself), by name


def folder_listed(folder: Path, files: Sequence[Path]) -> FolderListed:
    """What a listing found, for people (core's ``describe_found``)."""
    from resnet_gui.core.batch.scan import describe_found, folder_counts

    counts = folder_counts(folder, files)
    in_subfolders = any(counts) and set(counts) != {""}
    return FolderListed(
        folder, len(files), describe_found(folder, files), in_subfolders, tuple(counts.items())
    )


def image_files_in(folder: Path) -> list[Path]:
    """The image files of ``folder`` and its sub-folders (core's scan: hidden ones skipped, stable order)."""
    from resnet_gui.core.batch.scan import BatchInputError, scan_folder

    try:
        return scan_folder(folder, recursive=True)
    except BatchInputError:
        return []


def list_folder(context: TaskContext, folder: Path) -> FolderListed:
    """List a folder's images (and its sub-folders'), off the UI thread: how many, and where."""
    return folder_listed(folder, image_files_in(folder))


def _open(source: ImageSource, min_size: int | None) -> Image.Image:
    if source.path is not None:
        return load_image(source.path, min_size=min_size)
    return load_image_from_bytes(source.data or b"", name=source.name, min_size=min_size)


def decode_for_display(source: ImageSource) -> DecodedImage:
    """Decode ``source`` through core's loader at display size, and make its thumbnail."""
    began = time.perf_counter()
    image = _open(source, DISPLAY_MIN_SIDE)
    size = image.size
    if max(size) > DISPLAY_MAX_SIDE:
        image = image.copy()
        image.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE), Image.Resampling.LANCZOS)
    display = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    thumb = image.copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BILINEAR)
    thumbnail = np.ascontiguousarray(np.asarray(thumb, dtype=np.uint8))
    return DecodedImage(source, display, thumbnail, size, time.perf_counter() - began)


def decode_sources(
    context: TaskContext, items: Sequence[ImageSource]
) -> Iterator[DecodedImage | DecodeFailure | FolderListed]:
    """Decode files, folders (their images, one by one) and pasted bytes, yielding each outcome."""
    for item in items:
        if item.path is not None and item.path.is_dir():
            files = image_files_in(item.path)
            yield folder_listed(item.path, files)
            for path in files:
                yield _decode_one(ImageSource.from_path(path))
        else:
            yield _decode_one(item)


def _decode_one(source: ImageSource) -> DecodedImage | DecodeFailure:
    try:
        return decode_for_display(source)
    except ImageLoadError as error:
        return DecodeFailure(source, str(error), too_large=isinstance(error, ImageTooLargeError))


def redecode(context: TaskContext, source: ImageSource) -> DecodedImage:
    """Decode again an image whose display copy was dropped from memory."""
    return decode_for_display(source)


def classify(context: TaskContext, classifier: Classifier, source: ImageSource) -> Classification:
    """Probabilities of every class, decoding the file exactly as the CLI does (draft size for the model)."""
    began = time.perf_counter()
    if source.path is not None:
        image = classifier.load(source.path)
    else:
        image = load_image_from_bytes(
            source.data or b"", name=source.name, min_size=classifier.preprocessing.resize_size
        )
    decode = time.perf_counter() - began
    context.check()
    began = time.perf_counter()
    batch = classifier.preprocessing.prepare_batch([image])
    from resnet_gui.core.calibration import calibrated_probabilities

    logits = classifier.logits(batch)
    probabilities = calibrated_probabilities(logits, classifier.temperature)[0]
    unusual = classifier.unusual(logits)
    return Classification(
        probabilities, decode, time.perf_counter() - began, unusual=bool(unusual is not None and unusual[0])
    )


def explain(
    context: TaskContext, classifier: Classifier, display: np.ndarray, method: str, target: int
) -> ExplanationMap:
    """The heat map of class ``target`` on the displayed image, with core's one pipeline."""
    from resnet_gui.core.explain import get_method_info
    from resnet_gui.core.explain.pipeline import explain_photo

    info = get_method_info(method)
    result = explain_photo(
        classifier,
        Image.fromarray(display),
        method=info.key,
        targets=[int(target)],
        progress=lambda fraction: context.progress(fraction),
        cancel=context.is_cancelled,
    )
    explained = result.classes[0]
    return ExplanationMap(
        method=info.key,
        method_name=info.display_name,
        target=explained.explanation.target_index,
        label=explained.label,
        probability=explained.probability,
        map_on_image=explained.map_on_image,
        heatmap=explained.explanation.heatmap,
        fit=result.fit,
        seconds=result.seconds,
    )


def score(
    context: TaskContext, classifier: Classifier, display: np.ndarray, explanation: ExplanationMap
) -> Any:
    """The faithfulness check of a map: core's ROAD score (37 forward passes in two batches, and
    36 fill-ins of removed pixels), with a random map scored the same way as the yardstick."""
    from resnet_gui.core.explain.pipeline import prepare_for_fit
    from resnet_gui.core.explain.road import road_score

    prepared = prepare_for_fit(classifier, Image.fromarray(display), explanation.fit)
    context.check()
    return road_score(
        classifier,
        prepared,
        explanation.heatmap,
        explanation.target,
        method=explanation.method,
        label=explanation.label,
        cancel=context.is_cancelled,
    )


class _Throttle:
    """Pass on at most one progress report per ``interval`` seconds (and always the last one)."""

    def __init__(self, context: TaskContext, interval: float = 0.1) -> None:
        self.context = context
        self.interval = interval
        self.last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last < self.interval and (total is None or done < total):
            return
        self.last = now
        megabytes = f"{done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else "")
        self.context.progress(done / total if total else None, f"Downloading the weights: {megabytes}")


def import_engine(context: TaskContext) -> EngineInfo:
    """Import torch and the engine (seconds), then read the registries that feed the menus."""
    context.progress(None, "Loading PyTorch…")
    import torch  # noqa: F401 - the point of this job
    import torchvision  # noqa: F401

    import resnet_gui.core.engine
    import resnet_gui.core.explain
    import resnet_gui.core.explain.pipeline  # noqa: F401
    from resnet_gui.core.explain.maps import COLORMAPS, colorize

    # The colormaps' tables (matplotlib's import, ~0.1-0.2 s) are read here, not when the UI
    # thread draws the colormap menu's icons.
    for name in COLORMAPS:
        colorize(np.zeros((1, 1), dtype=np.float32), name)
    return engine_info()


def engine_info() -> EngineInfo:
    """The menus' contents from the registries; needs torch imported (cheap once it is)."""
    import PIL
    import torch
    import torchvision
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    from resnet_gui import __version__
    from resnet_gui.core.engine import available_devices
    from resnet_gui.core.explain import METHODS
    from resnet_gui.core.explain.maps import COLORMAPS

    methods = tuple(
        MethodChoice(info.key, info.display_name, info.description, info.cost == "slow")
        for info in METHODS.values()
    )
    versions = {
        "ResNet GUI": __version__,
        "PyTorch": torch.__version__,
        "torchvision": torchvision.__version__,
        "Qt": qVersion(),
        "PySide6": pyside_version,
        "NumPy": np.__version__,
        "Pillow": PIL.__version__,
        "Python": sys.version.split()[0],
    }
    return EngineInfo(picker_choices(), methods, tuple(COLORMAPS), tuple(available_devices()), versions)


def model_choices() -> tuple[ModelChoice, ...]:
    """Every (model, weights) of the registry with its status now (a file check each), in plain words."""
    from resnet_gui.core.models import model_names, plain_words, registry

    models = registry()
    choices = []
    for name in model_names():
        spec = models[name]
        for weights in spec.weights:
            status = weights.status()
            words = plain_words(spec, weights, status)
            choices.append(
                ModelChoice(
                    ref=f"{spec.name}:{weights.name}",
                    display_name=words.name,
                    weights=weights.name,
                    status=status,
                    is_default=weights.name == spec.default_weights,
                    text=words.text,
                    explanation=words.explanation,
                    kind="small" if spec.small_images else "imagenet",
                )
            )
    return tuple(choices)


MY_MODEL_STATUS: ChoiceStatus = "mine"


def my_model_choices() -> tuple[ModelChoice, ...]:
    """The user's fine-tuned models (core's library: the data folder's and the remembered ones)."""
    from resnet_gui.core.library import list_bundles

    choices = []
    for entry in list_bundles():
        where = "" if entry.in_data_folder else f"\nIn {entry.path.parent}"
        choices.append(
            ModelChoice(
                ref=f"file:{entry.path}",
                display_name=entry.name,
                weights="",
                status=MY_MODEL_STATUS,
                text=f"{entry.name} — {entry.summary}",
                explanation=f"Your model {entry.name}: {entry.summary}.{where}",
                kind="mine",
            )
        )
    return tuple(choices)


def picker_choices() -> tuple[ModelChoice, ...]:
    """The model picker's entries: ImageNet models usable now, the user's models, then the others."""
    registry_choices = model_choices()
    ready = tuple(choice for choice in registry_choices if choice.usable)
    later = tuple(choice for choice in registry_choices if not choice.usable)
    later = tuple(sorted(later, key=lambda choice: choice.status == "missing"))
    return ready + my_model_choices() + later


def list_model_choices(context: TaskContext) -> tuple[ModelChoice, ...]:
    """:func:`picker_choices` as a job: it reads a file check per weights and a header per bundle."""
    return picker_choices()


def list_my_models(context: TaskContext) -> list[Any]:
    """The user's models (core ``LibraryEntry``), newest first, for the Manage Models dialog."""
    from resnet_gui.core.library import list_bundles

    return list_bundles()


def rename_my_model(context: TaskContext, bundle: Path, new_name: str) -> Path:
    """Rename a bundle with its sidecar and checkpoint (core's library); the new bundle path."""
    from resnet_gui.core.library import rename_bundle

    return rename_bundle(bundle, new_name)


def delete_my_model(context: TaskContext, bundle: Path) -> list[Path]:
    """Delete a bundle with its sidecar and checkpoint (the user confirmed the files); those removed."""
    from resnet_gui.core.library import delete_bundle

    return delete_bundle(bundle)


def load_classifier(
    context: TaskContext,
    ref: str | None,
    weights_file: str | None,
    device: str | None,
    backend: str = "auto",
) -> Classifier:
    """Load a model (downloading torchvision weights with progress and cancel) onto ``device``, its
    classification run by ``backend`` (core's ``make_classifier``: the first use of ONNX Runtime
    exports the graph once, said as progress)."""
    from resnet_gui.core.models import load_model

    if weights_file:
        context.progress(None, f"Reading the weights file {Path(weights_file).name}…")
        loaded = load_model(ref or None, weights_file=weights_file)
        _remember_bundle(loaded.source)
    else:
        context.progress(None, f"Reading the weights of {ref or 'the default model'}…")
        loaded = load_model(ref or None, progress=_Throttle(context), cancel=context.is_cancelled)
    context.check()
    context.progress(None, f"Preparing {loaded.name} to run…")
    return _classifier_for(context, loaded, device or "auto", backend)


def _classifier_for(context: TaskContext, loaded: Any, device: str, backend: str) -> Classifier:
    from resnet_gui.core.runtime import make_classifier

    made = make_classifier(loaded, backend, device, on_export=lambda text: context.progress(None, text))
    return made  # type: ignore[return-value]  # a Classifier: a PyTorch model, whichever backend


def measure_passes(context: TaskContext, classifier: Classifier) -> Any:
    """Time the model once (core's ``measure_pass_times``), for the explanation methods' estimates."""
    from resnet_gui.core.explain.estimate import measure_pass_times

    return measure_pass_times(classifier, cancel=context.is_cancelled)


def _remember_bundle(source: Path | None) -> None:
    """A fine-tuned model opened from anywhere joins *My models* (a failure to remember is no error)."""
    from resnet_gui.core.errors import OutputError
    from resnet_gui.core.library import remember

    if source is None:
        return
    with contextlib.suppress(OSError, OutputError):
        remember(source)


def move_classifier(
    context: TaskContext, classifier: Classifier, device: str, backend: str = "auto"
) -> Classifier:
    """The same model on another device or backend; holds the model lock so no forward pass runs
    meanwhile."""
    with classifier.lock:
        return _classifier_for(context, classifier.loaded, device, backend)


def import_keras(context: TaskContext, path: Path) -> Path:
    """Convert the Keras ResNet-50 (npm .tgz, its folder, or a model.json in it) into the app's weights."""
    from resnet_gui.core.keras_import import import_keras_resnet50

    if path.is_file() and path.name == "model.json":
        path = path.parent
    return import_keras_resnet50(path, progress=lambda message: context.progress(None, message))


def import_weights(context: TaskContext, path: Path, arch: str | None = None) -> Any:
    """Import a checkpoint of other code (its model recognised from the tensors): core's ImportResult."""
    from resnet_gui.core.weights_import import import_weights as run_import

    return run_import(path, arch=arch, progress=lambda message: context.progress(None, message))


# --- batch classification (the batch window) ------------------------------------------------------

BATCH_THUMBNAIL_SIDE = 48


def classify_batch(
    context: TaskContext,
    classifier: Classifier,
    folder_or_paths: Path | Sequence[Path],
    top_k: int,
    batch_size: int = 16,
    recursive: bool = True,
) -> Iterator[FolderListed | tuple[tuple[Any, ...], Any]]:
    """Classify a folder with core's streaming pipeline; yields ``(rows of a batch, BatchProgress)``.

    A folder is scanned first (with its sub-folders unless ``recursive`` is false, as
    ``resnet-gui batch --recursive``), and a :class:`FolderListed` says what was found where.
    One yield per batch (not per row) keeps the queued signals few on big folders. The model lock is
    taken by core for each forward pass only; ``context`` cancels between batches.
    """
    from resnet_gui.core.batch import BatchRow, classify_folder
    from resnet_gui.core.batch.scan import scan_folder

    if isinstance(folder_or_paths, Path):
        folder = folder_or_paths
        folder_or_paths = scan_folder(folder, recursive=recursive)
        yield folder_listed(folder, folder_or_paths)
        context.check()
    rows: list[BatchRow] = []
    stream = classify_folder(
        classifier,
        folder_or_paths,
        top_k=top_k,
        batch_size=batch_size,
        recursive=recursive,
        cancel=context.is_cancelled,
    )
    for item in stream:
        if isinstance(item, BatchRow):
            rows.append(item)
        else:
            yield tuple(rows), item
            rows = []


def batch_thumbnails(
    context: TaskContext, paths: Sequence[Path], side: int = BATCH_THUMBNAIL_SIDE
) -> Iterator[tuple[Path, np.ndarray | None]]:
    """Small thumbnails (draft-mode decode) of the rows the batch table shows; None where unreadable."""
    for path in paths:
        context.check()
        try:
            image = load_image(path, min_size=side).copy()
            image.thumbnail((side, side), Image.Resampling.BILINEAR)
            yield path, np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
        except (ImageLoadError, OSError, ValueError):
            yield path, None


def plan_sort_files(
    context: TaskContext, rows: Sequence[Any], destination: Path, mode: str, min_confidence: float | None
) -> list[Any]:
    """Where each file goes (core's ``plan_sort``: it looks at the disk for every file and target)."""
    from resnet_gui.core.batch import plan_sort

    return plan_sort(rows, destination, mode, min_confidence)


def sort_files(context: TaskContext, plan: Sequence[Any]) -> Any:
    """Copy, link or move classified files into class folders (core's ``apply_sort``)."""
    from resnet_gui.core.batch import apply_sort

    return apply_sort(plan)


def export_rows(
    context: TaskContext, rows: Sequence[Any], path: Path, top_k: int, unsure_threshold: float | None = None
) -> tuple[Path, int]:
    """Write batch rows as CSV with core's writer, atomically (a failed export leaves no half file);
    its ``not_sure`` column under ``unsure_threshold``, as the batch table's Note."""
    from resnet_gui.core.atomic import atomic_path
    from resnet_gui.core.batch import open_writer

    with atomic_path(path) as tmp:
        writer = open_writer(tmp, "csv", top_k=top_k, unsure_threshold=unsure_threshold)
        with writer:
            for row in rows:
                context.check()
                writer.write(row)
    return path, len(rows)


@dataclass(frozen=True)
class ExportRequest:
    """What the Export dialog asks for: which model, which format, where, and which photos to check on."""

    out: Path
    format: str
    quantize: str | None = None
    data_root: Path | None = None  # the photos a fine-tuned model was trained on (its check photos)
    overwrite: bool = False
    weights_file: Path | None = None  # a model of the library to export, instead of the one in use


def export_model(
    context: TaskContext, classifier: Classifier | None, request: ExportRequest
) -> Generator[Any, None, Any]:
    """Export and check a model with core's pipeline; yields its progress, returns its ExportResult.

    The model in use is copied under its lock (never changed); a model of the library is loaded first.
    """
    from resnet_gui.core.errors import OutputExistsError
    from resnet_gui.core.export.pipeline import ExportResult, iter_export, normalise_out

    out = normalise_out(request.out, request.format)
    if not request.overwrite and (out.exists() or out.is_symlink()):
        # A desktop app asks before replacing any file, even an earlier export of its own.
        raise OutputExistsError(f"'{out}' already exists.")
    if request.weights_file is not None:
        from resnet_gui.core.models import load_model

        context.progress(None, "Loading the model…")
        loaded, lock = load_model(weights_file=str(request.weights_file)), None
    else:
        assert classifier is not None
        loaded, lock = classifier.loaded, classifier.lock
    result = None
    for item in iter_export(
        loaded,
        out,
        format=request.format,
        quantize=request.quantize,
        data_root=request.data_root,
        overwrite=request.overwrite,
        lock=lock,
        cancel=context.is_cancelled,
    ):
        if isinstance(item, ExportResult):
            result = item
        else:
            yield item
    return result
