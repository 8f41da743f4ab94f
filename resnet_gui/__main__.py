"""Entry point of ``resnet-gui`` and ``python -m resnet_gui``.

With a command (``classify``, ``models``, …) this is the CLI. Without one it opens the
desktop app when a display is available and the GUI is installed, else it runs the CLI's
default job (classify the sample images). The CLI and the GUI never import each other:
this launcher is the only place that knows both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def _display_available() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _wants_gui(argv: Sequence[str]) -> bool:
    """No arguments, or image paths only, on a machine with a display."""
    from resnet_gui.cli import COMMANDS

    if "--no-gui" in argv or not _display_available():
        return False
    return not argv or not (argv[0].startswith("-") or argv[0] in COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if _wants_gui(args):
        try:
            from resnet_gui.gui.app import run_app  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            return run_app(args)
    from resnet_gui.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
