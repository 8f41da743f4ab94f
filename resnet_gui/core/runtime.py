"""The runtimes that can classify, as one torch-free table, and the one way to get a classifier.

:data:`BACKENDS` feeds the CLI's ``--backend`` choices and help, the app's picker and the
parametrised tests. ``torch`` runs the PyTorch model; ``onnxruntime`` runs the same network,
exported once to ONNX (cached in the app's data folder, keyed by a hash of the weights), through
ONNX Runtime on the CPU, about twice as fast on a small CPU (``benchmarks/runtime.py``); ``auto``
takes onnxruntime where it can (installed, the model on the CPU, the export works), else torch.

Explanations need gradients, so they always run on PyTorch: a classifier made here from a PyTorch
model keeps that model (``classifier.model``) and its lock, whichever backend classifies.

Importing this module imports neither torch nor onnxruntime (``resnet-gui --help`` stays fast);
:mod:`resnet_gui.core.runtime_ort` holds the onnxruntime-backed classifiers.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from resnet_gui.core import paths
from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.export.errors import EXPORT_EXTRA_HINT

if TYPE_CHECKING:
    import torch

    from resnet_gui.core.engine import ImageClassifier
    from resnet_gui.core.models import LoadedModel

__all__ = [
    "BACKENDS",
    "BACKEND_KEYS",
    "DEFAULT_BACKEND",
    "INSTALL_HINT",
    "ONNX_SUFFIX",
    "Backend",
    "BackendError",
    "BackendKey",
    "cache_dir",
    "is_onnx_file",
    "load_classifier",
    "make_classifier",
    "onnxruntime_available",
    "open_onnx_classifier",
]

BackendKey = Literal["auto", "torch", "onnxruntime"]


@dataclass(frozen=True)
class Backend:
    """A runtime as people read it: ``name`` and ``description`` for the picker and ``--help``."""

    key: BackendKey
    name: str
    description: str


BACKENDS: dict[str, Backend] = {
    backend.key: backend
    for backend in (
        Backend(
            "auto",
            "Automatic (recommended)",
            "The fastest way this computer has: ONNX Runtime on the processor when it is installed, "
            "else PyTorch. Same results either way.",
        ),
        Backend(
            "torch",
            "PyTorch",
            "The model as it was trained. Works everywhere, on graphics cards too.",
        ),
        Backend(
            "onnxruntime",
            "ONNX Runtime (fast on the processor)",
            "The same model, converted once and run by ONNX Runtime: about twice as fast on a "
            "small processor, same results.",
        ),
    )
}
"""Every backend, ``auto`` first: the order of the picker and of ``--backend``'s choices."""

BACKEND_KEYS: tuple[str, ...] = tuple(BACKENDS)
DEFAULT_BACKEND: BackendKey = "auto"
ONNX_SUFFIX = ".onnx"
INSTALL_HINT = EXPORT_EXTRA_HINT


class BackendError(ResNetGuiError):
    """A backend that cannot run here (not installed, or not on this device) or an unknown one."""

    exit_code = 2


def onnxruntime_available() -> bool:
    """Whether the onnxruntime package is installed (without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def require_onnxruntime() -> None:
    """Raise :class:`BackendError` saying how to install onnxruntime when it is missing."""
    if not onnxruntime_available():
        raise BackendError(
            f"The ONNX Runtime backend needs the onnxruntime package, which is not installed: {INSTALL_HINT}"
        )


def check_backend(backend: str) -> BackendKey:
    """The key of ``backend``, or :class:`BackendError` listing the known ones."""
    if backend not in BACKENDS:
        raise BackendError(f"Unknown backend '{backend}'. Choose one of: {', '.join(BACKEND_KEYS)}.")
    return BACKENDS[backend].key


def is_onnx_file(reference: str | Path | None) -> bool:
    """A ``--model``/``--weights`` value naming an ONNX file (by its suffix)."""
    return reference is not None and str(reference).lower().endswith(ONNX_SUFFIX)


def cache_dir() -> Path:
    """Where exported graphs are kept (in the app's data folder; not created here)."""
    return paths.data_dir() / "runtime-cache"


def make_classifier(
    loaded: LoadedModel,
    backend: str = DEFAULT_BACKEND,
    device: str | torch.device | None = "auto",
    *,
    cache: Path | None = None,
    on_export: Callable[[str], None] | None = None,
) -> ImageClassifier:
    """A classifier for a PyTorch model, run by ``backend``.

    ``torch``: a :class:`~resnet_gui.core.engine.Classifier` on ``device``. ``onnxruntime``: an
    :class:`~resnet_gui.core.runtime_ort.OrtClassifier` (a ``Classifier`` whose forward passes go
    through ONNX Runtime on the CPU; its PyTorch model stays for explanations); the graph is exported
    into ``cache`` (default :func:`cache_dir`) on the first use of these weights, ``on_export`` is
    told so in one sentence first. ``auto``: onnxruntime when installed, the device is the CPU and the
    export works, else torch (``classifier.fallback_reason`` then says why).

    Raises :class:`BackendError` for onnxruntime asked for explicitly where it cannot run.
    """
    from resnet_gui.core.engine import Classifier, select_device

    key = check_backend(backend)
    target = device if not isinstance(device, str | None) else select_device(device)
    if key == "torch":
        return Classifier(loaded, target)
    reason = None
    if not onnxruntime_available():
        reason = "onnxruntime is not installed"
    elif target.type != "cpu":
        reason = f"the model runs on {target}, and the ONNX Runtime backend runs on the processor"
    if reason is None:
        from resnet_gui.core.runtime_ort import OrtClassifier

        try:
            return OrtClassifier(loaded, cache=cache or cache_dir(), on_export=on_export)
        except ResNetGuiError as error:
            if key == "onnxruntime":
                raise
            reason = str(error)
    if key == "onnxruntime":
        if not onnxruntime_available():
            require_onnxruntime()
        raise BackendError(f"The ONNX Runtime backend cannot run this model: {reason}.")
    classifier = Classifier(loaded, target)
    classifier.fallback_reason = reason
    return classifier


def open_onnx_classifier(path: str | Path, backend: str = DEFAULT_BACKEND) -> ImageClassifier:
    """A classifier for an ``.onnx`` file exported by this app (its metadata says how to feed it).

    It runs on ONNX Runtime only: ``backend`` ``torch`` is refused, a file without our metadata too
    (one sentence naming what is missing).
    """
    if check_backend(backend) == "torch":
        raise BackendError(
            f"'{path}' is an ONNX file, which runs on ONNX Runtime: use the backend auto or onnxruntime."
        )
    require_onnxruntime()
    from resnet_gui.core.runtime_ort import OnnxFileClassifier

    return OnnxFileClassifier(Path(path))


def load_classifier(
    model: str | None = None,
    *,
    weights_file: str | Path | None = None,
    backend: str = DEFAULT_BACKEND,
    device: str | torch.device | None = "auto",
    on_export: Callable[[str], None] | None = None,
    **load_options: Any,
) -> ImageClassifier:
    """Load a model (as :func:`~resnet_gui.core.models.load_model` does, ``.onnx`` files too) and
    make its classifier for ``backend`` (:func:`make_classifier`, :func:`open_onnx_classifier`)."""
    onnx_file = weights_file if is_onnx_file(weights_file) else model if is_onnx_file(model) else None
    if onnx_file is not None:
        if device not in (None, "auto", "cpu") and str(device) != "cpu":
            raise BackendError(f"An ONNX file runs on the processor here, not on '{device}'.")
        return open_onnx_classifier(onnx_file, backend)
    from resnet_gui.core.models import load_model

    loaded = load_model(model, weights_file=weights_file, **load_options)
    return make_classifier(loaded, backend, device, on_export=on_export)
