"""The inference engine: a loaded model on a device, behind one lock, giving top-k predictions.

Everything the GUI and the CLI classify goes through :class:`Classifier`, so a single image
and a batch are prepared by the same :class:`~resnet_gui.core.preprocessing.Preprocessing`
and run under the same settings. Callers get plain dataclasses, never tensors.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from resnet_gui.core.errors import ImageFailureKind, ImageLoadError, ResNetGuiError
from resnet_gui.core.images import load_image, original_size
from resnet_gui.core.models import LoadedModel
from resnet_gui.core.preprocessing import Preprocessing


class DeviceError(ResNetGuiError):
    """The requested device does not exist on this machine."""

    exit_code = 2


def available_devices() -> list[str]:
    """Devices present on this machine, best first (for a device picker)."""
    devices = []
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" if index else "cuda" for index in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def select_device(requested: str | None = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; anything else must be present or it is an error."""
    present = available_devices()
    if requested in (None, "", "auto"):
        return torch.device(present[0])
    try:
        device = torch.device(requested)
    except RuntimeError as error:
        raise DeviceError(f"'{requested}' is not a device name. Available: {', '.join(present)}.") from error
    if device.type == "cpu":
        return torch.device("cpu")  # "cpu:0" and "cpu:1" name the same CPU device
    name = str(device)
    if name not in present and not (device.type == "cuda" and device.index == 0 and "cuda" in present):
        raise DeviceError(f"Device '{requested}' is not available here. Available: {', '.join(present)}.")
    return device


@dataclass(frozen=True)
class Prediction:
    """One class of a top-k list."""

    label: str
    index: int
    probability: float


@dataclass(frozen=True)
class ImageResult:
    """The outcome of classifying one image file (or pasted image)."""

    source: str
    predictions: tuple[Prediction, ...]
    image_size: tuple[int, int]
    decode_seconds: float
    inference_seconds: float
    #: Whether the photo looks unlike the model's training photos (:meth:`ImageClassifier.unusual`);
    #: None when the model cannot tell (no threshold).
    unusual: bool | None = None


@dataclass(frozen=True)
class ImageFailure:
    """An image that could not be classified, with a reason for people and a kind for code.

    Callers act on ``kind`` (e.g. ``"too_large"``: offer to raise the size limit), never on the
    words of ``reason``.
    """

    source: str
    reason: str
    kind: ImageFailureKind = "unreadable"


class ImageClassifier:
    """What classifying needs of a model, whatever runs it: the one copy of top-k, batching and
    decoding. A runtime supplies only :meth:`probabilities`, ``categories``, ``preprocessing`` and
    ``name`` (:class:`Classifier` runs PyTorch; :mod:`resnet_gui.core.runtime` runs onnxruntime).

    ``lock`` is the one lock that guards the model: every forward pass holds it. ``backend`` names
    what runs :meth:`probabilities` (a key of :data:`resnet_gui.core.runtime.BACKENDS`).
    """

    backend: str = "torch"
    #: Why ``auto`` did not pick a faster backend (a sentence), or None.
    fallback_reason: str | None = None
    #: The temperature that calibrates the model's confidence (a fine-tuned bundle's, fitted on its
    #: validation photos; 1.0: none). :meth:`probabilities` applies it, whatever the runtime.
    temperature: float = 1.0
    #: Above this out-of-distribution score (:meth:`unusual`) a photo looks unlike the training
    #: photos (a bundle's, fitted on its validation photos); None: not known.
    ood_threshold: float | None = None
    #: Below this top-1 probability the model's own validation calls a prediction "not sure" (a
    #: bundle's); None: not known. :func:`resnet_gui.core.confidence.is_not_sure` applies it.
    unsure_threshold: float | None = None
    lock: threading.RLock
    device: torch.device

    @property
    def categories(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def preprocessing(self) -> Preprocessing:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The model's name, for people."""
        raise NotImplementedError

    def compute_threads(self) -> int:
        """The CPU threads one forward pass keeps busy (loader threads get the other cores)."""
        return torch.get_num_threads()

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """The model's raw scores (N, classes) for a prepared NCHW float32 batch: what a runtime supplies."""
        raise NotImplementedError

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Calibrated softmax probabilities (N, classes) for a prepared NCHW float32 batch."""
        from resnet_gui.core.calibration import calibrated_probabilities

        return calibrated_probabilities(self.logits(batch), self.temperature)

    def unusual(self, logits: np.ndarray) -> np.ndarray | None:
        """Per photo, whether it looks unlike the training photos (its energy score is above the
        bundle's threshold); None when the model has no threshold (not fine-tuned here)."""
        if self.ood_threshold is None:
            return None
        from resnet_gui.core.calibration import ood_scores

        return ood_scores(logits, self.temperature) > self.ood_threshold

    def probabilities_and_unusual(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """One forward pass: :meth:`probabilities` and :meth:`unusual` of a prepared batch."""
        from resnet_gui.core.calibration import calibrated_probabilities

        logits = self.logits(batch)
        return calibrated_probabilities(logits, self.temperature), self.unusual(logits)

    def top_k(self, probabilities: np.ndarray, k: int) -> list[tuple[Prediction, ...]]:
        """The ``k`` most probable classes of each row, best first."""
        k = max(1, min(k, probabilities.shape[1]))
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        return [
            tuple(Prediction(self.categories[i], int(i), float(row[i])) for i in indices)
            for row, indices in zip(probabilities, order, strict=True)
        ]

    def classify_images(self, images: Sequence[Image.Image], top_k: int = 5) -> list[tuple[Prediction, ...]]:
        """Top-k predictions for PIL images, prepared as one batch."""
        if not images:
            return []
        batch = self.preprocessing.prepare_batch(list(images))
        return self.top_k(self.probabilities(batch), top_k)

    def load(self, path: str | Path) -> Image.Image:
        """Decode an image file with draft decoding sized for this model's preprocessing."""
        return load_image(path, min_size=self.preprocessing.resize_size)

    def classify_paths(
        self, paths: Sequence[str | Path], top_k: int = 5, batch_size: int = 16
    ) -> Iterator[ImageResult | ImageFailure]:
        """Classify files in batches, yielding one result or failure per path, in order.

        A file that cannot be read becomes an :class:`ImageFailure`; it never stops the others.
        """
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            decoded: list[tuple[str, Image.Image, float]] = []
            failures: dict[str, ImageFailure] = {}
            for path in chunk:
                began = time.perf_counter()
                try:
                    image = self.load(path)
                except ImageLoadError as error:
                    failures[str(path)] = ImageFailure(str(path), error.reason, error.failure_kind)
                    continue
                decoded.append((str(path), image, time.perf_counter() - began))
            predictions: list[tuple[Prediction, ...]] = []
            unusual: list[bool | None] = [None] * len(decoded)
            inference_seconds = 0.0
            if decoded:
                began = time.perf_counter()
                batch = self.preprocessing.prepare_batch([image for _, image, _ in decoded])
                probabilities, flags = self.probabilities_and_unusual(batch)
                predictions = self.top_k(probabilities, top_k)
                if flags is not None:
                    unusual = [bool(flag) for flag in flags]
                inference_seconds = (time.perf_counter() - began) / len(decoded)
            by_path = {
                source: ImageResult(source, preds, original_size(image), decode, inference_seconds, odd)
                for (source, image, decode), preds, odd in zip(decoded, predictions, unusual, strict=True)
            }
            for path in chunk:
                yield failures.get(str(path)) or by_path[str(path)]


class Classifier(ImageClassifier):
    """A PyTorch model on a device, ready to classify images.

    ``lock`` is the one lock that guards the model: every forward pass (here, and in the
    explanation and training code that borrow the model) holds it, so GUI worker threads can
    share one classifier safely.

    CPU speed options: ``channels_last`` memory format (on by default: it was measured faster
    on this project's CPU, see ``benchmarks/classify_latency.py``) and ``bf16`` autocast (off by
    default: only worth it on CPUs with native bf16, and only if top-1 agreement with fp32
    stays >= 99 %, which the benchmark reports).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: str | torch.device | None = "auto",
        *,
        channels_last: bool = True,
        bf16: bool = False,
    ) -> None:
        self.loaded = loaded
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.channels_last = channels_last
        self.bf16 = bf16
        self.lock = loaded.lock  # the model's: a classifier replacing this one shares it
        from resnet_gui.core.metadata import (
            metadata_ood_threshold,
            metadata_temperature,
            metadata_unsure_threshold,
        )

        self.temperature = metadata_temperature(loaded.metadata)
        self.ood_threshold = metadata_ood_threshold(loaded.metadata)
        self.unsure_threshold = metadata_unsure_threshold(loaded.metadata)
        model = loaded.model.eval().to(self.device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model

    @property
    def categories(self) -> tuple[str, ...]:
        return self.loaded.categories

    @property
    def preprocessing(self) -> Preprocessing:
        return self.loaded.preprocessing

    @property
    def name(self) -> str:
        return self.loaded.name

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        """A prepared NCHW float32 array to a tensor on the model's device and memory format."""
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        if self.channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """The model's raw scores (N, classes) for a prepared NCHW batch, as float32."""
        tensor = self.to_tensor(batch)
        with self.lock, torch.inference_mode(), self._autocast():
            logits = self.model(tensor)
        return logits.float().cpu().numpy()
