"""Start-up: the window appears before torch is imported, through the real launcher."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        DISPLAY=env.get("DISPLAY") or ":resnet-gui-test",  # the launcher opens the app only with a display
        RESNET_GUI_SETTINGS=str(tmp_path / "settings.ini"),
        RESNET_GUI_STARTUP_PROBE="1",
    )
    return env


def test_importing_the_app_does_not_import_torch() -> None:
    code = (
        "import sys, resnet_gui.gui.app, resnet_gui.gui.main_window;"
        "heavy = [m for m in ('torch', 'torchvision', 'captum', 'matplotlib') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, f"imported at start-up: {result.stdout}{result.stderr}"


def test_the_launcher_opens_the_window_and_it_paints(tmp_path: Path) -> None:
    """``python -m resnet_gui photo.jpg`` with a display: the window's first paint comes quickly."""
    began = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "resnet_gui", str(REPO / "assets" / "samples" / "coffee.jpg")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(tmp_path),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("first-paint ")]
    painted = float(line.split()[1])
    assert 0 < painted - began < 30
