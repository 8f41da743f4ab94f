"""An export from start to end: graph, parity check, INT8, files in place, or a typed error.

:func:`iter_export` is a generator of :class:`ExportProgress` ending with an :class:`ExportResult`
(a GUI worker forwards the progress and shows the result; closing the generator stops the work and
removes what it had written); :func:`export_model` runs it to the end for the CLI.

Files: the model at ``out``, its metadata with the parity result in ``out`` + ``.json`` beside it
(``model.onnx.json``: never a fine-tuned bundle's own ``model.json``). Everything is made in a
hidden work folder beside ``out`` and renamed into place only once it passed its checks; a file
that failed the check is kept as ``model.FAILED-PARITY.onnx`` for inspection, never at ``out``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_gui.core.atomic import atomic_path, output_reason
from resnet_gui.core.errors import Cancelled, OutputError
from resnet_gui.core.export.catalog import EXPORT_FORMATS, format_for
from resnet_gui.core.export.errors import ExportError, ParityError
from resnet_gui.core.export.parity import (
    FP32_TOLERANCE,
    INT8_TARGET_TOP1_AGREEMENT,
    INT8_TOLERANCE,
    OnnxRunner,
    ParityResult,
    TorchRunner,
    TorchScriptRunner,
    accuracy,
    compare,
    run_chunked,
    top1,
)
from resnet_gui.core.export.photos import PhotoSet, calibration_photos, check_photos, iter_prepared
from resnet_gui.core.outputs import OutputTarget, claim_outputs
from resnet_gui.core.text import printable_path

if TYPE_CHECKING:
    from resnet_gui.core.models import LoadedModel

__all__ = [
    "ExportProgress",
    "ExportResult",
    "Int8Report",
    "export_model",
    "failed_path",
    "iter_export",
    "sidecar_path",
]

FAILED_MARK = "FAILED-PARITY"
_OUTPUT_KIND = {"onnx": "export-onnx", "torchscript": "export-torchscript"}
#: The phases of an export, in order, as a front end names them.
PHASES = {
    "photos": "Reading the check photos",
    "export": "Exporting the graph",
    "reference": "Running the original model",
    "exported": "Running the exported file",
    "calibrate": "Reading the calibration photos",
    "quantize": "Quantizing to INT8",
    "int8": "Running the INT8 file",
    "write": "Writing the files",
}


@dataclass(frozen=True)
class ExportProgress:
    """Where an export is: ``phase`` (a key of :data:`PHASES`), ``done`` of ``total`` items in it."""

    phase: str
    done: int = 0
    total: int = 0
    message: str = ""

    @property
    def title(self) -> str:
        return PHASES.get(self.phase, self.phase)


@dataclass(frozen=True)
class Int8Report:
    """INT8 against the fp32 ONNX graph on the check photos: size, speed (onnxruntime) and answers."""

    fp32_bytes: int
    int8_bytes: int
    fp32_images_per_second: float
    int8_images_per_second: float
    top1_agreement_with_fp32: float
    images: int
    fp32_accuracy: float | None = None  # when the check photos have labels (a bundle's validation photos)
    int8_accuracy: float | None = None

    @property
    def size_ratio(self) -> float:
        return self.fp32_bytes / self.int8_bytes if self.int8_bytes else 0.0

    @property
    def speedup(self) -> float:
        return (
            self.int8_images_per_second / self.fp32_images_per_second if self.fp32_images_per_second else 0.0
        )

    def sentence(self) -> str:
        """The trade-off in one sentence a non-expert can act on."""
        mb = 1_000_000
        answers = (
            f"its accuracy on the {self.images} check photos goes from {self.fp32_accuracy:.1%} to "
            f"{self.int8_accuracy:.1%}"
            if self.fp32_accuracy is not None and self.int8_accuracy is not None
            else f"it names the same class as the full-precision model for "
            f"{self.top1_agreement_with_fp32:.1%} of the {self.images} check photos"
        )
        advice = (
            "use it where size and speed matter"
            if self.top1_agreement_with_fp32 >= INT8_TARGET_TOP1_AGREEMENT
            else f"that is under the {INT8_TARGET_TOP1_AGREEMENT:.0%} target, so prefer the full-precision "
            "export unless size or speed matter most"
        )
        return (
            f"INT8 is {self.size_ratio:.1f}x smaller ({self.fp32_bytes / mb:.0f} MB -> "
            f"{self.int8_bytes / mb:.0f} MB) "
            f"and {self.speedup:.1f}x faster on this computer ({self.fp32_images_per_second:.1f} -> "
            f"{self.int8_images_per_second:.1f} photos/s in onnxruntime), and {answers}: {advice}."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fp32_bytes": self.fp32_bytes,
            "int8_bytes": self.int8_bytes,
            "fp32_images_per_second": round(self.fp32_images_per_second, 2),
            "int8_images_per_second": round(self.int8_images_per_second, 2),
            "top1_agreement_with_fp32": self.top1_agreement_with_fp32,
            "images": self.images,
            "fp32_accuracy": self.fp32_accuracy,
            "int8_accuracy": self.int8_accuracy,
        }


@dataclass(frozen=True)
class ExportResult:
    """A finished export that passed its parity check."""

    path: Path
    sidecar: Path
    format: str
    quantization: str | None
    parity: ParityResult
    photos: str  # which photos were checked, in words
    int8: Int8Report | None = None
    fp32_parity: ParityResult | None = None  # INT8 only: the fp32 graph's own check, done first
    seconds: float = 0.0
    metadata: dict[str, str] = field(default_factory=dict, repr=False)

    def sentences(self) -> list[str]:
        lines = [f"Exported to {printable_path(self.path)} (checked on {self.photos})."]
        if self.fp32_parity is not None:
            lines.append(
                self.fp32_parity.sentence().replace("Parity check", "The full-precision graph's check", 1)
            )
        lines.append(self.parity.sentence())
        if self.int8 is not None:
            lines.append(self.int8.sentence())
        return lines


def sidecar_path(out: Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``: the metadata and the parity result, for people and programs."""
    return out.with_name(out.name + ".json")


def failed_path(out: Path) -> Path:
    """``model.onnx`` -> ``model.FAILED-PARITY.onnx``: where an export that failed its check is kept."""
    return out.with_name(f"{out.stem}.{FAILED_MARK}{out.suffix}")


def normalise_out(out: str | os.PathLike[str], fmt: str) -> Path:
    """``model`` -> ``model.onnx`` (the format's suffix when there is none)."""
    path = Path(out).expanduser()
    if not path.suffix:
        path = path.with_name(path.name + format_for(fmt).suffix)
    return path


def _check_cancel(cancel: Callable[[], bool] | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled("Export cancelled; nothing was written.")


def _prepare(
    photos: PhotoSet, loaded: LoadedModel, phase: str, cancel: Callable[[], bool] | None
) -> Iterator[ExportProgress | tuple[np.ndarray, PhotoSet]]:
    arrays, kept = [], []
    total = len(photos)
    for index, array in iter_prepared(photos, loaded.preprocessing, cancel):
        if array is not None:
            arrays.append(array)
            kept.append(index)
        if (index + 1) % 8 == 0 or index + 1 == total:
            yield ExportProgress(phase, index + 1, total, photos.description)
    side = loaded.preprocessing.crop_size
    batch = np.stack(arrays) if arrays else np.zeros((0, 3, side, side), np.float32)
    yield (
        batch,
        PhotoSet(
            tuple(photos.paths[i] for i in kept), tuple(photos.labels[i] for i in kept), photos.description
        ),
    )


def _run(
    runner: Callable[[np.ndarray], np.ndarray],
    batch: np.ndarray,
    phase: str,
    cancel: Callable[[], bool] | None,
    timed: bool = False,
) -> Iterator[ExportProgress | tuple[np.ndarray, float]]:
    """Probabilities chunk by chunk, with progress, then (probabilities, images/s).

    ``timed``: one chunk is run first as a warm-up (the first call sets up kernels), so the speed
    is that of a session in use.
    """
    from resnet_gui.core.export.parity import CHUNK

    if timed:
        runner(np.ascontiguousarray(batch[:CHUNK]))
    parts = []
    began = time.perf_counter()
    for start in range(0, len(batch), CHUNK):
        parts.append(run_chunked(runner, batch[start : start + CHUNK], cancel))
        yield ExportProgress(phase, min(start + CHUNK, len(batch)), len(batch))
    seconds = time.perf_counter() - began
    yield np.concatenate(parts), (len(batch) / seconds if seconds > 0 else 0.0)


def _forward(items: Iterator[Any]) -> Generator[ExportProgress, None, Any]:
    """Pass on a step's progress and return its final item (read with ``yield from``)."""
    result = None
    for item in items:
        if isinstance(item, ExportProgress):
            yield item
        else:
            result = item
    return result


def iter_export(
    loaded: LoadedModel,
    out: str | os.PathLike[str],
    *,
    format: str = "onnx",
    quantize: str | None = None,
    check_images: Path | None = None,
    calibrate: Path | None = None,
    data_root: Path | None = None,
    overwrite: bool = False,
    lock: threading.RLock | threading.Lock | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Iterator[ExportProgress | ExportResult]:
    """Export ``loaded`` to ``out`` in ``format`` (a key of :data:`EXPORT_FORMATS`), check it, write it.

    ``quantize="int8"`` (ONNX only) writes the INT8 model at ``out``, calibrated on ``calibrate`` (else
    the bundle's training photos under ``data_root``). The parity check runs on ``check_images``, else
    the bundle's validation photos under ``data_root``, else the sample photos. ``lock``: the lock of
    the classifier holding ``loaded.model`` (the model is copied under it, never changed). ``cancel``
    is polled between photos and steps (:class:`Cancelled`). Raises the errors of
    :mod:`resnet_gui.core.export.errors`, :class:`OutputError` for an unwritable destination.
    """
    began = time.perf_counter()
    fmt = format_for(format)
    if quantize is not None and quantize not in fmt.quantizations:
        raise ExportError(
            f"{fmt.display_name} has no '{quantize}' quantization"
            + (f"; it offers: {', '.join(fmt.quantizations)}." if fmt.quantizations else ".")
        )
    if fmt.key == "onnx":
        from resnet_gui.core.export.onnx_graph import require_export_extra

        require_export_extra()
    path = normalise_out(out, fmt.key)
    sidecar, failed = sidecar_path(path), failed_path(path)
    kind = _OUTPUT_KIND[fmt.key]
    photos = check_photos(loaded, check_images, data_root)
    calibration = calibration_photos(loaded, calibrate, data_root) if quantize else None
    inputs = [p for p in (loaded.source, *photos.paths, *(calibration.paths if calibration else ())) if p]
    targets = [
        OutputTarget(path, kind),
        OutputTarget(sidecar, "export-sidecar"),
        OutputTarget(failed, kind, "the failed export's name"),
    ]
    with claim_outputs(targets, inputs=inputs, overwrite=overwrite), _work_folder(path) as work:
        yield ExportProgress("photos", 0, len(photos), photos.description)
        batch, photos = yield from _forward(_prepare(photos, loaded, "photos", cancel))
        if not len(batch):
            raise ExportError(
                f"None of the {photos.description} could be read, so the export cannot be checked."
            )
        _check_cancel(cancel)
        yield ExportProgress("export", 0, 1, f"{fmt.display_name}, on the CPU")
        exported = work / f"model{fmt.suffix}"
        quantization = quantize or "none"
        if fmt.key == "onnx":
            from resnet_gui.core.export.onnx_graph import cpu_copy, export_onnx_graph, metadata_of

            export_onnx_graph(loaded, exported, lock=lock)
            runner: Callable[[np.ndarray], np.ndarray] = OnnxRunner(exported)
        else:
            from resnet_gui.core.export.onnx_graph import cpu_copy, metadata_of
            from resnet_gui.core.export.torchscript import export_torchscript

            export_torchscript(loaded, exported, lock=lock)
            runner = TorchScriptRunner(exported)
        yield ExportProgress("export", 1, 1)
        reference_runner = TorchRunner(cpu_copy(loaded, lock))
        reference, _ = yield from _forward(_run(reference_runner, batch, "reference", cancel))
        del reference_runner
        timed = quantize is not None  # INT8's speed-up is measured against this run
        probabilities, speed = yield from _forward(_run(runner, batch, "exported", cancel, timed))
        del runner
        parity = compare(
            reference, probabilities, FP32_TOLERANCE, "onnxruntime" if fmt.key == "onnx" else "torch.jit"
        )
        fp32_parity, int8 = None, None
        final = exported
        if parity.passed and quantize == "int8":
            assert calibration is not None
            fp32_parity = parity
            arrays, _ = yield from _forward(_prepare(calibration, loaded, "calibrate", cancel))
            if not len(arrays):
                raise ExportError(f"None of the {calibration.description} could be read to calibrate INT8.")
            yield ExportProgress("quantize", 0, 1, f"calibrating on {calibration.description}")
            from resnet_gui.core.export.quantize import quantize_int8

            final = work / "model.int8.onnx"
            quantize_int8(exported, final, list(arrays), metadata_of(loaded, "int8"), cancel=cancel)
            del arrays
            yield ExportProgress("quantize", 1, 1)
            int8_probabilities, int8_speed = yield from _forward(
                _run(OnnxRunner(final), batch, "int8", cancel, True)
            )
            parity = compare(reference, int8_probabilities, INT8_TOLERANCE, "onnxruntime int8")
            int8 = Int8Report(
                fp32_bytes=exported.stat().st_size,
                int8_bytes=final.stat().st_size,
                fp32_images_per_second=speed,
                int8_images_per_second=int8_speed,
                top1_agreement_with_fp32=float(np.mean(top1(int8_probabilities) == top1(probabilities))),
                images=len(batch),
                fp32_accuracy=accuracy(probabilities, photos.labels),
                int8_accuracy=accuracy(int8_probabilities, photos.labels),
            )
        _check_cancel(cancel)
        yield ExportProgress("write", 0, 1)
        metadata = metadata_of(loaded, quantization)
        if not parity.passed:
            _move_into(final, failed)
            raise ParityError(
                f"The export did not pass its check, so it was not written to '{printable_path(path)}': "
                f"{parity.sentence()} The file is kept as '{printable_path(failed)}' for inspection.",
                kept=failed,
            )
        document: dict[str, Any] = {**metadata, "parity": parity.to_dict(), "checked_on": photos.description}
        if int8 is not None:
            document["int8"] = int8.to_dict()
        if fp32_parity is not None:
            document["fp32_parity"] = fp32_parity.to_dict()
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        # As a pair, as bundles are written: both complete before either is renamed into place.
        with atomic_path(path) as model_tmp, atomic_path(sidecar) as sidecar_tmp:
            os.replace(final, model_tmp)
            sidecar_tmp.write_text(text, encoding="utf-8")
        yield ExportProgress("write", 1, 1)
    yield ExportResult(
        path=path,
        sidecar=sidecar,
        format=fmt.key,
        quantization=quantize,
        parity=parity,
        photos=photos.description,
        int8=int8,
        fp32_parity=fp32_parity,
        seconds=time.perf_counter() - began,
        metadata=metadata,
    )


@contextlib.contextmanager
def _work_folder(out: Path) -> Iterator[Path]:
    """A hidden folder beside ``out`` (same disk: the final rename is atomic), removed at the end."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name[:100]}.", suffix=".export", dir=out.parent))
    except OSError as error:
        raise OutputError(f"Cannot write '{printable_path(out)}': {output_reason(error)}.") from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _move_into(source: Path, destination: Path) -> None:
    """Rename a finished file of the work folder into place, atomically (fsync'd as every output)."""
    with atomic_path(destination) as tmp:
        os.replace(source, tmp)


def export_model(
    loaded: LoadedModel,
    out: str | os.PathLike[str],
    *,
    on_progress: Callable[[ExportProgress], None] | None = None,
    **options: Any,
) -> ExportResult:
    """Run :func:`iter_export` to the end (same keyword options) and return its result."""
    result = None
    for item in iter_export(loaded, out, **options):
        if isinstance(item, ExportResult):
            result = item
        elif on_progress is not None:
            on_progress(item)
    assert result is not None
    return result


assert set(_OUTPUT_KIND) == set(EXPORT_FORMATS)
