"""Score a model on a labelled folder: accuracy, per-class precision/recall/F1, confusion matrix.

The folder's class names are matched to the model's categories (case and ``_``/space ignored),
so a fine-tuned bundle and an ImageNet model whose classes cover the folder can both be scored.
Predictions of a category that is not one of the folder's classes land in an ``(other)`` column.
Images go through the engine's :class:`~resnet_gui.core.engine.Classifier` (its lock, its
preprocessing), so the numbers are those the app's users get. The most confidently wrong images
are listed: they are usually mislabelled files or the model's real blind spots.

Class and file names come from folder names: the report's CSV cells are escaped against formula
injection, names that are not UTF-8 keep their raw bytes, and the report's files are all
written or none is.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from resnet_gui.core.atomic import atomic_path, output_reason
from resnet_gui.core.calibration import (
    ECE_BINS,
    ReliabilityBin,
    calibrated_probabilities,
    describe_bin,
    expected_calibration_error,
    ood_scores,
    reliability,
    rescale_probabilities,
)
from resnet_gui.core.csvcells import csv_bytes, csv_line
from resnet_gui.core.engine import Classifier
from resnet_gui.core.errors import ImageLoadError, OutputError
from resnet_gui.core.formats import REPORT_FORMAT
from resnet_gui.core.metadata import (
    metadata_has_temperature,
    metadata_ood_threshold,
    metadata_temperature,
    metadata_unsure_threshold,
)
from resnet_gui.core.models import LoadedModel, load_model
from resnet_gui.core.text import printable, printable_path
from resnet_gui.core.training.dataset import DatasetError, Sample, scan_dataset
from resnet_gui.core.training.events import Cancelled, Progress
from resnet_gui.core.training.features import bounded_map
from resnet_gui.core.training.health import FileIssue
from resnet_gui.core.training.split import Split

__all__ = [
    "ClassMetrics",
    "EvaluationCalibration",
    "EvaluationReport",
    "WrongPrediction",
    "compute_metrics",
    "evaluate",
    "iter_evaluate",
]

OTHER = "(other)"


@dataclass(frozen=True)
class ClassMetrics:
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class WrongPrediction:
    path: Path
    true_label: str
    predicted_label: str
    confidence: float
    true_probability: float


def compute_metrics(
    true: Sequence[int], predicted: Sequence[int], classes: Sequence[str], columns: int | None = None
) -> tuple[np.ndarray, list[ClassMetrics], float]:
    """Confusion matrix (rows: true class, columns: predicted), per-class metrics and accuracy.

    ``columns`` may exceed ``len(classes)`` (extra columns: predictions outside the folder's
    classes). A class never predicted has precision 0; one with no images has recall 0.
    """
    rows = len(classes)
    columns = rows if columns is None else columns
    confusion = np.zeros((rows, columns), dtype=np.int64)
    for t, p in zip(true, predicted, strict=True):
        confusion[t, p] += 1
    per_class = []
    for index, name in enumerate(classes):
        hits = int(confusion[index, index])
        predicted_as = int(confusion[:, index].sum())
        support = int(confusion[index].sum())
        precision = hits / predicted_as if predicted_as else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(ClassMetrics(name, precision, recall, f1, support))
    total = int(confusion.sum())
    accuracy = float(np.trace(confusion[:, :rows])) / total if total else 0.0
    return confusion, per_class, accuracy


@dataclass(frozen=True)
class EvaluationCalibration:
    """How far the model's confidence can be believed on the evaluated photos.

    ``before``: the plain softmax; ``after``: divided by the bundle's temperature (``None`` when
    the model has none: not fine-tuned here, or fine-tuned before calibration existed). The
    reported confidences are the ``after`` ones where there is a temperature.
    """

    temperature: float | None
    ece_before: float
    ece_after: float | None
    reliability_before: tuple[ReliabilityBin, ...]
    reliability_after: tuple[ReliabilityBin, ...] | None
    unsure_threshold: float | None = None
    unsure_share: float | None = None
    """The share of photos under the bundle's "not sure" threshold."""
    sure_accuracy: float | None = None
    """The accuracy on the photos at or above it."""
    ood_threshold: float | None = None
    ood_share: float | None = None
    """The share of photos the bundle's out-of-distribution threshold flags (None: no threshold,
    or the runtime gives no logits)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "bins": ECE_BINS,
            "temperature": self.temperature,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
            "reliability_before": [b.to_dict() for b in self.reliability_before],
            "reliability_after": (
                None if self.reliability_after is None else [b.to_dict() for b in self.reliability_after]
            ),
            "unsure_threshold": self.unsure_threshold,
            "unsure_share": self.unsure_share,
            "sure_accuracy": self.sure_accuracy,
            "ood_threshold": self.ood_threshold,
            "ood_share": self.ood_share,
            "sentences": self.sentences(),
        }

    def sentences(self) -> list[str]:
        """The calibration of these photos in plain words."""
        gap = "the average gap between how sure the model says it is and how often it is right"
        if self.temperature is None or self.ece_after is None:
            lines = [
                f"Calibration error (ECE, {ECE_BINS} bins; {gap}): {self.ece_before * 100:.1f} %. The "
                "model holds no calibration (it was not fine-tuned by this app, or before calibration "
                "existed), so its probabilities are its own."
            ]
        else:
            lines = [
                f"Calibration error (ECE, {ECE_BINS} bins; {gap}): {self.ece_before * 100:.1f} % "
                f"before scaling, {self.ece_after * 100:.1f} % after (the model's temperature "
                f"{self.temperature:.2f})."
            ]
        table = self.reliability_after if self.reliability_after is not None else self.reliability_before
        busiest = max(table, key=lambda b: b.count)
        if busiest.count:
            lines.append(describe_bin(busiest))
        if self.unsure_threshold is not None and self.unsure_share is not None:
            rest = (
                f"; on the others it is right {self.sure_accuracy * 100:.1f} % of the time"
                if self.sure_accuracy is not None
                else ""
            )
            lines.append(
                f"{self.unsure_share * 100:.1f} % of these photos are marked not sure (under "
                f"{self.unsure_threshold * 100:.0f} %){rest}."
            )
        if self.ood_share is not None:
            lines.append(f"{self.ood_share * 100:.1f} % of these photos look unlike the training photos.")
        return lines


@dataclass
class EvaluationReport:
    """Everything :func:`evaluate` measured. Rows of ``confusion`` are ``classes``, columns ``columns``."""

    model: str
    folder: Path
    classes: tuple[str, ...]
    columns: tuple[str, ...]
    confusion: np.ndarray
    per_class: list[ClassMetrics]
    accuracy: float
    count: int
    most_confident_wrong: list[WrongPrediction] = field(default_factory=list)
    unreadable: list[FileIssue] = field(default_factory=list)
    predictions: list[tuple[Path, str, str, float]] = field(default_factory=list, repr=False)
    seconds: float = 0.0
    split: str = ""
    """The part of the folder scored: ``train``/``val``/``test``, or ``""`` for the whole folder."""
    calibration: EvaluationCalibration | None = None

    @property
    def macro_f1(self) -> float:
        return float(np.mean([c.f1 for c in self.per_class])) if self.per_class else 0.0

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.folder).as_posix()
        except ValueError:
            return str(path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,  # first: the output guard recognises the file from its start
            "model": self.model,
            "folder": str(self.folder),
            "split": self.split,
            "count": self.count,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": [c.__dict__ for c in self.per_class],
            "classes": list(self.classes),
            "columns": list(self.columns),
            "confusion_matrix": self.confusion.tolist(),
            "most_confident_wrong": [
                {
                    "path": self._rel(w.path),
                    "true": w.true_label,
                    "predicted": w.predicted_label,
                    "confidence": w.confidence,
                    "true_probability": w.true_probability,
                }
                for w in self.most_confident_wrong
            ],
            "unreadable": [{"path": self._rel(i.path), "reason": i.reason} for i in self.unreadable],
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "seconds": round(self.seconds, 2),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def confusion_csv(self) -> str:
        lines = [csv_line(["true \\ predicted", *self.columns])]
        for name, row in zip(self.classes, self.confusion.tolist(), strict=True):
            lines.append(csv_line([name, *(int(count) for count in row)]))
        return "".join(lines)

    def predictions_csv(self) -> str:
        lines = [csv_line(["path", "true", "predicted", "confidence", "correct"])]
        for path, true, predicted, confidence in self.predictions:
            cells = [self._rel(path), true, predicted, f"{confidence:.6f}", int(true == predicted)]
            lines.append(csv_line(cells))
        return "".join(lines)

    def figure(self):
        """The confusion matrix as a heat map (a matplotlib Figure; no pyplot, no display needed).

        Colours are the share of each true class (row), so a small class's errors show as much as
        a large one's; cells show the counts.
        """
        from matplotlib.figure import Figure

        rows, cols = self.confusion.shape
        size = max(3.5, 0.55 * max(rows, cols) + 2.0)
        figure = Figure(figsize=(size + 1.0, size), dpi=100, layout="constrained")
        axes = figure.add_subplot()
        totals = self.confusion.sum(axis=1, keepdims=True)
        shares = np.divide(self.confusion, totals, out=np.zeros(self.confusion.shape), where=totals > 0)
        image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        figure.colorbar(image, ax=axes, label="share of the true class")
        axes.set_xticks(range(cols), labels=[_shown(name) for name in self.columns], rotation=45, ha="right")
        axes.set_yticks(range(rows), labels=[_shown(name) for name in self.classes])
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(f"accuracy {self.accuracy * 100:.1f} % ({self.count} images)")
        if rows * cols <= 900:
            for r in range(rows):
                for c in range(cols):
                    colour = "white" if shares[r, c] > 0.5 else "black"
                    axes.text(c, r, str(self.confusion[r, c]), ha="center", va="center", color=colour)
        return figure

    def reliability_figure(self):
        """The reliability diagram of :attr:`calibration` before and after the temperature (a
        matplotlib Figure, see :func:`resnet_gui.core.calibration.reliability_figure`)."""
        from resnet_gui.core.calibration import reliability_figure

        c = self.calibration
        if c is None:
            return reliability_figure(None)
        return reliability_figure(
            c.reliability_before,
            c.reliability_after,
            ece_before=c.ece_before,
            ece_after=c.ece_after,
            temperature=c.temperature,
        )

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write report.json, confusion_matrix.csv/.png, reliability_diagram.png and predictions.csv;
        return their paths.

        Every file's content is made first, then all are written beside their targets and only
        renamed into place once every one is on disk (report.json last); should anything fail, the
        files this call put in place are removed again, so no half-written report is left.
        Raises :class:`~resnet_gui.core.errors.OutputError`.
        """
        out_dir = Path(out_dir)
        png = io.BytesIO()
        from resnet_gui.core.outputs import PNG_SOFTWARE

        # The Software tag lets a later run recognise the file as its own to replace.
        self.figure().savefig(png, format="png", metadata={"Software": PNG_SOFTWARE})
        reliability_png = io.BytesIO()
        self.reliability_figure().savefig(reliability_png, format="png", metadata={"Software": PNG_SOFTWARE})
        contents = {
            "report": ("report.json", (self.to_json() + "\n").encode("utf-8")),  # ASCII: names escaped
            "confusion_csv": ("confusion_matrix.csv", csv_bytes(self.confusion_csv())),
            "confusion_png": ("confusion_matrix.png", png.getvalue()),
            "reliability_png": ("reliability_diagram.png", reliability_png.getvalue()),
            "predictions": ("predictions.csv", csv_bytes(self.predictions_csv())),
        }
        paths = {key: out_dir / name for key, (name, _) in contents.items()}
        placed: list[Path] = []
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            # atomic_path refuses a destination that is a folder on entry: before any rename.
            with contextlib.ExitStack() as stack:
                for key, (_, data) in contents.items():
                    tmp = stack.enter_context(_placed_when_done(paths[key], placed))
                    tmp.write_bytes(data)
        except (OSError, OutputError) as error:
            for path in placed:
                with contextlib.suppress(OSError):
                    path.unlink()
            if isinstance(error, OutputError):
                raise
            raise OutputError(
                f"Cannot write the evaluation report to '{printable_path(out_dir)}': {output_reason(error)}."
            ) from None
        return paths


@contextlib.contextmanager
def _placed_when_done(destination: Path, placed: list[Path]) -> Iterator[Path]:
    """:func:`atomic_path` that records ``destination`` in ``placed`` once it is renamed into place."""
    with atomic_path(destination) as tmp:
        yield tmp
    placed.append(destination)


def _shown(name: str) -> str:
    """A class name as matplotlib draws it literally: escaped, and no ``$…$`` read as maths."""
    return printable(name).replace("$", r"\$")


def _normal(name: str) -> str:
    return name.strip().lower().replace("_", " ")


def _column_map(classes: Sequence[str], categories: Sequence[str]) -> tuple[dict[int, int], tuple[str, ...]]:
    """Model category index -> confusion column, and the column names."""
    by_name = {_normal(name): index for index, name in enumerate(categories)}
    unknown = [name for name in classes if _normal(name) not in by_name]
    if unknown:
        shown = ", ".join(list(categories)[:20]) + (", …" if len(categories) > 20 else "")
        raise DatasetError(
            f"The folder's classes {', '.join(unknown)} are not classes of the model ({shown}). "
            "Evaluate a model trained on these classes, or name the folders after its classes."
        )
    mapping = {by_name[_normal(name)]: column for column, name in enumerate(classes)}
    extra = len(categories) > len(classes)
    return mapping, tuple(classes) + ((OTHER,) if extra else ())


def _select_samples(
    folder: Path, split: str | None, loaded: LoadedModel
) -> tuple[list[Sample], tuple[str, ...], str]:
    """The images to score, the class names, and which split they are."""
    dataset = scan_dataset(folder)
    # A train/ folder whose val images were carved out by the run: the recorded split has them.
    recorded_only = (
        dataset.layout == "splits" and split not in (None, "", "all") and split not in dataset.splits
    )
    if dataset.layout == "splits" and not (recorded_only and loaded.metadata.get("split")):
        wanted = split or ("test" if "test" in dataset.splits else "val")
        samples = dataset.of_split(wanted)
        if not samples:
            raise DatasetError(f"'{folder}' has no {wanted} images to evaluate.")
        return samples, dataset.classes, wanted
    if split in (None, "", "all"):
        return list(dataset.samples), dataset.classes, ""
    stored = loaded.metadata.get("split")
    if not stored:
        raise DatasetError(
            f"'{folder}' has no {split}/ folder, and the model records no split to take '{split}' from."
        )
    recorded = Split.from_dict(json.loads(stored), dataset.root)
    samples = list(getattr(recorded, split, ()))
    if not samples:
        raise DatasetError(f"The model's recorded split has no {split} images.")
    missing = [s.path for s in samples if not s.path.is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} images of the recorded split are missing, e.g. '{missing[0]}'.")
    return samples, recorded.classes, split


def iter_evaluate(
    model: str | Path | LoadedModel | Classifier | None,
    folder: str | Path,
    *,
    split: str | None = None,
    device: str = "auto",
    batch_size: int = 32,
    workers: int = 2,
    top_wrong: int = 10,
    cancel: Callable[[], bool] | None = None,
    allow_download: bool = True,
) -> Iterator[Progress | EvaluationReport]:
    """Evaluate, yielding :class:`Progress` per batch and the :class:`EvaluationReport` last.

    ``model``: a name or file for :func:`load_model`, a :class:`LoadedModel`, or a
    :class:`Classifier` already in use (the app's: its lock then guards every forward pass here).

    ``split``: which part of ``folder`` to score: for a train/val/test folder the named sub-folder
    (default: test if present, else val); for a class folder everything, or ``val``/``train``/
    ``test`` of the split recorded in a fine-tuned bundle.
    """
    from concurrent.futures import ThreadPoolExecutor

    began = time.perf_counter()
    folder = Path(folder)
    if isinstance(model, Classifier):
        classifier, loaded = model, model.loaded
    else:
        loaded = (
            model
            if isinstance(model, LoadedModel)
            else load_model(None if model is None else str(model), allow_download=allow_download)
        )
        classifier = None
    samples, classes, scored_split = _select_samples(folder, split, loaded)
    mapping, columns = _column_map(classes, loaded.categories)
    if classifier is None:
        classifier = Classifier(loaded, device=device)
    other = len(columns) - 1
    category_of = {column: index for index, column in mapping.items()}  # folder class -> model output
    true: list[int] = []
    predicted: list[int] = []
    outcomes: list[tuple[Sample, int, float, float]] = []
    unreadable: list[FileIssue] = []
    metadata = loaded.metadata
    calibrated = metadata_has_temperature(metadata)
    temperature = metadata_temperature(metadata)
    plain_rows: list[np.ndarray] = []
    scaled_rows: list[np.ndarray] = []
    energies: list[np.ndarray] = []
    progress = Progress("evaluate", 0, len(samples))

    def job(sample: Sample):
        try:
            return classifier.preprocessing.prepare(classifier.load(sample.path))
        except ImageLoadError as err:
            return FileIssue(sample.path, err.reason)

    executor = ThreadPoolExecutor(max_workers=workers) if workers > 0 else None
    try:
        prepared = bounded_map(job, samples, executor, ahead=2 * batch_size)
        for start in range(0, len(samples), batch_size):
            chunk = samples[start : start + batch_size]
            arrays = []
            kept = []
            for sample in chunk:
                item = next(prepared)
                if isinstance(item, FileIssue):
                    unreadable.append(item)
                else:
                    arrays.append(item)
                    kept.append(sample)
            if cancel is not None and cancel():
                raise Cancelled("The evaluation was cancelled.")
            if arrays:
                batch = np.stack(arrays)
                logits = _raw_logits(classifier, batch)
                if logits is None:  # a runtime that gives probabilities only: no OOD score
                    plain = classifier.probabilities(batch)
                    probabilities = rescale_probabilities(plain, temperature)
                else:
                    plain = calibrated_probabilities(logits, 1.0)
                    probabilities = calibrated_probabilities(logits, temperature)
                    energies.append(ood_scores(logits, temperature))
                plain_rows.append(plain)
                scaled_rows.append(probabilities)
                for sample, row in zip(kept, probabilities, strict=True):
                    best = int(row.argmax())
                    column = mapping.get(best, other)
                    true_index = category_of[sample.label]
                    true.append(sample.label)
                    predicted.append(column)
                    outcomes.append((sample, column, float(row[best]), float(row[true_index])))
            progress = progress.advanced(start + len(chunk))
            yield progress
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    if not true:
        raise DatasetError(f"No image of '{folder}' could be read.")
    confusion, per_class, accuracy = compute_metrics(true, predicted, classes, len(columns))
    wrong = sorted((o for o in outcomes if o[1] != o[0].label), key=lambda o: (-o[2], str(o[0].path)))[
        :top_wrong
    ]
    yield EvaluationReport(
        model=loaded.name,
        folder=folder,
        classes=tuple(classes),
        columns=columns,
        confusion=confusion,
        per_class=per_class,
        accuracy=accuracy,
        count=len(true),
        most_confident_wrong=[
            WrongPrediction(s.path, classes[s.label], columns[c], conf, p_true)
            for s, c, conf, p_true in wrong
        ],
        unreadable=unreadable,
        predictions=[(s.path, classes[s.label], columns[c], conf) for s, c, conf, _ in outcomes],
        seconds=time.perf_counter() - began,
        split=scored_split,
        calibration=_calibration(
            plain_rows,
            scaled_rows,
            energies,
            [category_of[sample.label] for sample, _, _, _ in outcomes],
            temperature if calibrated else None,
            metadata_unsure_threshold(metadata),
            metadata_ood_threshold(metadata) if calibrated else None,
        ),
    )


def _raw_logits(classifier: Any, batch: np.ndarray) -> np.ndarray | None:
    """The model's logits for a prepared batch, before any temperature; None if it gives none
    (every classifier of :mod:`resnet_gui.core.engine` and the runtimes has ``logits``)."""
    method = getattr(classifier, "logits", None)
    return np.asarray(method(batch), dtype=np.float32) if callable(method) else None


def _calibration(
    plain_rows: list[np.ndarray],
    scaled_rows: list[np.ndarray],
    energies: list[np.ndarray],
    targets: list[int],
    temperature: float | None,
    unsure: float | None,
    ood: float | None,
) -> EvaluationCalibration | None:
    """ECE and the reliability table before and after the bundle's temperature, and its flags."""
    if not plain_rows:
        return None
    plain, scaled = np.concatenate(plain_rows), np.concatenate(scaled_rows)
    labels = np.asarray(targets, dtype=np.int64)
    confidence = scaled.max(axis=1)
    correct = scaled.argmax(axis=1) == labels
    unsure_share = sure_accuracy = None
    if unsure is not None:
        sure = confidence >= unsure
        unsure_share = float(1.0 - sure.mean())
        sure_accuracy = float(correct[sure].mean()) if sure.any() else None
    ood_share = None
    if ood is not None and energies and sum(len(e) for e in energies) == len(labels):
        ood_share = float(np.mean(np.concatenate(energies) > ood))
    return EvaluationCalibration(
        temperature=temperature,
        ece_before=expected_calibration_error(plain, labels),
        ece_after=None if temperature is None else expected_calibration_error(scaled, labels),
        reliability_before=tuple(reliability(plain, labels)),
        reliability_after=None if temperature is None else tuple(reliability(scaled, labels)),
        unsure_threshold=unsure,
        unsure_share=unsure_share,
        sure_accuracy=sure_accuracy,
        ood_threshold=ood,
        ood_share=ood_share,
    )


def evaluate(
    model: str | Path | LoadedModel | Classifier | None, folder: str | Path, **options: Any
) -> EvaluationReport:
    """:func:`iter_evaluate` run to the end: the report."""
    for item in iter_evaluate(model, folder, **options):
        if isinstance(item, EvaluationReport):
            return item
    raise AssertionError("iter_evaluate ended without a report")
