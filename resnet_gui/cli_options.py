"""Command-line options that several ``resnet-gui`` commands share, defined once.

Imported by :mod:`resnet_gui.cli` and :mod:`resnet_gui.cli_training` (which cli imports), so it
imports neither; like the rest of the parser it imports nothing heavy.
"""

from __future__ import annotations

import argparse

__all__ = ["add_image_options", "add_model_options", "apply_image_options"]


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


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """``--max-megapixels``: the size above which a photo is refused as a possible decompression bomb."""
    parser.add_argument(
        "--max-megapixels",
        type=float,
        metavar="MP",
        help="open photos up to this size (default: Pillow's limit, about 89 MP; 0: no limit, only "
        "for files you trust)",
    )


def apply_image_options(args: argparse.Namespace) -> None:
    """Set the limit a command was given (images are opened by core, which reads it)."""
    megapixels = getattr(args, "max_megapixels", None)
    if megapixels is None:
        return
    if megapixels < 0:
        raise argparse.ArgumentTypeError("--max-megapixels cannot be negative")
    from resnet_gui.core.images import set_max_image_pixels

    set_max_image_pixels(None if megapixels == 0 else int(megapixels * 1_000_000))
