"""The export formats as one torch-free table: ``resnet-gui export --format`` choices and help, menus
and the parametrised tests all read :data:`EXPORT_FORMATS` (in the style of :mod:`resnet_gui.core.modes`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_FORMAT", "EXPORT_FORMATS", "FORMAT_KEYS", "QUANTIZATIONS", "ExportFormat", "format_for"]


@dataclass(frozen=True)
class ExportFormat:
    """A file format a model can be exported to.

    ``runtime`` is what runs the file (named to people and used by the parity check);
    ``quantizations`` are the ``--quantize`` options the format offers.
    """

    key: str
    display_name: str
    suffix: str
    runtime: str
    description: str
    quantizations: tuple[str, ...] = ()


EXPORT_FORMATS: dict[str, ExportFormat] = {
    entry.key: entry
    for entry in (
        ExportFormat(
            "onnx",
            "ONNX",
            ".onnx",
            "onnxruntime",
            "runs without PyTorch: onnxruntime on servers, phones (onnxruntime-mobile) and web pages "
            "(onnxruntime-web)",
            quantizations=("int8",),
        ),
        ExportFormat(
            "torchscript",
            "TorchScript",
            ".pt",
            "torch",
            "runs in PyTorch without this app's code, from Python or C++ (libtorch)",
        ),
    )
}
"""Every export format, most portable first: the order of menus and of ``--format``'s choices."""

FORMAT_KEYS: tuple[str, ...] = tuple(EXPORT_FORMATS)
DEFAULT_FORMAT = "onnx"

QUANTIZATIONS: dict[str, str] = {
    "int8": "8-bit integer weights and activations, calibrated on your photos: about 4x smaller and "
    "faster on a CPU, slightly less exact",
}
"""``--quantize`` choices, with what they mean for people."""


def format_for(key: str) -> ExportFormat:
    """The format named ``key`` (case-insensitive); ``KeyError`` for an unknown one."""
    return EXPORT_FORMATS[key.lower()]
