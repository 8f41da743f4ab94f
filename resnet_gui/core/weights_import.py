"""Weights from elsewhere: a checkpoint of other code, recognised from its tensors and mapped onto a
model of the registry, never unpickled.

The file is read by :func:`resnet_gui.core.checkpoints.read_weights_file` (``weights_only=True`` or
safetensors, the ``state_dict``/``model``/``module.`` wrappers removed). What it is comes from the
tensors alone:

* **CIFAR ResNets of the 2015 paper** (akamaster/pytorch_resnet_cifar10 and the like): a 3×3
  ``conv1``, three stages ``layer1..layer3``; depth ``6n+2`` from the ``n`` blocks per stage;
  option B when the blocks have ``shortcut.*`` projections. Without shortcut tensors a file is
  option A or a plain net, which weigh the same: akamaster's classifier name (``linear.*``, which
  becomes ``fc.*``) says option A, anything else is ambiguous and needs ``--arch``.
* **torchvision ResNets** (and timm's plain ones, same names): a 7×7 ``conv1`` and four stages;
  the depth from the block counts and block type, ResNeXt/Wide from the convolution shapes. A
  ResNet-50 is taken as torchvision's (v1.5); the 2015 paper's v1 has the same tensors, so it
  needs ``--arch resnet50_v1``.
* **timm ResNet-D**: the deep stem ``conv1.0/conv1.3/conv1.6`` and the average-pool shortcut.
* **timm ResNet v2** (pre-activation): ``stem.conv*`` and ``stages.*`` keys.

Every candidate is then checked against the registry model built on the ``meta`` device (no
memory, no time): every tensor of the file must land in the model and every tensor of the model
must come from the file, with the same shape, or the file is refused naming what differs.

:func:`import_weights` writes the mapped weights as the app's safetensors (the metadata of a
bundle: architecture, preprocessing, class names, where they came from), atomically.
:func:`adapt_checkpoint` does the same mapping on the fly for :func:`resnet_gui.core.models.load_model`,
so such a checkpoint also works as ``--model FILE``. No Qt here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from resnet_gui.core.cifar_resnet import CIFAR10_CLASSES
from resnet_gui.core.errors import WeightsError, WeightsShapeMismatchError
from resnet_gui.core.formats import BUNDLE_FORMAT
from resnet_gui.core.models import AKAMASTER_WEIGHTS, CIFAR_PREPROCESSING
from resnet_gui.core.preprocessing import Preprocessing

if TYPE_CHECKING:
    import torch

__all__ = [
    "AKAMASTER_WEIGHTS",
    "CIFAR10_CLASSES",
    "CIFAR_PREPROCESSING",
    "AmbiguousArchitectureError",
    "ClassNamesError",
    "Detection",
    "ImportResult",
    "UnknownArchitectureError",
    "UnknownDepthError",
    "WeightsImportError",
    "adapt_checkpoint",
    "detect_checkpoint",
    "import_weights",
    "read_class_names",
]

Progress = Callable[[str], None] | None

AKAMASTER = "akamaster/pytorch_resnet_cifar10"

MAX_CLASSES_FILE_BYTES = 4 * 1024 * 1024
MAX_CLASSES = 100_000
_LISTED = 4  # layers named in a message, at most
_HASH_CHUNK = 1 << 20


class WeightsImportError(WeightsError):
    """A checkpoint from elsewhere that cannot be recognised or mapped onto a registry model."""


class UnknownArchitectureError(WeightsImportError):
    """The tensors match none of the architectures this app can recognise."""


class UnknownDepthError(WeightsImportError):
    """A recognised family, but a depth (or block layout) that no registry model has."""


class AmbiguousArchitectureError(WeightsImportError):
    """Several registry models fit the tensors exactly: ``candidates`` lists them; ``--arch`` picks one."""

    def __init__(self, message: str, candidates: Sequence[str]) -> None:
        super().__init__(message)
        self.candidates = tuple(candidates)


class ClassNamesError(WeightsImportError):
    """A class-names file that cannot name this classifier's outputs (count, empty, repeated names)."""


class CheckpointMismatchError(WeightsImportError, WeightsShapeMismatchError):
    """The file's tensors do not fit the architecture: the sentence names the layers and shapes."""


@dataclass(frozen=True)
class Detection:
    """What a checkpoint is, and its tensors renamed for the registry model ``architecture``."""

    architecture: str
    family: str  # the registry's: "cifar", "torchvision", "timm", "keras"
    description: str  # "CIFAR ResNet-20 (option A shortcuts)"
    num_classes: int
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    origin: str = ""  # AKAMASTER when its names are akamaster's


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_weights` wrote."""

    path: Path
    architecture: str
    description: str
    num_classes: int
    categories: tuple[str, ...]
    preprocessing: Preprocessing
    sha256: str
    model_ref: str | None = (
        None  # "cifar_resnet20:AKAMASTER_CIFAR10" when written as a registry entry's weights
    )

    def summary(self) -> str:
        more = ", …" if self.num_classes > 3 else ""
        classes = (
            f"{self.num_classes} classes ({', '.join(self.categories[:3])}{more})"
            if self.categories
            else f"{self.num_classes} classes, unnamed"
        )
        size = self.preprocessing.crop_size
        return f"{self.description} → {self.architecture}, {classes}, {size}×{size} input"


# --------------------------------------------------------------------------- names and shapes


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _listing(keys: Sequence[str], limit: int = _LISTED) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _counted(key: str) -> bool:
    """A training counter (``num_batches_tracked``) may be missing or extra: it is no weight."""
    return not key.endswith("num_batches_tracked")


def _blocks(state_dict: Mapping[str, torch.Tensor], pattern: str) -> dict[int, int]:
    """``stage -> number of blocks`` from keys like ``layer2.3.conv1.weight`` (``pattern`` has two groups)."""
    regex = re.compile(pattern)
    counts: dict[int, int] = {}
    for key in state_dict:
        match = regex.match(key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            counts[stage] = max(counts.get(stage, 0), block + 1)
    return dict(sorted(counts.items()))


def _classifier_outputs(state_dict: Mapping[str, torch.Tensor]) -> int | None:
    for key in ("fc.weight", "head.fc.weight"):
        weight = state_dict.get(key)
        if weight is not None and weight.ndim in (2, 4) and weight.shape[0] >= 1:
            return int(weight.shape[0])
    return None


def _registry_names() -> list[str]:
    from resnet_gui.core.models import model_names

    return model_names()


def _meta_state_dict(architecture: str, num_classes: int) -> dict[str, tuple[int, ...]]:
    """The registry model's tensor names and shapes, built on the meta device (no memory, no init)."""
    import torch

    from resnet_gui.core.models import get_model_spec

    spec = get_model_spec(architecture)
    with torch.device("meta"):
        network = spec.build(num_classes=num_classes)
    return {key: tuple(value.shape) for key, value in network.state_dict().items()}


@dataclass(frozen=True)
class _Fit:
    architecture: str
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # key, in the file, in the model

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.mismatched)


def _fit(architecture: str, state_dict: Mapping[str, torch.Tensor], num_classes: int) -> _Fit:
    expected = _meta_state_dict(architecture, num_classes)
    missing = tuple(k for k in expected if k not in state_dict and _counted(k))
    unexpected = tuple(k for k in state_dict if k not in expected and _counted(k))
    mismatched = tuple(
        (k, tuple(state_dict[k].shape), expected[k])
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != expected[k]
    )
    return _Fit(architecture, missing, unexpected, mismatched)


def _mismatch(fit: _Fit, source: str) -> CheckpointMismatchError:
    """One sentence: which layers differ (file vs model shapes), which are missing or extra."""
    parts = [
        f"{key} is {_shape(have)} in the file but {_shape(want)} in the model"
        for key, have, want in fit.mismatched[:_LISTED]
    ]
    if len(fit.mismatched) > _LISTED:
        parts.append(f"{len(fit.mismatched) - _LISTED} more layers have other shapes")
    if fit.missing:
        parts.append(f"missing from the file: {_listing(fit.missing)}")
    if fit.unexpected:
        parts.append(f"in the file but not in the model: {_listing(fit.unexpected)}")
    error = CheckpointMismatchError(
        f"{_the_file(source)} does not fit {fit.architecture}: " + "; ".join(parts) + "."
    )
    error.mismatched = {k: (want, have) for k, have, want in fit.mismatched}  # type: ignore[attr-defined]
    error.missing = list(fit.missing)  # type: ignore[attr-defined]
    error.unexpected = list(fit.unexpected)  # type: ignore[attr-defined]
    return error


def _the_file(source: str) -> str:
    return f"'{Path(source).name}'" if source else "The checkpoint"


# --------------------------------------------------------------------------- recognising


@dataclass(frozen=True)
class _Guess:
    family: str
    description: str
    candidates: tuple[str, ...]  # registry names to try, in order of preference
    origin: str = ""


def _to_registry_names(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Rename what other code names differently; ``(state_dict, origin)``.

    akamaster's classifier is ``linear.*`` where the registry's CIFAR nets (and torchvision) say
    ``fc.*``; nothing else is renamed or dropped (wrappers are gone already).
    """
    tensors = dict(state_dict)
    for prefix in ("module.", "_orig_mod."):  # a state dict given directly, not read from a file
        if tensors and all(k.startswith(prefix) for k in tensors):
            tensors = {k.removeprefix(prefix): v for k, v in tensors.items()}
    if "linear.weight" in tensors and "fc.weight" not in tensors:
        renamed = {
            ("fc." + k.removeprefix("linear.") if k.startswith("linear.") else k): v
            for k, v in tensors.items()
        }
        return renamed, AKAMASTER
    return tensors, ""


def _depth_error(source: str, what: str, family_names: Sequence[str]) -> UnknownDepthError:
    known = ", ".join(family_names) if family_names else "none"
    return UnknownDepthError(
        f"{_the_file(source)} holds {what}, which no model of this app has (known: {known})."
    )


def _guess(state_dict: Mapping[str, torch.Tensor], source: str, origin: str) -> _Guess:
    names = _registry_names()
    conv1 = state_dict.get("conv1.weight")
    keys = list(state_dict)
    if any(k.startswith("stages.") for k in keys) and any(k.startswith("stem.") for k in keys):
        return _guess_v2(state_dict, source, names)
    if all(f"conv1.{i}.weight" in state_dict for i in (0, 3, 6)):
        return _guess_resnet_d(state_dict, source, names)
    if conv1 is not None and conv1.ndim == 4 and "layer1.0.conv1.weight" in state_dict:
        stages = _blocks(state_dict, r"layer(\d+)\.(\d+)\.")
        if conv1.shape[-1] == 3 and list(stages) == [1, 2, 3]:
            return _guess_cifar(state_dict, source, names, stages, akamaster=origin == AKAMASTER)
        if list(stages) == [1, 2, 3, 4]:
            return _guess_torchvision(state_dict, source, names, stages)
    shown = _listing([k for k in keys if _counted(k)], 3)
    raise UnknownArchitectureError(
        f"{_the_file(source)} is not a ResNet this app recognises: its {len(keys)} tensors ({shown}) have "
        "neither the layer names of torchvision's or timm's ResNets nor those of the CIFAR ResNets; "
        "if you know which model it is, name it (--arch NAME, or --model NAME --weights FILE)."
    )


def _guess_cifar(
    state_dict: Mapping[str, torch.Tensor],
    source: str,
    names: list[str],
    stages: dict[int, int],
    *,
    akamaster: bool,
) -> _Guess:
    family = sorted({int(m.group(1)) for n in names if (m := re.fullmatch(r"cifar_resnet(\d+)", n))})
    counts = list(stages.values())
    if len(set(counts)) != 1:
        per_stage = ", ".join(str(c) for c in counts)
        raise _depth_error(
            source,
            f"a CIFAR ResNet with {per_stage} blocks in its 3 stages (the paper's have the same number n "
            "in each, 6n+2 layers)",
            [f"ResNet-{d}" for d in family],
        )
    depth = 6 * counts[0] + 2
    projection = any(re.match(r"layer\d+\.\d+\.shortcut\.", k) for k in state_dict)
    if projection:
        description = f"CIFAR ResNet-{depth} (option B projection shortcuts)"
        candidates: tuple[str, ...] = (f"cifar_resnet{depth}_b",)
    elif akamaster:
        description = f"CIFAR ResNet-{depth} (option A zero-padding shortcuts) of {AKAMASTER}"
        candidates = (f"cifar_resnet{depth}",)
    else:
        description = f"CIFAR ResNet-{depth} (option A, or the plain net: their tensors are the same)"
        candidates = (f"cifar_resnet{depth}", f"cifar_plain{depth}")
    candidates = tuple(c for c in candidates if c in names)
    if not candidates:
        raise _depth_error(source, f"a CIFAR ResNet-{depth}", [f"ResNet-{d}" for d in family])
    return _Guess("cifar", description, candidates, AKAMASTER if akamaster else "")


def _depth_of(
    state_dict: Mapping[str, torch.Tensor], stages: dict[int, int], first_block: str
) -> tuple[int, str]:
    bottleneck = f"{first_block}.conv3.weight" in state_dict
    depth = (3 if bottleneck else 2) * sum(stages.values()) + 2
    return depth, "bottleneck" if bottleneck else "basic"


def _guess_torchvision(
    state_dict: Mapping[str, torch.Tensor], source: str, names: list[str], stages: dict[int, int]
) -> _Guess:
    from resnet_gui.core.models import TORCHVISION_ARCHITECTURES

    depth, block = _depth_of(state_dict, stages, "layer1.0")
    candidates = tuple(
        n for n in TORCHVISION_ARCHITECTURES if n in names and re.search(rf"(?<!\d){depth}(?!\d)", n)
    )
    if not candidates:
        per_stage = ", ".join(str(c) for c in stages.values())
        raise _depth_error(
            source,
            f"a ResNet-{depth} ({block} blocks, {per_stage} per stage)",
            sorted(
                {
                    f"ResNet-{m.group(1)}"
                    for n in TORCHVISION_ARCHITECTURES
                    if (m := re.fullmatch(r"resnet(\d+)", n))
                },
                key=lambda s: int(s.split("-")[1]),
            ),
        )
    return _Guess("torchvision", f"ResNet-{depth} ({block} blocks, torchvision's layer names)", candidates)


def _guess_resnet_d(state_dict: Mapping[str, torch.Tensor], source: str, names: list[str]) -> _Guess:
    stages = _blocks(state_dict, r"layer(\d+)\.(\d+)\.")
    depth, block = _depth_of(state_dict, stages, "layer1.0")
    family = [n for n in names if re.fullmatch(r"resnet\d+d", n)]
    candidate = f"resnet{depth}d"
    if candidate not in names:
        raise _depth_error(source, f"a deep-stem ResNet-{depth} ({block} blocks, timm's names)", family)
    return _Guess("timm", f"ResNet-{depth}-D (timm: deep stem, average-pool shortcuts)", (candidate,))


def _guess_v2(state_dict: Mapping[str, torch.Tensor], source: str, names: list[str]) -> _Guess:
    stages = _blocks(state_dict, r"stages\.(\d+)\.blocks\.(\d+)\.")
    depth, block = _depth_of(state_dict, stages, "stages.0.blocks.0")
    deep = "stem.conv1.weight" in state_dict
    family = [n for n in names if n.startswith("resnetv2_")]
    if "stages.0.blocks.0.norm1.running_mean" not in state_dict and "stem.conv.weight" in state_dict:
        width = int(state_dict["stem.conv.weight"].shape[0]) // 64  # BiT: group norm, widened
        candidate = f"resnetv2_{depth}x{width}_bit"
    else:
        candidate = f"resnetv2_{depth}{'d' if deep else ''}"
    if candidate not in names:
        raise _depth_error(source, f"a pre-activation ResNet-{depth} v2 ({candidate} in timm)", family)
    stem = "deep stem" if deep else "7×7 stem"
    return _Guess("timm", f"ResNet-{depth} v2 (timm: pre-activation {block} blocks, {stem})", (candidate,))


def detect_checkpoint(
    state_dict: Mapping[str, torch.Tensor], *, arch: str | None = None, source: str = ""
) -> Detection:
    """Recognise a checkpoint's architecture (or take ``arch``) and map its tensors onto that registry model.

    Raises :class:`UnknownArchitectureError` (no family fits the names), :class:`UnknownDepthError`
    (a family this app knows, at a depth it has no model for), :class:`AmbiguousArchitectureError`
    (several models fit exactly: ``--arch``), :class:`CheckpointMismatchError` (the tensors do not
    land exactly: names and shapes), :class:`~resnet_gui.core.errors.UnknownModelError` (``arch``
    is not a registry name).
    """
    from resnet_gui.core.models import get_model_spec

    tensors, origin = _to_registry_names(state_dict)
    num_classes = _classifier_outputs(tensors)
    if arch is not None:
        spec = get_model_spec(arch)
        guess = _Guess("", spec.display_name, (spec.name,), origin)
    else:
        guess = _guess(tensors, source, origin)
    if num_classes is None:
        raise WeightsImportError(
            f"{_the_file(source)} has no classifier ('fc.weight' or 'linear.weight'), so it cannot classify."
        )
    fits = [_fit(name, tensors, num_classes) for name in guess.candidates]
    exact = [fit.architecture for fit in fits if fit.exact]
    if not exact:
        raise _mismatch(min(fits, key=lambda fit: fit.problems), source)
    if len(exact) > 1:
        choices = " or ".join(exact)
        raise AmbiguousArchitectureError(
            f"{_the_file(source)} holds a {guess.description}, so it could be {choices}: say which with "
            f"--arch NAME (resnet-gui weights import) or --model NAME --weights FILE.",
            exact,
        )
    spec = get_model_spec(exact[0])
    description = guess.description
    if guess.family == "torchvision":  # the convolution shapes told ResNet from ResNeXt and Wide ResNet
        description = f"{spec.display_name} (torchvision's layer names)"
    return Detection(exact[0], spec.family, description, num_classes, tensors, origin)


# --------------------------------------------------------------------------- what the weights expect


def _default_preprocessing(detection: Detection) -> Preprocessing:
    if detection.family == "cifar":
        return CIFAR_PREPROCESSING
    from resnet_gui.core.models import get_model_spec

    return get_model_spec(detection.architecture).preprocessing


def _default_categories(detection: Detection) -> tuple[str, ...]:
    if detection.family == "cifar" and detection.num_classes == len(CIFAR10_CLASSES):
        return CIFAR10_CLASSES
    if detection.num_classes == 1000:
        from resnet_gui.core.models import imagenet_categories

        return imagenet_categories()
    return ()


def _preprocessing(
    base: Preprocessing,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    size: int | None,
) -> Preprocessing:
    """``base`` with the user's mean, std and input size (the resize keeps ``base``'s ratio to the crop)."""
    from resnet_gui.core.errors import ModelMetadataError

    data = base.to_dict()
    if mean is not None:
        data["mean"] = [float(v) for v in mean]
    if std is not None:
        data["std"] = [float(v) for v in std]
    if size is not None:
        data["crop_size"] = int(size)
        data["resize_size"] = max(int(size), round(int(size) * base.resize_size / base.crop_size))
    try:
        return Preprocessing.from_dict(data)
    except ModelMetadataError as error:
        problem = error.problem.removeprefix("its preprocessing ")
        raise WeightsImportError(f"The preprocessing asked for cannot be used: {problem}.") from None


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """Class names from a text file, one per line (blank lines skipped, spaces around a name removed)."""
    from resnet_gui.core.metadata import MAX_NAME_LENGTH
    from resnet_gui.core.userfiles import UserFileError, read_user_text

    path = Path(path)
    try:
        text = read_user_text(path, max_bytes=MAX_CLASSES_FILE_BYTES)
    except UserFileError as error:
        raise ClassNamesError(f"Cannot read the class names file '{path}': {error.reason}.") from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise ClassNamesError(f"The class names file '{path.name}' names no class (one name per line).")
    for number, name in enumerate(names, start=1):
        if len(name) > MAX_NAME_LENGTH:
            raise ClassNamesError(
                f"Class name {number} of '{path.name}' is {len(name):,} characters long "
                f"(at most {MAX_NAME_LENGTH})."
            )
        if any(ord(c) < 32 for c in name):
            raise ClassNamesError(f"Class name {number} of '{path.name}' holds control characters.")
    repeated = (
        next((name for name in names if names.count(name) > 1), None)
        if len(set(names)) != len(names)
        else None
    )
    if repeated is not None:
        raise ClassNamesError(f"The class name {json.dumps(repeated)[:60]} appears twice in '{path.name}'.")
    return names


def _check_class_count(names: Sequence[str], num_classes: int, classes_file: Path, source: str) -> None:
    if len(names) != num_classes:
        raise ClassNamesError(
            f"'{classes_file.name}' names {len(names)} classes but the classifier of {_the_file(source)} "
            f"has {num_classes} outputs: give one name per output, one per line, in the order of the outputs."
        )


def _sha256(path: Path) -> str:
    from resnet_gui.core.userfiles import UserFileError, open_user_file

    digest = hashlib.sha256()
    try:
        with open_user_file(path) as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    except (UserFileError, OSError) as error:
        raise WeightsImportError(f"Cannot read '{path}' again to fingerprint it: {error}.") from None
    return digest.hexdigest()


def _source_scalars(metadata: Mapping[str, str]) -> str:
    """The checkpoint's own scalars (``best_prec1``, ``epoch``), bounded, as JSON for the record."""
    kept = {k[:40]: v[:80] for k, v in list(metadata.items())[:20]}
    return json.dumps(kept)


def _registry_slot(detection: Detection) -> tuple[Path, str] | None:
    """The imported-weights path and ref of the registry entry these weights are (akamaster's CIFAR nets)."""
    from resnet_gui.core.models import get_model_spec

    if detection.origin != AKAMASTER:
        return None
    spec = get_model_spec(detection.architecture)
    for weights in spec.weights:
        if weights.name == AKAMASTER_WEIGHTS and weights.source == "imported" and weights.filename:
            if weights.num_classes != detection.num_classes:
                return None
            return weights.path, f"{spec.name}:{weights.name}"
    return None


def _metadata_for(
    detection: Detection,
    preprocessing: Preprocessing,
    categories: Sequence[str],
    *,
    name: str,
    source: str,
) -> dict[str, str]:
    metadata = {
        "format": BUNDLE_FORMAT,
        "architecture": detection.architecture,
        "name": name,
        "source": source,
        "preprocessing": json.dumps(preprocessing.to_dict()),
        "num_classes": str(detection.num_classes),
    }
    if categories:
        metadata["categories"] = json.dumps(list(categories))
    return metadata


def adapt_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str],
    source: str | Path,
    *,
    arch: str | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A checkpoint from elsewhere, for :func:`~resnet_gui.core.models.load_model`: its tensors mapped
    and its metadata completed (architecture, and for a CIFAR net its preprocessing and CIFAR-10's names).

    The same recognition and the same errors as :func:`import_weights`; nothing is written.
    """
    detection = detect_checkpoint(state_dict, arch=arch, source=str(source))
    completed = dict(metadata)
    completed["architecture"] = detection.architecture
    if detection.family == "cifar":
        completed.setdefault("preprocessing", json.dumps(CIFAR_PREPROCESSING.to_dict()))
        categories = _default_categories(detection)
        if categories:
            completed.setdefault("categories", json.dumps(list(categories)))
    completed.setdefault("source", f"{detection.description}, from {Path(source).name}")
    return detection.state_dict, completed


def import_weights(
    path: str | Path,
    arch: str | None = None,
    classes: str | Path | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    size: int | None = None,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: Progress = None,
) -> ImportResult:
    """Import a checkpoint from elsewhere into the app's safetensors format; what was written.

    ``arch`` names the registry model when the tensors leave it open; ``classes`` is a text file of
    class names (one per line, as many as the classifier has outputs; default: CIFAR-10's for a
    10-class CIFAR net, ImageNet's for 1000 outputs); ``mean``/``std``/``size`` replace the
    preprocessing (default: the CIFAR nets' 32×32 without resize and the ImageNet mean/std, else the
    registry model's). ``out`` defaults to the registry entry's imported-weights file for
    akamaster's CIFAR nets (the model picker then offers them), else ``models/NAME.safetensors`` in
    the app's data folder. The file is read without unpickling code, written atomically, and only
    after the weights loaded into the model and a forward pass gave finite outputs.
    """
    from resnet_gui.core.checkpoints import apply_state_dict, read_weights_file, write_weights_file
    from resnet_gui.core.library import models_dir
    from resnet_gui.core.metadata import check_finite_weights
    from resnet_gui.core.models import get_model_spec
    from resnet_gui.core.outputs import OutputTarget, check_outputs

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    path = Path(path).expanduser()
    say(f"Reading {path.name}")
    state_dict, file_metadata = read_weights_file(path)
    if arch is None and file_metadata.get("format") == BUNDLE_FORMAT and file_metadata.get("architecture"):
        arch = file_metadata["architecture"]  # one of ours already: its names are the registry's
    detection = detect_checkpoint(state_dict, arch=arch, source=str(path))
    say(f"Recognised {detection.description}: {detection.architecture}")
    if classes is not None:
        categories = read_class_names(classes)
        _check_class_count(categories, detection.num_classes, Path(classes), str(path))
    else:
        categories = _default_categories(detection)
    customised = classes is not None or mean is not None or std is not None or size is not None
    preprocessing = _preprocessing(_default_preprocessing(detection), mean, std, size)
    check_finite_weights(detection.state_dict, str(path))

    slot = None if customised else _registry_slot(detection)
    if out is not None:
        target, model_ref = Path(out).expanduser(), None
        check_outputs([OutputTarget(target, "bundle")], inputs=[path], overwrite=overwrite)
    elif slot is not None:
        target, model_ref = slot  # the registry entry's own file: importing again replaces it
        check_outputs([OutputTarget(target, "bundle")], inputs=[path], overwrite=True)
    else:
        target, model_ref = models_dir() / f"{_file_stem(path.stem)}.safetensors", None
        check_outputs([OutputTarget(target, "bundle")], inputs=[path], overwrite=overwrite)

    say(f"Checking that every tensor lands in {detection.architecture}")
    network = get_model_spec(detection.architecture).build(num_classes=detection.num_classes)
    apply_state_dict(network, detection.state_dict, source=path.name)
    _self_check(network, preprocessing, path)

    sha256 = _sha256(path)
    name = model_ref or _file_stem(path.stem)
    source = f"{detection.description}, imported from {path.name} (sha256 {sha256})"
    metadata = _metadata_for(detection, preprocessing, categories, name=name, source=source)
    metadata["source_file"] = path.name
    metadata["source_sha256"] = sha256
    if file_metadata and file_metadata.get("format") != BUNDLE_FORMAT:
        metadata["source_metadata"] = _source_scalars(file_metadata)
    say(f"Writing {target}")
    write_weights_file(target, network.state_dict(), metadata)
    return ImportResult(
        path=target,
        architecture=detection.architecture,
        description=detection.description,
        num_classes=detection.num_classes,
        categories=tuple(categories),
        preprocessing=preprocessing,
        sha256=sha256,
        model_ref=model_ref,
    )


def _file_stem(stem: str) -> str:
    """A safe file name stem from the checkpoint's (letters, digits, ``-_.``; bounded)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-") or "imported"
    return cleaned[:80]


def _self_check(network: torch.nn.Module, preprocessing: Preprocessing, path: Path) -> None:
    """One fixed input through the model: weights that give NaN must not be written."""
    import torch

    generator = torch.Generator().manual_seed(0)
    side = preprocessing.crop_size
    image = torch.randn(1, 3, side, side, generator=generator)
    with torch.no_grad():
        logits = network.eval()(image)
    if not bool(torch.isfinite(logits).all()):
        raise WeightsImportError(
            f"The model made from '{path.name}' gives non-finite outputs: its weights are damaged."
        )
