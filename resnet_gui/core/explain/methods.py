"""The explanation methods, their registry, and :func:`explain`, the one entry point.

``METHODS`` is the table the GUI menus and the parametrised tests read. Its keys, order, names,
descriptions and costs come from the torch-free :mod:`~resnet_gui.core.explain.catalog`, which the
CLI's parser reads instead (so that ``--help`` does not import torch).
Each method is a small :class:`~resnet_gui.core.explain.base.ExplanationMethod` subclass; what
they have in common (inputs, lock, hooks, targets, progress, results) lives in ``base.py``.

Gradient methods explain all the requested classes from ONE forward pass: the graph is recorded
once and each class costs one ``torch.autograd.grad(..., retain_graph=True)``. Grad-CAM and
Grad-CAM++ go further: they only need gradients at the Grad-CAM layer, so the part of the network
before it runs under ``no_grad`` (nothing is recorded or kept there) and autograd starts at a leaf
copy of that layer's output; a class then costs a backward pass through the head only (avgpool+fc
for a ResNet), i.e. almost nothing. The maps equal Captum's ``LayerGradCam`` (tested).

Slow methods (integrated gradients, SmoothGrad, occlusion) use Captum, with model calls wrapped so
that progress is reported and cancellation checked between internal batches.
"""

from __future__ import annotations

import contextlib
import math
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from resnet_gui.core.explain.base import (
    AttributionContext,
    CancelCallback,
    Explanation,
    ExplanationError,
    ExplanationMethod,
    Parameter,
    ProgressCallback,
    UnknownMethodError,
    reduce_channels,
    registered_hooks,
)
from resnet_gui.core.explain.catalog import CATALOG, DEFAULT_METHOD
from resnet_gui.core.explain.targets import TargetSpec

if TYPE_CHECKING:
    from resnet_gui.core.engine import Classifier

_BASELINES = ("black", "mean")


# -- shared building blocks ---------------------------------------------------------------------


def capture_layer_forward(
    context: AttributionContext, inputs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the Grad-CAM layer's activation A, with a graph from A to the logits only.

    The network before the layer runs under ``no_grad``; the layer's forward hook swaps its output
    for a leaf copy that requires grad (and a clone of it, so an in-place op downstream can neither
    fail on the leaf nor change A) and switches grad mode back on for the rest of the forward pass.
    The enclosing ``no_grad`` restores the caller's mode on exit, also on error.
    """
    captured: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, args: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            raise ExplanationError("The Grad-CAM layer must output one (N, C, H, W) tensor.")
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        torch.set_grad_enabled(True)
        return leaf.clone()

    with registered_hooks() as hooks, torch.no_grad():
        hooks.append(context.layer.register_forward_hook(hook))
        logits = context.model(inputs)
    if len(captured) != 1 or not logits.requires_grad:
        raise ExplanationError(
            f"The Grad-CAM layer ran {len(captured)} times in one forward pass, or the output does not "
            "depend on it; Grad-CAM needs a layer that runs exactly once, such as 'layer4'."
        )
    return logits, captured[0]


def cam_maps(
    context: AttributionContext,
    logits: torch.Tensor,
    activation: torch.Tensor,
    targets: Sequence[int],
    channel_weights: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    size: tuple[int, int],
    progress_span: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """(k, H, W) class activation maps: ReLU(sum_c w_c A_c), bilinearly upsampled to ``size``.

    One backward pass per class through the recorded head, reusing the graph; ``channel_weights``
    maps (A, dS/dA), both (1, C, h, w), to the weights (1, C).
    """
    cams = []
    start, span = progress_span[0], progress_span[1] - progress_span[0]
    for position, target in enumerate(targets):
        last = position + 1 == len(targets)
        (gradient,) = torch.autograd.grad(logits[0, target], activation, retain_graph=not last)
        with torch.no_grad():
            weights = channel_weights(activation, gradient)
            # The same expression (and summation order) as Captum's LayerGradCam.
            cams.append(torch.sum(weights[:, :, None, None] * activation, dim=1, keepdim=True))
        context.report(start + span * (position + 1) / len(targets))
    with torch.no_grad():
        cam = torch.relu(torch.cat(cams))
        return F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[:, 0]


def guided_forward(context: AttributionContext, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the leaf input of a forward pass whose ReLUs backpropagate guided gradients.

    Guided backpropagation (Springenberg et al.) passes a gradient through a ReLU only where both
    the input and the incoming gradient are positive. The ReLU's own backward already applies the
    input mask, so it is enough to clamp the gradient arriving at each ReLU *output*: a forward hook
    on every ``nn.ReLU`` registers that clamp as a tensor hook on the output of each call. This
    works with torchvision's in-place ReLUs (the hook is registered after the in-place op, so it
    sees the gradient of the ReLU's result) and with a Bottleneck's one ``relu`` module used three
    times (the forward hook runs at every call). Tensor hooks belong to this call's graph; module
    hooks are removed before returning. ReLUs applied through ``torch.nn.functional`` are not seen.
    """

    def hook(module: torch.nn.Module, args: Any, output: torch.Tensor) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(_clamp_negative)

    leaf = inputs.detach().clone().requires_grad_(True)
    with registered_hooks() as hooks:
        for module in context.model.modules():
            if isinstance(module, torch.nn.ReLU):
                hooks.append(module.register_forward_hook(hook))
        logits = context.model(leaf)
    return logits, leaf


def _clamp_negative(gradient: torch.Tensor) -> torch.Tensor:
    return gradient.clamp_min(0)


def input_gradients(
    context: AttributionContext,
    logits: torch.Tensor,
    leaf: torch.Tensor,
    targets: Sequence[int],
    progress_span: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """(k, C, H, W) gradients of each target logit w.r.t. the input, one backward pass per class."""
    gradients = []
    start, span = progress_span[0], progress_span[1] - progress_span[0]
    for position, target in enumerate(targets):
        last = position + 1 == len(targets)
        (gradient,) = torch.autograd.grad(logits[0, target], leaf, retain_graph=not last)
        gradients.append(gradient)
        context.report(start + span * (position + 1) / len(targets))
    return torch.cat(gradients)


def baseline_image(context: AttributionContext, inputs: torch.Tensor, kind: str) -> torch.Tensor:
    """A reference input (1, C, H, W) in the model's normalised space.

    ``"black"``: a black image, i.e. (0 - mean) / std per channel in the model's channel order
    (the baseline of the integrated gradients paper). ``"mean"``: zeros, i.e. the training set's
    mean colour, a neutral grey (Captum's default; the usual occluder).
    """
    if kind == "mean":
        return torch.zeros_like(inputs)
    mean = torch.tensor(context.preprocessing.mean, dtype=inputs.dtype, device=inputs.device)
    std = torch.tensor(context.preprocessing.std, dtype=inputs.dtype, device=inputs.device)
    return ((0.0 - mean) / std).view(1, -1, 1, 1).expand_as(inputs).contiguous()


class _ReportingForward:
    """The model as Captum's ``forward_func``: reports progress and checks cancellation per call.

    ``total_calls`` is how many calls the Captum method will make, so progress is ``calls/total``
    within ``progress_span``. ``select`` keeps only those output columns (occlusion of all targets
    in one pass).
    """

    def __init__(
        self,
        context: AttributionContext,
        total_calls: int,
        progress_span: tuple[float, float] = (0.0, 1.0),
        select: Sequence[int] | None = None,
    ) -> None:
        self.context = context
        self.total_calls = max(1, total_calls)
        self.start, self.span = progress_span[0], progress_span[1] - progress_span[0]
        self.select = list(select) if select is not None else None
        self.calls = 0

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        # Reported before and after each internal batch's forward pass (its backward pass, where
        # there is one, follows), so the bar moves steadily: a quarter per batch was seen as jumps.
        self.context.report(self.start + self.span * min(1.0, self.calls / self.total_calls))
        output = self.context.model(self.context.memory_format(batch))
        self.context.report(self.start + self.span * min(1.0, (self.calls + 1 / 3) / self.total_calls))
        self.calls += 1
        return output if self.select is None else output[:, self.select]


@contextlib.contextmanager
def _seeded(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the RNG that draws on ``device`` for the block, restoring the caller's RNG state after."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.random.fork_rng(devices=[index], device_type="cuda"):
            torch.cuda.default_generators[index].manual_seed(seed)
            yield
    elif device.type == "cpu":
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield
    else:  # e.g. MPS: fork what can be forked, seed everything.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield


def _per_target(
    context: AttributionContext,
    targets: Sequence[int],
    attribute_one: Callable[[int, tuple[float, float]], torch.Tensor],
) -> torch.Tensor:
    """Run ``attribute_one(target, progress_span)`` for each target, giving each its progress span."""
    count = len(targets)
    return torch.cat([attribute_one(t, (i / count, (i + 1) / count)) for i, t in enumerate(targets)])


# -- the methods --------------------------------------------------------------------------------

_Method = TypeVar("_Method", bound=type[ExplanationMethod])


def _catalogued(method: _Method) -> _Method:
    """Give a method class its user-facing texts from the catalog, their one copy (KeyError if absent)."""
    entry = CATALOG[method.key]
    method.display_name, method.description, method.cost = entry.display_name, entry.description, entry.cost
    return method


class _LayerCAM(ExplanationMethod):
    """Grad-CAM family: the layer's channels weighted by a function of their gradients."""

    def _forward(self, context: AttributionContext, inputs: torch.Tensor) -> torch.Tensor:
        logits, activation = capture_layer_forward(context, inputs)
        context.state.update(logits=logits, activation=activation)
        return logits

    def _attribute(
        self, context: AttributionContext, inputs: torch.Tensor, targets: Sequence[int]
    ) -> torch.Tensor:
        state = context.state
        return cam_maps(
            context, state["logits"], state["activation"], targets, self._channel_weights, inputs.shape[2:]
        )

    @staticmethod
    @abstractmethod
    def _channel_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        """(A, dS/dA), both (1, C, h, w) -> channel weights (1, C)."""


@_catalogued
class GradCAM(_LayerCAM):
    """Grad-CAM: the Grad-CAM layer's channels weighted by their spatially averaged gradients.

    w_c = mean_ij dS/dA_cij; map = ReLU(sum_c w_c A_c), upsampled bilinearly to the input size.

    Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
    Localization", ICCV 2017, https://arxiv.org/abs/1610.02391
    """

    key = "gradcam"
    citation = "Selvaraju et al., ICCV 2017, arXiv:1610.02391"

    @staticmethod
    def _channel_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        return gradient.mean(dim=(2, 3))


@_catalogued
class GradCAMPlusPlus(_LayerCAM):
    """Grad-CAM++: per-position weights so that several instances of a class all show up.

    With first-order gradients g = dS/dA (the simplification for an exponential of the score, as
    in pytorch-grad-cam): alpha = g^2 / (2 g^2 + sum_ij(A) g^3), w_c = sum_ij alpha ReLU(g).
    Where g <= 0 the term is 0 (ReLU(g) = 0), so alpha is only evaluated where g > 0, whose
    denominator is positive for post-ReLU activations: no epsilon is needed (pytorch-grad-cam adds
    1e-6, which is not small next to g^2 ~ 1e-6 for ResNet gradients).

    Chattopadhay et al., "Grad-CAM++: Generalized Gradient-Based Visual Explanations for Deep
    Convolutional Networks", WACV 2018, https://arxiv.org/abs/1710.11063
    """

    key = "gradcam++"
    citation = "Chattopadhay et al., WACV 2018, arXiv:1710.11063"

    @staticmethod
    def _channel_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        positive = gradient > 0
        squared = gradient.pow(2)
        denominator = 2 * squared + activation.sum(dim=(2, 3), keepdim=True) * squared * gradient
        alpha = torch.where(positive, squared / torch.where(positive, denominator, 1.0), 0.0)
        return (alpha * gradient.clamp_min(0)).sum(dim=(2, 3))


@_catalogued
class Saliency(ExplanationMethod):
    """Saliency: how strongly each pixel's value moves the class score.

    map = max over colour channels of |dS/dx|, from one forward pass and one backward pass per class.

    Simonyan et al., "Deep Inside Convolutional Networks: Visualising Image Classification Models
    and Saliency Maps", ICLR workshop 2014, https://arxiv.org/abs/1312.6034
    """

    key = "saliency"
    citation = "Simonyan et al., ICLR 2014 workshop, arXiv:1312.6034"

    def _forward(self, context: AttributionContext, inputs: torch.Tensor) -> torch.Tensor:
        leaf = inputs.detach().clone().requires_grad_(True)
        logits = context.model(leaf)
        context.state.update(logits=logits, input=leaf)
        return logits

    def _attribute(
        self, context: AttributionContext, inputs: torch.Tensor, targets: Sequence[int]
    ) -> torch.Tensor:
        gradients = input_gradients(context, context.state["logits"], context.state["input"], targets)
        return reduce_channels(gradients, "abs_max")


@_catalogued
class GuidedGradCAM(ExplanationMethod):
    """Guided Grad-CAM: guided backpropagation x the upsampled Grad-CAM map, pixel by pixel.

    Fine detail from guided backpropagation, restricted to the regions Grad-CAM finds for the
    class. Two forward passes (a cheap one for Grad-CAM, a recorded one with guided ReLUs) and two
    backward passes per class. Reduced to H x W by max over channels of |.|. Captum's
    ``GuidedGradCam`` with ``interpolate_mode="bilinear"`` gives the same maps (tested); it is not
    used because it would repeat both forward passes for every class.

    Selvaraju et al., ICCV 2017, https://arxiv.org/abs/1610.02391 (section 3.1); guided
    backpropagation: Springenberg et al., "Striving for Simplicity: The All Convolutional Net",
    ICLR workshop 2015, https://arxiv.org/abs/1412.6806
    """

    key = "guided_gradcam"
    citation = "Selvaraju et al., ICCV 2017, arXiv:1610.02391"

    def _forward(self, context: AttributionContext, inputs: torch.Tensor) -> torch.Tensor:
        logits, activation = capture_layer_forward(context, inputs)
        guided_logits, leaf = guided_forward(context, inputs)
        context.state.update(logits=logits, activation=activation, guided_logits=guided_logits, input=leaf)
        return logits

    def _attribute(
        self, context: AttributionContext, inputs: torch.Tensor, targets: Sequence[int]
    ) -> torch.Tensor:
        state = context.state
        cams = cam_maps(
            context,
            state["logits"],
            state["activation"],
            targets,
            GradCAM._channel_weights,
            inputs.shape[2:],
            progress_span=(0.0, 0.2),
        )
        guided = input_gradients(
            context, state["guided_logits"], state["input"], targets, progress_span=(0.2, 1.0)
        )
        return reduce_channels(guided * cams[:, None], "abs_max")


@_catalogued
class IntegratedGradients(ExplanationMethod):
    """Integrated gradients: gradients averaged along the path from a baseline image to the input.

    attribution = (x - x') * integral_0^1 dS/dx(x' + a (x - x')) da, by Captum's Gauss-Legendre
    quadrature with ``n_steps`` points, ``internal_batch_size`` path points per model call (this
    bounds the memory). The baseline x' is ``black`` (default; black pixels in the model's
    normalised space) or ``mean`` (zeros: the training mean colour). Reduced to H x W by the sum
    over channels of |.|. Classes are attributed one after the other.

    Sundararajan et al., "Axiomatic Attribution for Deep Networks", ICML 2017,
    https://arxiv.org/abs/1703.01365
    """

    key = "integrated_gradients"
    citation = "Sundararajan et al., ICML 2017, arXiv:1703.01365"
    parameters = (
        Parameter("n_steps", 32, "points on the path from the baseline (more: more exact, slower)", 2, 1024),
        Parameter("internal_batch_size", 8, "path points per model call (bounds memory)", 1, 1024),
        Parameter("baseline", "black", "the reference image: black, or the mean colour", choices=_BASELINES),
    )

    def _attribute(
        self, context: AttributionContext, inputs: torch.Tensor, targets: Sequence[int]
    ) -> torch.Tensor:
        from captum.attr import IntegratedGradients as CaptumIntegratedGradients

        n_steps, batch_size = self.params["n_steps"], self.params["internal_batch_size"]
        baseline = baseline_image(context, inputs, self.params["baseline"])

        def one(target: int, span: tuple[float, float]) -> torch.Tensor:
            forward = _ReportingForward(context, math.ceil(n_steps / batch_size), span)
            return CaptumIntegratedGradients(forward).attribute(
                inputs, baselines=baseline, target=target, n_steps=n_steps, internal_batch_size=batch_size
            )

        return reduce_channels(_per_target(context, targets, one), "abs_sum")


@_catalogued
class SmoothGrad(ExplanationMethod):
    """SmoothGrad: saliency averaged over noisy copies of the input, which removes gradient noise.

    Captum's ``NoiseTunnel`` over ``Saliency`` (|gradient|) with ``nt_samples`` Gaussian copies of
    standard deviation ``stdev`` x (max - min of the input), as in the paper (10-20 %). The noise
    is drawn from an RNG seeded with ``seed`` (the caller's RNG state is restored), identically for
    every class, so maps are reproducible and a class's map does not depend on the other classes
    asked for. ``internal_batch_size`` noisy copies per model call. Reduced by max over channels.

    Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017,
    https://arxiv.org/abs/1706.03825
    """

    key = "smoothgrad"
    citation = "Smilkov et al., 2017, arXiv:1706.03825"
    parameters = (
        Parameter("nt_samples", 24, "noisy copies to average", 1, 1024),
        Parameter("stdev", 0.15, "noise level, as a fraction of the input's value range", 0.0, 1.0),
        Parameter("internal_batch_size", 8, "noisy copies per model call (bounds memory)", 1, 1024),
        Parameter("seed", 0, "seed of the noise (same seed: same map)", 0, 2**31 - 1),
    )

    def _attribute(
        self, context: AttributionContext, inputs: torch.Tensor, targets: Sequence[int]
    ) -> torch.Tensor:
        from captum.attr import NoiseTunnel
        from captum.attr import Saliency as CaptumSaliency

        samples = self.params["nt_samples"]
        batch_size = min(self.params["internal_batch_size"], samples)
        stdev = self.params["stdev"] * float(inputs.max() - inputs.min())

        def one(target: int, span: tuple[float, float]) -> torch.Tensor:
            forward = _ReportingForward(context, math.ceil(samples / batch_size), span)
            with _seeded(context.device, self.params["seed"]):
                return NoiseTunnel(CaptumSaliency(forward)).attribute(
                    inputs,
                    nt_type="smoothgrad",
                    nt_samples=samples,
                    nt_samples_batch_size=batch_size,
                    stdevs=stdev,
                    target=target,
                )

        return reduce_channels(_per_target(context, targets, one), "abs_max")


@_catalogued
class Occlusion(ExplanationMethod):
    """Occlusion: how much the class score (logit) drops when a square of the image is hidden.

    Captum's ``Occlusion``: a ``window`` x ``window`` patch (all channels) moved by ``stride``
    pixels is replaced by the ``baseline`` (default ``mean``: the training mean colour), and each
    pixel gets the average drop over the patches covering it. All classes come from the same
    occluded forward passes; ``internal_batch_size`` occluded images per model call. The map is
    the positive part (a patch whose removal *raises* the score is no evidence for the class).
    Model-agnostic and faithful by construction, but about (size/stride)^2 forward passes.

    Zeiler and Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014,
    https://arxiv.org/abs/1311.2901
    """

    key = "occlusion"
    citation = "Zeiler and Fergus, ECCV 2014, arXiv:1311.2901"
    parameters = (
        Parameter("window", 32, "side of the hidden square, in input pixels", 1, 4096),
        Parameter("stride", 16, "step between squares, in input pixels (at most the window)", 1, 4096),
        Parameter("internal_batch_size", 16, "occluded images per model call (bounds memory)", 1, 1024),
        Parameter("baseline", "mean", "what hides a square: the mean colour, or black", choices=_BASELINES),
    )

    def _attribute(
        self, context: AttributionContext, inputs: torch.Tensor, targets: Sequence[int]
    ) -> torch.Tensor:
        from captum.attr import Occlusion as CaptumOcclusion

        channels, height, width = inputs.shape[1:]
        window = min(self.params["window"], height, width)
        stride = min(self.params["stride"], window)
        batch_size = self.params["internal_batch_size"]
        positions = math.prod(math.ceil((size - window) / stride) + 1 for size in (height, width))
        forward = _ReportingForward(context, 1 + math.ceil(positions / batch_size), select=targets)
        with torch.no_grad():
            attribution = CaptumOcclusion(forward).attribute(
                inputs,
                sliding_window_shapes=(channels, window, window),
                strides=(channels, stride, stride),
                baselines=baseline_image(context, inputs, self.params["baseline"]),
                perturbations_per_eval=batch_size,
            )
        return reduce_channels(attribution.reshape(len(targets), *inputs.shape[1:]), "positive_mean")


# -- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodInfo:
    """A registry row: everything a menu, a ``--method`` option or a test needs about a method."""

    key: str
    display_name: str
    description: str
    cost: str
    parameters: tuple[Parameter, ...]
    citation: str
    deterministic: bool
    cls: type[ExplanationMethod]

    @classmethod
    def of(cls, method: type[ExplanationMethod]) -> MethodInfo:
        return cls(
            key=method.key,
            display_name=method.display_name,
            description=method.description,
            cost=method.cost,
            parameters=method.parameters,
            citation=method.citation,
            deterministic=method.deterministic,
            cls=method,
        )

    @property
    def defaults(self) -> dict[str, Any]:
        return {parameter.name: parameter.default for parameter in self.parameters}

    def create(self, **params: Any) -> ExplanationMethod:
        return self.cls(**params)


_IMPLEMENTATIONS: dict[str, type[ExplanationMethod]] = {
    method.key: method
    for method in (
        GradCAM,
        GradCAMPlusPlus,
        Saliency,
        GuidedGradCAM,
        IntegratedGradients,
        SmoothGrad,
        Occlusion,
    )
}

# In the catalog's order; a catalog entry without an implementation fails here, at import.
METHODS: dict[str, MethodInfo] = {key: MethodInfo.of(_IMPLEMENTATIONS[key]) for key in CATALOG}

_ALIASES = {
    "grad_cam": "gradcam",
    "gradcampp": "gradcam++",
    "gradcam_plus_plus": "gradcam++",
    "grad_cam++": "gradcam++",
    "ig": "integrated_gradients",
    "guided_grad_cam": "guided_gradcam",
    "smooth_grad": "smoothgrad",
}


def method_names() -> list[str]:
    """Registry keys in menu order (fast methods first, as registered)."""
    return list(METHODS)


def get_method_info(name: str) -> MethodInfo:
    """The registry row of ``name`` (case-insensitive; ``-`` and ``_`` alike), or a clear error."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    info = METHODS.get(key)
    if info is None:
        raise UnknownMethodError(f"Unknown explanation method '{name}'. Known methods: {', '.join(METHODS)}.")
    return info


def get_method(name: str, **params: Any) -> ExplanationMethod:
    """An instance of the method ``name`` with ``params`` (validated; missing ones take defaults)."""
    return get_method_info(name).create(**params)


def explain(
    classifier: Classifier,
    image_or_batch: Image.Image | Sequence[Image.Image] | np.ndarray,
    targets: TargetSpec = None,
    top_k: int = 1,
    method: str | ExplanationMethod = DEFAULT_METHOD,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
    **params: Any,
) -> list[Explanation]:
    """Heat maps explaining ``classifier``'s scores on ``image_or_batch``.

    ``targets``: None (the ``top_k`` predicted classes of each image, most probable first), a class
    index, a class name (see :mod:`~resnet_gui.core.explain.targets`) or a list of them.
    ``method``: a registry key or an :class:`ExplanationMethod`; ``params`` are its parameters
    (only with a key). ``progress(fraction)`` is called as work advances; ``cancel()`` is polled
    between internal batches and makes the call raise ``ExplanationCancelled``.
    """
    if isinstance(method, ExplanationMethod):
        if params:
            raise ExplanationError("Pass parameters either to get_method() or to explain(), not both.")
        instance = method
    else:
        instance = get_method(method, **params)
    return instance.explain(classifier, image_or_batch, targets, top_k, progress=progress, cancel=cancel)
