"""Words for people about a batch run: the progress line and the end-of-run summary.

Pure text, no printing: the CLI prints these lines, the GUI can show them in a status bar.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from resnet_gui.core.batch.rows import BatchProgress, BatchRow
from resnet_gui.core.text import printable, printable_path

__all__ = ["BatchSummary", "display_path", "format_duration", "format_progress"]


def display_path(path: str | os.PathLike[str]) -> str:
    """A path safe to print on any terminal: bytes that are not UTF-8 shown as ``\\xe9``, control
    characters (an escape sequence, a carriage return in a file name) as ``\\x1b``, ``\\r``."""
    return printable_path(path)


def format_duration(seconds: float) -> str:
    """``4.2 s``, ``42 s``, ``3:07``, ``1:02:03``."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}:{seconds:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def format_progress(progress: BatchProgress, bar_width: int = 0) -> str:
    """``[#####-----] 120/398 (30 %), 3 failed, 12.3 images/s, ETA 0:21``; no bar when ``bar_width`` is 0."""
    fraction = progress.done / progress.total if progress.total else 1.0
    parts = []
    if bar_width > 0:
        filled = round(fraction * bar_width)
        parts.append(f"[{'#' * filled}{'-' * (bar_width - filled)}]")
    parts.append(f"{progress.done}/{progress.total} ({fraction * 100:.0f} %)")
    text = " ".join(parts)
    if progress.failed:
        text += f", {progress.failed} failed"
    if progress.done:
        text += f", {progress.images_per_second:.1f} images/s"
    eta = progress.eta_seconds
    if eta is not None and not progress.finished:
        text += f", ETA {format_duration(eta)}"
    return text


@dataclass
class BatchSummary:
    """Counts of a run as rows come in; :meth:`lines` says them at the end.

    ``per_class`` counts the top-1 class of classified files; the files that are *not sure* under
    ``min_confidence`` (the run's threshold: :meth:`BatchRow.not_sure`, the rule of the results'
    ``not_sure`` column) are counted as unsure instead, as the sort puts them in ``_unsure/``.
    ``unlike_training`` counts the files that look unlike the model's training photos.
    """

    total: int = 0
    skipped: int = 0
    min_confidence: float | None = None
    classified: int = 0
    failed: int = 0
    unsure: int = 0
    unlike_training: int = 0
    elapsed_seconds: float = 0.0
    cancelled: bool = False
    per_class: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    max_failures_kept: int = 1000

    def add(self, row: BatchRow) -> None:
        top1 = row.top1
        if top1 is None:
            self.failed += 1
            if len(self.failures) < self.max_failures_kept:
                self.failures.append((row.path, row.error or "unknown error"))
            return
        self.classified += 1
        self.unlike_training += bool(row.unusual)
        if row.not_sure(self.min_confidence):
            self.unsure += 1
        else:
            self.per_class[top1.label] += 1

    def update(self, progress: BatchProgress) -> None:
        self.elapsed_seconds = progress.elapsed_seconds
        self.cancelled = self.cancelled or progress.cancelled

    def lines(self, max_classes: int = 20) -> list[str]:
        done = self.classified + self.failed
        speed = f" ({done / self.elapsed_seconds:.1f} images/s)" if self.elapsed_seconds > 0 and done else ""
        took = format_duration(self.elapsed_seconds)
        head = f"Classified {self.classified} of {self.total} files in {took}{speed}"
        head += f"; {self.failed} failed." if self.failed else "."
        lines = [head]
        if self.cancelled:
            lines.append(f"Stopped early: {self.total - done} files were not processed.")
        if self.skipped:
            lines.append(f"Skipped {self.skipped} files already in the results file (resume).")
        if self.per_class or self.unsure:
            ranked = self.per_class.most_common()
            shown = [f"{printable(label)} {count}" for label, count in ranked[:max_classes]]
            if len(ranked) > max_classes:
                rest = sum(count for _, count in ranked[max_classes:])
                shown.append(f"{len(ranked) - max_classes} more classes {rest}")
            if self.unsure:
                below = f" (< {self.min_confidence:.0%})" if self.min_confidence is not None else ""
                shown.append(f"not sure{below} {self.unsure}")
            lines.append("Top-1 classes: " + ", ".join(shown))
        if self.unlike_training:
            files = "file looks" if self.unlike_training == 1 else "files look"
            lines.append(f"{self.unlike_training} {files} unlike the photos the model was trained on.")
        return lines
