"""Where the app keeps its files.

* The app's data folder holds imported weights and fine-tuned bundles. It is
  ``$RESNET_GUI_DATA_DIR`` if set, else ``$XDG_DATA_HOME/resnet-gui`` (Linux),
  ``~/Library/Application Support/resnet-gui`` (macOS) or ``%APPDATA%/resnet-gui``.
* Downloaded torchvision weights live where torchvision itself caches them
  (``$TORCH_HOME/hub/checkpoints``), so a file downloaded by either is found by both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "resnet-gui"


def data_dir() -> Path:
    """The app's data folder (not created here)."""
    override = os.environ.get("RESNET_GUI_DATA_DIR")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / APP_NAME


def imported_weights_dir() -> Path:
    """Folder of weights converted from other frameworks (e.g. Keras)."""
    return data_dir() / "weights"


def torch_home() -> Path:
    """torch's cache root, resolved the way ``torch.hub`` resolves it, without importing torch."""
    env = os.environ.get("TORCH_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    return Path(xdg).expanduser() / "torch"


def checkpoints_dir() -> Path:
    """Where torchvision's downloaded weights are cached."""
    return torch_home() / "hub" / "checkpoints"


def resolved_path(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute, links resolved where possible: the key under which the app records a
    user's folder or photo (a loop of links or an unreadable parent falls back to the absolute path)."""
    path = Path(path)
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError):
        return path.expanduser().absolute()
