"""Where tests save their screenshots: a temporary folder, unless asked to refresh the README's.

Tests never write into tracked files by default; ``RESNET_GUI_UPDATE_SCREENSHOTS=1`` (an explicit
choice, e.g. ``make test PYTEST_ARGS="-k screenshots"`` with it set) writes ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UPDATE_ENV = "RESNET_GUI_UPDATE_SCREENSHOTS"


def screenshot_folder() -> Path:
    """``docs/screenshots`` when refreshing them was asked for, else a folder under the temp dir."""
    if os.environ.get(UPDATE_ENV) == "1":
        return REPO / "docs" / "screenshots"
    folder = Path(tempfile.gettempdir()) / "resnet-gui-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
