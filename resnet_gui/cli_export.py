"""``resnet-gui export``: the command-line face of core.export.

Wired into :mod:`resnet_gui.cli` with :func:`add_parsers` and :data:`HANDLERS`. Errors are
:class:`~resnet_gui.core.errors.ResNetGuiError` (printed as one sentence by the CLI's main); progress
goes to stderr, the result (the parity check, INT8's trade-off) to stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resnet_gui.cli_options import add_image_options, add_model_options, add_overwrite_option
from resnet_gui.cli_training import EXIT_CANCELLED, _ctrl_c_cancels, _Status
from resnet_gui.core.errors import Cancelled
from resnet_gui.core.export.catalog import DEFAULT_FORMAT, EXPORT_FORMATS, QUANTIZATIONS
from resnet_gui.core.text import printable

__all__ = ["HANDLERS", "add_parsers", "run_export"]


def add_parsers(commands: Any) -> None:
    """Add the ``export`` sub-command to ``commands`` (argparse sub-parsers)."""
    formats = "; ".join(f"{entry.key}: {entry.description}" for entry in EXPORT_FORMATS.values())
    export = commands.add_parser(
        "export",
        help="export a model to ONNX or TorchScript, checked against the original",
        description="Export a model (a registry model, the imported Keras ResNet-50 or a fine-tuned "
        "bundle) to a file other programs run, with its class names and preprocessing inside. Every "
        "export is checked: the original and the exported file classify the same photos, and an "
        "export that disagrees beyond the tolerance is kept as FILE.FAILED-PARITY, never at --out, "
        "with a non-zero exit code. The export runs on the CPU.",
    )
    add_model_options(export, "the model to export")
    add_image_options(export)
    export.add_argument(
        "--format",
        choices=tuple(EXPORT_FORMATS),
        default=DEFAULT_FORMAT,
        help=f"default {DEFAULT_FORMAT}; {formats}",
    )
    export.add_argument(
        "--quantize",
        choices=tuple(QUANTIZATIONS),
        help="; ".join(f"{key}: {text} (onnx only)" for key, text in QUANTIZATIONS.items()),
    )
    export.add_argument(
        "--calibrate",
        metavar="DIR",
        type=Path,
        help="photos to calibrate INT8 on, like the ones the model will see (default: the training photos "
        "of a fine-tuned model, with --data)",
    )
    export.add_argument(
        "--check-images",
        metavar="DIR",
        type=Path,
        help="photos for the parity check (default: a fine-tuned model's validation photos, with --data; "
        "else the sample photos)",
    )
    export.add_argument(
        "--data",
        metavar="DIR",
        type=Path,
        help="the folder a fine-tuned model was trained on: its recorded split gives the check photos "
        "(validation) and the calibration photos (training)",
    )
    export.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="the file to write (the format's suffix is added if it has none)",
    )
    add_overwrite_option(export)


def run_export(args: argparse.Namespace) -> int:
    """Export, check, and print the result; the exit code says whether the export passed."""
    from resnet_gui.core.download import terminal_progress
    from resnet_gui.core.export.pipeline import ExportProgress, ExportResult, iter_export
    from resnet_gui.core.models import load_model

    loaded = load_model(
        args.model,
        weights_file=args.weights,
        progress=terminal_progress(),
        allow_download=not args.no_download,
    )
    status = _Status()

    def say(text: str) -> None:
        status.clear()
        print(text, file=sys.stderr, flush=True)

    result: ExportResult | None = None
    with _ctrl_c_cancels(say) as cancel:
        try:
            for item in iter_export(
                loaded,
                args.out,
                format=args.format,
                quantize=args.quantize,
                check_images=args.check_images,
                calibrate=args.calibrate,
                data_root=args.data,
                overwrite=args.overwrite,
                cancel=cancel,
            ):
                if isinstance(item, ExportProgress):
                    count = f" {item.done}/{item.total}" if item.total > 1 else ""
                    status.show(f"{item.title}{count}…", force=item.done == 0)
                else:
                    result = item
        except Cancelled as error:
            status.clear()
            print(printable(str(error)), file=sys.stderr)
            return EXIT_CANCELLED
        finally:
            status.clear()
    assert result is not None
    for line in result.sentences():
        print(printable(line))
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {"export": run_export}
