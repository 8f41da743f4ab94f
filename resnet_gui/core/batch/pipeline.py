"""Classify many files with decoding overlapped with the model, in bounded memory.

Decoding a photo (PIL, draft-mode JPEG) and preparing its array releases the GIL for most of
its time, so loader threads keep the model busy without the cost of worker processes (start-up,
and pickling every prepared array back). The thread iterating the generator takes the prepared
arrays in order, stacks a batch, runs the model, and yields rows; while it does, the loader
threads work on the next batches. At most ``batch_size * (prefetch_batches + 1)`` files are
submitted ahead of the model, so memory does not depend on how many files there are.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from resnet_gui.core.batch.rows import BatchProgress, BatchRow
from resnet_gui.core.batch.scan import scan_inputs
from resnet_gui.core.engine import Prediction
from resnet_gui.core.errors import CancelCheck, ImageFailureKind, ImageLoadError, as_cancel_check
from resnet_gui.core.images import IMAGE_EXTENSIONS, load_image

if TYPE_CHECKING:
    from resnet_gui.core.engine import ImageClassifier
    from resnet_gui.core.preprocessing import Preprocessing

__all__ = ["CancelCheck", "classify_folder", "default_workers"]

#: Anything that says "stop": a ``threading.Event`` (set to cancel) or a callable returning True.


@dataclass
class _Prepared:
    """What a loader thread hands to the model thread for one file."""

    path: Path
    array: np.ndarray | None = None
    error: str | None = None
    kind: ImageFailureKind = "unreadable"  # why, when ``error`` is set


def _prepare(path: Path, classifier: ImageClassifier) -> _Prepared:
    """Decode and prepare one file for ``classifier``; any failure becomes a reason, never an exception."""
    return prepare_file(path, classifier.preprocessing)


def prepare_file(path: Path, preprocessing: Preprocessing) -> _Prepared:
    """Decode and prepare one file with ``preprocessing`` (what a process without the model, such
    as a Ray decoding task, runs); any failure becomes a reason, never an exception."""
    try:
        image = load_image(path, min_size=preprocessing.resize_size)
        return _Prepared(path, array=preprocessing.prepare(image))
    except ImageLoadError as error:
        return _Prepared(path, error=error.reason, kind=error.failure_kind)
    except MemoryError:
        return _Prepared(path, error="not enough memory to decode the image")
    except Exception as error:  # a bug or an unexpected decoder error must not end the run
        return _Prepared(path, error=f"cannot prepare the image ({type(error).__name__}: {error})")


class _InlineFuture:
    """A finished 'future' for ``workers=0`` (decode in the calling thread, for debugging)."""

    def __init__(self, value: _Prepared) -> None:
        self._value = value

    def result(self) -> _Prepared:
        return self._value

    def cancel(self) -> bool:
        return False


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use (containers, taskset)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(classifier: ImageClassifier) -> int:
    """How many loader threads keep the model fed without slowing it down.

    On a GPU the CPU is free while the model runs: up to 4 threads. On the CPU the model's own
    threads already use the cores, and a decoding thread that preempts one of them stalls the
    whole parallel layer; so only the cores torch leaves free, and at least 1 (a decode is
    ~10 % of a ResNet-50 forward on CPU, so one thread keeps up; ``benchmarks/batch_throughput.py``
    compares it with 2 threads and with none).
    """
    cpus = _usable_cpus()
    if classifier.device.type != "cpu":
        return max(1, min(4, cpus))
    return max(1, min(4, cpus - classifier.compute_threads()))


def classify_folder(
    classifier: ImageClassifier,
    folder_or_paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    top_k: int = 5,
    batch_size: int = 16,
    workers: int | None = None,
    recursive: bool = False,
    cancel: CancelCheck | None = None,
    prefetch_batches: int = 2,
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
) -> Iterator[BatchProgress | BatchRow]:
    """Classify a folder (scanned with :func:`scan_folder`) or a list of files, streaming the results.

    ``workers`` loader threads decode ahead of the model (``None``: :func:`default_workers`;
    ``0``: decode in the calling thread, no overlap).

    Yields a :class:`BatchProgress` first (``done=0``, so a UI can show the total at once), then,
    for every batch, one :class:`BatchRow` per file of the batch in input order followed by a
    :class:`BatchProgress`. Every file gets exactly one row; a file that cannot be read gets a row
    with its reason and never stops the run. ``cancel`` is checked between batches: the last
    progress then has ``cancelled=True``. Closing the generator early (``break``) stops the loader
    threads too.
    """
    if workers is None:
        workers = default_workers(classifier)
    if batch_size < 1 or top_k < 1 or workers < 0 or prefetch_batches < 0:
        raise ValueError("batch_size and top_k must be >= 1, workers and prefetch_batches >= 0")
    # Checked and scanned now, not at the first next(): a missing folder fails at the call.
    if isinstance(folder_or_paths, (str, os.PathLike)):
        paths = scan_inputs([folder_or_paths], recursive, extensions)
    else:
        paths = [Path(p) for p in folder_or_paths]
    return _stream(classifier, paths, top_k, batch_size, workers, prefetch_batches, as_cancel_check(cancel))


def _stream(
    classifier: ImageClassifier,
    paths: list[Path],
    top_k: int,
    batch_size: int,
    workers: int,
    prefetch_batches: int,
    cancelled: Callable[[], bool],
) -> Iterator[BatchProgress | BatchRow]:
    """The generator behind :func:`classify_folder`; threads start at the first ``next()``."""
    total = len(paths)
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch-decode") if workers else None
    # Inline (workers=0) decodes only the batch about to run; threads work this far ahead.
    window = batch_size if executor is None else batch_size * (prefetch_batches + 1)
    pending: deque[Future[_Prepared] | _InlineFuture] = deque()
    upcoming = iter(paths)

    def submit_ahead() -> None:
        while len(pending) < window:
            path = next(upcoming, None)
            if path is None:
                return
            if executor is None:
                pending.append(_InlineFuture(_prepare(path, classifier)))
            else:
                pending.append(executor.submit(_prepare, path, classifier))

    done = failed = 0
    started = time.perf_counter()
    try:
        yield BatchProgress(0, total, 0, 0.0)
        while done < total:
            if cancelled():
                yield BatchProgress(done, total, failed, time.perf_counter() - started, cancelled=True)
                return
            submit_ahead()
            batch = [pending.popleft().result() for _ in range(min(batch_size, len(pending)))]
            if executor is not None:
                submit_ahead()  # the threads decode the next batches while the model runs
            rows = _run_batch(classifier, batch, top_k)
            for row in rows:
                failed += not row.ok
                yield row
            done += len(rows)
            yield BatchProgress(done, total, failed, time.perf_counter() - started)
    finally:
        for future in pending:
            future.cancel()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _run_batch(classifier: ImageClassifier, batch: list[_Prepared], top_k: int) -> list[BatchRow]:
    """One forward pass over the files that decoded; rows for all of them, in order."""
    good = [item for item in batch if item.array is not None]
    predictions: dict[int, tuple[Prediction, ...]] = {}
    unusual: dict[int, bool] = {}
    model_error: str | None = None
    if good:
        try:
            batch_array = np.stack([item.array for item in good])
            probabilities, flags = classifier.probabilities_and_unusual(batch_array)
            for item, top in zip(good, classifier.top_k(probabilities, top_k), strict=True):
                predictions[id(item)] = top
            if flags is not None:
                unusual = {id(item): bool(flag) for item, flag in zip(good, flags, strict=True)}
        except Exception as error:  # e.g. out of GPU memory: fail this batch, keep going
            model_error = f"the model failed on this batch ({type(error).__name__}: {error})"
    rows = []
    for item in batch:
        if item.error is not None:
            rows.append(BatchRow(item.path, error=item.error, kind=item.kind))
        elif model_error is not None:
            rows.append(BatchRow(item.path, error=model_error, kind="model_failed"))
        else:
            rows.append(BatchRow(item.path, predictions[id(item)], unusual=unusual.get(id(item))))
        item.array = None  # drop the pixels as soon as the batch is done
    return rows
