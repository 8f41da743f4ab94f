"""The typed errors of exporting, torch-free (the CLI and the GUI catch them without importing torch)."""

from __future__ import annotations

from pathlib import Path

from resnet_gui.core.errors import ResNetGuiError

__all__ = [
    "EXPORT_EXTRA_HINT",
    "CalibrationError",
    "ExportError",
    "ExportExtraMissingError",
    "GraphExportError",
    "ParityError",
]

EXPORT_EXTRA_HINT = "pip install 'resnet-gui[export]'"


class ExportError(ResNetGuiError):
    """An export that cannot be done or did not pass its checks; nothing is left at the requested path."""

    exit_code = 6


class ExportExtraMissingError(ExportError):
    """onnx, onnxruntime or onnxscript is not installed (the optional ``export`` extra)."""

    def __init__(self, module: str = "") -> None:
        self.module = module
        missing = f" ({module} is not installed)" if module else ""
        super().__init__(f"Exporting needs the optional export extra{missing}: {EXPORT_EXTRA_HINT}.")


class GraphExportError(ExportError):
    """torch's exporter could not turn the model into a graph of the chosen format."""


class CalibrationError(ExportError):
    """INT8 quantization without photos to calibrate on."""


class ParityError(ExportError):
    """The exported file disagrees with the model it came from beyond the stated tolerance.

    ``kept`` is where the failed file was left for inspection (its name says it failed), never the
    path the user asked for.
    """

    def __init__(self, message: str, *, kept: Path | None = None) -> None:
        super().__init__(message)
        self.kept = kept
