"""Classifiers whose forward passes run on ONNX Runtime (CPU), and the cache of exported graphs.

* :class:`OrtClassifier`: a PyTorch :class:`~resnet_gui.core.engine.Classifier` whose
  :meth:`probabilities` goes through ONNX Runtime. The PyTorch model stays loaded (explanations
  need gradients) and one lock guards both.
* :class:`OnnxFileClassifier`: an ``.onnx`` file this app exported, read with its metadata
  (preprocessing, class names); it can only classify.

The graph of a PyTorch model is exported once into the cache folder
(:func:`resnet_gui.core.runtime.cache_dir`), under a key made of a hash of the weights file and
everything else the graph depends on (the architecture, the exporter's opset, torch's version).
The second start finds it; a damaged cache file is exported again.

Import it only when onnxruntime is wanted: it imports torch, and onnxruntime on first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from resnet_gui.core.batch.pipeline import _usable_cpus
from resnet_gui.core.engine import Classifier, ImageClassifier
from resnet_gui.core.errors import ResNetGuiError, WeightsError
from resnet_gui.core.models import LoadedModel
from resnet_gui.core.preprocessing import Preprocessing

if TYPE_CHECKING:
    import onnxruntime

__all__ = [
    "CACHE_FORMAT",
    "OnnxFileClassifier",
    "OrtClassifier",
    "OrtSession",
    "cache_key",
    "open_cached_session",
    "prune_cache",
    "session_options",
    "weights_digest",
]

CACHE_FORMAT = 1
"""Bumped when what a cached graph holds changes in a way its key would not show."""
MAX_CACHED_GRAPHS = 8
"""Graphs kept in the cache (a ResNet-50's is about 100 MB); the least recently used go first."""


def session_options(threads: int | None = None) -> onnxruntime.SessionOptions:
    """ONNX Runtime options for this CPU: one intra-op thread per usable core (measured best on
    the 2-core machine, ``benchmarks/runtime.py``), sequential execution, every graph optimisation."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or _usable_cpus()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no warnings on the user's terminal
    return options


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32, stable for large logits."""
    logits = logits.astype(np.float32, copy=False)
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


class OrtSession:
    """An ONNX Runtime session on the CPU over a graph with one NCHW float32 input.

    Not locked: the classifier that owns it holds its model's lock around :meth:`probabilities`.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime

        self.path = path
        self.threads = threads or _usable_cpus()
        self.session = onnxruntime.InferenceSession(
            str(path), sess_options=session_options(self.threads), providers=["CPUExecutionProvider"]
        )
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise WeightsError(f"The ONNX file '{path}' does not have one input and an output.")
        self.input_name = inputs[0].name
        shape = outputs[0].shape
        self.num_classes = shape[-1] if shape and isinstance(shape[-1], int) else None

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """The graph's raw scores (N, classes) for a prepared NCHW float32 batch."""
        feed = {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}
        (logits,) = self.session.run(None, feed)[:1]
        return np.asarray(logits, dtype=np.float32)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Softmax probabilities (N, classes) for a prepared NCHW float32 batch (no calibration)."""
        return softmax(self.logits(batch))


def weights_digest(loaded: LoadedModel) -> str:
    """SHA-256 of the weights file the model was read from, else of its state dict's tensors."""
    digest = hashlib.sha256()
    if loaded.source is not None and loaded.source.is_file():
        with loaded.source.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
    for name, tensor in loaded.model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cache_key(loaded: LoadedModel) -> str:
    """The cache file's name (without suffix): changes with what the graph is made of (the weights,
    the architecture, the exporter's opset, torch's version), not with names: the classifier takes
    its class names and preprocessing from the loaded model, never from the cached graph."""
    from resnet_gui.core.export.onnx_graph import ONNX_OPSET

    parts: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "opset": ONNX_OPSET,
        "torch": torch.__version__,
        "architecture": loaded.architecture,
        "weights": weights_digest(loaded),
    }
    text = json.dumps(parts, sort_keys=True)
    return f"{loaded.architecture}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def _open_cached(path: Path, num_classes: int, threads: int | None) -> OrtSession | None:
    """The session of a cached graph, or None when it is missing or unusable (damaged, wrong size)."""
    if not path.is_file():
        return None
    try:
        session = OrtSession(path, threads)
    except Exception:  # a damaged or truncated cache file: ONNX Runtime's errors vary by version
        return None
    if session.num_classes not in (None, num_classes):
        return None
    return session


def open_cached_session(
    loaded: LoadedModel,
    folder: Path,
    *,
    on_export: Callable[[str], None] | None = None,
    threads: int | None = None,
    lock: threading.RLock | None = None,
) -> tuple[OrtSession, bool]:
    """The ONNX Runtime session of ``loaded``'s cached graph, exporting it first when missing or
    damaged; and whether the cache had it. The export is written atomically (a crash leaves no
    half-written graph to be found next time); ``lock`` is the model's, held while it is copied."""
    from resnet_gui.core.export.onnx_graph import export_onnx_graph

    path = folder / f"{cache_key(loaded)}.onnx"
    session = _open_cached(path, len(loaded.categories), threads)
    if session is not None:
        with contextlib.suppress(OSError):
            os.utime(path)  # used now: the last to be pruned
        return session, True
    if on_export is not None:
        on_export(f"Preparing the fast ONNX Runtime version of {loaded.name} (once for these weights)…")
    export_onnx_graph(loaded, path, lock=lock)
    prune_cache(folder, keep=path)
    try:
        return OrtSession(path, threads), False
    except ResNetGuiError:
        raise
    except Exception as error:
        raise WeightsError(f"ONNX Runtime cannot run the exported graph of {loaded.name}: {error}") from None


def prune_cache(folder: Path, keep: Path, limit: int = MAX_CACHED_GRAPHS) -> None:
    """Remove the least recently used graphs beyond ``limit`` (never ``keep``); errors are ignored
    (another process may be pruning too)."""
    graphs = []
    for path in folder.glob("*.onnx"):
        with contextlib.suppress(OSError):
            graphs.append((path.stat().st_mtime, path))
    graphs.sort(reverse=True)
    for _, path in graphs[limit:]:
        if path != keep:
            with contextlib.suppress(OSError):
                path.unlink()


class _RunsOnOrt:
    """What both classifiers below share: forward passes on their session, under their lock."""

    backend = "onnxruntime"
    session: OrtSession
    lock: threading.RLock

    def compute_threads(self) -> int:
        return self.session.threads

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            return self.session.logits(batch)


class OrtClassifier(_RunsOnOrt, Classifier):
    """A PyTorch model on the CPU whose classification runs on ONNX Runtime.

    Everything but :meth:`probabilities` is the :class:`Classifier`'s: ``model`` (for explanations
    and training), ``lock`` (held around ONNX Runtime's passes too), ``device`` (the CPU).
    ``graph_path`` is the cached graph; ``cache_hit`` says whether this start found it.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        cache: Path,
        on_export: Callable[[str], None] | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__(loaded, torch.device("cpu"))
        self.session, self.cache_hit = open_cached_session(
            loaded, cache, on_export=on_export, threads=threads, lock=self.lock
        )
        self.graph_path = self.session.path


class OnnxFileClassifier(_RunsOnOrt, ImageClassifier):
    """An ``.onnx`` file exported by this app, classifying on ONNX Runtime (CPU). No PyTorch model:
    it cannot explain or be fine-tuned. ``info`` is what its metadata says."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from resnet_gui.core.export.onnx_graph import read_onnx_metadata

        self.path = path
        self.info = read_onnx_metadata(path)
        try:
            self.session = OrtSession(path, threads)
        except ResNetGuiError:
            raise
        except Exception as error:
            raise WeightsError(f"ONNX Runtime cannot run the model file '{path}': {error}") from None
        if self.session.num_classes not in (None, len(self.info.categories)):
            raise WeightsError(
                f"The model file '{path}' names {len(self.info.categories)} classes but its graph gives "
                f"{self.session.num_classes} scores."
            )
        self.lock = threading.RLock()
        self.device = torch.device("cpu")

    @property
    def categories(self) -> tuple[str, ...]:
        return self.info.categories

    @property
    def preprocessing(self) -> Preprocessing:
        return self.info.preprocessing

    @property
    def name(self) -> str:
        return self.info.name
