"""Command-line options that several ``resnet-gui`` commands share, defined once.

Imported by :mod:`resnet_gui.cli` and :mod:`resnet_gui.cli_training` (which cli imports), so it
imports neither; like the rest of the parser it imports nothing heavy.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = [
    "MAX_BATCH_SIZE",
    "MAX_EXPLAIN_CLASSES",
    "add_backend_option",
    "add_image_options",
    "add_min_confidence_option",
    "add_model_options",
    "add_overwrite_option",
    "apply_image_options",
    "fraction",
    "megapixels",
    "number",
    "whole_number",
]

MAX_BATCH_SIZE = 1024
MAX_EXPLAIN_CLASSES = 20  # a picture per class: more is a typo, not a wish for 1000 files
MAX_TOP_K = 1000


# --- one type per kind of value: argparse calls them, so a bad value is refused with its range ---


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, not '{text}'")
        return value

    parse.__name__ = "whole number"
    return parse


def number(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite number in the range (``low_open``/``high_open``: that end excluded)."""
    if not low_open and not high_open:
        words = f"from {low:g} to {high:g}"
    else:
        words = (f"more than {low:g}" if low_open else f"at least {low:g}") + (
            f" and less than {high:g}" if high_open else f" and at most {high:g}"
        )

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            value = math.nan
        inside = (
            math.isfinite(value)
            and (value > low if low_open else value >= low)
            and (value < high if high_open else value <= high)
        )
        if not inside:
            raise argparse.ArgumentTypeError(f"must be a number {words}, not '{text}'")
        return value

    parse.__name__ = "number"
    return parse


def fraction(text: str) -> float:
    """An argparse type: a share or a probability, from 0 to 1."""
    return number(0.0, 1.0)(text)


MEGAPIXELS_LOW, MEGAPIXELS_HIGH = 0.01, 1_000_000.0


def megapixels(text: str) -> float:
    """An argparse type: 0 (no limit) or a size from 0.01 to a million megapixels."""
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if value == 0 or (math.isfinite(value) and MEGAPIXELS_LOW <= value <= MEGAPIXELS_HIGH):
        return value
    raise argparse.ArgumentTypeError(
        f"must be 0 (no limit) or a number of megapixels from {MEGAPIXELS_LOW:g} to {MEGAPIXELS_HIGH:,.0f}, "
        f"not '{text}'"
    )


def batch_size_option(default: int | None) -> dict[str, object]:
    """The keyword arguments of a ``--batch-size`` option (the same bounds everywhere)."""
    return {"type": whole_number(1, MAX_BATCH_SIZE), "default": default, "metavar": "N"}


def top_k_type(high: int = MAX_TOP_K) -> Callable[[str], int]:
    return whole_number(1, high)


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    """``--overwrite``: replace an existing output that is not a result of this command (never an input)."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output file even if it is not an earlier result of this command "
        "(an input of the same run is never overwritten)",
    )


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


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend``: what runs the model when classifying (the table of :mod:`resnet_gui.core.runtime`)."""
    from resnet_gui.core.runtime import BACKENDS, DEFAULT_BACKEND

    parser.add_argument(
        "--backend",
        choices=list(BACKENDS),
        default=DEFAULT_BACKEND,
        help="; ".join(f"{key}: {backend.description}" for key, backend in BACKENDS.items())
        + " (default: %(default)s)",
    )


def add_min_confidence_option(parser: argparse.ArgumentParser, what: str, after: str = "") -> None:
    """``--min-confidence P``: the "not sure" threshold (0-1) of ``classify`` and ``batch``; unset,
    the model's own (a fine-tuned bundle's), else none."""
    parser.add_argument(
        "--min-confidence",
        type=fraction,
        metavar="P",
        help=f'{what} "not sure" when its probability is below P (0-1){after} (default: the '
        "threshold a fine-tuned model stores, else none)",
    )


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """``--max-megapixels``: the size above which a photo is refused as a possible decompression bomb."""
    parser.add_argument(
        "--max-megapixels",
        type=megapixels,
        metavar="MP",
        help="open photos up to this size (default: Pillow's limit, about 89 MP; 0: no limit, only "
        "for files you trust)",
    )


def apply_image_options(args: argparse.Namespace) -> None:
    """Set the limit a command was given (images are opened by core, which reads it)."""
    limit = getattr(args, "max_megapixels", None)
    if limit is None:
        return
    from resnet_gui.core.images import set_max_image_pixels

    set_max_image_pixels(None if limit == 0 else max(1, int(limit * 1_000_000)))
