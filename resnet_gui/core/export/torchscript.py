"""A loaded model as TorchScript, with the export metadata in its ``_extra_files``.

``torch.jit.trace`` on the CPU copy (the ResNets have no data-dependent control flow, so the trace is
the whole model, and tracing works for any ``nn.Module`` where scripting needs annotated code). The
metadata is one JSON file, ``metadata.json``, in the archive's ``extra/`` folder::

    extra = {"metadata.json": ""}
    model = torch.jit.load("model.pt", _extra_files=extra)
    metadata = json.loads(extra["metadata.json"])
"""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from resnet_gui.core.atomic import atomic_path
from resnet_gui.core.errors import ModelMetadataError
from resnet_gui.core.export.errors import GraphExportError
from resnet_gui.core.export.metadata import OnnxModelInfo, parse_export_metadata
from resnet_gui.core.export.onnx_graph import cpu_copy, error_reason, example_input, metadata_of
from resnet_gui.core.text import printable_path

if TYPE_CHECKING:
    from resnet_gui.core.models import LoadedModel

__all__ = ["EXTRA_FILE", "export_torchscript", "read_torchscript_metadata"]

EXTRA_FILE = "metadata.json"


def export_torchscript(
    loaded: LoadedModel, out: Path, *, lock: threading.RLock | threading.Lock | None = None
) -> Path:
    """Write ``loaded.model`` traced as TorchScript atomically to ``out``, the metadata inside."""
    import torch

    model = cpu_copy(loaded, lock)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter(
                "ignore", FutureWarning
            )  # torch (2.14 here) warns TorchScript is deprecated
            traced = torch.jit.trace(model, example_input(loaded), check_trace=False)
    except Exception as error:  # tracing raises RuntimeError, TypeError, ... for what it cannot follow
        raise GraphExportError(
            f"The model '{loaded.name}' cannot be exported to TorchScript: tracing stopped with: "
            f"{error_reason(error)}"
        ) from error
    extra = {EXTRA_FILE: json.dumps(metadata_of(loaded), ensure_ascii=False)}
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(traced, str(tmp), _extra_files=extra)
    return Path(out)


def read_torchscript_metadata(path: Path) -> OnnxModelInfo:
    """Our metadata from a TorchScript file (read from the archive without loading the model)."""
    import zipfile

    shown = printable_path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if name.endswith(f"/extra/{EXTRA_FILE}")]
            if not names:
                raise ModelMetadataError(
                    f"it has no 'extra/{EXTRA_FILE}', so it was not exported by resnet-gui", shown
                )
            text = archive.read(names[0]).decode("utf-8")
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError):
        raise ModelMetadataError("it is not a TorchScript archive", shown) from None
    try:
        metadata = json.loads(text)
    except ValueError:
        raise ModelMetadataError(f"its '{EXTRA_FILE}' is not valid JSON", shown) from None
    if not isinstance(metadata, dict):
        raise ModelMetadataError(f"its '{EXTRA_FILE}' is not a set of named values", shown)
    return parse_export_metadata(metadata, shown)
