"""How fast the desktop app's window appears: process start -> first paint of the main window.

Each run starts ``python -m resnet_gui <sample photo>`` (the real launcher) as a fresh process;
the app, with ``RESNET_GUI_STARTUP_PROBE=1``, prints the time of its first paint and exits. The
time is measured from just before the process is spawned. Baselines in the same run, under the
same load:

* ``python -c "import PySide6.QtWidgets"`` (start the interpreter and import Qt, exit);
* a bare QWidget shown until its first paint (the least any Qt window can cost);
* ``python -c "import torch"``: what the window would wait for if torch were imported first.

Without a display Qt runs offscreen (``QT_QPA_PLATFORM=offscreen``, as in the tests). Usage:
``.venv/bin/python benchmarks/startup.py [--runs 7]``. Prints medians; the target is < 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "assets" / "samples" / "coffee.jpg"
TARGET_SECONDS = 2.0

BARE_WIDGET = """
import sys, time
from PySide6.QtWidgets import QApplication, QWidget
class W(QWidget):
    def paintEvent(self, event):
        print(f"first-paint {time.time():.6f}", flush=True)
        sys.exit(0)
app = QApplication([])
w = W(); w.resize(1200, 800); w.show()
app.exec()
"""


def _environment(settings: Path) -> dict[str, str]:
    env = dict(os.environ)
    if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")) or env.get("QT_QPA_PLATFORM") == "offscreen":
        env["QT_QPA_PLATFORM"] = "offscreen"
        env["DISPLAY"] = env.get("DISPLAY") or ":startup-benchmark"  # the launcher wants a display
    env["RESNET_GUI_SETTINGS"] = str(settings)  # never read or write the user's settings
    env["RESNET_GUI_STARTUP_PROBE"] = "1"
    return env


def time_to_first_paint(command: list[str], env: dict[str, str]) -> float:
    """Seconds from spawning ``command`` to the ``first-paint <time>`` line it prints."""
    began = time.time()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    for line in result.stdout.splitlines():
        if line.startswith("first-paint "):
            return float(line.split()[1]) - began
    raise RuntimeError(f"{command} printed no first-paint line:\n{result.stdout}\n{result.stderr}")


def time_to_exit(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=REPO, timeout=120)
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each measurement (default 7)")
    parser.add_argument("--no-torch", action="store_true", help="skip the `import torch` comparison")
    args = parser.parse_args(argv)

    python = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        env = _environment(Path(folder) / "settings.ini")
        measurements = {
            "app: python -m resnet_gui photo -> first paint": lambda: time_to_first_paint(
                [python, "-m", "resnet_gui", str(SAMPLE)], env
            ),
            'baseline: python -c "import PySide6.QtWidgets"': lambda: time_to_exit(
                [python, "-c", "import PySide6.QtWidgets"], env
            ),
            "baseline: bare QWidget -> first paint": lambda: time_to_first_paint(
                [python, "-c", BARE_WIDGET], env
            ),
        }
        if not args.no_torch:
            measurements['for comparison: python -c "import torch"'] = lambda: time_to_exit(
                [python, "-c", "import torch"], env
            )
        times: dict[str, list[float]] = {name: [] for name in measurements}
        for measure in measurements.values():  # one warm-up run each (disk cache)
            measure()
        for _ in range(args.runs):  # interleaved, so load changes hit every measurement alike
            for name, measure in measurements.items():
                times[name].append(measure())

    print(f"platform: {env.get('QT_QPA_PLATFORM', 'native')}, {args.runs} runs each, medians (min-max):")
    medians = {name: statistics.median(values) for name, values in times.items()}
    width = max(map(len, times))
    for name, values in times.items():
        print(f"  {name:<{width}}  {medians[name]:.2f} s  ({min(values):.2f}-{max(values):.2f})")
    app = medians["app: python -m resnet_gui photo -> first paint"]
    qt = medians['baseline: python -c "import PySide6.QtWidgets"']
    bare = medians["baseline: bare QWidget -> first paint"]
    print(f"app - import Qt: +{app - qt:.2f} s; app / bare QWidget: {app / bare:.1f}x")
    verdict = "meets" if app < TARGET_SECONDS else "MISSES"
    print(f"first paint in {app:.2f} s {verdict} the {TARGET_SECONDS:.0f} s target")
    return 0 if app < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
