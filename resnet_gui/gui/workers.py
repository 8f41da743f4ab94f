"""Long work off the UI thread: a task is a function (often a generator) run by a thread pool.

Modelled on superqt's ``utils/_qthreading.py`` and napari's ``_qt/qthreading.py``:

* a task is ``func(context, *args)``; a generator task hands intermediate results back by
  ``yield`` and its return value is the final result;
* cancellation is cooperative: :meth:`Job.abort` sets a flag that is checked between yields (the
  generator is closed there) and that core callbacks poll through :attr:`TaskContext.cancelled`;
* progress goes through :meth:`TaskContext.progress`, from any depth of core code;
* every outcome (yielded, progress, returned, errored, finished) arrives in the UI thread as a
  queued Qt signal carrying the :class:`Job`, so the receiver can drop results of a job that a
  newer request superseded (its ``request_id`` is old, or it was aborted);
* exceptions never escape the thread: they arrive as ``errored`` in one place.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from resnet_gui.core.errors import Cancelled

log = logging.getLogger(__name__)

_ids = itertools.count(1)


class TaskCancelled(Cancelled):
    """Raised inside a task (by :meth:`TaskContext.check`) when its job was aborted: a kind of core's
    one :class:`~resnet_gui.core.errors.Cancelled`, told apart so a job drops only its own abort."""


class JobSignals(QObject):
    """The signals of one job. Created in the UI thread, so emits from the pool are queued to it."""

    yielded = Signal(object, object)  # (job, value)
    progress = Signal(object, object)  # (job, (fraction or None, text))
    returned = Signal(object, object)  # (job, result)
    errored = Signal(object, object)  # (job, exception)
    finished = Signal(object)  # (job,)


class TaskContext:
    """What a running task sees of its job: whether to stop, and where to report progress."""

    def __init__(self, job: Job) -> None:
        self._job = job

    @property
    def cancelled(self) -> bool:
        return self._job.aborted

    def is_cancelled(self) -> bool:
        """A bound method for core's ``cancel=`` callbacks."""
        return self._job.aborted

    def check(self) -> None:
        """Stop here if the job was aborted."""
        if self._job.aborted:
            raise TaskCancelled

    def progress(self, fraction: float | None, text: str = "") -> None:
        """Report progress (0-1, or None when unknown) with an optional line of text."""
        self._job.signals.progress.emit(self._job, (fraction, text))


class Job:
    """One run of a task: its kind and request id (to recognise stale results) and its abort flag."""

    def __init__(
        self, kind: str, func: Callable[..., Any], *args: Any, request_id: int = 0, **kwargs: Any
    ) -> None:
        self.id = next(_ids)
        self.kind = kind
        self.request_id = request_id
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.aborted = False
        self.done = False
        self.tag: Any = None  # free for the owner (e.g. which image a result belongs to)
        self.signals = JobSignals()

    def abort(self) -> None:
        """Ask the task to stop at its next yield or cancellation check; its results will be dropped."""
        self.aborted = True

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} request={self.request_id}{' aborted' if self.aborted else ''}>"

    def run(self) -> None:
        """Run the task in the calling thread, turning every outcome into a signal."""
        context = TaskContext(self)
        signals = self.signals
        try:
            result = self.func(context, *self.args, **self.kwargs)
            if inspect.isgenerator(result):
                result = self._drive(result)
            if not self.aborted:
                signals.returned.emit(self, result)
        except TaskCancelled:
            pass
        except BaseException as error:
            if not self.aborted:
                log.debug("job %r failed", self, exc_info=True)
                signals.errored.emit(self, error)
        finally:
            self.done = True
            signals.finished.emit(self)

    def _drive(self, generator: Any) -> Any:
        while True:
            if self.aborted:
                generator.close()
                raise TaskCancelled
            try:
                value = next(generator)
            except StopIteration as stop:
                return stop.value
            if not self.aborted:
                self.signals.yielded.emit(self, value)


class _Runnable(QRunnable):
    """Auto-deleted by the pool after ``run`` (PySide hands ownership to C++ in ``start``)."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def run(self) -> None:
        self.job.run()


class JobRunner(QObject):
    """Starts jobs on a private thread pool and keeps them alive until they finish.

    A private pool (not ``QThreadPool.globalInstance()``) so :meth:`shutdown` waits for this
    app's jobs only.
    """

    def __init__(self, max_threads: int = 4, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._active: dict[int, Job] = {}

    def start(self, job: Job) -> Job:
        self._active[job.id] = job
        job.signals.finished.connect(self._forget)
        self.pool.start(_Runnable(job))
        return job

    def _forget(self, job: Job) -> None:
        self._active.pop(job.id, None)

    def active(self, kind: str | None = None) -> list[Job]:
        """The jobs (of ``kind``) still running: one that has finished is not, even before it is forgotten
        (the owner's ``finished`` handlers run before the runner's, and must not see it as busy)."""
        return [
            job for job in self._active.values() if not job.done and (kind is None or job.kind == kind)
        ]

    def abort(self, kind: str | None = None) -> None:
        for job in self.active(kind):
            job.abort()

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Abort every job and wait for the threads; True if all finished in time."""
        self.abort()
        finished = self.pool.waitForDone(timeout_ms)
        if not finished:
            log.warning("some background jobs did not stop within %d ms", timeout_ms)
        return finished
