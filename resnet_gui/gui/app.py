"""Start the desktop app: ``run_app(paths)`` is what ``resnet-gui`` calls when there is a display.

The window must appear fast, so nothing imported here (or by the window) imports torch: the
window is shown first, and only after its first paint does the controller import torch and load
the model, in a worker thread, with a "Loading…" state meanwhile (see ``benchmarks/startup.py``).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence

from PySide6.QtWidgets import QApplication

from resnet_gui import __version__
from resnet_gui.gui.main_window import MainWindow
from resnet_gui.gui.qtutil import app_icon

ORGANIZATION = "resnet-gui"
APPLICATION = "resnet-gui"
DISPLAY_NAME = "ResNet GUI"
#: When set, the app prints ``first-paint <unix time>`` at its first paint and exits at once:
#: the hook of ``benchmarks/startup.py``.
STARTUP_PROBE_ENV = "RESNET_GUI_STARTUP_PROBE"


def configure_application(app: QApplication) -> None:
    """Names (QSettings' location, the desktop file) and the icon."""
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(DISPLAY_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("resnet-gui")
    app.setWindowIcon(app_icon())


def _report_first_paint() -> None:
    print(f"first-paint {time.time():.6f}", flush=True)
    os._exit(0)  # no clean-up: the benchmark only wants the time


def run_app(argv: Sequence[str]) -> int:
    """Open the main window with the images in ``argv`` (paths; options are ignored); the exit code."""
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "resnet-gui"])
    configure_application(app)  # type: ignore[arg-type]
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl+C in the terminal quits
    window = MainWindow(paths=[arg for arg in argv if arg and not arg.startswith("-")])
    if os.environ.get(STARTUP_PROBE_ENV):
        window.image_view.first_painted.connect(_report_first_paint)
    window.show()
    return app.exec()


def main() -> int:
    return run_app(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
