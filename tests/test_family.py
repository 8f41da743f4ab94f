"""The whole ResNet family of the registry: every architecture builds, runs, explains and fine-tunes.

Parametrised over the registry's table (``model_names()``), never a hand list. Every architecture
builds and gives logits for one image at its input size, with its layout's modules where the
layout says. One representative of each kind (the first of its family, layout and shortcut type
in menu order: the smallest depth) also gets Grad-CAM on its spec's layer, a fine-tune step in
``head`` and ``partial`` mode that changes only what the mode trains, and a bundle round trip.
The CIFAR nets are checked against the parameter counts of the 2015 paper (its Table 6).
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_training import make_shapes

from resnet_gui.core.cifar_resnet import (
    CIFAR10_CLASSES,
    CifarBasicBlock,
    CifarDepthError,
    CifarResNet,
    ZeroPadShortcut,
)
from resnet_gui.core.errors import UnknownModelError, WeightsNotAvailableError
from resnet_gui.core.models import (
    AKAMASTER_WEIGHTS,
    CIFAR_LAYOUT,
    TIMM_ARCHITECTURES,
    TORCHVISION_LAYOUT,
    LoadedModel,
    ModelSpec,
    ensure_weights,
    get_model_spec,
    load_model,
    model_names,
    plain_words,
    registry,
)
from resnet_gui.core.preprocessing import Preprocessing
from resnet_gui.core.training import TrainConfig, make_split, run_training, scan_dataset
from resnet_gui.core.training.features import split_model

SPECS: dict[str, ModelSpec] = {name: registry()[name] for name in model_names()}


def _kind(spec: ModelSpec) -> tuple[object, ...]:
    """Family, layout and (for the CIFAR nets) shortcut type: what a representative stands for."""
    shortcut = re.sub(r"\d+", "", spec.name) if spec.family == "cifar" else ""
    return (spec.family, spec.layout, shortcut)


def _representatives() -> list[str]:
    first: dict[tuple[object, ...], str] = {}
    for name, spec in SPECS.items():
        first.setdefault(_kind(spec), name)
    return list(first.values())


REPRESENTATIVES = _representatives()
# The parameters of the 2015 paper's CIFAR-10 ResNets (Table 6), as printed there.
PAPER_PARAMETERS = {20: "0.27M", 32: "0.46M", 44: "0.66M", 56: "0.85M", 110: "1.7M", 1202: "19.4M"}
SHAPES = {"circle": 4, "square": 4}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The tests share two cores with everything else: one thread each, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _depth(name: str) -> int:
    match = re.search(r"(\d+)", name)
    assert match is not None
    return int(match.group(1))


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _small(spec: ModelSpec) -> Preprocessing:
    """The spec's preprocessing, at 64 px for the ImageNet nets (fine-tuning tests stay fast)."""
    if spec.small_images:
        return spec.preprocessing
    return dataclasses.replace(spec.preprocessing, resize_size=72, crop_size=64)


def _loaded(name: str, num_classes: int = 3, small: bool = True) -> LoadedModel:
    """A randomly initialised model of the registry (non-trivial BN statistics), ready to use."""
    spec = get_model_spec(name)
    torch.manual_seed(0)
    model = spec.build(num_classes=num_classes).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return LoadedModel(
        model=model,
        name=f"random-{name}",
        architecture=name,
        preprocessing=_small(spec) if small else spec.preprocessing,
        categories=tuple(f"c{i}" for i in range(num_classes)),
        weights_description="random",
        gradcam_layer=spec.gradcam_layer,
        layout=spec.layout,
    )


# --- the table ---------------------------------------------------------------------------------


def test_the_table_holds_every_family() -> None:
    assert set(SPECS) == set(registry())
    families = {spec.family for spec in SPECS.values()}
    assert families == {"torchvision", "keras", "timm", "cifar"}
    cifar = [name for name, spec in SPECS.items() if spec.family == "cifar"]
    assert len(cifar) == 18 and {_depth(name) for name in cifar} == set(PAPER_PARAMETERS)
    assert {"resnet18d", "resnet34d", "resnet50d", "resnet101d", "resnetv2_50", "resnetv2_101"} <= set(SPECS)
    # One representative per kind: the smallest depth of each.
    assert {"resnet18", "resnet50_v1", "resnet18d", "resnetv2_50"} <= set(REPRESENTATIVES)
    assert {"cifar_resnet20", "cifar_resnet20_b", "cifar_plain20"} <= set(REPRESENTATIVES)
    assert SPECS["cifar_resnet20"].display_name == "CIFAR ResNet-20 (2015 paper, option A)"


@pytest.mark.parametrize("name", list(SPECS))
def test_every_architecture_builds_and_runs_at_its_input_size(name: str) -> None:
    spec = SPECS[name]
    model = spec.build(num_classes=5)
    layout = spec.layout
    for part in (*layout.stem, *layout.stages, *layout.neck, layout.pool, layout.head, spec.gradcam_layer):
        model.get_submodule(part)  # raises if the layout names a module the model lacks
    # Representatives at their input size; the heavier ImageNet nets at 64 px (their stages are the same).
    size = spec.preprocessing.crop_size if name in REPRESENTATIVES or spec.small_images else 64
    assert spec.preprocessing.crop_size == 32 or not spec.small_images
    seen: dict[str, tuple[int, ...]] = {}

    def remember(_module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> None:
        seen["shape"] = tuple(output.shape)

    handle = model.get_submodule(spec.gradcam_layer).register_forward_hook(remember)
    # Batch statistics: at initialisation, with BN's running statistics (0, 1), the residual sums of
    # a very deep net double their variance block after block (ResNet-1202: 2^600, inf in float32).
    model.train()
    try:
        with torch.no_grad():
            logits = model(torch.randn(2, 3, size, size))
    finally:
        handle.remove()
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    # The Grad-CAM layer is the last stage's spatial map (32 px / 4 for the CIFAR nets, / 32 else).
    assert seen["shape"][0] == 2 and seen["shape"][2:] == (size // (4 if spec.small_images else 32),) * 2
    # The spec builds with its own number of classes by default (10 for CIFAR-10, 1000 for ImageNet).
    assert spec.num_classes == (10 if spec.small_images else 1000)


# --- the CIFAR nets of the 2015 paper ----------------------------------------------------------


@pytest.mark.parametrize("name", [name for name, spec in SPECS.items() if spec.family == "cifar"])
def test_cifar_parameters_are_the_papers(name: str) -> None:
    spec = SPECS[name]
    depth = _depth(name)
    model = spec.build()
    count = _parameters(model)
    shortcut_parameters = sum(p.numel() for key, p in model.named_parameters() if ".shortcut." in key)
    blocks = [m for m in model.modules() if isinstance(m, CifarBasicBlock)]
    assert len(blocks) == (depth - 2) // 2 and spec.layout == CIFAR_LAYOUT
    kinds = [block.shortcut_kind for block in blocks]
    if name.endswith("_b"):  # option B: a projection where the shape changes (twice), else identity
        assert shortcut_parameters > 0 and kinds.count("projection") == 2
        assert set(kinds) == {"identity", "projection"}
        keys = set(model.state_dict())
        assert {"layer2.0.shortcut.0.weight", "layer3.0.shortcut.1.running_var"} <= keys
        assert not any(key.startswith("layer1.") and ".shortcut." in key for key in keys)
        count -= shortcut_parameters
    elif "plain" in name:
        assert set(kinds) == {"none"} and all(block.shortcut is None for block in blocks)
    else:  # option A: zero-padding, no parameters
        assert shortcut_parameters == 0 and kinds.count("zero-pad") == 2
        assert set(kinds) == {"identity", "zero-pad"}
    # Without its projections every variant has the paper's count (option A adds none).
    printed = PAPER_PARAMETERS[depth]
    decimals = len(printed.rstrip("M").partition(".")[2])
    assert f"{count / 1e6:.{decimals}f}M" == printed


def test_option_a_pads_zeros_around_the_subsampled_identity() -> None:
    x = torch.randn(2, 16, 8, 8)
    out = ZeroPadShortcut(32)(x)
    assert out.shape == (2, 32, 4, 4)
    torch.testing.assert_close(out[:, 8:24], x[:, :, ::2, ::2])
    assert not out[:, :8].any() and not out[:, 24:].any()


def test_shortcuts_are_what_the_block_adds() -> None:
    """A block whose convolutions output zero returns ReLU(shortcut(x)): the shortcut is really added."""
    torch.manual_seed(0)
    x = torch.randn(1, 16, 8, 8)
    for option, expected in (("A", torch.relu(ZeroPadShortcut(32)(x))), ("none", torch.zeros(1, 32, 4, 4))):
        block = CifarBasicBlock(16, 32, stride=2, shortcut=option).eval()  # type: ignore[arg-type]
        torch.nn.init.zeros_(block.bn2.weight)
        with torch.inference_mode():
            torch.testing.assert_close(block(x), expected)


def test_depths_that_do_not_exist_are_refused_with_a_sentence() -> None:
    sentence = "ResNet-21 does not exist: CIFAR ResNets have 6n+2 layers (20, 32, 44, 56, 110, 1202)."
    with pytest.raises(CifarDepthError) as error:
        CifarResNet(21)
    assert str(error.value) == sentence and isinstance(error.value, UnknownModelError)
    for name in ("cifar_resnet21", "cifar_plain21", "resnet21"):
        with pytest.raises(CifarDepthError, match=re.escape(sentence)):
            get_model_spec(name)
    with pytest.raises(ValueError, match="shortcut"):
        CifarResNet(20, shortcut="C")  # type: ignore[arg-type]


def test_cifar_weights_are_imported_and_shown_missing_until_then(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RESNET_GUI_DATA_DIR", str(tmp_path))
    for name, spec in SPECS.items():
        if spec.family != "cifar":
            continue
        if "plain" in name or name.endswith("_b"):  # no trained weights: built for training from scratch
            assert spec.weights == () and spec.build() is not None
            with pytest.raises(WeightsNotAvailableError, match="from scratch"):
                load_model(name)
            continue
        weights = spec.get_weights()
        assert weights.name == AKAMASTER_WEIGHTS and weights.source == "imported"
        assert weights.filename == f"cifar_resnet{_depth(name)}-akamaster-cifar10.safetensors"
        assert weights.path.parent == tmp_path / "weights" and weights.num_classes == 10
        assert weights.status() == "missing"
        words = plain_words(spec, weights)
        assert not words.usable and "imported" in words.text and "CIFAR-10" in words.name
        with pytest.raises(WeightsNotAvailableError, match="weights import"):
            load_model(name)
    prep = SPECS["cifar_resnet20"].preprocessing
    assert (prep.resize_size, prep.crop_size, prep.mean, prep.std) == (
        32,
        32,
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
    )
    # A big photo works: the preprocessing resizes it to what the net takes.
    assert prep.prepare(Image.new("RGB", (4000, 3000), (200, 30, 30))).shape == (3, 32, 32)
    assert len(CIFAR10_CLASSES) == 10


# --- timm: ResNet-D and the pre-activation ResNet v2 ---------------------------------------------


@pytest.mark.parametrize("name", [name for name, spec in SPECS.items() if spec.family == "timm"])
def test_timm_models_keep_timms_names_and_preprocessing(name: str) -> None:
    import timm

    spec = SPECS[name]
    entry = TIMM_ARCHITECTURES[name]
    cfg = timm.get_pretrained_cfg(entry.tag)
    assert cfg is not None and cfg.hf_hub_id == entry.hf_hub_id and cfg.architecture == name
    (weights,) = spec.weights
    assert weights.source == "timm" and weights.url == (
        f"https://huggingface.co/{cfg.hf_hub_id}/resolve/main/model.safetensors"
    )
    prep = weights.preprocessing
    assert prep.crop_size == cfg.input_size[-1] and prep.interpolation == cfg.interpolation
    assert prep.mean == tuple(cfg.mean) and prep.std == tuple(cfg.std)
    # timm's own evaluation transform: resize to floor(size / crop_pct), centre crop.
    from timm.data import create_transform, resolve_data_config

    transform = create_transform(**resolve_data_config({}, pretrained_cfg=cfg.to_dict()))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (301, 403, 3), dtype=np.uint8))
    np.testing.assert_allclose(prep.prepare(image), transform(image).numpy(), atol=2e-2)
    # The same state-dict keys as timm's model: timm checkpoints load as they are.
    model = spec.build()
    reference = timm.create_model(name, pretrained=False)
    assert list(model.state_dict()) == list(reference.state_dict())
    assert weights.download_mb == pytest.approx(
        sum(t.numel() * 4 for t in reference.state_dict().values() if t.is_floating_point()) / 1e6, abs=0.06
    )
    assert spec.layout.head == cfg.classifier


class _Files(BaseHTTPRequestHandler):
    payload = b""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)


def test_timm_weights_come_through_our_downloader(tmp_path: Path, monkeypatch) -> None:
    """From a loopback server standing in for the hub, into the app's weights folder, then loaded."""
    from safetensors.torch import save_file

    monkeypatch.setenv("RESNET_GUI_DATA_DIR", str(tmp_path / "data"))
    spec = SPECS["resnet18d"]
    torch.manual_seed(3)
    reference = spec.build().eval()
    save_file(reference.state_dict(), tmp_path / "model.safetensors")
    _Files.payload = (tmp_path / "model.safetensors").read_bytes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        weights = dataclasses.replace(spec.get_weights(), url=f"http://{host}:{port}/timm/model.safetensors")
        assert weights.status() == "downloadable"
        with pytest.raises(WeightsNotAvailableError, match="switched off"):
            ensure_weights(weights, allow_download=False)
        path = ensure_weights(weights)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert path == tmp_path / "data" / "weights" / "resnet18d.ra2_in1k.safetensors" and path.is_file()
    assert spec.get_weights().status() == "cached"
    loaded = load_model("resnet18d")  # found on disk: no download
    assert loaded.layout == spec.layout and loaded.preprocessing == weights.preprocessing
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.model(x), reference(x))


# --- representatives: Grad-CAM, fine-tuning, bundles --------------------------------------------


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_gradcam_on_the_specs_layer(name: str) -> None:
    from resnet_gui.core.engine import Classifier
    from resnet_gui.core.explain import explain

    loaded = _loaded(name, small=False)
    size = loaded.preprocessing.crop_size
    classifier = Classifier(loaded, device="cpu")
    image = Image.fromarray(
        np.random.default_rng(1).integers(0, 255, (size + 9, size + 5, 3), dtype=np.uint8)
    )
    (explanation,) = explain(classifier, image, top_k=1, method="gradcam")
    assert explanation.heatmap.shape == (size, size)
    assert np.isfinite(explanation.heatmap).all() and explanation.heatmap.min() >= 0


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from resnet_gui.core.checkpoints import read_weights_file

    return read_weights_file(path)[0]


@pytest.fixture(scope="module")
def shapes_split(tmp_path_factory: pytest.TempPathFactory):
    root = make_shapes(tmp_path_factory.mktemp("family") / "shapes", SHAPES)
    return make_split(scan_dataset(root), val_fraction=0.25)


QUICK = {"epochs": 1, "batch_size": 8, "workers": 0, "probe_epochs": 0, "seed": 0, "device": "cpu"}


@pytest.mark.parametrize("mode", ["head", "partial"])
@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_a_fine_tune_step_changes_only_what_the_mode_trains(
    name: str, mode: str, shapes_split, tmp_path: Path
) -> None:
    loaded = _loaded(name)
    base = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    result = run_training(loaded, shapes_split, tmp_path / "tuned", TrainConfig(mode=mode, **QUICK))
    assert result.status == "finished"
    tuned = _tensors(result.bundle)
    layout = loaded.layout
    trained = layout.trained_prefixes(mode)
    head = f"{layout.head}."
    assert tuned[layout.head_weight].shape[0] == len(SHAPES)
    changed = {
        k
        for k, v in tuned.items()
        if k not in base or v.shape != base[k].shape or not torch.equal(v, base[k])
    }
    assert changed and all(k.startswith(trained) for k in changed), sorted(changed - {""})[:5]
    assert any(k.startswith(head) for k in changed)
    if mode == "partial":  # the last stage trained too
        assert any(k.startswith(f"{layout.last_stage}.") and k.endswith("weight") for k in changed)
    assert set(tuned) == {k for k in base if not k.endswith("num_batches_tracked")}
    assert loaded.model.state_dict()[layout.head_weight].shape[0] == 3  # the caller's model is untouched


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_bundle_round_trip(name: str, shapes_split, tmp_path: Path) -> None:
    loaded = _loaded(name)
    result = run_training(loaded, shapes_split, tmp_path / "tuned", TrainConfig(mode="head", **QUICK))
    again = load_model(str(result.bundle))
    assert again.architecture == name and again.layout == loaded.layout
    assert again.categories == tuple(SHAPES) and again.preprocessing == loaded.preprocessing
    assert again.gradcam_layer == get_model_spec(name).gradcam_layer
    # The same logits as the base network with the bundle's tensors put in by hand.
    reference = get_model_spec(name).build(num_classes=len(SHAPES)).eval()
    reference.load_state_dict(_tensors(result.bundle), strict=False)
    x = torch.randn(2, 3, loaded.preprocessing.crop_size, loaded.preprocessing.crop_size)
    with torch.inference_mode():
        torch.testing.assert_close(again.model(x), reference(x))
    # A loaded bundle of any family trains again (its layout travels with it).
    second = run_training(again, shapes_split, tmp_path / "again", TrainConfig(mode="partial", **QUICK))
    assert second.status == "finished"


def test_layouts_keep_torchvisions_behaviour() -> None:
    assert TORCHVISION_LAYOUT.trained_prefixes("head") == ("fc.",)
    assert TORCHVISION_LAYOUT.trained_prefixes("partial") == ("layer4.", "fc.")
    assert TORCHVISION_LAYOUT.trained_prefixes("full") == ("",)
    v2 = SPECS["resnetv2_50"].layout
    assert v2.trained_prefixes("partial") == ("stages.3.", "norm.", "head.fc.")
    model = SPECS["resnetv2_50"].build(num_classes=4).eval()
    parts = split_model(model, "head", v2)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():  # frozen + trainable is the whole network
        torch.testing.assert_close(parts.trainable(parts.frozen(x)), model(x))
        partial = split_model(model, "partial", v2)
        torch.testing.assert_close(partial.trainable(partial.frozen(x)), model(x))
