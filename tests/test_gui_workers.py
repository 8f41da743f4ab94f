"""The job path: results in the UI thread, a new job supersedes the old one, cancel between yields,
errors in one place. Deterministic: every "not yet" is held by an event the test releases."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from PySide6.QtWidgets import QLabel

from resnet_gui.gui.workers import JobRunner, TaskContext

WAIT_MS = 5000


class Recorder:
    """The handlers of one job, recording what reached them and in which thread."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.threads: set[int] = set()

    def _record(self, kind: str, value: object) -> None:
        self.threads.add(threading.get_ident())
        self.events.append((kind, value))

    def handlers(self) -> dict[str, Callable[..., None]]:
        return {
            "on_yield": lambda value: self._record("yielded", value),
            "on_progress": lambda fraction, text: self._record("progress", (fraction, text)),
            "on_result": lambda value: self._record("returned", value),
            "on_error": lambda error: self._record("errored", error),
            "on_finished": lambda: self._record("finished", None),
        }

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def values(self, kind: str) -> list[object]:
        return [value for k, value in self.events if k == kind]


def count_to(context: TaskContext, n: int) -> Iterator[int]:
    for i in range(n):
        context.progress(i / n, f"step {i}")
        yield i
    return n


def gated(started: threading.Event, release: threading.Event, result: object) -> Callable[..., Iterator[int]]:
    """A task that yields 1, waits for ``release``, then yields 2 and returns ``result``."""

    def task(context: TaskContext) -> Iterator[int]:
        started.set()
        yield 1
        assert release.wait(WAIT_MS / 1000)
        yield 2
        return result

    return task


def test_a_generator_job_reports_in_the_ui_thread(qtbot) -> None:
    runner, recorder = JobRunner(), Recorder()
    runner.start("count", count_to, 3, **recorder.handlers())
    qtbot.waitUntil(lambda: "finished" in recorder.kinds(), timeout=WAIT_MS)
    assert recorder.values("yielded") == [0, 1, 2]
    assert recorder.values("returned") == [3]
    assert recorder.events[0] == ("progress", (0.0, "step 0"))
    assert recorder.kinds()[-1] == "finished"
    assert recorder.threads == {threading.get_ident()}
    assert runner.active() == []


def test_a_job_done_in_its_thread_is_settled_only_once_its_result_handler_ran(qtbot) -> None:
    """``active`` empties when the thread is done; ``settled`` waits for the UI-thread handlers, so
    a test waiting on it sees the result's effects (a CI run once counted one capture short)."""
    runner, recorder = JobRunner(), Recorder()
    job = runner.start("capture", count_to, 1, **recorder.handlers())
    deadline = time.monotonic() + WAIT_MS / 1000
    while not job.done and time.monotonic() < deadline:  # no event loop: the handlers are queued
        time.sleep(0.005)
    assert job.done and runner.active("capture") == []
    assert not runner.settled("capture") and not runner.settled() and runner.settled("other")
    assert recorder.values("returned") == []
    qtbot.waitUntil(lambda: runner.settled("capture"), timeout=WAIT_MS)
    assert recorder.values("returned") == [1] and recorder.kinds()[-1] == "finished"


def test_a_new_job_supersedes_the_running_one_of_its_kind(qtbot) -> None:
    started, release = threading.Event(), threading.Event()
    runner, old, new = JobRunner(), Recorder(), Recorder()
    first = runner.start("explain", gated(started, release, "old"), **old.handlers())
    assert started.wait(WAIT_MS / 1000)
    qtbot.waitUntil(lambda: old.values("yielded") == [1], timeout=WAIT_MS)
    second = runner.start("explain", count_to, 2, **new.handlers())
    assert first.aborted and first.superseded and not second.aborted
    release.set()
    qtbot.waitUntil(lambda: "finished" in new.kinds() and first.done, timeout=WAIT_MS)
    qtbot.wait(50)  # any queued signal of the first job has been delivered by now
    assert old.kinds() == ["yielded"]  # nothing after it was superseded: no result, not even "finished"
    assert new.values("returned") == [2]


def test_a_job_of_another_kind_is_not_superseded(qtbot) -> None:
    started, release = threading.Event(), threading.Event()
    runner, one, other = JobRunner(), Recorder(), Recorder()
    runner.start("explain", gated(started, release, "kept"), **one.handlers())
    assert started.wait(WAIT_MS / 1000)
    runner.start("score", count_to, 1, **other.handlers())
    release.set()
    qtbot.waitUntil(lambda: "finished" in one.kinds() and "finished" in other.kinds(), timeout=WAIT_MS)
    assert one.values("returned") == ["kept"] and other.values("returned") == [1]


def test_jobs_started_without_supersede_all_report(qtbot) -> None:
    runner, recorders = JobRunner(), [Recorder() for _ in range(3)]
    for n, recorder in enumerate(recorders, start=1):
        runner.start("decode", count_to, n, supersede=False, **recorder.handlers())
    qtbot.waitUntil(lambda: all("finished" in r.kinds() for r in recorders), timeout=WAIT_MS)
    assert [r.values("returned") for r in recorders] == [[1], [2], [3]]


def test_abort_stops_a_generator_between_yields_drops_its_result_and_still_finishes(qtbot) -> None:
    started, release = threading.Event(), threading.Event()
    closed: list[bool] = []

    def slow(context: TaskContext) -> Iterator[int]:
        try:
            started.set()
            yield 1
            assert release.wait(WAIT_MS / 1000)
            yield 2
            yield 3
        finally:
            closed.append(True)
        return 99

    runner, recorder = JobRunner(), Recorder()
    job = runner.start("slow", slow, **recorder.handlers())
    assert started.wait(WAIT_MS / 1000)
    job.abort()
    release.set()
    qtbot.waitUntil(lambda: "finished" in recorder.kinds(), timeout=WAIT_MS)
    assert "returned" not in recorder.kinds() and "errored" not in recorder.kinds()
    assert 3 not in recorder.values("yielded")
    assert closed == [True]


def test_errors_arrive_in_on_error(qtbot) -> None:
    def broken(context: TaskContext) -> None:
        raise ValueError("bad input")

    runner, recorder = JobRunner(), Recorder()
    runner.start("broken", broken, **recorder.handlers())
    qtbot.waitUntil(lambda: "finished" in recorder.kinds(), timeout=WAIT_MS)
    [error] = recorder.values("errored")
    assert isinstance(error, ValueError) and str(error) == "bad input"
    assert recorder.kinds() == ["errored", "finished"]


def test_context_check_raises_after_abort(qtbot) -> None:
    gate = threading.Event()

    def checking(context: TaskContext) -> str:
        assert gate.wait(WAIT_MS / 1000)
        context.check()
        return "not reached"

    runner, recorder = JobRunner(), Recorder()
    job = runner.start("check", checking, **recorder.handlers())
    job.abort()
    gate.set()
    qtbot.waitUntil(lambda: "finished" in recorder.kinds(), timeout=WAIT_MS)
    assert recorder.kinds() == ["finished"]


def test_a_handler_of_a_deleted_widget_is_not_called(qtbot) -> None:
    started, release = threading.Event(), threading.Event()
    label = QLabel()
    runner = JobRunner()
    finished: list[bool] = []
    runner.job_finished.connect(lambda job: finished.append(True))
    runner.start("thumbs", gated(started, release, "text"), on_result=label.setText)
    assert started.wait(WAIT_MS / 1000)
    label.deleteLater()
    qtbot.waitUntil(lambda: not _alive(label), timeout=WAIT_MS)
    release.set()
    qtbot.waitUntil(lambda: bool(finished), timeout=WAIT_MS)  # no RuntimeError from a deleted C++ object


def _alive(widget: QLabel) -> bool:
    import shiboken6

    return shiboken6.isValid(widget)


def test_shutdown_waits_for_the_threads_and_nothing_starts_after() -> None:
    done = threading.Event()

    def work(context: TaskContext) -> Iterator[int]:
        for i in range(1000):
            time.sleep(0.01)
            yield i
        done.set()

    runner = JobRunner()
    runner.start("work", work)
    assert runner.shutdown(WAIT_MS)
    assert runner.pool.activeThreadCount() == 0
    assert not done.is_set()  # aborted between yields, not run to the end
    late = runner.start("work", work)
    assert late.done and late.aborted and runner.active() == []
