"""What a model is made of, in words and as data: stages, blocks, shortcuts, parameters, FLOPs.

:func:`describe_model` builds the model (or copies the one in use) on PyTorch's ``meta`` device, so
no weights are allocated and nothing the app is running is touched, and runs one forward pass of an
image of the model's input size through it under :class:`torch.utils.flop_counter.FlopCounterMode`
(torch's own counter) while hooks record what each residual block does, in the order it does it:
the layers of its main path, those of its shortcut, where the shortcut branches off, where the
addition is and what comes after it. Nothing here is a hand-written table of architectures: the
block type, the shortcut type and every label come from the modules that were built and the calls
they made (torchvision's ``BasicBlock``/``Bottleneck``, timm's ResNet-D and ResNet v2 blocks, the
CIFAR ResNets of :mod:`resnet_gui.core.cifar_resnet`).

The result is plain data (frozen dataclasses, no tensors): the CLI prints :meth:`ModelDescription.lines`,
the GUI draws :meth:`ModelDescription.block_diagram`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from resnet_gui.core.models import LoadedModel, ModelSpec, WeightsSpec, get_model_spec
from resnet_gui.core.preprocessing import Preprocessing

if TYPE_CHECKING:
    import torch

BlockType = Literal["basic", "bottleneck", "pre-activation"]
ShortcutKind = Literal["identity", "zero-pad", "projection", "avg-pool + projection", "none", "other"]
LayerKind = Literal["conv", "norm", "act", "pool", "fc"]

#: What each shortcut kind means, for people.
SHORTCUT_WORDS: dict[str, str] = {
    "identity": "identity (the block's input is added unchanged)",
    "zero-pad": "zero-pad (the input is subsampled and its extra channels are filled with zeros; "
    "no parameters)",
    "projection": "projection (a 1×1 convolution gives the input the block's output shape)",
    "avg-pool + projection": "average-pool + projection (a 2×2 average pool halves the input, then a "
    "1×1 convolution gives it the block's output shape)",
    "none": "none (a plain network: nothing is added, there is no residual connection)",
    "other": "a shortcut of its own kind",
}
BLOCK_WORDS: dict[str, str] = {
    "basic": "basic (two 3×3 convolutions)",
    "bottleneck": "bottleneck (1×1 convolution to fewer channels, 3×3 convolution, 1×1 back to more)",
    "pre-activation": "pre-activation (batch norm and ReLU before each convolution, a clean identity path)",
}
FLOP_NOTE = (
    "counted by PyTorch's own FLOP counter (torch.utils.flop_counter), which counts one multiply-add "
    "as 2 FLOPs and counts the convolutions and the fully connected layer (batch norm, ReLU, pooling "
    "and the additions are not counted)"
)
#: The attributes a residual block keeps its shortcut in (torchvision and timm: ``downsample``).
SHORTCUT_ATTRIBUTES = ("downsample", "shortcut")
TORCHVISION_STAGES = ("layer1", "layer2", "layer3", "layer4")
#: A plain bottleneck's 1x1 convolution gives 4x the channels of its 3x3 (ResNet-50's).
BOTTLENECK_EXPANSION = 4
STATUS_WORDS = {
    "cached": "on this computer",
    "imported": "on this computer",
    "downloadable": "not downloaded yet",
    "missing": "not imported yet",
}


@dataclass(frozen=True)
class DiagramLayer:
    """One box of a block drawing: ``"3×3 conv, 64"``, ``"BN"``, ``"ReLU"``…"""

    label: str
    kind: LayerKind


@dataclass(frozen=True)
class BlockDiagram:
    """One residual block as the layers it runs, for a drawing (input → main path → ⊕ ← shortcut → output).

    ``branch`` is how many main-path layers come before the point the shortcut leaves from (0: the
    block's input itself; pre-activation blocks project from after their first BN + ReLU).
    ``shortcut`` is empty for an identity (or zero-pad) shortcut: ``shortcut_kind`` says which;
    ``has_add`` is false for a plain block, whose drawing has no ⊕ and no shortcut.
    """

    name: str  # the module's name, "layer2.0"
    title: str  # "Stage 2, first block"
    stage: int  # 1-based
    position: int  # 0-based, in its stage
    block_type: BlockType
    main_path: tuple[DiagramLayer, ...]
    shortcut: tuple[DiagramLayer, ...]
    shortcut_kind: ShortcutKind
    after_add: tuple[DiagramLayer, ...]
    branch: int = 0
    has_add: bool = True
    in_shape: tuple[int, int, int] = (0, 0, 0)  # channels, height, width
    out_shape: tuple[int, int, int] = (0, 0, 0)

    @property
    def shortcut_labels(self) -> tuple[str, ...]:
        """The shortcut's boxes, or what it does when it has none ("identity", "zero-pad …")."""
        if self.shortcut:
            return tuple(layer.label for layer in self.shortcut)
        if self.shortcut_kind == "zero-pad":
            (c_in, h_in, _), (c_out, h_out, _) = self.in_shape, self.out_shape
            steps = [f"subsample /{h_in // h_out}"] if h_out and h_in > h_out else []
            return (*steps, f"zero-pad {c_in}→{c_out} channels")
        return (self.shortcut_kind,)

    def caption(self) -> str:
        c_in, h_in, w_in = self.in_shape
        c_out, h_out, w_out = self.out_shape
        change = f"{c_in} channels at {h_in}×{w_in} in, {c_out} channels at {h_out}×{w_out} out"
        return f"{self.title} ({self.name}): {change}."


@dataclass(frozen=True)
class StageDescription:
    """One stage: its residual blocks and what comes out of it."""

    name: str  # "layer1", or the layout's name for it
    blocks: int
    out_channels: int
    stride: int  # how much the stage shrinks the image (1 or 2)
    out_size: tuple[int, int]  # height, width of its output for one image at the model's input size
    shortcuts: tuple[ShortcutKind, ...]  # one per block

    @property
    def shortcut(self) -> str:
        """The stage's shortcuts in a few words: "identity", "projection (first block), then identity"."""
        kinds = self.shortcuts
        if not kinds:
            return "none"
        if all(kind == kinds[0] for kind in kinds):
            return kinds[0]
        if all(kind == kinds[1] for kind in kinds[1:]):
            return f"{kinds[0]} (first block), then {kinds[1]}"
        return ", ".join(kinds)


@dataclass(frozen=True)
class ModelDescription:
    """What a model is, measured on the module that was built (see the module docstring)."""

    display_name: str
    architecture: str  # the registry name
    block_type: BlockType
    block_detail: str  # "bottleneck, 32 groups in its 3×3 convolution", "basic"…
    stages: tuple[StageDescription, ...]
    stem: tuple[str, ...]
    head: tuple[str, ...]
    parameters: int
    flops: int  # torch's FlopCounterMode total for one image (a multiply-add counts 2)
    input_size: tuple[int, int]  # height, width the model sees
    preprocessing: Preprocessing
    weights_source: str  # a description
    weights_file: Path | None
    num_classes: int
    weights_status: str = ""  # "on this computer", "not downloaded yet"…; "" for a loaded model
    diagrams: tuple[BlockDiagram, ...] = field(default=(), repr=False)

    @property
    def multiply_adds(self) -> float:
        """FLOPs / 2: the unit torchvision's documentation (``GFLOPS``) and the papers count."""
        return self.flops / 2

    @property
    def depth(self) -> int:
        """Weighted layers: the convolutions of the blocks and the stem, and the classifier."""
        per_block = 3 if self.block_type == "bottleneck" or "bottleneck" in self.block_detail else 2
        stem_convs = sum(1 for layer in self.stem if "conv" in layer)
        return per_block * sum(stage.blocks for stage in self.stages) + stem_convs + 1

    def block_diagram(self, name: str | None = None) -> BlockDiagram:
        """The drawing of one block: ``name`` ("layer2.0"), else the first block of the second stage
        (the first whose shortcut must change the shape), else the first block."""
        if not self.diagrams:
            raise ValueError(f"{self.display_name} has no residual blocks to draw")
        if name is not None:
            for diagram in self.diagrams:
                if diagram.name == name:
                    return diagram
            raise ValueError(f"{self.display_name} has no block '{name}' to draw")
        for diagram in self.diagrams:
            if diagram.stage == 2 and diagram.position == 0:
                return diagram
        return self.diagrams[0]

    def shortcut_kinds(self) -> tuple[ShortcutKind, ...]:
        """Every shortcut kind the model uses, in order of first use."""
        seen: dict[ShortcutKind, None] = {}
        for stage in self.stages:
            for kind in stage.shortcuts:
                seen.setdefault(kind, None)
        return tuple(seen)

    def lines(self) -> list[str]:
        """The description as a non-programmer reads it (the CLI prints these)."""
        height, width = self.input_size
        blocks = sum(stage.blocks for stage in self.stages)
        plain = self.shortcut_kinds() == ("none",)
        network = "plain network (no shortcuts)" if plain else "residual network"
        lines = [
            f"{self.display_name}",
            f"  A {network} of {len(self.stages)} stages with {blocks} {'' if plain else 'residual '}"
            f"blocks in all ({self.depth} layers with weights).",
            f"  Block type: {BLOCK_WORDS.get(self.block_type, self.block_type)}"
            + (f"; {self.block_detail}" if self.block_detail not in ("", self.block_type) else "")
            + ".",
            f"  Stem (before the first stage): {' · '.join(self.stem) or 'none'}.",
            "  Stages:",
        ]
        for index, stage in enumerate(self.stages, 1):
            size = f"{stage.out_size[0]}×{stage.out_size[1]}"
            halves = "halves the image" if stage.stride == 2 else f"shrinks the image {stage.stride}×"
            step = "keeps the image size" if stage.stride == 1 else halves
            lines.append(
                f"    {index}. {stage.name}: {stage.blocks} block{'s' if stage.blocks != 1 else ''}, "
                f"{stage.out_channels} channels out at {size}, {step}; shortcut: {stage.shortcut}"
            )
        lines.append(f"  Head (after the last stage): {' · '.join(self.head) or 'none'}.")
        lines.append("  Shortcuts used:")
        lines.extend(f"    - {SHORTCUT_WORDS.get(kind, kind)}" for kind in self.shortcut_kinds())
        lines += [
            f"  Parameters: {self.parameters:,} ({self.parameters / 1e6:.1f} million).",
            f"  Work for one {height}×{width} image: {amount(self.flops)} FLOPs "
            f"({amount(self.multiply_adds)} multiply-adds), {FLOP_NOTE}.",
            f"  Input: {height}×{width} pixels. Preparing a photo: {preprocessing_words(self.preprocessing)}",
            f"  Classes: {self.num_classes:,}.",
            f"  Weights: {self.weights_source}.",
        ]
        if self.weights_file is not None:
            status = f" ({self.weights_status})" if self.weights_status else ""
            lines.append(f"  Weights file: {self.weights_file}{status}.")
        return lines


def amount(count: float) -> str:
    """A large count for people: "3.63 billion", "81.4 million"."""
    if count >= 1e9:
        return f"{count / 1e9:.2f} billion"
    return f"{count / 1e6:.1f} million"


def preprocessing_words(pre: Preprocessing) -> str:
    """How a photo is prepared for the model, in one sentence."""
    if pre.resize_size == pre.crop_size:
        size = f"resize it to {pre.crop_size} pixels on its shorter side ({pre.interpolation}) and keep "
        size += f"the centre {pre.crop_size}×{pre.crop_size}"
    else:
        size = (
            f"resize its shorter side to {pre.resize_size} pixels ({pre.interpolation}), "
            f"cut out the centre {pre.crop_size}×{pre.crop_size}"
        )
    if all(abs(s * 255 - 1) < 1e-6 for s in pre.std):
        mean = ", ".join(f"{m * 255:.1f}" for m in pre.mean)
        scale = f"keep the 0–255 values and subtract the mean ({mean})"
    else:
        mean = ", ".join(f"{m:.3f}" for m in pre.mean)
        std = ", ".join(f"{s:.3f}" for s in pre.std)
        scale = f"scale to 0–1, subtract the mean ({mean}) and divide by the standard deviation ({std})"
    order = "" if pre.channel_order == "RGB" else f", colour channels in {pre.channel_order} order"
    return f"{size}, {scale}{order}."


# ---------------------------------------------------------------------------------------- building


def describe_model(
    spec_or_loaded: ModelSpec | LoadedModel,
    weights: str | WeightsSpec | None = None,
    *,
    lock: AbstractContextManager[Any] | threading.RLock | None = None,
) -> ModelDescription:
    """Describe a registry architecture (with its ``weights`` variant, default: the default one) or a
    loaded model (its own preprocessing, classes and weights file; ``lock``, when the model is in use
    by other threads, is held while it is copied). Takes a second or so (one forward pass on ``meta``).
    """
    if isinstance(spec_or_loaded, LoadedModel):
        loaded = spec_or_loaded
        spec = get_model_spec(loaded.architecture)
        with lock if lock is not None else nullcontext():
            network = _meta_copy(loaded.model)
        shown = spec.display_name if loaded.name.startswith(f"{spec.name}:") else loaded.name
        source = loaded.weights_description
        if loaded.source is not None and source == f"file {loaded.source}":
            source = "read from the weights file below (fine-tuned, imported or saved by the user)"
        display = shown if shown == spec.display_name else f"{shown} — {spec.display_name}"
        return _describe_network(
            network,
            spec,
            display_name=display,
            preprocessing=loaded.preprocessing,
            num_classes=len(loaded.categories),
            weights_source=source,
            weights_file=loaded.source,
        )
    spec = spec_or_loaded
    if weights is None and not spec.weights:  # an architecture without trained weights (a plain net)
        num_classes = int(getattr(spec, "num_classes", 1000))
        return _describe_network(
            _meta_build(spec, num_classes),
            spec,
            display_name=spec.display_name,
            preprocessing=getattr(spec, "preprocessing", None) or Preprocessing(),
            num_classes=num_classes,
            weights_source="none yet: there are no trained weights for this model (train it from "
            "scratch, or import a checkpoint)",
            weights_file=None,
        )
    weights_spec = weights if isinstance(weights, WeightsSpec) else spec.get_weights(weights)
    return _describe_network(
        _meta_build(spec, weights_spec.num_classes),
        spec,
        display_name=spec.display_name,
        preprocessing=weights_spec.preprocessing,
        num_classes=weights_spec.num_classes,
        weights_source=f"{weights_spec.name}: {weights_spec.description or weights_spec.source}",
        weights_file=weights_spec.path,
        weights_status=STATUS_WORDS.get(weights_spec.status(), weights_spec.status()),
    )


def describe_reference(reference: str) -> ModelDescription:
    """A registry name (``resnet50``), ``name:WEIGHTS`` or a weights file / bundle, described.

    A name is only built (its weights need not be on this computer); a file is loaded, so its own
    preprocessing, classes and origin are shown. Unknown names and unreadable files raise the
    registry's typed errors (one sentence each).
    """
    from resnet_gui.core.models import load_model, looks_like_a_file, parse_model_ref

    if looks_like_a_file(reference):
        return describe_model(load_model(weights_file=reference))
    name, weights_name = parse_model_ref(reference)
    return describe_model(get_model_spec(name), weights_name)


def _meta_build(spec: ModelSpec, num_classes: int) -> torch.nn.Module:
    """The architecture with shapes only (no memory for weights, no random initialisation work)."""
    import torch

    try:
        with torch.device("meta"):
            return spec.build(num_classes=num_classes)
    except (NotImplementedError, RuntimeError):  # a builder that needs real tensors while building
        return _meta_copy(spec.build(num_classes=num_classes))


def _meta_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose parameters and buffers live on ``meta``: the original is untouched
    and none of its weights are copied."""
    import torch

    memo: dict[int, Any] = {}
    for tensor in (*model.parameters(), *model.buffers()):
        meta = tensor.detach().to("meta")
        if isinstance(tensor, torch.nn.Parameter):
            meta = torch.nn.Parameter(meta, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = meta
    return copy.deepcopy(model, memo)


def _stage_names(spec: ModelSpec, network: torch.nn.Module) -> tuple[str, ...]:
    layout = getattr(spec, "layout", None)
    stages = getattr(layout, "stages", None) if layout is not None else None
    if stages:
        return tuple(str(name) for name in stages)
    return tuple(name for name in TORCHVISION_STAGES if hasattr(network, name))


def _blocks_of(stage: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """A stage's residual blocks: its children, or those of its ``blocks`` (timm's ResNet v2)."""
    inner = getattr(stage, "blocks", None)
    container = inner if inner is not None else stage
    prefix = "blocks." if inner is not None else ""
    return [(f"{prefix}{name}", block) for name, block in container.named_children()]


def _block_type(block: torch.nn.Module) -> tuple[BlockType, str]:
    import torch

    name = type(block).__name__
    bottleneck = hasattr(block, "conv3")
    shape = "bottleneck" if bottleneck else "basic"
    kind: BlockType = "pre-activation" if name.startswith("PreAct") else shape  # type: ignore[assignment]
    middle = getattr(block, "conv2", None)
    detail = f"pre-activation {shape}" if kind == "pre-activation" else shape
    last = getattr(block, "conv3", None)
    if isinstance(middle, torch.nn.Conv2d) and middle.groups > 1:
        width = middle.in_channels // middle.groups
        detail += f", {middle.groups} groups of {width} channels in its 3×3 convolution (ResNeXt)"
    elif isinstance(middle, torch.nn.Conv2d) and isinstance(last, torch.nn.Conv2d):
        widening = middle.out_channels * BOTTLENECK_EXPANSION / last.out_channels
        if widening > 1:
            detail += f", its 3×3 convolution {widening:g}× as wide as ResNet-50's (Wide ResNet)"
    return kind, detail


def _shortcut_module(block: torch.nn.Module) -> tuple[str, torch.nn.Module | None]:
    import torch

    for attribute in SHORTCUT_ATTRIBUTES:
        module = getattr(block, attribute, None)
        if isinstance(module, torch.nn.Module):
            return attribute, module
    return "", None


def _shortcut_kind(block: torch.nn.Module) -> ShortcutKind:
    """From the block itself: the CIFAR blocks say it (``shortcut_kind``); torchvision's and timm's
    keep a ``downsample`` module (none: identity) whose layers tell projection from avg-pool + projection."""
    import torch

    declared = getattr(block, "shortcut_kind", None)
    if isinstance(declared, str):
        return declared if declared in SHORTCUT_WORDS else "other"  # type: ignore[return-value]
    _, module = _shortcut_module(block)
    if module is None:
        return "identity"
    layers = list(module.modules())
    has_conv = any(isinstance(layer, torch.nn.Conv2d) for layer in layers)
    has_pool = any(isinstance(layer, torch.nn.AvgPool2d) for layer in layers)
    if has_conv:
        return "avg-pool + projection" if has_pool else "projection"
    if not any(True for _ in module.parameters()) and not list(module.children()):
        return "identity" if isinstance(module, torch.nn.Identity) else "other"
    return "other"


def _label(module: torch.nn.Module) -> DiagramLayer | None:
    """The box of a layer module (None: not a layer a drawing shows, e.g. Identity, Dropout)."""
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm

    if isinstance(module, torch.nn.Conv2d):
        kh, kw = module.kernel_size
        text = f"{kh}×{kw} conv, {module.out_channels}"
        stride = module.stride[0]
        if stride > 1:
            text += f", /{stride}"
        if module.groups > 1:
            text += f", {module.groups} groups"
        return DiagramLayer(text, "conv")
    if isinstance(module, _BatchNorm):
        return DiagramLayer("BN", "norm")
    if isinstance(module, torch.nn.GroupNorm | torch.nn.LayerNorm):
        return DiagramLayer(type(module).__name__, "norm")
    if isinstance(
        module, torch.nn.ReLU | torch.nn.ReLU6 | torch.nn.SiLU | torch.nn.GELU | torch.nn.LeakyReLU
    ):
        return DiagramLayer(type(module).__name__, "act")
    if isinstance(module, torch.nn.MaxPool2d | torch.nn.AvgPool2d):
        kind = "max" if isinstance(module, torch.nn.MaxPool2d) else "avg"
        size = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        stride = module.stride if isinstance(module.stride, int) else module.stride[0]
        return DiagramLayer(f"{size}×{size} {kind}-pool" + (f", /{stride}" if stride > 1 else ""), "pool")
    if isinstance(module, torch.nn.AdaptiveAvgPool2d):
        return DiagramLayer("global average pool", "pool")
    if isinstance(module, torch.nn.AdaptiveMaxPool2d):
        return DiagramLayer("global max pool", "pool")
    if isinstance(module, torch.nn.Linear):
        return DiagramLayer(f"fully connected, {module.out_features}", "fc")
    return None


@dataclass
class _Event:
    """A layer (``layer`` set) or the residual addition (``layer`` None) during the forward pass."""

    module_name: str
    layer: DiagramLayer | None
    inputs: tuple[Any, ...] = ()
    output: Any = None


@dataclass
class _Trace:
    """What the forward pass did: events per block, the stem's and head's layers, stage shapes."""

    blocks: dict[str, list[_Event]] = field(default_factory=dict)
    block_inputs: dict[str, Any] = field(default_factory=dict)
    block_shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    outside: list[tuple[str, DiagramLayer]] = field(default_factory=list)  # stem and head, in order
    stage_shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    current_block: str | None = None
    depth: int = 0  # layer modules running now (an addition inside one is not the block's)
    first_stage_seen: bool = False


_ADD_NAMES = ("add", "add_", "__add__", "__iadd__", "__radd__")
_RELU_NAMES = ("relu", "relu_")


def _is_named(func: Callable[..., Any], names: tuple[str, ...]) -> bool:
    return getattr(func, "__name__", "") in names


def _function_mode(trace: _Trace) -> Any:
    """A TorchFunctionMode that records additions and functional ReLUs made by a block itself."""
    from torch.overrides import TorchFunctionMode

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            result = func(*args, **(kwargs or {}))
            block = trace.current_block
            if block is not None and trace.depth == 0:
                if _is_named(func, _ADD_NAMES) and len(args) >= 2:
                    trace.blocks[block].append(_Event(block, None, tuple(args), result))
                elif _is_named(func, _RELU_NAMES):
                    trace.blocks[block].append(
                        _Event(block, DiagramLayer("ReLU", "act"), tuple(args), result)
                    )
            return result

    return Recorder()


def _hooks(
    network: torch.nn.Module, trace: _Trace, stages: dict[str, str], blocks: set[str]
) -> Iterator[Any]:
    """Register the recording hooks; yields their handles (to be removed)."""
    for name, module in network.named_modules():
        layer = _label(module)
        if name in stages:
            yield module.register_forward_hook(_stage_hook(trace, stages[name]))
        if name in blocks:
            yield module.register_forward_pre_hook(_block_pre_hook(trace, name))
            yield module.register_forward_hook(_block_hook(trace, name))
        if layer is not None:
            yield module.register_forward_pre_hook(_layer_pre_hook(trace, name, layer))
            yield module.register_forward_hook(_layer_hook(trace))


def _shape(tensor: Any) -> tuple[int, ...]:
    return tuple(int(side) for side in getattr(tensor, "shape", ()))


def _stage_hook(trace: _Trace, label: str) -> Callable[..., None]:
    def hook(module: Any, inputs: tuple[Any, ...], output: Any) -> None:
        trace.stage_shapes[label] = (_shape(inputs[0]), _shape(output))

    return hook


def _block_pre_hook(trace: _Trace, name: str) -> Callable[..., None]:
    def hook(module: Any, inputs: tuple[Any, ...]) -> None:
        trace.current_block = name
        trace.first_stage_seen = True
        trace.blocks.setdefault(name, [])
        trace.block_inputs[name] = inputs[0]

    return hook


def _block_hook(trace: _Trace, name: str) -> Callable[..., None]:
    def hook(module: Any, inputs: tuple[Any, ...], output: Any) -> None:
        trace.block_shapes[name] = (_shape(inputs[0]), _shape(output))
        trace.current_block = None

    return hook


def _layer_pre_hook(trace: _Trace, name: str, layer: DiagramLayer) -> Callable[..., None]:
    def hook(module: Any, inputs: tuple[Any, ...]) -> None:
        if trace.current_block is not None:
            trace.blocks[trace.current_block].append(_Event(name, layer, tuple(inputs)))
        else:
            trace.outside.append(("head" if trace.first_stage_seen else "stem", layer))
        trace.depth += 1

    return hook


def _layer_hook(trace: _Trace) -> Callable[..., None]:
    def hook(module: Any, inputs: tuple[Any, ...], output: Any) -> None:
        trace.depth -= 1
        block = trace.current_block
        if block is not None:
            for event in reversed(trace.blocks[block]):
                if event.layer is not None and event.output is None and event.module_name != block:
                    event.output = output
                    break

    return hook


def _describe_network(
    network: torch.nn.Module,
    spec: ModelSpec,
    *,
    display_name: str,
    preprocessing: Preprocessing,
    num_classes: int,
    weights_source: str,
    weights_file: Path | None,
    weights_status: str = "",
) -> ModelDescription:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    network = network.eval()
    stage_names = _stage_names(spec, network)
    stage_modules = {name: network.get_submodule(name) for name in stage_names}
    stage_blocks = {
        name: [(f"{name}.{child}", block) for child, block in _blocks_of(module)]
        for name, module in stage_modules.items()
    }
    block_names = {block_name for blocks in stage_blocks.values() for block_name, _ in blocks}
    trace = _Trace()
    handles = list(_hooks(network, trace, {name: name for name in stage_names}, block_names))
    side = preprocessing.crop_size
    image = torch.zeros(1, 3, side, side, device="meta")
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter, _function_mode(trace):
            network(image)
    finally:
        for handle in handles:
            handle.remove()

    stages = []
    diagrams = []
    for stage_index, name in enumerate(stage_names, 1):
        blocks = stage_blocks[name]
        kinds = [
            _traced_shortcut_kind(block, trace.blocks.get(block_name, [])) for block_name, block in blocks
        ]
        shape_in, shape_out = trace.stage_shapes.get(name, ((), ()))
        stride = (
            shape_in[2] // shape_out[2] if len(shape_in) == 4 and len(shape_out) == 4 and shape_out[2] else 1
        )
        stages.append(
            StageDescription(
                name=name,
                blocks=len(blocks),
                out_channels=shape_out[1] if len(shape_out) == 4 else 0,
                stride=stride,
                out_size=(shape_out[2], shape_out[3]) if len(shape_out) == 4 else (0, 0),
                shortcuts=tuple(kinds),
            )
        )
        for position, ((block_name, block), kind) in enumerate(zip(blocks[:2], kinds, strict=False)):
            title = f"Stage {stage_index}, {'first' if position == 0 else 'second'} block"
            diagrams.append(_diagram(block_name, title, (stage_index, position), block, kind, trace))
    block_types = [_block_type(block) for blocks in stage_blocks.values() for _, block in blocks]
    block_type, detail = block_types[0] if block_types else ("basic", "basic")
    return ModelDescription(
        display_name=display_name,
        architecture=spec.name,
        block_type=block_type,
        block_detail=detail,
        stages=tuple(stages),
        stem=tuple(layer.label for where, layer in trace.outside if where == "stem"),
        head=tuple(layer.label for where, layer in trace.outside if where == "head"),
        parameters=sum(parameter.numel() for parameter in network.parameters()),
        flops=int(counter.get_total_flops()),
        input_size=(side, side),
        preprocessing=preprocessing,
        weights_source=weights_source,
        weights_file=weights_file,
        weights_status=weights_status,
        num_classes=num_classes,
        diagrams=tuple(diagrams),
    )


def _traced_shortcut_kind(block: torch.nn.Module, events: list[_Event]) -> ShortcutKind:
    """The block's shortcut kind; "none" when the forward pass added nothing (a plain block)."""
    kind = _shortcut_kind(block)
    if events and not any(event.layer is None for event in events):
        return "none"
    return kind


def _diagram(
    name: str, title: str, where: tuple[int, int], block: torch.nn.Module, kind: ShortcutKind, trace: _Trace
) -> BlockDiagram:
    events = trace.blocks.get(name, [])
    attribute, _ = _shortcut_module(block)
    prefix = f"{name}.{attribute}." if attribute else None
    main: list[_Event] = []
    shortcut: list[_Event] = []
    after: list[_Event] = []
    added = False
    for event in events:
        if event.layer is None:
            added = True
        elif prefix is not None and event.module_name.startswith(prefix):
            shortcut.append(event)
        elif added:
            after.append(event)
        else:
            main.append(event)
    branch = 0
    if shortcut and shortcut[0].inputs:
        source = shortcut[0].inputs[0]
        if source is not trace.block_inputs.get(name):
            for index, event in enumerate(main):
                if event.output is source:
                    branch = index + 1
    shape_in, shape_out = trace.block_shapes.get(name, ((), ()))
    block_type, _ = _block_type(block)
    return BlockDiagram(
        name=name,
        title=title,
        stage=where[0],
        position=where[1],
        block_type=block_type,
        main_path=tuple(event.layer for event in main if event.layer is not None),
        shortcut=tuple(event.layer for event in shortcut if event.layer is not None),
        shortcut_kind=kind,
        after_add=tuple(event.layer for event in after if event.layer is not None),
        branch=branch,
        has_add=added,
        in_shape=_chw(shape_in),
        out_shape=_chw(shape_out),
    )


def _chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return (shape[1], shape[2], shape[3]) if len(shape) == 4 else (0, 0, 0)
