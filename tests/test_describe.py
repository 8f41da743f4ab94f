"""core.describe: what a model is made of, measured on the module that was built (no Qt).

One architecture of each kind the registry has (the smallest), checked against what the papers
and libraries say they are; FLOPs against torchvision's documented numbers; the CLI's words.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from resnet_gui.cli import main
from resnet_gui.core.describe import ModelDescription, describe_model
from resnet_gui.core.models import get_model_spec, registry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# name: (block type, the shortcut kinds in order of first use, blocks per stage, channels out of the
# last stage, the stages' strides)
EXPECTED: dict[str, tuple[str, tuple[str, ...], tuple[int, ...], int, tuple[int, ...]]] = {
    "resnet18": ("basic", ("identity", "projection"), (2, 2, 2, 2), 512, (1, 2, 2, 2)),
    "resnet50": ("bottleneck", ("projection", "identity"), (3, 4, 6, 3), 2048, (1, 2, 2, 2)),
    "resnext50_32x4d": ("bottleneck", ("projection", "identity"), (3, 4, 6, 3), 2048, (1, 2, 2, 2)),
    "wide_resnet50_2": ("bottleneck", ("projection", "identity"), (3, 4, 6, 3), 2048, (1, 2, 2, 2)),
    "resnet50_v1": ("bottleneck", ("projection", "identity"), (3, 4, 6, 3), 2048, (1, 2, 2, 2)),
    "resnet18d": ("basic", ("identity", "avg-pool + projection"), (2, 2, 2, 2), 512, (1, 2, 2, 2)),
    "resnetv2_50": ("pre-activation", ("projection", "identity"), (3, 4, 6, 3), 2048, (1, 2, 2, 2)),
    "cifar_resnet20": ("basic", ("identity", "zero-pad"), (3, 3, 3), 64, (1, 2, 2)),
    "cifar_resnet20_b": ("basic", ("identity", "projection"), (3, 3, 3), 64, (1, 2, 2)),
    "cifar_plain20": ("basic", ("none",), (3, 3, 3), 64, (1, 2, 2)),
}
# What each kind of registry entry is represented by above (family, or torchvision's block kinds).
PRESENT = [name for name in EXPECTED if name in registry()]


@functools.cache
def described(name: str) -> ModelDescription:
    return describe_model(get_model_spec(name))


def test_every_family_of_the_registry_is_covered() -> None:
    """A family added to the registry must get its smallest member into EXPECTED."""
    families = {getattr(spec, "family", "torchvision") for spec in registry().values()}
    covered = {getattr(registry()[name], "family", "torchvision") for name in PRESENT}
    assert families == covered


@pytest.mark.parametrize("name", PRESENT)
def test_block_and_shortcut_types(name: str) -> None:
    block_type, shortcuts, blocks, channels, strides = EXPECTED[name]
    description = described(name)
    assert description.block_type == block_type
    assert description.shortcut_kinds() == shortcuts
    assert tuple(stage.blocks for stage in description.stages) == blocks
    assert description.stages[-1].out_channels == channels
    assert tuple(stage.stride for stage in description.stages) == strides
    # Only a stage's first block may change the shape: the others add their input unchanged.
    for stage in description.stages:
        assert all(kind in ("identity", "none") for kind in stage.shortcuts[1:]), stage


def test_resnet18_stage_by_stage() -> None:
    description = described("resnet18")
    assert [stage.name for stage in description.stages] == ["layer1", "layer2", "layer3", "layer4"]
    assert [stage.out_channels for stage in description.stages] == [64, 128, 256, 512]
    assert [stage.out_size for stage in description.stages] == [(56, 56), (28, 28), (14, 14), (7, 7)]
    assert [stage.shortcut for stage in description.stages] == [
        "identity",
        *["projection (first block), then identity"] * 3,
    ]
    assert description.stem == ("7×7 conv, 64, /2", "BN", "ReLU", "3×3 max-pool, /2")
    assert description.head == ("global average pool", "fully connected, 1000")
    assert description.depth == 18
    assert (description.input_size, description.num_classes) == ((224, 224), 1000)


def test_resnext_and_wide_details() -> None:
    assert "32 groups" in described("resnext50_32x4d").block_detail
    assert "2× as wide" in described("wide_resnet50_2").block_detail
    assert described("resnet50").block_detail == "bottleneck"


@pytest.mark.parametrize(
    "name", ["resnet18", *[n for n in ("cifar_resnet20", "resnet18d") if n in registry()]]
)
def test_parameter_count_is_that_of_the_built_model(name: str) -> None:
    spec = get_model_spec(name)
    model = spec.build(num_classes=spec.get_weights().num_classes)
    assert described(name).parameters == sum(p.numel() for p in model.parameters())


def test_resnet18_flops_match_torchvision_documentation() -> None:
    """torchvision documents 1.81 GFLOPS for ResNet-18 at 224 px (its ``_ops``: multiply-adds);
    torch's counter counts a multiply-add as 2 FLOPs, so half its count must be that number."""
    from torchvision.models import ResNet18_Weights

    documented = ResNet18_Weights.IMAGENET1K_V1.meta["_ops"] * 1e9
    description = described("resnet18")
    assert description.multiply_adds == description.flops / 2
    assert description.flops / 2 == pytest.approx(documented, rel=0.01)
    assert description.flops == pytest.approx(2 * 1.814e9, rel=0.01)


def test_resnet50_flops_match_torchvision_documentation() -> None:
    from torchvision.models import ResNet50_Weights

    documented = ResNet50_Weights.IMAGENET1K_V2.meta["_ops"] * 1e9  # 4.089
    assert described("resnet50").flops / 2 == pytest.approx(documented, rel=0.01)


def test_a_loaded_model_is_described_from_its_own_file(tiny_model, tiny_weights_file: Path) -> None:
    """The tiny 3-class ResNet-18 at 64 px: its preprocessing, classes and file, and FLOPs measured at
    64 px (the same count as torch's counter on the real model); the model itself is left as it was."""
    before = {k: v.clone() for k, v in tiny_model.model.state_dict().items()}
    description = describe_model(tiny_model)
    assert description.input_size == (64, 64)
    assert description.num_classes == 3
    assert description.weights_file == tiny_weights_file
    assert description.parameters == sum(p.numel() for p in tiny_model.model.parameters())
    assert description.stages[-1].out_size == (2, 2)  # 64 px / 32
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        tiny_model.model(torch.zeros(1, 3, 64, 64))
    assert description.flops == counter.get_total_flops()
    after = tiny_model.model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].device.type == "cpu" for k in before)
    assert "tiny-resnet18" in description.display_name


def test_block_diagram_of_resnet18() -> None:
    diagram = described("resnet18").block_diagram()
    assert diagram.name == "layer2.0"
    assert [layer.label for layer in diagram.main_path] == [
        "3×3 conv, 128, /2",
        "BN",
        "ReLU",
        "3×3 conv, 128",
        "BN",
    ]
    assert diagram.shortcut_labels == ("1×1 conv, 128, /2", "BN")
    assert [layer.label for layer in diagram.after_add] == ["ReLU"]
    assert (diagram.branch, diagram.has_add) == (0, True)
    assert (diagram.in_shape, diagram.out_shape) == ((64, 56, 56), (128, 28, 28))
    identity = described("resnet18").block_diagram("layer1.1")
    assert (identity.shortcut_kind, identity.shortcut_labels) == ("identity", ("identity",))


def test_block_diagram_of_resnet50_is_a_bottleneck() -> None:
    diagram = described("resnet50").block_diagram()
    convs = [layer.label for layer in diagram.main_path if layer.kind == "conv"]
    assert convs == ["1×1 conv, 128", "3×3 conv, 128, /2", "1×1 conv, 512"]


@pytest.mark.skipif("resnet18d" not in registry(), reason="the timm models are not in the registry")
def test_block_diagram_of_resnet_d_pools_on_its_shortcut() -> None:
    diagram = described("resnet18d").block_diagram()
    assert diagram.shortcut_labels == ("2×2 avg-pool, /2", "1×1 conv, 128", "BN")
    assert described("resnet18d").stem[:3] == ("3×3 conv, 32, /2", "BN", "ReLU")  # the deep stem


@pytest.mark.skipif("resnetv2_50" not in registry(), reason="the timm models are not in the registry")
def test_block_diagram_of_a_pre_activation_block() -> None:
    """BN and ReLU come first; the projection reads their output; nothing follows the addition."""
    diagram = described("resnetv2_50").block_diagram()
    labels = [layer.label for layer in diagram.main_path]
    assert labels[:3] == ["BN", "ReLU", "1×1 conv, 128"]
    assert labels[-1] == "1×1 conv, 512"
    assert diagram.branch == 2
    assert diagram.after_add == ()
    assert diagram.shortcut_labels == ("1×1 conv, 512, /2",)


@pytest.mark.skipif("cifar_resnet20" not in registry(), reason="the CIFAR models are not in the registry")
def test_cifar_diagrams_zero_pad_and_plain() -> None:
    option_a = described("cifar_resnet20").block_diagram()
    assert option_a.shortcut == ()
    assert option_a.shortcut_labels == ("subsample /2", "zero-pad 16→32 channels")
    plain = described("cifar_plain20").block_diagram()
    assert not plain.has_add
    assert [layer.label for layer in plain.main_path][-1] == "ReLU"
    # Option A adds no parameters: a ResNet has exactly its plain counterpart's.
    assert described("cifar_resnet20").parameters == described("cifar_plain20").parameters
    assert described("cifar_resnet20").input_size == (32, 32)
    assert "plain network" in "\n".join(described("cifar_plain20").lines())
    flops = described("cifar_resnet20").flops
    assert f"{flops / 1e6:.1f} million FLOPs" in "\n".join(described("cifar_resnet20").lines())


def test_lines_name_the_stages_and_the_numbers() -> None:
    text = "\n".join(described("resnet18").lines())
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        assert stage in text
    assert "11,689,512" in text
    assert "3.63 billion FLOPs" in text and "1.81 billion multiply-adds" in text
    assert "multiply-add as 2 FLOPs" in text
    assert "basic" in text and "projection" in text and "identity" in text
    assert "224×224" in text


def test_cli_describe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--describe", "resnet18:IMAGENET1K_V1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ResNet-18\n")
    assert "layer4: 2 blocks, 512 channels out at 7×7" in out
    assert "IMAGENET1K_V1" in out


def test_cli_describe_a_weights_file(capsys: pytest.CaptureFixture[str], tiny_weights_file: Path) -> None:
    assert main(["models", "--describe", str(tiny_weights_file)]) == 0
    out = capsys.readouterr().out
    assert "Classes: 3." in out and "64×64" in out and str(tiny_weights_file) in out


@pytest.mark.parametrize("name", ["resnet19", "nosuch", "resnet18:NOSUCH", "missing.safetensors"])
def test_cli_describe_unknown(capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert main(["models", "--describe", name]) != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("resnet-gui: error: ") and captured.err.count("\n") == 1
