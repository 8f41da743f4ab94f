"""Models out: export to ONNX (optionally INT8) or TorchScript, each checked against the original.

This package's top level stays torch-free (the formats table and the errors, for the CLI's parser
and for front ends); the work is in its modules, imported when used:

* :mod:`~resnet_gui.core.export.onnx_graph`: :func:`export_onnx_graph`, :func:`read_onnx_metadata`
* :mod:`~resnet_gui.core.export.torchscript`: :func:`export_torchscript`
* :mod:`~resnet_gui.core.export.parity`: the parity check (original vs exported, on real photos)
* :mod:`~resnet_gui.core.export.quantize`: INT8 static quantization through onnxruntime
* :mod:`~resnet_gui.core.export.pipeline`: :func:`iter_export` (a generator of progress, for the GUI)
  and :func:`export_model` (for the CLI)
"""

from resnet_gui.core.export.catalog import (
    DEFAULT_FORMAT,
    EXPORT_FORMATS,
    FORMAT_KEYS,
    QUANTIZATIONS,
    ExportFormat,
    format_for,
)
from resnet_gui.core.export.errors import (
    CalibrationError,
    ExportError,
    ExportExtraMissingError,
    GraphExportError,
    ParityError,
)

__all__ = [
    "DEFAULT_FORMAT",
    "EXPORT_FORMATS",
    "FORMAT_KEYS",
    "QUANTIZATIONS",
    "CalibrationError",
    "ExportError",
    "ExportExtraMissingError",
    "ExportFormat",
    "GraphExportError",
    "ParityError",
    "format_for",
]
