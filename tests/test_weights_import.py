"""Weights from elsewhere (core/weights_import.py, `resnet-gui weights import`, `--model FILE`).

Synthetic checkpoints in the formats other code writes (tests/checkpoint_makers.py): an akamaster
CIFAR ResNet, option B and plain nets, torchvision and timm state dicts. Each test checks where the
tensors land (the outputs of the imported model equal the original's), what is recorded, or the one
sentence of a refusal and that nothing was written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_makers import (
    akamaster_checkpoint,
    cifar_state_dict,
    pickle_with_code,
    unknown_architecture,
)
from PIL import Image

from resnet_gui.cli import main
from resnet_gui.core.errors import UnsafeCheckpointError
from resnet_gui.core.models import AKAMASTER_WEIGHTS, get_model_spec, load_model
from resnet_gui.core.preprocessing import Preprocessing
from resnet_gui.core.weights_import import (
    CIFAR10_CLASSES,
    AmbiguousArchitectureError,
    CheckpointMismatchError,
    ClassNamesError,
    UnknownArchitectureError,
    UnknownDepthError,
    detect_checkpoint,
    import_weights,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _outputs(model: torch.nn.Module, seed: int = 1) -> torch.Tensor:
    image = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(image)


def _reference(depth: int = 20, shortcut: str = "A") -> torch.nn.Module:
    """The network the synthetic checkpoints of checkpoint_makers hold (same seed)."""
    from resnet_gui.core.cifar_resnet import CifarResNet

    model = CifarResNet(depth, shortcut=shortcut)  # type: ignore[arg-type]
    state = cifar_state_dict(depth, shortcut)
    model.load_state_dict(state)
    return model.eval()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --- recognising and mapping ---------------------------------------------------------------------


def test_an_akamaster_checkpoint_lands_in_the_registry_slot_with_its_tensors_in_place(
    tmp_path: Path, isolated_dirs: Path
) -> None:
    checkpoint = akamaster_checkpoint(tmp_path / "resnet20-0000.th")
    result = import_weights(checkpoint)
    slot = get_model_spec("cifar_resnet20").get_weights(AKAMASTER_WEIGHTS)
    assert result.path == slot.path and slot.status() == "imported"
    assert result.model_ref == "cifar_resnet20:AKAMASTER_CIFAR10"
    loaded = load_model("cifar_resnet20")  # the registry entry, from the file just written
    assert torch.allclose(_outputs(loaded.model), _outputs(_reference()), atol=1e-5)
    assert loaded.categories == CIFAR10_CLASSES
    assert (loaded.preprocessing.resize_size, loaded.preprocessing.crop_size) == (32, 32)
    assert loaded.preprocessing.mean == (0.485, 0.456, 0.406)
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert result.sha256 == sha
    assert loaded.metadata["source_sha256"] == sha and loaded.metadata["source_file"] == checkpoint.name
    assert sha in loaded.metadata["source"] and "91.5" in loaded.metadata["source_metadata"]


def test_the_same_checkpoint_works_directly_as_model_file(tmp_path: Path) -> None:
    checkpoint = akamaster_checkpoint(tmp_path / "resnet20-0000.th")
    loaded = load_model(str(checkpoint))
    assert loaded.architecture == "cifar_resnet20"
    assert loaded.categories == CIFAR10_CLASSES and loaded.preprocessing.crop_size == 32
    assert loaded.gradcam_layer == "layer3"
    assert torch.allclose(_outputs(loaded.model), _outputs(_reference()), atol=1e-5)


def test_option_b_is_told_by_its_projection_shortcuts() -> None:
    detection = detect_checkpoint(cifar_state_dict(20, "B"))
    assert detection.architecture == "cifar_resnet20_b" and detection.family == "cifar"


def test_option_a_and_the_plain_net_weigh_the_same_so_arch_decides() -> None:
    state = cifar_state_dict(20, "none")
    with pytest.raises(AmbiguousArchitectureError) as info:
        detect_checkpoint(state, source="plain.pth")
    assert info.value.candidates == ("cifar_resnet20", "cifar_plain20")
    assert "--arch" in str(info.value) and "\n" not in str(info.value)
    assert detect_checkpoint(state, arch="cifar_plain20").architecture == "cifar_plain20"


def test_a_plain_net_imports_with_arch_and_loads_back(tmp_path: Path, isolated_dirs: Path) -> None:
    from resnet_gui.core.cifar_resnet import CifarResNet

    checkpoint = tmp_path / "plain.pth"
    torch.save(cifar_state_dict(20, "none"), checkpoint)
    result = import_weights(checkpoint, arch="cifar_plain20", out=tmp_path / "plain.safetensors")
    loaded = load_model(weights_file=result.path)
    reference = CifarResNet(20, shortcut="none")
    reference.load_state_dict(cifar_state_dict(20, "none"))
    assert loaded.architecture == "cifar_plain20"
    assert torch.allclose(_outputs(loaded.model), _outputs(reference), atol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d", "wide_resnet50_2"])
def test_torchvision_state_dicts_are_told_apart_by_block_counts_and_conv_shapes(name: str) -> None:
    with torch.device("meta"):
        state = get_model_spec(name).build(num_classes=7).state_dict()
    detection = detect_checkpoint(state)
    assert (detection.architecture, detection.num_classes, detection.family) == (name, 7, "torchvision")


@pytest.mark.parametrize("name", ["resnet18d", "resnetv2_50"])
def test_timm_resnet_d_and_v2_are_told_by_their_stem_keys(name: str) -> None:
    with torch.device("meta"):
        state = get_model_spec(name).build(num_classes=5).state_dict()
    detection = detect_checkpoint(state)
    assert (detection.architecture, detection.num_classes, detection.family) == (name, 5, "timm")


def test_a_timm_safetensors_file_imports_as_it_is(tmp_path: Path, isolated_dirs: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    network = get_model_spec("resnet18d").build(num_classes=3).eval()
    file = tmp_path / "model.safetensors"
    save_file(
        {k: v.contiguous() for k, v in network.state_dict().items()}, str(file), metadata={"format": "pt"}
    )
    classes = tmp_path / "classes.txt"
    classes.write_text("ant\n\nbee \nwasp\n")
    result = import_weights(file, classes=classes)
    assert result.path.parent == isolated_dirs / "data" / "models" and result.model_ref is None
    loaded = load_model(weights_file=result.path)
    assert loaded.architecture == "resnet18d" and loaded.categories == ("ant", "bee", "wasp")
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(loaded.model(image), network(image), atol=1e-5)


# --- what is recorded -----------------------------------------------------------------------------


def test_user_preprocessing_and_classes_are_recorded(tmp_path: Path, isolated_dirs: Path) -> None:
    checkpoint = akamaster_checkpoint(tmp_path / "resnet20-0000.th")
    classes = tmp_path / "names.txt"
    classes.write_text("\n".join(f"kind {i}" for i in range(10)) + "\n")
    out = tmp_path / "mine.safetensors"
    result = import_weights(
        checkpoint, classes=classes, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), size=40, out=out
    )
    assert result.path == out and result.model_ref is None  # not the registry's akamaster weights any more
    loaded = load_model(weights_file=out)
    assert loaded.preprocessing == Preprocessing(
        resize_size=40, crop_size=40, mean=(0.5,) * 3, std=(0.25,) * 3
    )
    assert loaded.categories == tuple(f"kind {i}" for i in range(10))
    assert not get_model_spec("cifar_resnet20").get_weights(AKAMASTER_WEIGHTS).path.exists()


def test_a_32_pixel_photo_reaches_the_cifar_model_untouched() -> None:
    from resnet_gui.core.models import CIFAR_PREPROCESSING

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    expected = (
        np.asarray(photo, dtype=np.float32) / 255.0 - CIFAR_PREPROCESSING.mean
    ) / CIFAR_PREPROCESSING.std
    prepared = CIFAR_PREPROCESSING.prepare(photo)
    assert np.allclose(prepared, expected.transpose(2, 0, 1), atol=1e-6)


def test_a_big_photo_is_resized_for_a_cifar_model(tmp_path: Path, capsys) -> None:
    checkpoint = akamaster_checkpoint(tmp_path / "resnet20-0000.th")
    photo = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (200, 120, 40)).save(photo, quality=80)
    assert (
        main(
            [
                "classify",
                str(photo),
                "--model",
                str(checkpoint),
                "--json",
                "--top-k",
                "3",
                "--backend",
                "torch",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert (result["width"], result["height"]) == (4000, 3000)
    labels = [p["label"] for p in result["predictions"]]
    assert len(labels) == 3 and set(labels) <= set(CIFAR10_CLASSES)


# --- refusals: one sentence, nothing written ------------------------------------------------------


def _refused(tmp_path: Path, isolated_dirs: Path, error: type[Exception], words: str, *args, **kwargs) -> str:
    with pytest.raises(error) as info:
        import_weights(*args, **kwargs)
    message = str(info.value)
    assert words in message and "\n" not in message, message
    assert _files(isolated_dirs / "data") == [] and _files(tmp_path / "out") == []
    return message


def test_unknown_architecture_is_refused(tmp_path: Path, isolated_dirs: Path) -> None:
    _refused(
        tmp_path,
        isolated_dirs,
        UnknownArchitectureError,
        "is not a ResNet this app recognises",
        unknown_architecture(tmp_path / "mlp.pth"),
    )


def test_a_cifar_depth_without_a_model_is_refused(tmp_path: Path, isolated_dirs: Path) -> None:
    message = _refused(
        tmp_path,
        isolated_dirs,
        UnknownDepthError,
        "CIFAR ResNet-26",
        akamaster_checkpoint(tmp_path / "resnet26.th", 26),
    )
    assert "ResNet-20" in message and "ResNet-1202" in message


def test_a_file_that_does_not_fit_names_the_layers_and_shapes(tmp_path: Path, isolated_dirs: Path) -> None:
    def narrow(state):
        return {**state, "module.layer1.0.conv1.weight": torch.zeros(16, 8, 3, 3)}

    checkpoint = akamaster_checkpoint(tmp_path / "odd.th", change=narrow)
    _refused(
        tmp_path,
        isolated_dirs,
        CheckpointMismatchError,
        "layer1.0.conv1.weight is (16, 8, 3, 3) in the file but (16, 16, 3, 3) in the model",
        checkpoint,
    )


def test_class_names_that_do_not_match_the_classifier_are_refused(
    tmp_path: Path, isolated_dirs: Path
) -> None:
    classes = tmp_path / "three.txt"
    classes.write_text("a\nb\nc\n")
    _refused(
        tmp_path,
        isolated_dirs,
        ClassNamesError,
        "names 3 classes but the classifier",
        akamaster_checkpoint(tmp_path / "r.th"),
        classes=classes,
    )
    classes.write_text("a\n" * 10)
    _refused(tmp_path, isolated_dirs, ClassNamesError, "appears twice", tmp_path / "r.th", classes=classes)


def test_a_pickle_with_code_is_refused_unrun(tmp_path: Path, isolated_dirs: Path, capsys) -> None:
    _refused(
        tmp_path,
        isolated_dirs,
        UnsafeCheckpointError,
        "refused for safety",
        pickle_with_code(tmp_path / "evil.pth"),
    )
    assert "ran code" not in capsys.readouterr().out


# --- the command line ---------------------------------------------------------------------------


def test_cli_imports_and_says_how_to_use_it(tmp_path: Path, isolated_dirs: Path, capsys) -> None:
    checkpoint = akamaster_checkpoint(tmp_path / "resnet20-0000.th")
    assert main(["weights", "import", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "cifar_resnet20" in out and "--model cifar_resnet20:AKAMASTER_CIFAR10" in out
    assert main(["weights", "import", str(checkpoint)]) == 0  # again: it replaces its own file


def test_cli_refusal_is_one_sentence_and_writes_nothing(tmp_path: Path, isolated_dirs: Path, capsys) -> None:
    checkpoint = akamaster_checkpoint(tmp_path / "resnet26.th", 26)
    assert main(["weights", "import", str(checkpoint), "--out", str(tmp_path / "out" / "x.safetensors")]) == 4
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("resnet-gui: error")]
    assert len(errors) == 1 and "CIFAR ResNet-26" in errors[0] and "Traceback" not in err
    assert _files(tmp_path / "out") == [] and _files(isolated_dirs / "data") == []


def test_cli_mean_must_be_three_numbers(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["weights", "import", str(tmp_path / "x.th"), "--mean", "0.5,0.5"])
    assert info.value.code == 2 and "three numbers" in capsys.readouterr().err


# --- the app: Model → Import Weights… -------------------------------------------------------------


def _window(qtbot, tmp_path: Path, classifier):
    """The main window on PyTorch (auto would first export each new model to ONNX, for half a minute)."""
    from gui.helpers import make_window

    from resnet_gui.gui.settings import AppSettings

    AppSettings(tmp_path / "settings.ini").backend = "torch"
    return make_window(qtbot, tmp_path / "settings.ini", classifier)


def test_gui_import_weights_runs_in_a_worker_then_loads_the_model(
    qtbot, tmp_path: Path, isolated_dirs: Path, classifier, monkeypatch
) -> None:
    from gui.helpers import WAIT_MS
    from PySide6.QtWidgets import QFileDialog

    checkpoint = akamaster_checkpoint(tmp_path / "resnet20-0000.th")
    window = _window(qtbot, tmp_path, classifier)
    busy: list[str] = []
    window.controller.busy_changed.connect(busy.append)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(checkpoint), ""))
    window.import_weights_action.trigger()
    ref = "cifar_resnet20:AKAMASTER_CIFAR10"
    qtbot.waitUntil(lambda: window.controller.model_info.ref == ref, timeout=WAIT_MS)
    assert any("Recognised CIFAR ResNet-20" in line for line in busy)
    assert window.controller.model_info.num_classes == 10
    assert get_model_spec("cifar_resnet20").get_weights(AKAMASTER_WEIGHTS).status() == "imported"


def test_gui_asks_which_model_when_the_weights_fit_two(
    qtbot, tmp_path: Path, isolated_dirs: Path, classifier, monkeypatch
) -> None:
    from gui.helpers import WAIT_MS
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    checkpoint = tmp_path / "plain.pth"
    torch.save(cifar_state_dict(20, "none"), checkpoint)
    window = _window(qtbot, tmp_path, classifier)
    asked: list[list[str]] = []

    def choose(parent, title, label, items, *args, **kwargs):
        asked.append(list(items))
        return "cifar_plain20", True

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(checkpoint), ""))
    monkeypatch.setattr(QInputDialog, "getItem", choose)
    window.import_weights_action.trigger()
    qtbot.waitUntil(lambda: window.controller.model_info.name != "tiny-resnet18", timeout=WAIT_MS)
    assert asked == [["cifar_resnet20", "cifar_plain20"]]
    assert window.controller.classifier.loaded.architecture == "cifar_plain20"
