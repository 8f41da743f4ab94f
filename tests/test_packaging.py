"""What a user installs: the wheel carries the app icons, and the app finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_the_app_icon_is_found_inside_the_package(qtbot) -> None:
    from resnet_gui.gui.qtutil import ICON_FOLDER, app_icon

    assert ICON_FOLDER.is_relative_to(REPO / "resnet_gui")
    icon = app_icon()
    assert not icon.isNull()
    for side in (16, 48, 256):
        image = icon.pixmap(side, side).toImage()
        assert image.width() == side
        opaque = sum(image.pixelColor(x, y).alpha() > 0 for x in range(side) for y in range(side))
        assert opaque > side * side // 4, "an empty icon"


@pytest.mark.slow
def test_the_wheel_carries_the_icons(tmp_path: Path) -> None:
    """Built without isolation (with the venv's setuptools) so it needs no network."""
    pytest.importorskip("setuptools")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("resnet_gui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"resnet_gui/gui/icons/resnet-gui-{size}.png" for size in (16, 32, 48, 64, 128, 256, 512)}
    assert expected | {"resnet_gui/gui/icons/resnet-gui.svg"} <= names
    assert not any(name.startswith("tests/") for name in names)
