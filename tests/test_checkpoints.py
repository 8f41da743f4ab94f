"""Reading, writing and applying user-supplied weights files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from resnet_gui.core.checkpoints import apply_state_dict, read_weights_file, write_weights_file
from resnet_gui.core.errors import UnsafeCheckpointError, WeightsError, WeightsShapeMismatchError


def _tiny(num_classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, num_classes),
    )


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@dataclass
class TrainingConfig:
    """A harmless custom class: still refused, since unpickling it means importing test code."""

    lr: float = 0.1


class Sentinel:
    """Unpickling this would create a folder: proof of code execution if it ever appears."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.target,))


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda sd: sd, id="bare"),
        pytest.param(lambda sd: {"state_dict": sd, "epoch": 7, "arch": "tiny"}, id="state_dict"),
        pytest.param(lambda sd: {"model_state_dict": sd, "optimizer_state_dict": {}}, id="model_state_dict"),
        pytest.param(lambda sd: {"model": sd}, id="model"),
        pytest.param(lambda sd: {f"module.{k}": v for k, v in sd.items()}, id="module-prefix"),
        pytest.param(lambda sd: {"state_dict": {f"model.{k}": v for k, v in sd.items()}}, id="model-prefix"),
    ],
)
@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin", ".ckpt"])
def test_torch_containers_round_trip(tmp_path: Path, wrap, suffix: str) -> None:
    model = _tiny()
    expected = model.state_dict()
    path = tmp_path / f"weights{suffix}"
    torch.save(wrap(expected), path)

    state_dict, _ = read_weights_file(path)

    _assert_same(state_dict, expected)
    fresh = _tiny(3)
    torch.nn.init.zeros_(fresh[3].weight)
    apply_state_dict(fresh, state_dict)
    _assert_same(fresh.state_dict(), expected)


def test_scalars_next_to_the_state_dict_become_metadata(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save({"state_dict": _tiny().state_dict(), "epoch": 7, "arch": "tiny", "opt": {"x": 1}}, path)
    _, metadata = read_weights_file(path)
    assert metadata == {"epoch": "7", "arch": "tiny"}


def test_non_tensor_entries_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    sd = dict(_tiny().state_dict())
    torch.save({**sd, "note": "hello", "step": 3}, path)
    state_dict, _ = read_weights_file(path)
    assert set(state_dict) == set(sd)


def test_model_prefix_kept_unless_on_every_key(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save({"model.a": torch.zeros(1), "other.b": torch.ones(1)}, path)
    state_dict, _ = read_weights_file(path)
    assert set(state_dict) == {"model.a", "other.b"}


def test_safetensors_round_trip_with_metadata(tmp_path: Path) -> None:
    model = _tiny()
    path = tmp_path / "sub" / "w.safetensors"
    metadata = {"architecture": "tiny", "classes": "cat,dog,bird"}

    write_weights_file(path, model.state_dict(), metadata)

    state_dict, read_metadata = read_weights_file(path)
    _assert_same(state_dict, model.state_dict())
    assert read_metadata == metadata
    assert [p.name for p in path.parent.iterdir()] == ["w.safetensors"]  # no temporary file left


def test_write_handles_non_contiguous_and_shared_tensors(tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    path = tmp_path / "w.safetensors"
    write_weights_file(path, {"t": base.t(), "a": base, "b": base}, {})
    state_dict, metadata = read_weights_file(path)
    assert torch.equal(state_dict["t"], base.t()) and torch.equal(state_dict["b"], base)
    assert metadata == {}


def test_pickled_code_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _tiny().state_dict(), "obj": Sentinel(marker)}, path)

    with pytest.raises(UnsafeCheckpointError) as info:
        read_weights_file(path)

    assert not marker.exists()
    message = str(info.value)
    assert "evil.pth" in message and "torch.save(model.state_dict(), 'weights.pth')" in message
    assert "Traceback" not in message
    # Control: an unsafe load really would have run the code, so the check above means something.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_custom_class_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save({"state_dict": _tiny().state_dict(), "config": TrainingConfig()}, path)
    with pytest.raises(UnsafeCheckpointError, match="TrainingConfig"):
        read_weights_file(path)


def test_whole_pickled_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save(_tiny(), path)
    with pytest.raises(UnsafeCheckpointError):
        read_weights_file(path)


def test_shape_mismatch_names_layers_and_shapes() -> None:
    source = _tiny(num_classes=5).state_dict()
    with pytest.raises(WeightsShapeMismatchError) as info:
        apply_state_dict(_tiny(num_classes=3), source, source="five.pth")
    message = str(info.value)
    assert "3.weight: the model expects (3, 144), the file has (5, 144)" in message
    assert "3.bias: the model expects (3,), the file has (5,)" in message
    assert "another number of classes" in message and "five.pth" in message


def test_missing_and_unexpected_keys_are_listed() -> None:
    source = dict(_tiny().state_dict())
    del source["0.weight"]
    source.update({f"extra.{i}": torch.zeros(1) for i in range(13)})
    with pytest.raises(WeightsShapeMismatchError) as info:
        apply_state_dict(_tiny(), source)
    message = str(info.value)
    assert "Missing from the file (1): 0.weight." in message
    assert "extra.9" in message and "and 3 more" in message and "extra.10" not in message


def test_num_batches_tracked_may_be_missing_or_extra() -> None:
    source = {k: v for k, v in _tiny().state_dict().items() if not k.endswith("num_batches_tracked")}
    apply_state_dict(_tiny(), source)
    source["4.num_batches_tracked"] = torch.tensor(0)
    with pytest.raises(WeightsShapeMismatchError):  # a real extra key is still reported...
        apply_state_dict(_tiny(), {**source, "4.weight": torch.zeros(1)})
    apply_state_dict(_tiny(), source)  # ...but a stray counter is not


def test_text_file_named_pth_is_not_weights(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(WeightsError) as info:
        read_weights_file(path)
    assert not isinstance(info.value, UnsafeCheckpointError)
    assert "notes.pth" in str(info.value)


@pytest.mark.parametrize("name", ["broken.safetensors", "broken.pth"])
def test_truncated_files_are_reported(tmp_path: Path, name: str) -> None:
    good = tmp_path / f"good{Path(name).suffix}"
    if good.suffix == ".safetensors":
        write_weights_file(good, _tiny().state_dict(), {})
    else:
        torch.save(_tiny().state_dict(), good)
    data = good.read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError) as info:
        read_weights_file(tmp_path / name)
    assert not isinstance(info.value, UnsafeCheckpointError)
    assert name in str(info.value)


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        read_weights_file(tmp_path / "nope.pth")
    other = tmp_path / "photo.jpg"
    other.write_bytes(b"\xff\xd8\xff\xe0 not weights")
    with pytest.raises(WeightsError, match="not a weights file"):
        read_weights_file(other)


def test_file_without_tensors_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save({"epoch": 3}, path)
    with pytest.raises(WeightsError, match="no tensors"):
        read_weights_file(path)


def test_written_weights_get_ordinary_file_permissions(tmp_path) -> None:
    """Files are not left private (0600) by the temporary file they were written through."""
    import os

    import torch

    from resnet_gui.core.checkpoints import write_weights_file

    umask = os.umask(0o022)
    try:
        target = tmp_path / "w.safetensors"
        write_weights_file(target, {"x": torch.zeros(2)}, {"a": "b"})
    finally:
        os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o644
