"""The parity check: the original model and the exported file, each run by its own runtime, on the
same prepared photos, compared class by class.

The original runs in torch (a CPU fp32 copy: what was exported); the export runs in onnxruntime
(CPU) or ``torch.jit.load``. Both get the very same NCHW arrays, so any difference is the export's.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from resnet_gui.core.export.errors import ExportExtraMissingError
from resnet_gui.core.export.metadata import INPUT_NAME

if TYPE_CHECKING:
    import torch

__all__ = [
    "FP32_MAX_PROBABILITY_DELTA",
    "FP32_MIN_TOP1_AGREEMENT",
    "FP32_TOLERANCE",
    "INT8_MIN_TOP1_AGREEMENT",
    "INT8_TARGET_TOP1_AGREEMENT",
    "INT8_TOLERANCE",
    "OnnxRunner",
    "ParityResult",
    "Tolerance",
    "TorchRunner",
    "TorchScriptRunner",
    "compare",
    "softmax",
]

#: An fp32 export computes the same function in another order of operations: probabilities may differ
#: by rounding (measured: under 1e-6 on ResNet-50), never by 1e-3, and the top class never changes.
FP32_MAX_PROBABILITY_DELTA = 1e-3
FP32_MIN_TOP1_AGREEMENT = 1.0
#: INT8 rounds every weight and activation to 256 levels: probabilities move by a few percent and a
#: photo the model was unsure about may change class. The issue's target is 99 % top-1 agreement;
#: an INT8 export below 95 % is refused as failed (between the two it is kept, and the result says so).
INT8_TARGET_TOP1_AGREEMENT = 0.99
INT8_MIN_TOP1_AGREEMENT = 0.95
TOP_K = 5
#: Photos run per call to a runtime: enough for the CPU's fast paths, little memory at 224 px.
CHUNK = 16


@dataclass(frozen=True)
class Tolerance:
    """What an export must meet: a bound on |Δ probability| (``None``: none) and on top-1 agreement."""

    name: str
    max_probability_delta: float | None
    min_top1_agreement: float

    def describe(self) -> str:
        parts = [f"top-1 agreement at least {self.min_top1_agreement:.0%}"]
        if self.max_probability_delta is not None:
            parts.insert(0, f"max |Δ probability| at most {self.max_probability_delta:g}")
        return " and ".join(parts)


FP32_TOLERANCE = Tolerance("fp32", FP32_MAX_PROBABILITY_DELTA, FP32_MIN_TOP1_AGREEMENT)
INT8_TOLERANCE = Tolerance("int8", None, INT8_MIN_TOP1_AGREEMENT)


@dataclass(frozen=True)
class ParityResult:
    """How an exported file's answers compare with the original's on ``images`` photos."""

    images: int
    max_probability_delta: float
    top1_agreement: float  # the share of photos with the same top class, 0..1
    top5_agreement: float  # the share of photos with the same set of top-5 classes (top-k for k < 5 classes)
    tolerance: Tolerance
    runtime: str = ""

    @property
    def passed(self) -> bool:
        delta_ok = (
            self.tolerance.max_probability_delta is None
            or self.max_probability_delta <= self.tolerance.max_probability_delta
        )
        return self.images > 0 and delta_ok and self.top1_agreement >= self.tolerance.min_top1_agreement

    def sentence(self) -> str:
        """The result for people, in one sentence."""
        verdict = "passed" if self.passed else "FAILED"
        runtime = f" ({self.runtime} vs torch)" if self.runtime else ""
        return (
            f"Parity check {verdict}{runtime} on {self.images} photos: max |Δ probability| "
            f"{self.max_probability_delta:.2g}, top-1 agreement {self.top1_agreement:.1%}, top-5 agreement "
            f"{self.top5_agreement:.1%} (needed: {self.tolerance.describe()})."
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "images": self.images,
            "max_probability_delta": self.max_probability_delta,
            "top1_agreement": self.top1_agreement,
            "top5_agreement": self.top5_agreement,
            "tolerance": {
                "name": self.tolerance.name,
                "max_probability_delta": self.tolerance.max_probability_delta,
                "min_top1_agreement": self.tolerance.min_top1_agreement,
            },
            "runtime": self.runtime,
            "passed": self.passed,
        }


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable), as float32."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def compare(
    reference: np.ndarray, exported: np.ndarray, tolerance: Tolerance, runtime: str = ""
) -> ParityResult:
    """Compare two (photos, classes) probability arrays, the original's first."""
    if reference.shape != exported.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {exported.shape}")
    images = int(reference.shape[0])
    if images == 0:
        return ParityResult(0, 0.0, 0.0, 0.0, tolerance, runtime)
    k = min(TOP_K, reference.shape[1])
    top_ref = np.argsort(-reference, axis=1, kind="stable")[:, :k]
    top_exp = np.argsort(-exported, axis=1, kind="stable")[:, :k]
    top1 = float(np.mean(top_ref[:, 0] == top_exp[:, 0]))
    top5 = float(np.mean([set(a) == set(b) for a, b in zip(top_ref, top_exp, strict=True)]))
    delta = float(np.max(np.abs(reference.astype(np.float64) - exported.astype(np.float64))))
    return ParityResult(images, delta, top1, top5, tolerance, runtime)


Runner = Callable[[np.ndarray], np.ndarray]


def run_chunked(runner: Runner, batch: np.ndarray, cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """Probabilities of ``batch`` through ``runner`` in chunks of :data:`CHUNK` photos."""
    from resnet_gui.core.errors import Cancelled

    parts = []
    for start in range(0, len(batch), CHUNK):
        if cancel is not None and cancel():
            raise Cancelled("Export cancelled; nothing was written.")
        parts.append(runner(np.ascontiguousarray(batch[start : start + CHUNK])))
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


class TorchRunner:
    """The original model (a CPU fp32 copy) in torch: softmax of its logits."""

    runtime = "torch"

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            logits = self.model(torch.from_numpy(batch))
        return softmax(logits.float().numpy())


class TorchScriptRunner(TorchRunner):
    """An exported TorchScript file, loaded by ``torch.jit.load`` on the CPU."""

    runtime = "torch.jit"

    def __init__(self, path: Path) -> None:
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", FutureWarning
            )  # torch (2.14 here) warns TorchScript is deprecated
            super().__init__(torch.jit.load(str(path), map_location="cpu").eval())


class OnnxRunner:
    """An exported ONNX file in an onnxruntime CPU session."""

    runtime = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise ExportExtraMissingError("onnxruntime") from None
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3  # warnings about unused initialisers are not for users
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {INPUT_NAME: batch})[0])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return softmax(self.logits(batch))


def images_per_second(runner: Runner, batch: np.ndarray, *, repeats: int = 1) -> float:
    """Throughput of ``runner`` over ``batch`` (chunks of :data:`CHUNK`), after one warm-up chunk."""
    import time

    if not len(batch):
        return 0.0
    runner(np.ascontiguousarray(batch[:CHUNK]))
    began = time.perf_counter()
    for _ in range(repeats):
        run_chunked(runner, batch)
    seconds = time.perf_counter() - began
    return len(batch) * repeats / seconds if seconds > 0 else 0.0


def top1(probabilities: np.ndarray) -> np.ndarray:
    return np.argmax(probabilities, axis=1) if probabilities.size else np.zeros(0, np.int64)


def accuracy(probabilities: np.ndarray, labels: Sequence[int | None]) -> float | None:
    """The share of labelled photos whose top class is their label; ``None`` with no labels."""
    known = [(index, label) for index, label in enumerate(labels) if label is not None]
    if not known:
        return None
    predicted = top1(probabilities)
    return float(np.mean([predicted[index] == label for index, label in known]))
