"""Where the project's real data sets are (hymenoptera…): for tests and benchmarks, not the app.

They live in ``shared/data/`` beside the checkout and are never copied into the repository. A
clone made elsewhere (``git clone . /tmp/fresh``, as a CI check does) finds them beside the
checkout it was cloned from; ``RESNET_GUI_SHARED_DATA`` names the folder outright.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA_ENV = "RESNET_GUI_SHARED_DATA"


def _origin_checkout() -> Path | None:
    """The local checkout this one was cloned from, if it was cloned from a folder."""
    try:
        url = subprocess.run(
            ["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(url.removeprefix("file://")) if url else None
    return path.resolve() if path is not None and path.is_dir() else None


def shared_data_dir() -> Path:
    """The first of: $RESNET_GUI_SHARED_DATA, ``../shared/data`` beside this checkout, beside its origin."""
    if os.environ.get(SHARED_DATA_ENV):
        return Path(os.environ[SHARED_DATA_ENV]).expanduser()
    beside = REPO.parent / "shared" / "data"
    if beside.is_dir():
        return beside
    origin = _origin_checkout()
    if origin is not None and (origin.parent / "shared" / "data").is_dir():
        return origin.parent / "shared" / "data"
    return beside  # missing: the tests that need it say where they looked


HYMENOPTERA = shared_data_dir() / "hymenoptera"
"""The ants-vs-bees set of PyTorch's transfer-learning tutorial (train 245, val 153 photos)."""
