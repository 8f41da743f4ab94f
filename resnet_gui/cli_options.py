"""Command-line options that several ``resnet-gui`` commands share, defined once.

Imported by :mod:`resnet_gui.cli` and :mod:`resnet_gui.cli_training` (which cli imports), so it
imports neither; like the rest of the parser it imports nothing heavy.
"""

from __future__ import annotations

import argparse

__all__ = ["add_model_options"]


def add_model_options(parser: argparse.ArgumentParser, what: str | None = None) -> None:
    """``--model``, ``--weights``, ``--device`` and ``--no-download``; ``what`` names the model's role."""
    parser.add_argument(
        "--model",
        metavar="NAME[:WEIGHTS]|FILE",
        help=(f"{what}: " if what else "")
        + "a model of `resnet-gui models`, e.g. resnet50 or resnet50:IMAGENET1K_V1, or a weights "
        "file/bundle (default: ResNet-50 V2 if cached, else the imported Keras ResNet-50)",
    )
    parser.add_argument("--weights", metavar="FILE", help="a local .pth/.pt/.safetensors weights file")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, mps")
    parser.add_argument(
        "--no-download", action="store_true", help="never download weights; fail if they are not cached"
    )
