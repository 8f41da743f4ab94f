"""What every explanation method shares: inputs, targets, the model lock, hooks, the result type.

A method subclasses :class:`ExplanationMethod` and implements :meth:`~ExplanationMethod._attribute`
(and, when it needs the graph of the forward pass, :meth:`~ExplanationMethod._forward`). The base
class does the rest, identically for every method:

* prepares the input (a PIL image through the classifier's preprocessing, or a prepared NCHW array);
* holds ``classifier.lock`` for the whole forward/backward work of an image, puts the model in eval
  mode (restoring the previous mode after), runs in fp32 with autograd on even when the caller is
  inside ``torch.inference_mode``;
* resolves the targets (explicit ones before any forward pass, so a bad name costs nothing; the
  predicted top-k from the method's own forward pass, so no extra pass is spent on them);
* reports progress and honours cancellation;
* returns plain :class:`Explanation` objects with a raw (un-normalised) non-negative float32 map at
  model-input resolution. Display normalisation and overlays belong to ``maps.py``.

Module hooks registered by a method are removed in ``finally`` blocks before the method returns,
whatever happens; tensor hooks live on the autograd graph of one call and die with it.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from PIL import Image

from resnet_gui.core.errors import Cancelled, ResNetGuiError
from resnet_gui.core.explain.targets import TargetSpec, parse_targets, top_k_indices

if TYPE_CHECKING:
    from resnet_gui.core.engine import Classifier
    from resnet_gui.core.preprocessing import Preprocessing

ProgressCallback = Callable[[float], None]
CancelCallback = Callable[[], bool]


class ExplanationError(ResNetGuiError):
    """An explanation could not be computed as asked (bad method, parameter, input or layer)."""

    exit_code = 2


class UnknownMethodError(ExplanationError):
    """A method name that is not in the registry."""


class InvalidParameterError(ExplanationError):
    """A method parameter that does not exist or whose value is out of its range."""


class ExplanationCancelled(ExplanationError, Cancelled):
    """The user cancelled an explanation; nothing was returned and the model is unchanged."""

    exit_code = 130


@dataclass(frozen=True, eq=False)
class Explanation:
    """One heat map: why the model scored ``target_label`` on one image.

    ``heatmap`` is the method's raw map, (H, W) float32, >= 0, finite, at the model's input
    resolution (the crop the model saw; ``Preprocessing.crop_box`` maps it back onto the photo).
    Its scale is method-specific and not normalised. ``probability`` is the softmax probability of
    the target on this image. ``seconds`` is this map's share of the wall time of the call that
    produced it (the call's time for the image divided by its number of maps).
    """

    method: str
    target_index: int
    target_label: str
    probability: float
    heatmap: np.ndarray = field(repr=False)
    seconds: float
    image_index: int = 0


@dataclass(frozen=True)
class Parameter:
    """A user-settable parameter of a method: enough to build a CLI option or a GUI control."""

    name: str
    default: int | float | str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def kind(self) -> type:
        return type(self.default)

    def coerce(self, value: Any) -> int | float | str:
        """``value`` (possibly a string from a command line) as this parameter's type, validated."""
        kind = self.kind
        try:
            if kind is int:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                result: int | float | str = int(value)
            elif kind is float:
                if isinstance(value, bool):
                    raise ValueError
                result = float(value)
                if not np.isfinite(result):
                    raise ValueError
            else:
                result = str(value)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"Parameter '{self.name}' must be {'an integer' if kind is int else 'a number'}, "
                f"not {value!r}."
            ) from None
        if self.choices and result not in self.choices:
            raise InvalidParameterError(
                f"Parameter '{self.name}' must be one of {', '.join(self.choices)}, not {value!r}."
            )
        name = self.name
        if self.minimum is not None and result < self.minimum:  # type: ignore[operator]
            raise InvalidParameterError(f"Parameter '{name}' must be at least {self.minimum}, not {value}.")
        if self.maximum is not None and result > self.maximum:  # type: ignore[operator]
            raise InvalidParameterError(f"Parameter '{name}' must be at most {self.maximum}, not {value}.")
        return result


@dataclass
class AttributionContext:
    """What a method needs for one image, built by the base class for each call.

    ``state`` carries what :meth:`ExplanationMethod._forward` captured (activations, the leaf
    input, logits) to :meth:`ExplanationMethod._attribute`; it is dropped after the image, which
    frees the autograd graph.
    """

    model: torch.nn.Module
    layer_name: str
    preprocessing: Preprocessing
    device: torch.device
    channels_last: bool
    report: Callable[[float], None]
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def layer(self) -> torch.nn.Module:
        """The Grad-CAM layer (``LoadedModel.gradcam_layer``), looked up only by methods that use it."""
        try:
            return self.model.get_submodule(self.layer_name)
        except AttributeError:
            message = f"The model has no layer '{self.layer_name}' to compute Grad-CAM on."
            raise ExplanationError(message) from None

    def memory_format(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` in the memory format the model runs in (channels_last batches stay fast)."""
        if self.channels_last and tensor.ndim == 4:
            return tensor.contiguous(memory_format=torch.channels_last)
        return tensor


@contextlib.contextmanager
def registered_hooks() -> Iterator[list[torch.utils.hooks.RemovableHandle]]:
    """A list to put hook handles in; every handle is removed on exit, even on error."""
    handles: list[torch.utils.hooks.RemovableHandle] = []
    try:
        yield handles
    finally:
        for handle in handles:
            handle.remove()
        handles.clear()


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Explanations need eval-mode batch norm; a model borrowed in train mode gets it back."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def reduce_channels(attribution: torch.Tensor, how: str) -> torch.Tensor:
    """(k, C, H, W) signed attributions -> (k, H, W) non-negative map.

    ``"abs_max"``: max over channels of |a| (Simonyan et al.: a pixel matters if any of its colour
    channels does). ``"abs_sum"``: sum over channels of |a| (keeps the total attribution mass, as
    integrated gradients' completeness is about sums). ``"positive_mean"``: mean over channels,
    then the positive part (for occlusion, where every channel of a window has the same value and
    only a drop of the score is evidence *for* the class).
    """
    if how == "abs_max":
        return attribution.abs().amax(dim=1)
    if how == "abs_sum":
        return attribution.abs().sum(dim=1)
    if how == "positive_mean":
        return attribution.mean(dim=1).clamp_min(0)
    raise ValueError(f"unknown channel reduction {how!r}")


class ExplanationMethod(ABC):
    """Base of every explanation method (see the module docstring for what it takes care of).

    Class attributes describe the method for the registry: ``key``, ``display_name``,
    ``description`` (one line for users), ``cost`` (``"fast"``: about one forward pass plus a
    backward pass per class; ``"slow"``: many forward passes, cancellable), ``parameters``,
    ``citation`` and ``deterministic`` (same input -> same map).
    """

    key: ClassVar[str]
    display_name: ClassVar[str]
    description: ClassVar[str]
    cost: ClassVar[str] = "fast"
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    citation: ClassVar[str] = ""
    deterministic: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        known = {parameter.name: parameter for parameter in self.parameters}
        unknown = sorted(set(params) - set(known))
        if unknown:
            accepted = ", ".join(known) or "none"
            names = ", ".join(map(repr, unknown))
            raise InvalidParameterError(
                f"Method '{self.key}' has no parameter {names} (accepted: {accepted})."
            )
        self.params: dict[str, Any] = {
            name: parameter.coerce(params[name]) if name in params else parameter.default
            for name, parameter in known.items()
        }

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={value!r}" for name, value in self.params.items())
        return f"{type(self).__name__}({settings})"

    # -- what subclasses implement -------------------------------------------------------------

    def _forward(self, context: AttributionContext, inputs: torch.Tensor) -> torch.Tensor:
        """Logits (1, classes) of ``inputs`` (1, C, H, W), used to pick and report the targets.

        The default is a plain inference pass. Gradient methods override it to record, in the same
        pass, the graph their backward passes reuse (stored in ``context.state``).
        """
        with torch.inference_mode():
            return context.model(inputs)

    @abstractmethod
    def _attribute(
        self, context: AttributionContext, inputs: torch.Tensor, targets: Sequence[int]
    ) -> torch.Tensor:
        """Raw maps (len(targets), H, W), >= 0, at the resolution of ``inputs`` (1, C, H, W).

        Call ``context.report(fraction)`` between internal batches: it reports progress and raises
        :class:`ExplanationCancelled` when the user cancelled.
        """

    # -- the shared driver -----------------------------------------------------------------------

    def explain(
        self,
        classifier: Classifier,
        image_or_batch: Image.Image | Sequence[Image.Image] | np.ndarray,
        targets: TargetSpec = None,
        top_k: int = 1,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelCallback | None = None,
    ) -> list[Explanation]:
        """Explain each image of ``image_or_batch`` for ``targets`` (None: its ``top_k`` predictions).

        Returns the maps image by image, each image's targets in order (top-k: most probable first).
        Raises :class:`ExplanationCancelled` when ``cancel()`` turns true, and the target errors of
        :mod:`~resnet_gui.core.explain.targets` for bad targets, before any work is done.
        """
        explicit = parse_targets(targets, classifier.categories)
        if explicit is None and top_k < 1:
            raise InvalidParameterError(f"top_k must be at least 1, not {top_k}.")
        batch = prepare_inputs(classifier.preprocessing, image_or_batch)
        results: list[Explanation] = []
        for image_index in range(batch.shape[0]):
            report = _Reporter(image_index, batch.shape[0], progress, cancel)
            array = batch[image_index : image_index + 1]
            results += self._explain_one(classifier, array, explicit, top_k, report)
            report(1.0, check=False)
        return results

    def _explain_one(
        self,
        classifier: Classifier,
        array: np.ndarray,
        explicit: list[int] | None,
        top_k: int,
        report: _Reporter,
    ) -> list[Explanation]:
        report(0.0)
        began = time.perf_counter()
        with (
            classifier.lock,
            _eval_mode(classifier.model),
            torch.inference_mode(False),
            torch.enable_grad(),
        ):
            context = AttributionContext(
                model=classifier.model,
                layer_name=getattr(classifier.loaded, "gradcam_layer", "layer4"),
                preprocessing=classifier.preprocessing,
                device=classifier.device,
                channels_last=classifier.channels_last,
                report=report,
            )
            try:
                inputs = classifier.to_tensor(array)
                logits = self._forward(context, inputs)
                probabilities = torch.softmax(logits.detach().float(), dim=1)[0].cpu().numpy()
                indices = explicit if explicit is not None else top_k_indices(probabilities, top_k)
                maps = self._attribute(context, inputs, indices).detach().float()
                expected = (len(indices), *array.shape[2:])
                shape = tuple(maps.shape)
                if shape != expected:
                    raise RuntimeError(
                        f"{type(self).__name__} returned maps of shape {shape}, not {expected}."
                    )
                # Clean up once here so no method can hand out a negative or non-finite value.
                heatmaps = np.nan_to_num(maps.cpu().numpy(), nan=0.0, posinf=0.0, neginf=0.0)
                np.clip(heatmaps, 0.0, None, out=heatmaps)
            finally:
                context.state.clear()
        seconds = (time.perf_counter() - began) / len(indices)
        return [
            Explanation(
                method=self.key,
                target_index=int(index),
                target_label=classifier.categories[index],
                probability=float(probabilities[index]),
                heatmap=np.array(heatmap, dtype=np.float32),  # a copy: maps never share memory
                seconds=seconds,
                image_index=report.image_index,
            )
            for index, heatmap in zip(indices, heatmaps, strict=True)
        ]


class _Reporter:
    """Progress of one image mapped onto the whole call, and the cancellation check."""

    def __init__(
        self, image_index: int, count: int, progress: ProgressCallback | None, cancel: CancelCallback | None
    ) -> None:
        self.image_index = image_index
        self.count = count
        self.progress = progress
        self.cancel = cancel

    def __call__(self, fraction: float, check: bool = True) -> None:
        if check and self.cancel is not None and self.cancel():
            raise ExplanationCancelled("The explanation was cancelled.")
        if self.progress is not None:
            self.progress(min(1.0, max(0.0, (self.image_index + fraction) / self.count)))


def prepare_inputs(
    preprocessing: Preprocessing, image_or_batch: Image.Image | Sequence[Image.Image] | np.ndarray
) -> np.ndarray:
    """A PIL image, a list of them, or a prepared CHW/NCHW array -> a float32 NCHW array."""
    if isinstance(image_or_batch, Image.Image):
        return preprocessing.prepare_batch([image_or_batch])
    if isinstance(image_or_batch, np.ndarray):
        array = image_or_batch
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[1] != 3 or array.shape[0] == 0:
            raise ExplanationError(
                f"Expected a prepared image batch of shape (N, 3, H, W), got an array of shape {array.shape}."
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise ExplanationError(f"Expected a float32 image batch, got dtype {array.dtype}.")
        return np.ascontiguousarray(array, dtype=np.float32)
    images = list(image_or_batch)
    if not images or not all(isinstance(image, Image.Image) for image in images):
        raise ExplanationError("Expected a PIL image, a list of PIL images or a prepared NCHW array.")
    return preprocessing.prepare_batch(images)
