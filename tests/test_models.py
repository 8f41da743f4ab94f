"""The model registry: every entry builds, carries correct preprocessing, and resolves its weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_gui.core.errors import UnknownModelError, WeightsError, WeightsNotAvailableError
from resnet_gui.core.models import (
    DEFAULT_MODEL,
    KERAS_WEIGHTS,
    RESNET50_V1,
    default_model_choice,
    get_model_spec,
    load_model,
    model_names,
    parse_model_ref,
    registry,
)

TORCHVISION_WEIGHTS = [
    (name, w.name) for name in model_names() for w in registry()[name].weights if w.source == "torchvision"
]
REQUIRED = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "resnet50_v1",
]


def test_registry_holds_the_whole_family() -> None:
    # torchvision's and the Keras ResNet-50 first; timm's and the CIFAR nets follow (tests/test_family.py).
    assert model_names()[: len(REQUIRED)] == REQUIRED
    assert set(registry()) == set(model_names()) >= set(REQUIRED)
    for name in REQUIRED[:-1]:
        variants = {w.name for w in registry()[name].weights}
        assert "IMAGENET1K_V1" in variants


@pytest.mark.parametrize("name", REQUIRED)
def test_every_model_builds_with_its_gradcam_layer(name: str) -> None:
    spec = get_model_spec(name)
    model = spec.build(num_classes=7).eval()
    layer = dict(model.named_modules())[spec.gradcam_layer]
    assert isinstance(layer, torch.nn.Sequential)
    captured = {}

    def remember_shape(_module, _inputs, output) -> None:
        captured["shape"] = output.shape

    handle = layer.register_forward_hook(remember_shape)
    try:
        with torch.inference_mode():
            logits = model(torch.zeros(1, 3, 64, 64))
    finally:
        handle.remove()
    assert logits.shape == (1, 7)
    # The Grad-CAM layer is the last conv stage: spatial map, before pooling.
    assert captured["shape"][2:] == (2, 2)


@pytest.mark.parametrize(("name", "weights"), TORCHVISION_WEIGHTS)
def test_preprocessing_matches_torchvision_transforms(name: str, weights: str) -> None:
    """Our Preprocessing is the weights' own transform, pixel for pixel."""
    spec = get_model_spec(name).get_weights(weights)
    import torchvision.models

    reference = torchvision.models.get_model_weights(name)[weights].transforms()
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (333, 517, 3), dtype=np.uint8))
    expected = reference(image).numpy()
    ours = spec.preprocessing.prepare(image)
    assert ours.shape == expected.shape == (3, 224, 224)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert len(registry()[name].weights) >= 1 and spec.num_classes == 1000


def test_resnet50_v1_puts_the_stride_in_the_first_1x1_conv() -> None:
    v1 = get_model_spec(RESNET50_V1).build()
    v15 = get_model_spec("resnet50").build()
    for stage in ("layer2", "layer3", "layer4"):
        block_v1, block_v15 = getattr(v1, stage)[0], getattr(v15, stage)[0]
        assert block_v1.conv1.stride == (2, 2) and block_v1.conv2.stride == (1, 1)
        assert block_v15.conv1.stride == (1, 1) and block_v15.conv2.stride == (2, 2)
    # Same parameter names and shapes: torchvision's state-dict format applies.
    assert {k: v.shape for k, v in v1.state_dict().items()} == {
        k: v.shape for k, v in v15.state_dict().items()
    }
    # Different function: with identical weights the outputs differ.
    v1.load_state_dict(v15.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert not torch.allclose(v1.eval()(x), v15.eval()(x))


def test_unknown_names_give_clear_errors() -> None:
    with pytest.raises(UnknownModelError, match="Known models: resnet18"):
        get_model_spec("vgg16")
    with pytest.raises(UnknownModelError, match="IMAGENET1K_V1, IMAGENET1K_V2"):
        get_model_spec("resnet50").get_weights("V3")
    assert parse_model_ref("resnet50:imagenet1k_v1") == ("resnet50", "imagenet1k_v1")
    assert get_model_spec("ResNet50").get_weights("imagenet1k_v1").name == "IMAGENET1K_V1"


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_weights_status_and_default_choice(isolated_dirs: Path) -> None:
    v2 = get_model_spec(DEFAULT_MODEL).get_weights("IMAGENET1K_V2")
    keras = get_model_spec(RESNET50_V1).get_weights(KERAS_WEIGHTS)
    assert str(v2.path).startswith(str(isolated_dirs / "torch" / "hub" / "checkpoints"))
    assert (v2.status(), keras.status()) == ("downloadable", "missing")
    with pytest.raises(WeightsNotAvailableError) as info:
        default_model_choice()
    message = str(info.value)
    assert v2.filename in message and str(v2.path.parent) in message and "import-keras" in message

    _touch(keras.path)
    assert keras.status() == "imported"
    assert default_model_choice() == (RESNET50_V1, KERAS_WEIGHTS)
    _touch(v2.path)
    assert v2.status() == "cached"
    assert default_model_choice() == (DEFAULT_MODEL, "IMAGENET1K_V2")


def test_load_model_from_torchvision_cache_without_network(isolated_dirs: Path) -> None:
    spec = get_model_spec("resnet18").get_weights()
    torch.manual_seed(3)
    reference = get_model_spec("resnet18").build().eval()
    spec.path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), spec.path)
    loaded = load_model("resnet18", allow_download=False)
    assert loaded.architecture == "resnet18" and len(loaded.categories) == 1000
    assert loaded.categories[0] == "tench"
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.model(x), reference(x))


def test_missing_weights_without_download_is_clear(isolated_dirs: Path) -> None:
    with pytest.raises(WeightsNotAvailableError, match="not in the cache folder"):
        load_model("resnet34", allow_download=False)
    with pytest.raises(WeightsNotAvailableError, match="import-keras"):
        load_model(RESNET50_V1)


def test_load_model_downloads_into_the_cache_from_a_server(isolated_dirs: Path, tmp_path: Path) -> None:
    """The registry's download path, end to end, against a file served on 127.0.0.1."""
    import hashlib
    import http.server
    import threading

    from resnet_gui.core.models import ensure_weights

    torch.manual_seed(4)
    reference = get_model_spec("resnet18").build().eval()
    staging = tmp_path / "served" / "weights.pth"
    staging.parent.mkdir()
    torch.save(reference.state_dict(), staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    served_name = f"resnet18-{digest[:8]}.pth"
    staging.rename(staging.parent / served_name)

    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(staging.parent), **k
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{served_name}"
        spec = dataclasses.replace(get_model_spec("resnet18").get_weights(), url=url, filename=served_name)
        seen: list[tuple[int, int | None]] = []
        path = ensure_weights(spec, progress=lambda done, total: seen.append((done, total)))
    finally:
        server.shutdown()
        server.server_close()
    assert path == isolated_dirs / "torch" / "hub" / "checkpoints" / served_name
    assert seen and seen[-1][0] == path.stat().st_size
    state = torch.load(path, weights_only=True)
    torch.testing.assert_close(state["fc.weight"], reference.state_dict()["fc.weight"])


def test_a_bundle_path_given_as_the_model_loads_like_weights_file(tiny_weights_file: Path) -> None:
    by_path = load_model(str(tiny_weights_file))
    by_option = load_model(weights_file=tiny_weights_file)
    assert by_path.categories == by_option.categories == ("ant", "bee", "cat")
    assert by_path.preprocessing == by_option.preprocessing
    with pytest.raises(WeightsError, match=r"missing\.safetensors"):
        load_model("missing.safetensors")
