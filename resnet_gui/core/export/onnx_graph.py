"""A loaded model as an ONNX graph with our metadata, and that metadata read back.

Exporter: torch's own, the ``torch.export``-based one (``dynamo=True``). Measured here (torch 2.14)
on torchvision's ResNet-50 and on the Keras-imported ResNet-50 v1 (:func:`build_resnet50_v1`), both
exporters give graphs onnxruntime runs with the same logits; the TorchScript-based one is deprecated
since torch 2.9 (it warns on every call, and "will be removed"), while the dynamo exporter is the
default, gives a dynamic batch dimension from ``dynamic_shapes`` and optimises the graph. It needs
``onnxscript`` (part of the ``export`` extra). onnx and onnxscript are imported only when used, so the
app works without them.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_gui.core.atomic import atomic_path
from resnet_gui.core.errors import ModelMetadataError
from resnet_gui.core.export.errors import ExportExtraMissingError, GraphExportError
from resnet_gui.core.export.metadata import (
    INPUT_NAME,
    OUTPUT_NAME,
    OnnxModelInfo,
    export_metadata,
    parse_export_metadata,
)
from resnet_gui.core.text import printable_path

if TYPE_CHECKING:
    import torch

    from resnet_gui.core.models import LoadedModel

__all__ = [
    "ONNX_OPSET",
    "OnnxModelInfo",
    "cpu_copy",
    "error_reason",
    "export_onnx_graph",
    "metadata_of",
    "read_onnx_metadata",
    "require_export_extra",
]

#: torch's default opset (20); onnxruntime 1.32 runs up to 23 and its quantization tools take it.
ONNX_OPSET = 20
#: The batch size of the example input the graph is traced with (the batch dimension stays dynamic).
_EXAMPLE_BATCH = 2


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_reason(error: BaseException) -> str:
    """The first line of the innermost cause of ``error``, colour codes removed (for a one-sentence message).

    torch's exporter wraps the real reason ("Could not guard on data-dependent expression ...") in
    an error about its own steps; the innermost one says what in the model is the problem.
    """
    innermost, seen = error, {id(error)}
    while True:
        cause = innermost.__cause__ or innermost.__context__
        if cause is None or id(cause) in seen:
            break
        seen.add(id(cause))
        innermost = cause
    text = _ANSI.sub("", str(innermost)).strip()
    line = text.splitlines()[0].strip() if text else type(innermost).__name__
    line = line if len(line) <= 300 else line[:297] + "..."
    return line.rstrip(".") + "."


def require_export_extra(*modules: str) -> None:
    """Import each of ``modules`` (default: onnx, onnxruntime, onnxscript) or say how to install them."""
    import importlib

    for module in modules or ("onnx", "onnxruntime", "onnxscript"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise ExportExtraMissingError(module) from None


def metadata_of(loaded: LoadedModel, quantization: str = "none") -> dict[str, str]:
    """The export metadata of a loaded model (see :mod:`resnet_gui.core.export.metadata`)."""
    return export_metadata(
        name=loaded.name,
        architecture=loaded.architecture,
        categories=loaded.categories,
        preprocessing=loaded.preprocessing,
        quantization=quantization,
    )


@contextlib.contextmanager
def _held(lock: threading.RLock | threading.Lock | None) -> Iterator[None]:
    if lock is None:
        yield
    else:
        with lock:
            yield


def cpu_copy(loaded: LoadedModel, lock: threading.RLock | threading.Lock | None = None) -> torch.nn.Module:
    """A copy of ``loaded.model`` on the CPU, in eval mode, fp32, contiguous memory format.

    The caller's model is never changed or moved (a :class:`~resnet_gui.core.engine.Classifier` may
    hold it on a GPU, as channels_last); pass the classifier's ``lock`` so the copy is not taken
    while another thread runs it.
    """
    import torch

    with _held(lock):
        model = copy.deepcopy(loaded.model)
    model = model.to(device="cpu", dtype=torch.float32).to(memory_format=torch.contiguous_format)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.eval()


def example_input(loaded: LoadedModel) -> torch.Tensor:
    """A batch the graph is traced with: the model's input size, fixed content (values do not matter)."""
    import torch

    side = loaded.preprocessing.crop_size
    generator = torch.Generator().manual_seed(0)
    return torch.randn(_EXAMPLE_BATCH, 3, side, side, generator=generator)


def export_onnx_graph(
    loaded: LoadedModel, out: Path, *, lock: threading.RLock | threading.Lock | None = None
) -> Path:
    """Write loaded.model as ONNX (input name "input", NCHW float32, dynamic batch dim; output "logits")
    atomically to out, with our metadata in metadata_props; validated by onnx.checker.

    Raises :class:`ExportExtraMissingError` without onnx/onnxscript, :class:`GraphExportError` when
    torch's exporter or the checker refuses the model, :class:`~resnet_gui.core.errors.OutputError`
    when ``out`` cannot be written (nothing is left there then).
    """
    require_export_extra("onnx", "onnxscript")
    import onnx
    import torch

    out = Path(out)
    model = cpu_copy(loaded, lock)
    batch = torch.export.Dim("batch", min=1, max=4096)
    # The exporter prints its steps and, on failure, the whole graph: kept off the user's terminal
    # (the redirection is process-wide for those seconds; the app's other threads print nothing).
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            program: Any = torch.onnx.export(
                model,
                (example_input(loaded),),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                opset_version=ONNX_OPSET,
                external_data=False,
                optimize=True,
                verbose=False,
            )
        proto = program.model_proto
    except Exception as error:  # the exporter raises many types (torch._dynamo, onnxscript, export)
        raise GraphExportError(
            f"The model '{loaded.name}' cannot be exported to ONNX: torch's exporter stopped with: "
            f"{error_reason(error)}"
        ) from error
    del proto.metadata_props[:]
    for key, value in metadata_of(loaded).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "resnet-gui"
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        raise GraphExportError(
            f"The model '{loaded.name}' was exported, but the ONNX checker refuses the graph: "
            f"{error_reason(error)}"
        ) from error
    with atomic_path(out) as tmp:
        onnx.save_model(proto, str(tmp))
    return out


def read_onnx_metadata(path: Path) -> OnnxModelInfo:
    """Our metadata from an .onnx file; raises a typed ResNetGuiError subclass (ModelMetadataError)
    saying exactly which key is missing/bad when the file is not ours (or not ONNX at all).

    Reads the graph's description only as far as needed (no weights are run); the class names are
    checked against the width of the graph's output when it is fixed.
    """
    require_export_extra("onnx")
    import onnx

    path = Path(path)
    shown = printable_path(path)
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except FileNotFoundError:
        raise ModelMetadataError("the file does not exist", shown) from None
    except Exception:  # protobuf's DecodeError, OSError, ...: not an ONNX file
        raise ModelMetadataError(
            "it is not an ONNX model (its contents cannot be read as one)", shown
        ) from None
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    return parse_export_metadata(metadata, shown, num_classes=_output_width(proto))


def _output_width(proto: Any) -> int | None:
    """The fixed number of classes of the graph's first output, if its shape says so."""
    try:
        dims = proto.graph.output[0].type.tensor_type.shape.dim
    except (IndexError, AttributeError):
        return None
    if len(dims) == 2 and dims[1].HasField("dim_value"):
        return int(dims[1].dim_value)
    return None
