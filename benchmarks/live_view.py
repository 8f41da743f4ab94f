"""The live camera view's throughput: frames classified per second, end to end, from a video played
in real time at 30 fps (as a camera delivers), and how long the UI thread ever waits while it runs.

A 640x480, 30 fps video is made from the sample photos (assets/samples; each photo for a third of
the time) in a temporary folder. Part one runs core's live loop (``run_live``: the paced video feeds
the newest-frame slot, the model takes the newest frame whenever it is free) with the real default
model on the PyTorch runtime and on ONNX Runtime, without and with the Grad-CAM heat map: frames
classified per second, frames dropped, the median time per frame, and each against the named
baseline (PyTorch, no heat map) measured in the same run. Part two opens the live window itself
(offscreen) on the same video and records a 10 ms UI-thread timer's ticks: the longest gap between
two ticks is the longest the window was unresponsive (the project's rule: under 100 ms), next to
the same timer with the model busy in a plain thread and no window (the machine's own share), and
the longest any of the window's own UI-thread handlers took.

    .venv/bin/python benchmarks/live_view.py [--seconds 12] [--no-ui | --ui-only]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import numpy as np  # noqa: E402
from common import load_benchmark_model  # noqa: E402
from PIL import Image  # noqa: E402
from video_makers import make_photo_video  # noqa: E402  (tests/, put on the path by common)

from resnet_gui.core.live import LiveResult, LiveSettings, classify_frame, run_live, video_file_feed  # noqa: E402

SAMPLES = REPO / "assets" / "samples"
BASELINE = "torch"
FPS = 30


def make_video(folder: Path, seconds: int) -> Path:
    photos = sorted(SAMPLES.glob("*.jpg"))
    per_photo = max(1, seconds * FPS // len(photos))
    return make_photo_video(
        folder, photos, fps=FPS, frames_per_photo=per_photo, size=(640, 480), name="samples"
    )


def measure_loop(classifier, video: Path, heatmap: bool) -> dict[str, float]:
    times: list[float] = []

    def on_result(result: LiveResult) -> None:
        times.append(result.seconds)

    stats = run_live(video_file_feed(video), classifier, LiveSettings(heatmap=heatmap), on_result=on_result)
    return {
        "fps": stats.fps,
        "classified": stats.classified,
        "dropped": stats.dropped,
        "received": stats.received,
        "median_ms": statistics.median(times[1:] or times) * 1000 if times else float("nan"),
    }


def loop_rows(loaded, video: Path, cache: Path) -> None:
    from resnet_gui.core.engine import Classifier
    from resnet_gui.core.runtime import make_classifier

    classifiers = {"torch": Classifier(loaded, "cpu")}
    try:
        classifiers["onnxruntime"] = make_classifier(loaded, "onnxruntime", "cpu", cache=cache)
    except Exception as error:  # not installed, or the export failed: say so, measure torch only
        print(f"onnxruntime: not measured ({error})")
    rows = []
    warm = np.asarray(Image.open(sorted(SAMPLES.glob("*.jpg"))[0]).convert("RGB").resize((640, 480)))
    for name, classifier in classifiers.items():
        for _ in range(2):  # the first passes set up the runtime (oneDNN, ONNX Runtime): not a frame's cost
            classify_frame(classifier, warm, 5)
        for heatmap in (False, True):
            label = f"{name}{' + heat map' if heatmap else ''}"
            row = measure_loop(classifier, video, heatmap)
            rows.append((label, row))
            print(f"  measured {label}: {row['fps']:.2f} frames/s, {row['dropped']:.0f} dropped", flush=True)
    baseline = next(row for label, row in rows if label == BASELINE)["fps"]
    print()
    print(f"{'runtime':<26}{'frames/s':>10}{'× torch':>9}{'ms/frame':>10}{'classified':>12}{'dropped':>9}")
    for label, row in rows:
        ratio = row["fps"] / baseline if baseline else float("nan")
        print(
            f"{label:<26}{row['fps']:>10.2f}{ratio:>9.2f}{row['median_ms']:>10.0f}"
            f"{row['classified']:>12.0f}{row['dropped']:>9.0f}"
        )
    print(f"(each: {rows[0][1]['received']:.0f} frames of a 30 fps video played in real time)")


def no_camera():
    from resnet_gui.gui.camera import CameraSupport

    return CameraSupport(reason="(benchmark: a video file)")


def print_gaps(label: str, ticks: list[float], began: float, extra: str = "") -> None:
    gaps = sorted(b - a for a, b in itertools.pairwise(ticks) if a >= began)
    print(
        f"{label}: {extra}longest UI-thread gap {gaps[-1] * 1000:.0f} ms, "
        f"99th percentile {gaps[int(len(gaps) * 0.99)] * 1000:.0f} ms over {len(gaps)} ticks",
        flush=True,
    )


def measure_busy_baseline(classifier, seconds: int, wait) -> None:
    """The baseline for the UI gaps: the same timer while the model classifies frames in a plain
    thread and no live window is open (what the machine's load alone does to the UI thread)."""
    import threading

    from PySide6.QtCore import QTimer

    frame = np.asarray(Image.open(sorted(SAMPLES.glob("*.jpg"))[0]).convert("RGB").resize((640, 480)))
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            classify_frame(classifier, frame, 5)

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    thread = threading.Thread(target=busy, daemon=True)
    began = time.perf_counter()
    thread.start()
    wait(lambda: time.perf_counter() - began > seconds, seconds + 1)
    stop.set()
    wait(lambda: not thread.is_alive(), 60)
    timer.stop()
    print_gaps("baseline (the model busy in a thread, no live window)", ticks, began)


@contextlib.contextmanager
def handler_times() -> Iterator[dict[str, list[float]]]:
    """How long each UI-thread handler of the live window takes, call by call: the preview timer,
    a result's arrival, and painting the picture (what the window itself does to the UI thread)."""
    from resnet_gui.gui.image_view import ImageView
    from resnet_gui.gui.live_view import LiveView

    durations: dict[str, list[float]] = {}
    patched = [(LiveView, "_show_latest"), (LiveView, "_result_arrived"), (ImageView, "paintEvent")]
    originals = [getattr(cls, name) for cls, name in patched]

    def timed(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                durations.setdefault(name, []).append(time.perf_counter() - began)

        return wrapper

    for (cls, name), original in zip(patched, originals, strict=True):
        setattr(cls, name, timed(name, original))
    try:
        yield durations
    finally:
        for (cls, name), original in zip(patched, originals, strict=True):
            setattr(cls, name, original)


def print_handlers(durations: dict[str, list[float]]) -> None:
    for name, times in durations.items():
        times = sorted(times)
        print(
            f"    UI handler {name}: {len(times)} calls, longest {times[-1] * 1000:.0f} ms, "
            f"median {times[len(times) // 2] * 1000:.1f} ms"
        )


def measure_window(view, video: Path, heatmap: bool, seconds: int, wait) -> None:
    """Play ``video`` in the live window, a 10 ms UI-thread timer ticking: its longest gap."""
    from PySide6.QtCore import QTimer

    view.show()
    view.heatmap_box.setChecked(heatmap)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    view.use_video_file(video)
    wait(lambda: view.results > 0, 60)
    began = time.perf_counter()
    wait(lambda: view.slot is not None and view.slot.closed and not view.running, seconds + 30)
    timer.stop()
    view.close()
    wait(lambda: not view.controller.is_busy("live"), 30)
    label = "with heat map" if heatmap else "without heat map"
    print_gaps(f"live window {label}", ticks, began, f"{view.results} frames shown with predictions, ")
    view.deleteLater()


def ui_rows(loaded, video: Path, seconds: int) -> None:
    from PySide6.QtWidgets import QApplication

    from resnet_gui.core.engine import Classifier
    from resnet_gui.gui.controller import Controller
    from resnet_gui.gui.live_view import LiveView
    from resnet_gui.gui.main_window import MainWindow
    from resnet_gui.gui.settings import AppSettings

    app = QApplication.instance() or QApplication([])
    folder = Path(tempfile.mkdtemp(prefix="live-ui-"))
    controller = Controller(classifier=Classifier(loaded, "cpu"))
    window = MainWindow(controller=controller, settings=AppSettings(folder / "settings.ini"))
    window.show()

    def wait(condition, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.005)

    wait(lambda: controller.model_info is not None, 120)
    measure_busy_baseline(controller.classifier, seconds, wait)
    for heatmap in (False, True):
        with handler_times() as durations:
            measure_window(LiveView(controller, window, support=no_camera), video, heatmap, seconds, wait)
        print_handlers(durations)
    window.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12, help="length of the generated video")
    parser.add_argument("--no-ui", action="store_true", help="skip the live-window (UI gap) part")
    parser.add_argument("--ui-only", action="store_true", help="only the live-window (UI gap) part")
    args = parser.parse_args()
    import torch

    loaded = load_benchmark_model()
    print(f"model: {loaded.name}; {os.cpu_count()} cores; torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(prefix="live-bench-") as tmp:
        video = make_video(Path(tmp), args.seconds)
        print(f"video: {video.name}, 640x480, {FPS} fps, {args.seconds} s")
        if not args.ui_only:
            loop_rows(loaded, video, Path(tmp) / "runtime-cache")
        if not args.no_ui:
            print()
            ui_rows(loaded, video, args.seconds)


if __name__ == "__main__":
    main()
