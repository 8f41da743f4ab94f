"""Confidence you can believe: temperature scaling, calibration error, "not sure" and "unlike the
training photos", all fitted on a fine-tune's validation photos and read back from its bundle.

* **Temperature scaling** (Guo et al., ICML 2017): one scalar ``T`` divides the logits before the
  softmax. It is fitted by minimising the validation negative log-likelihood, which is convex in
  ``1/T``, so a golden-section search over ``log T`` in [:data:`TEMPERATURE_MIN`,
  :data:`TEMPERATURE_MAX`] finds the one minimum, deterministically and without torch. ``T`` never
  changes which class wins, only how sure the model says it is.
* **Expected calibration error** (ECE): the top-1 probabilities fall into :data:`ECE_BINS`
  equal-width bins; ECE is the photo-weighted mean gap between a bin's mean confidence and its
  accuracy. The same bins give the reliability diagram.
* **Not sure**: the lowest top-1 probability above which the validation accuracy reaches
  :data:`UNSURE_TARGET_ACCURACY` (halfway to the next lower validation photo, see
  :func:`unsure_threshold`); a prediction below it is marked *not sure*.
* **Unlike the training photos** (out of distribution): the *energy score* of Liu et al. (NeurIPS
  2020), ``-T * logsumexp(logits / T)``, higher meaning more unusual. Chosen over the max-logit
  because it uses every logit, not only the winner's: it is the (negative log of the) unnormalised
  density the softmax model gives the photo, and Liu et al. found it beats the softmax probability
  as a detector. Measured on the ants/bees model the two were close (both flag 5 % of the
  validation photos by construction; the energy score flagged 8 of 15 unrelated package photos,
  max-logit 7; 28 % against 33 % of 200 CIFAR-10 photos; ROC areas 0.92/0.90 against
  0.91/0.90), so neither is better there. Unlike the softmax probability it still tells a photo
  no class responds to: with two classes a softmax is almost always sure of one. The threshold is the
  :data:`OOD_VALIDATION_FLAGGED` upper quantile of the validation scores, so that share of the
  validation photos is flagged by construction.

Everything here is numpy on float64; the results go into a bundle's ``metrics`` (see
:meth:`Calibration.to_metrics`) and are read back with :mod:`resnet_gui.core.metadata`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ECE_BINS",
    "MIN_VALIDATION_PHOTOS",
    "OOD_SCORE",
    "OOD_VALIDATION_FLAGGED",
    "TEMPERATURE_MAX",
    "TEMPERATURE_MIN",
    "UNSURE_TARGET_ACCURACY",
    "Calibration",
    "ReliabilityBin",
    "calibrate",
    "calibrated_probabilities",
    "calibration_summary",
    "describe_bin",
    "expected_calibration_error",
    "fit_temperature",
    "mean_nll",
    "missing_calibration_sentence",
    "ood_scores",
    "ood_threshold",
    "reliability",
    "reliability_figure",
    "rescale_probabilities",
    "unsure_threshold",
]

ECE_BINS = 15
TEMPERATURE_MIN = 0.05
TEMPERATURE_MAX = 20.0
UNSURE_TARGET_ACCURACY = 0.95
"""The validation accuracy a prediction at or above the "not sure" threshold reaches."""
OOD_VALIDATION_FLAGGED = 0.05
"""The share of validation photos the out-of-distribution threshold flags (its upper quantile)."""
OOD_SCORE = "energy"
"""The out-of-distribution score the stored threshold belongs to (``metrics`` → ``ood_score``)."""
MIN_VALIDATION_PHOTOS = 2
"""Fewer validation photos than this: no calibration at all (nothing to fit on)."""
_GOLDEN_STEPS = 80  # the search interval shrinks by 0.618 a step: 6 (ln 400) to ~1e-16


# --- the pure functions the classifier calls ----------------------------------------------------


def _logits64(logits: np.ndarray) -> np.ndarray:
    array = np.asarray(logits, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"logits must be (photos, classes), not shape {array.shape}")
    return array


def _checked_temperature(temperature: float) -> float:
    value = float(temperature)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"the temperature must be a positive number, not {temperature!r}")
    return value


def _softmax(scaled: np.ndarray) -> np.ndarray:
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _logsumexp(scaled: np.ndarray) -> np.ndarray:
    top = scaled.max(axis=1)
    return top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))


def calibrated_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` row by row, as float32 (what the classifier returns).

    ``temperature`` 1.0 is the plain softmax; read a bundle's with
    :func:`resnet_gui.core.metadata.metadata_temperature`.
    """
    return _softmax(_logits64(logits) / _checked_temperature(temperature)).astype(np.float32)


def rescale_probabilities(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """:func:`calibrated_probabilities` for a runtime that gives probabilities, not logits.

    ``log(p)`` equals the logits up to a constant per row, which the softmax ignores, so this is
    the same result (up to float32 rounding of the smallest probabilities).
    """
    temperature = _checked_temperature(temperature)
    array = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0:
        return array.astype(np.float32)
    logs = np.log(np.clip(array, np.finfo(np.float64).tiny, None))
    return _softmax(_logits64(logs) / temperature).astype(np.float32)


def ood_scores(logits: np.ndarray, temperature: float) -> np.ndarray:
    """The energy score per photo, ``-T * logsumexp(logits / T)``: higher is more unusual.

    Compare with the bundle's threshold (:func:`resnet_gui.core.metadata.metadata_ood_threshold`):
    a photo scoring above it looks unlike the training photos. Use the bundle's temperature,
    the one the threshold was fitted with. Float64, shape ``(photos,)``.
    """
    temperature = _checked_temperature(temperature)
    return -temperature * _logsumexp(_logits64(logits) / temperature)


# --- fitting ----------------------------------------------------------------------------------


def _labels(labels: Sequence[int] | np.ndarray, logits: np.ndarray) -> np.ndarray:
    array = np.asarray(labels, dtype=np.int64).reshape(-1)
    if array.shape[0] != logits.shape[0]:
        raise ValueError(f"{array.shape[0]} labels for {logits.shape[0]} rows of logits")
    if array.size and (array.min() < 0 or array.max() >= logits.shape[1]):
        raise ValueError("a label is not one of the classes")
    return array


def mean_nll(logits: np.ndarray, labels: Sequence[int] | np.ndarray, temperature: float = 1.0) -> float:
    """The mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z = _logits64(logits) / _checked_temperature(temperature)
    y = _labels(labels, z)
    if not y.size:
        return float("nan")
    return float(np.mean(_logsumexp(z) - z[np.arange(y.size), y]))


def fit_temperature(logits: np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """The temperature in [:data:`TEMPERATURE_MIN`, :data:`TEMPERATURE_MAX`] with the lowest NLL.

    The NLL is convex in ``1/T``, hence unimodal in ``log T``: a golden-section search finds its
    minimum (or the bound it lies beyond) the same way on every machine. No photos: 1.0.
    """
    z = _logits64(logits)
    y = _labels(labels, z)
    if not y.size:
        return 1.0
    rows = np.arange(y.size)
    picked = z[rows, y]

    def nll(log_t: float) -> float:
        beta = math.exp(-log_t)
        return float(np.mean(_logsumexp(z * beta) - picked * beta))

    low, high = math.log(TEMPERATURE_MIN), math.log(TEMPERATURE_MAX)
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(_GOLDEN_STEPS):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(d)
    best = min(((nll(low), low), (fc, c), (fd, d), (nll(high), high)))
    return float(min(TEMPERATURE_MAX, max(TEMPERATURE_MIN, math.exp(best[1]))))


# --- measuring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReliabilityBin:
    """One bar of a reliability diagram: the photos whose top-1 probability is in (lower, upper]."""

    lower: float
    upper: float
    count: int
    confidence: float | None
    """The mean top-1 probability of the bin's photos (None: no photo)."""
    accuracy: float | None
    """How many of them the model got right (None: no photo)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "lower": round(self.lower, 6),
            "upper": round(self.upper, 6),
            "count": self.count,
            "confidence": self.confidence,
            "accuracy": self.accuracy,
        }


def _top1(probabilities: np.ndarray, labels: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = _logits64(probabilities)
    y = _labels(labels, p)
    return p.max(axis=1), (p.argmax(axis=1) == y)


def reliability(
    probabilities: np.ndarray, labels: Sequence[int] | np.ndarray, bins: int = ECE_BINS
) -> list[ReliabilityBin]:
    """The reliability diagram's data: ``bins`` equal-width bins of the top-1 probability.

    Bin ``i`` holds the probabilities in ``(i/bins, (i+1)/bins]`` (the first also holds 0).
    """
    if bins < 1:
        raise ValueError("at least one bin")
    confidence, correct = _top1(probabilities, labels)
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    result = []
    for i in range(bins):
        members = index == i
        count = int(members.sum())
        result.append(
            ReliabilityBin(
                i / bins,
                (i + 1) / bins,
                count,
                float(confidence[members].mean()) if count else None,
                float(correct[members].mean()) if count else None,
            )
        )
    return result


def expected_calibration_error(
    probabilities: np.ndarray, labels: Sequence[int] | np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE: the photo-weighted mean of ``|accuracy - mean confidence|`` over the bins (0 is perfect)."""
    table = reliability(probabilities, labels, bins)
    total = sum(b.count for b in table)
    if not total:
        return float("nan")
    return float(
        sum(b.count * abs(b.accuracy - b.confidence) for b in table if b.count)  # type: ignore[operator]
        / total
    )


def unsure_threshold(
    probabilities: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    target_accuracy: float = UNSURE_TARGET_ACCURACY,
) -> float | None:
    """The "not sure" threshold: a prediction under it is *not sure*; ``None`` when no threshold
    works (not even the surest photos are right ``target_accuracy`` of the time).

    The largest set of most-confident photos that is right at least ``target_accuracy`` of the
    time ends at some photo; the threshold lies halfway between that photo's top-1 probability
    and the next lower one (or ``1/classes``, the least a top-1 probability can be), so it keeps
    the same photos when they are scored again in float32 rather than sitting exactly on one.
    """
    p = _logits64(probabilities)
    confidence, correct = _top1(p, labels)
    if not confidence.size:
        return None
    order = np.argsort(-confidence, kind="stable")
    ranked, hits = confidence[order], correct[order].astype(np.float64)
    accuracy = np.cumsum(hits) / np.arange(1, ranked.size + 1)
    # Only the last photo of a run of equal confidences closes a set "at or above t".
    closes = np.append(ranked[1:] < ranked[:-1], True)
    good = np.flatnonzero(closes & (accuracy >= target_accuracy - 1e-12))
    if not good.size:
        return None
    last = int(good[-1])
    below = ranked[last + 1] if last + 1 < ranked.size else 1.0 / p.shape[1]
    return float(min((ranked[last] + below) / 2.0, 1.0 - 1e-6))


def ood_threshold(scores: np.ndarray, flagged: float = OOD_VALIDATION_FLAGGED) -> float | None:
    """The score above which ``flagged`` of these (validation) scores lie; None without scores."""
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    return float(np.quantile(values, 1.0 - flagged))


def _percent(fraction: float) -> str:
    """A share as whole percent, with one decimal where rounding would say 0 or 100 untruly."""
    text = f"{fraction * 100:.0f}"
    if text in ("0", "100") and 0.0 < fraction < 1.0:
        text = f"{fraction * 100:.1f}"
    return text


def describe_bin(bin_: ReliabilityBin) -> str:
    """One bar of the reliability diagram in plain words (empty bins: an empty string)."""
    if not bin_.count or bin_.confidence is None or bin_.accuracy is None:
        return ""
    photos = "photo" if bin_.count == 1 else "photos"
    return (
        f"When the model says {bin_.lower * 100:.0f}–{bin_.upper * 100:.0f} % (on average "
        f"{_percent(bin_.confidence)} %), it is right {_percent(bin_.accuracy)} % of the time "
        f"({bin_.count} {photos})."
    )


# --- the whole fit, as stored in a bundle --------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` fitted on a set of validation logits."""

    count: int
    accuracy: float
    temperature: float
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    reliability_before: tuple[ReliabilityBin, ...]
    reliability_after: tuple[ReliabilityBin, ...]
    unsure_threshold: float | None
    unsure_target: float
    unsure_coverage: float | None
    """The share of validation photos at or above the threshold (not marked not sure)."""
    ood_threshold: float | None
    ood_flagged: float | None
    """The share of validation photos scoring above the OOD threshold."""
    note: str = ""

    def to_metrics(self) -> dict[str, Any]:
        """The bundle's ``metrics`` entries: flat ones the readers use, plus the details."""
        return {
            "temperature": self.temperature,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
            "unsure_threshold": self.unsure_threshold,
            "ood_threshold": self.ood_threshold,
            "ood_score": OOD_SCORE,
            "calibration": {
                "method": "temperature scaling (validation NLL)",
                "photos": self.count,
                "accuracy": self.accuracy,
                "nll_before": self.nll_before,
                "nll_after": self.nll_after,
                "bins": ECE_BINS,
                "reliability_before": [b.to_dict() for b in self.reliability_before],
                "reliability_after": [b.to_dict() for b in self.reliability_after],
                "unsure_target_accuracy": self.unsure_target,
                "unsure_coverage": self.unsure_coverage,
                "ood_validation_flagged": self.ood_flagged,
                "note": self.note,
            },
        }

    def sentences(self) -> list[str]:
        """The fit in plain words, for a results page or a terminal."""
        lines = [
            f"Calibration error (ECE, {ECE_BINS} bins; the average gap between how sure the model says "
            f"it is and how often it is right): {self.ece_before * 100:.1f} % before scaling, "
            f"{self.ece_after * 100:.1f} % after (temperature {self.temperature:.2f}, fitted on "
            f"{self.count} validation photos)."
        ]
        busiest = max(self.reliability_after, key=lambda b: b.count)
        if busiest.count:
            lines.append(describe_bin(busiest))
        if self.unsure_threshold is not None and self.unsure_coverage is not None:
            lines.append(
                f"Below {self.unsure_threshold * 100:.0f} % a prediction is marked not sure: at or above it "
                f"the model was right at least {self.unsure_target * 100:.0f} % of the time on the "
                f"validation photos ({self.unsure_coverage * 100:.0f} % of them)."
            )
        else:
            lines.append(
                f"No confidence level reached {self.unsure_target * 100:.0f} % accuracy on the validation "
                'photos, so there is no "not sure" threshold from them.'
            )
        if self.ood_flagged is not None:
            lines.append(
                f'A photo is called "unlike the training photos" when its energy score is above the '
                f"threshold; {self.ood_flagged * 100:.0f} % of the validation photos are."
            )
        if self.note:
            lines.append(self.note)
        return lines


def calibrate(
    logits: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    target_accuracy: float = UNSURE_TARGET_ACCURACY,
    ood_flagged: float = OOD_VALIDATION_FLAGGED,
) -> Calibration | None:
    """Fit everything on validation logits; ``None`` with fewer than :data:`MIN_VALIDATION_PHOTOS`.

    When every validation photo is right the NLL keeps falling as ``T`` shrinks (it has no
    minimum): scaling would then only make the model surer than any evidence supports, so ``T``
    stays 1 and :attr:`Calibration.note` says why.
    """
    z = _logits64(logits)
    y = _labels(labels, z)
    if y.size < MIN_VALIDATION_PHOTOS or not np.isfinite(z).all():
        return None
    correct = z.argmax(axis=1) == y
    note = ""
    if correct.all():
        temperature = 1.0
        note = (
            "The model got every validation photo right, so there was nothing to calibrate on: "
            "its probabilities are left as they are."
        )
    else:
        temperature = fit_temperature(z, y)
    before = _softmax(z)
    after = _softmax(z / temperature)
    threshold = unsure_threshold(after, y, target_accuracy)
    coverage = None if threshold is None else float(np.mean(after.max(axis=1) >= threshold))
    scores = ood_scores(z, temperature)
    ood = ood_threshold(scores, ood_flagged)
    return Calibration(
        count=int(y.size),
        accuracy=float(correct.mean()),
        temperature=temperature,
        nll_before=mean_nll(z, y),
        nll_after=mean_nll(z, y, temperature),
        ece_before=expected_calibration_error(before, y),
        ece_after=expected_calibration_error(after, y),
        reliability_before=tuple(reliability(before, y)),
        reliability_after=tuple(reliability(after, y)),
        unsure_threshold=threshold,
        unsure_target=target_accuracy,
        unsure_coverage=coverage,
        ood_threshold=ood,
        ood_flagged=None if ood is None else float(np.mean(scores > ood)),
        note=note,
    )


def _fraction(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0.0 <= value <= 1.0 else None


def calibration_summary(metrics: Mapping[str, Any]) -> list[str]:
    """A bundle's stored calibration (its decoded ``metrics``) in plain words; empty without one.

    For a results page or the end of ``finetune``. The values are read defensively (a bundle is
    untrusted input): a missing or malformed one leaves its sentence out.
    """
    details = metrics.get("calibration")
    details = details if isinstance(details, Mapping) else {}
    note = details.get("note") if isinstance(details.get("note"), str) else ""
    before, after = _fraction(metrics.get("ece_before")), _fraction(metrics.get("ece_after"))
    temperature = metrics.get("temperature")
    lines = []
    if before is not None and after is not None and isinstance(temperature, int | float):
        photos = details.get("photos")
        on = f", fitted on {photos} validation photos" if isinstance(photos, int) else ""
        lines.append(
            f"Calibration error (ECE, {ECE_BINS} bins): {before * 100:.1f} % before scaling, "
            f"{after * 100:.1f} % after (temperature {float(temperature):.2f}{on})."
        )
        table = details.get("reliability_after")
        rows = [row for row in table if isinstance(row, Mapping)] if isinstance(table, list) else []
        counted = [row for row in rows if isinstance(row.get("count"), int) and row["count"] > 0]
        if counted:
            row = max(counted, key=lambda r: r["count"])
            values = [_fraction(row.get(key)) for key in ("lower", "upper", "confidence", "accuracy")]
            if all(v is not None for v in values):
                lower, upper, confidence, accuracy = (float(v) for v in values)  # type: ignore[arg-type]
                lines.append(describe_bin(ReliabilityBin(lower, upper, row["count"], confidence, accuracy)))
    threshold = _fraction(metrics.get("unsure_threshold"))
    coverage = _fraction(details.get("unsure_coverage"))
    target = _fraction(details.get("unsure_target_accuracy")) or UNSURE_TARGET_ACCURACY
    if threshold is not None and coverage is not None:
        lines.append(
            f"Below {threshold * 100:.0f} % a prediction is marked not sure: at or above it the model was "
            f"right at least {target * 100:.0f} % of the time on the validation photos "
            f"({coverage * 100:.0f} % of them)."
        )
    if note:
        lines.append(note)
    return lines


#: What :func:`missing_calibration_sentence` says when the bundle gives no reason of its own.
NO_CALIBRATION = (
    "This model holds no calibration, so its percentages are its own: how far they can be believed "
    "was not measured."
)
_MAX_NOTE = 400  # characters of a bundle's note shown (it is untrusted input)


def missing_calibration_sentence(metadata: Mapping[str, Any]) -> str:
    """Why a bundle holds no calibration, in one sentence, for where a reliability diagram would be.

    A fine-tune stores the reason in ``metrics`` → ``calibration`` → ``note`` (no validation split,
    too few validation photos, the run stopped first); an older or foreign model has none, and gets
    :data:`NO_CALIBRATION`. ``metadata`` is a bundle's metadata (``metrics`` a JSON string or a dict),
    read defensively: anything malformed gives the generic sentence.
    """
    import json

    metrics: Any = metadata.get("metrics")
    if isinstance(metrics, str):
        try:
            metrics = json.loads(metrics)
        except ValueError:
            metrics = None
    details = metrics.get("calibration") if isinstance(metrics, Mapping) else None
    note = details.get("note") if isinstance(details, Mapping) else None
    if isinstance(note, str) and note.strip():
        note = " ".join(note.split())
        return note if len(note) <= _MAX_NOTE else note[: _MAX_NOTE - 1] + "…"
    return NO_CALIBRATION


def _bin_points(
    table: Sequence[ReliabilityBin] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lower edge, mean confidence, accuracy, photos) of the bins that hold photos, in bin order."""
    rows = [b for b in table or () if b.count and b.confidence is not None and b.accuracy is not None]
    return (
        np.array([b.lower for b in rows], dtype=np.float64),
        np.array([b.confidence for b in rows], dtype=np.float64),
        np.array([b.accuracy for b in rows], dtype=np.float64),
        np.array([b.count for b in rows], dtype=np.int64),
    )


def reliability_figure(
    before: Sequence[ReliabilityBin] | None,
    after: Sequence[ReliabilityBin] | None = None,
    *,
    ece_before: float | None = None,
    ece_after: float | None = None,
    temperature: float | None = None,
):
    """The reliability diagram as a matplotlib Figure (no pyplot, no display needed).

    Top: each bin that holds photos as a point at (its mean confidence, its accuracy), ``before``
    scaling (the plain softmax) and ``after`` (divided by the temperature; None: the model has
    none), against the diagonal a calibrated model follows. Bottom: how many photos each bin
    holds, since a bin of one photo says little. No bins at all: the axes say so.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 5.6), dpi=100, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], linestyle="--", color="0.55", linewidth=1, label="perfectly calibrated")
    series = [("before scaling", before, "#f97316", "o")]
    if after is not None:
        series.append(
            (
                f"after scaling (T = {temperature:.2f})" if temperature else "after scaling",
                after,
                "#3b82f6",
                "s",
            )
        )
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    width = (edges[1] - edges[0]) / (len(series) + 0.5)
    drawn = False
    for index, (name, table, colour, marker) in enumerate(series):
        lowers, confidence, accuracy, counts = _bin_points(table)
        if not counts.size:
            continue
        drawn = True
        top.plot(confidence, accuracy, marker=marker, color=colour, linewidth=1.6, markersize=5, label=name)
        bottom.bar(
            lowers + width * (index + 0.25), counts, width=width, align="edge", color=colour, alpha=0.8
        )
    if not drawn:
        top.text(0.5, 0.5, "no photos to measure", ha="center", va="center", color="0.4")
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.02)
    top.set_ylabel("how often it is right")
    top.legend(loc="upper left", fontsize="small")
    parts = []
    if ece_before is not None and math.isfinite(ece_before):
        parts.append(f"ECE {ece_before * 100:.1f} % before")
    if ece_after is not None and math.isfinite(ece_after):
        parts.append(f"{ece_after * 100:.1f} % after scaling")
    top.set_title(", ".join(parts) if parts else "Reliability")
    bottom.set_xlabel("how sure the model says it is (top probability)")
    bottom.set_ylabel("photos")
    for axes in (top, bottom):
        axes.xaxis.set_major_formatter(lambda value, _position: f"{value * 100:.0f} %")
    top.yaxis.set_major_formatter(lambda value, _position: f"{value * 100:.0f} %")
    return figure
