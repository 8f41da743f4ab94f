"""Long work off the UI thread: a task is a function (often a generator) run by a thread pool.

Modelled on superqt's ``utils/_qthreading.py`` and Orange3's ``widgets/utils/concurrent.py``:

* a task is ``func(context, *args)``; a generator task hands intermediate results back by
  ``yield`` and its return value is the final result;
* there is one way to start one: :meth:`JobRunner.start` with the handlers of its outcomes
  (``on_result``, ``on_yield``, ``on_progress``, ``on_error``, ``on_finished``); they run in the
  UI thread, and the caller binds what they need (which photo, which model) into them;
* starting a job supersedes the running job of the same kind: it is aborted and its handlers are
  dropped, so no handler ever sees a stale result and none needs to ask "is this still mine?";
* cancellation is cooperative: :meth:`Job.abort` sets a flag that is checked between yields (the
  generator is closed there) and that core callbacks poll through :attr:`TaskContext.cancelled`;
  an aborted job (not superseded) still gets ``on_finished``, so a view can reset its buttons;
* progress goes through :meth:`TaskContext.progress`, from any depth of core code;
* exceptions never escape the thread: they arrive as ``on_error`` in one place.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

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


@dataclass
class JobHandlers:
    """What the owner of a job does with its outcomes, called in the UI thread."""

    on_result: Callable[[Any], None] | None = None
    on_yield: Callable[[Any], None] | None = None
    on_progress: Callable[[float | None, str], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    on_finished: Callable[[], None] | None = None


class Job:
    """One run of a task: its kind, its handlers and its abort flag."""

    def __init__(
        self, kind: str, func: Callable[..., Any], *args: Any, handlers: JobHandlers | None = None
    ) -> None:
        self.id = next(_ids)
        self.kind = kind
        self.func = func
        self.args = args
        self.handlers = handlers or JobHandlers()
        self.aborted = False
        self.superseded = False
        self.done = False
        self.signals = JobSignals()

    def abort(self) -> None:
        """Ask the task to stop at its next yield or cancellation check; its results will be dropped."""
        self.aborted = True

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind}{' aborted' if self.aborted else ''}>"

    def run(self) -> None:
        """Run the task in the calling thread, turning every outcome into a signal."""
        context = TaskContext(self)
        signals = self.signals
        try:
            result = self.func(context, *self.args)
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


def _receiver_gone(handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` is a method of a Qt object that was deleted (a closed dialog's view)."""
    owner = getattr(handler, "__self__", None)
    return isinstance(owner, QObject) and not shiboken6.isValid(owner)


class JobRunner(QObject):
    """Starts jobs on a private thread pool, calls their handlers in the UI thread, keeps them alive.

    A private pool (not ``QThreadPool.globalInstance()``) so :meth:`shutdown` waits for this
    app's jobs only.
    """

    job_finished = Signal(object)  # (job,) after its own handlers: for busy indicators

    def __init__(self, max_threads: int = 4, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._active: dict[int, Job] = {}
        self._shut_down = False

    def start(
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
        """Run ``func(context, *args)`` on the pool; its outcomes go to the handlers, in the UI thread.

        With ``supersede`` (the default) the running jobs of ``kind`` are aborted first and their
        handlers dropped. After :meth:`shutdown` nothing starts: the job returned is already done.
        """
        if supersede:
            self.supersede(kind)
        handlers = JobHandlers(on_result, on_yield, on_progress, on_error, on_finished)
        job = Job(kind, func, *args, handlers=handlers)
        if self._shut_down:
            job.aborted = job.done = True
            return job
        signals = job.signals
        signals.yielded.connect(self._yielded)
        signals.progress.connect(self._progress)
        signals.returned.connect(self._returned)
        signals.errored.connect(self._errored)
        signals.finished.connect(self._finished)
        self._active[job.id] = job
        self.pool.start(_Runnable(job))
        return job

    def supersede(self, kind: str) -> None:
        """Abort the running jobs of ``kind`` and drop their handlers: nothing of theirs arrives."""
        for job in self.active(kind):
            job.abort()
            job.superseded = True
            job.handlers = JobHandlers()

    @staticmethod
    def _call(handler: Callable[..., Any] | None, *args: Any) -> None:
        if handler is not None and not _receiver_gone(handler):
            handler(*args)

    @Slot(object, object)
    def _yielded(self, job: Job, value: Any) -> None:
        if not job.aborted:
            self._call(job.handlers.on_yield, value)

    @Slot(object, object)
    def _progress(self, job: Job, value: Any) -> None:
        if not job.aborted:
            self._call(job.handlers.on_progress, *value)

    @Slot(object, object)
    def _returned(self, job: Job, value: Any) -> None:
        if not job.aborted:
            self._call(job.handlers.on_result, value)

    @Slot(object, object)
    def _errored(self, job: Job, error: BaseException) -> None:
        if not job.aborted:
            if job.handlers.on_error is None:
                log.error("job %r failed with no error handler", job, exc_info=error)
            self._call(job.handlers.on_error, error)

    @Slot(object)
    def _finished(self, job: Job) -> None:
        self._active.pop(job.id, None)
        self._call(job.handlers.on_finished)
        self.job_finished.emit(job)

    def active(self, kind: str | None = None) -> list[Job]:
        """The jobs (of ``kind``) still running: one that has finished is not, even before its
        ``on_finished`` ran (a handler that asks must not see its own job as busy)."""
        return [job for job in self._active.values() if not job.done and (kind is None or job.kind == kind)]

    def settled(self, kind: str | None = None) -> bool:
        """Whether no job (of ``kind``) has handlers still to run in the UI thread: a job is done in
        its thread before its ``on_result`` runs here, so waiting for :meth:`active` to empty can
        look at the effects one result too early."""
        return not any(kind is None or job.kind == kind for job in self._active.values())

    def abort(self, kind: str | None = None) -> None:
        """Ask the jobs (of ``kind``) to stop; their ``on_finished`` still runs."""
        for job in self.active(kind):
            job.abort()

    @property
    def shut_down(self) -> bool:
        return self._shut_down

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Abort every job and wait for the threads; True if all finished in time. Nothing starts after."""
        self._shut_down = True
        self.abort()
        finished = self.pool.waitForDone(timeout_ms)
        if not finished:
            log.warning("some background jobs did not stop within %d ms", timeout_ms)
        return finished
