"""The worker machinery: results in the UI thread, cancel between yields, errors in one place."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QObject, Slot

from resnet_gui.gui.workers import Job, JobRunner, TaskContext


class Recorder(QObject):
    """Receives a job's signals in the UI thread, like the controller does."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, object]] = []
        self.threads: set[int] = set()

    def attach(self, job: Job) -> Job:
        job.signals.yielded.connect(self.yielded)
        job.signals.progress.connect(self.progress)
        job.signals.returned.connect(self.returned)
        job.signals.errored.connect(self.errored)
        job.signals.finished.connect(self.finished)
        return job

    def _record(self, kind: str, value: object) -> None:
        self.threads.add(threading.get_ident())
        self.events.append((kind, value))

    @Slot(object, object)
    def yielded(self, job: Job, value: object) -> None:
        self._record("yielded", value)

    @Slot(object, object)
    def progress(self, job: Job, value: object) -> None:
        self._record("progress", value)

    @Slot(object, object)
    def returned(self, job: Job, value: object) -> None:
        self._record("returned", value)

    @Slot(object, object)
    def errored(self, job: Job, error: object) -> None:
        self._record("errored", error)

    @Slot(object)
    def finished(self, job: Job) -> None:
        self._record("finished", None)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


def count_to(context: TaskContext, n: int) -> Iterator[int]:
    for i in range(n):
        context.progress(i / n, f"step {i}")
        yield i
    return n


def test_a_generator_job_reports_in_the_ui_thread(qtbot) -> None:
    runner, recorder = JobRunner(), Recorder()
    job = recorder.attach(Job("count", count_to, 3))
    runner.start(job)
    qtbot.waitUntil(lambda: "finished" in recorder.kinds(), timeout=5000)
    assert [v for k, v in recorder.events if k == "yielded"] == [0, 1, 2]
    assert ("returned", 3) in recorder.events
    assert recorder.events[0] == ("progress", (0.0, "step 0"))
    assert recorder.threads == {threading.get_ident()}
    assert runner.active() == []


def test_abort_stops_a_generator_between_yields_and_drops_its_result(qtbot) -> None:
    started, release = threading.Event(), threading.Event()
    closed: list[bool] = []

    def slow(context: TaskContext) -> Iterator[int]:
        try:
            started.set()
            yield 1
            release.wait(5)
            yield 2
            yield 3
        finally:
            closed.append(True)
        return 99

    runner, recorder = JobRunner(), Recorder()
    job = runner.start(recorder.attach(Job("slow", slow)))
    assert started.wait(5)
    job.abort()
    release.set()
    qtbot.waitUntil(lambda: "finished" in recorder.kinds(), timeout=5000)
    assert "returned" not in recorder.kinds() and "errored" not in recorder.kinds()
    assert 3 not in [v for k, v in recorder.events if k == "yielded"]
    assert closed == [True]


def test_errors_arrive_as_one_signal(qtbot) -> None:
    def broken(context: TaskContext) -> None:
        raise ValueError("bad input")

    runner, recorder = JobRunner(), Recorder()
    runner.start(recorder.attach(Job("broken", broken)))
    qtbot.waitUntil(lambda: "finished" in recorder.kinds(), timeout=5000)
    [error] = [value for kind, value in recorder.events if kind == "errored"]
    assert isinstance(error, ValueError) and str(error) == "bad input"


def test_context_check_raises_after_abort(qtbot) -> None:
    gate = threading.Event()

    def checking(context: TaskContext) -> str:
        gate.wait(5)
        context.check()
        return "not reached"

    runner, recorder = JobRunner(), Recorder()
    job = runner.start(recorder.attach(Job("check", checking)))
    job.abort()
    gate.set()
    qtbot.waitUntil(lambda: "finished" in recorder.kinds(), timeout=5000)
    assert recorder.kinds() == ["finished"]


def test_shutdown_waits_for_the_threads() -> None:
    done = threading.Event()

    def work(context: TaskContext) -> Iterator[int]:
        for i in range(1000):
            time.sleep(0.01)
            yield i
        done.set()

    runner = JobRunner()
    runner.start(Job("work", work))
    assert runner.shutdown(5000)
    assert runner.pool.activeThreadCount() == 0
    assert not done.is_set()  # aborted between yields, not run to the end


@pytest.mark.parametrize("kind", ["a", "b"])
def test_jobs_keep_their_request_ids(kind: str) -> None:
    job = Job(kind, count_to, 1, request_id=7)
    assert job.request_id == 7 and job.kind == kind and not job.aborted
