"""``resnet-gui export`` on the tiny model: the metadata (a public interface), the graph, the parity
check and what an export leaves behind when it passes, fails or is refused.

The real ResNet-50 (parity on real photos, INT8, the standalone example without torch) is in
``test_export_real.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnet_gui.cli import main
from resnet_gui.core.errors import ModelMetadataError, OutputError, OutputExistsError
from resnet_gui.core.export import (
    EXPORT_FORMATS,
    FORMAT_KEYS,
    CalibrationError,
    ExportExtraMissingError,
    GraphExportError,
    ParityError,
)
from resnet_gui.core.export.metadata import METADATA_KEYS, export_metadata, parse_export_metadata
from resnet_gui.core.export.onnx_graph import ONNX_OPSET, export_onnx_graph, read_onnx_metadata
from resnet_gui.core.export.parity import FP32_TOLERANCE, INT8_TOLERANCE, compare
from resnet_gui.core.export.pipeline import ExportProgress, ExportResult, export_model, iter_export
from resnet_gui.core.formats import EXPORT_FORMAT
from resnet_gui.core.preprocessing import IMAGENET, KERAS_CAFFE, Preprocessing

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REQUIRED_KEYS = (
    "resnet_gui_format",
    "name",
    "architecture",
    "categories",
    "resize_size",
    "interpolation",
    "crop_size",
    "channel_order",
    "value_range",
    "mean",
    "std",
)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of three small JPEGs of different sizes (outside every test's tmp_path)."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for index, size in enumerate([(80, 60), (120, 200), (300, 90)]):
        array = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / f"image{index}.jpg", quality=90)
    return folder


@pytest.fixture(scope="module")
def exported(tiny_classifier, photos: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    """The tiny model exported to ONNX once (torch's exporter takes seconds), under the classifier's lock."""
    before = {name: value.clone() for name, value in tiny_classifier.model.state_dict().items()}
    result = export_model(
        tiny_classifier.loaded,
        tmp_path_factory.mktemp("export") / "tiny.onnx",
        check_images=photos,
        lock=tiny_classifier.lock,
    )
    import torch

    # The classifier's model is untouched: still channels_last, same weights, same mode.
    assert tiny_classifier.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    after = tiny_classifier.model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert not tiny_classifier.model.training
    return result


@pytest.fixture()
def quick_graph(exported: ExportResult, monkeypatch: pytest.MonkeyPatch) -> None:
    """Later exports copy the module's graph instead of running torch's exporter again (the pipeline
    around it, which these tests are about, still runs in full)."""
    import shutil

    from resnet_gui.core.export import onnx_graph

    def copy_graph(loaded, out: Path, *, lock=None) -> Path:
        shutil.copyfile(exported.path, out)
        return out

    monkeypatch.setattr(onnx_graph, "export_onnx_graph", copy_graph)


def _metadata(preprocessing: Preprocessing) -> dict[str, str]:
    return export_metadata(
        name="m", architecture="resnet18", categories=["ant", "bee"], preprocessing=preprocessing
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


# --- the metadata ---


@pytest.mark.parametrize(
    "preprocessing", [IMAGENET, KERAS_CAFFE, Preprocessing(72, 64, interpolation="bicubic")]
)
def test_metadata_round_trip_prepares_identical_arrays(preprocessing: Preprocessing) -> None:
    metadata = _metadata(preprocessing)
    assert tuple(metadata) == METADATA_KEYS and all(isinstance(value, str) for value in metadata.values())
    info = parse_export_metadata(metadata)
    assert info.preprocessing == preprocessing
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    assert np.array_equal(info.preprocessing.prepare(image), preprocessing.prepare(image))
    assert (info.categories, info.architecture, info.name) == (("ant", "bee"), "resnet18", "m")


def test_keras_preprocessing_is_described_in_pixel_values() -> None:
    """A model fed pixels minus a mean reads as the Keras docs say: BGR, 0-255, mean 103.939 ..."""
    metadata = _metadata(KERAS_CAFFE)
    assert metadata["value_range"] == "[0, 255]" and metadata["channel_order"] == "BGR"
    assert json.loads(metadata["mean"]) == [103.939, 116.779, 123.68]
    assert json.loads(metadata["std"]) == [1.0, 1.0, 1.0]
    imagenet = _metadata(IMAGENET)
    assert imagenet["value_range"] == "[0, 1]" and json.loads(imagenet["mean"]) == [0.485, 0.456, 0.406]
    assert "103.939" in metadata["preprocessing"] and "BGR" in metadata["preprocessing"]


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_a_missing_key_is_named(key: str) -> None:
    metadata = _metadata(IMAGENET)
    del metadata[key]
    with pytest.raises(ModelMetadataError, match=f"'{key}'"):
        parse_export_metadata(metadata, "model.onnx")


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("value_range", "[0, 100]", "value_range"),
        ("mean", "[0.5, 0.5]", "'mean'"),
        ("std", "[0, 1, 1]", "'std'"),
        ("crop_size", "999", "crops 999"),
        ("categories", "not json", "'categories' is not valid JSON"),
        ("channel_order", "GRB", "channel_order"),
        ("resnet_gui_format", "someone-else/3", "resnet_gui_format"),
    ],
)
def test_a_bad_value_is_named(key: str, value: str, words: str) -> None:
    metadata = _metadata(IMAGENET)
    metadata[key] = value
    with pytest.raises(ModelMetadataError, match=words) as caught:
        parse_export_metadata(metadata, "model.onnx")
    assert "model.onnx" in str(caught.value)


# --- the ONNX graph ---


def test_onnx_graph_has_the_public_interface(exported: ExportResult, tiny_classifier) -> None:
    import onnx
    import onnxruntime

    loaded = tiny_classifier.loaded
    proto = onnx.load(str(exported.path))
    onnx.checker.check_model(proto)
    assert [entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")] == [ONNX_OPSET]
    (graph_input,) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "input" and graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 64, 64]
    assert [output.name for output in proto.graph.output] == ["logits"]
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    assert metadata["resnet_gui_format"] == EXPORT_FORMAT
    assert json.loads(metadata["categories"]) == ["ant", "bee", "cat"]
    info = read_onnx_metadata(exported.path)
    assert info.preprocessing == loaded.preprocessing and info.categories == loaded.categories
    session = onnxruntime.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 64, 64)).astype(np.float32)
        assert session.run(None, {"input": x})[0].shape == (batch, 3)


def test_export_onnx_graph_writes_only_its_file(tiny_model, tmp_path: Path) -> None:
    out = export_onnx_graph(tiny_model, tmp_path / "graph.onnx")
    assert [path.name for path in tmp_path.iterdir()] == ["graph.onnx"]
    assert read_onnx_metadata(out).name == tiny_model.name


def test_read_onnx_metadata_refuses_files_that_are_not_ours(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    with pytest.raises(ModelMetadataError, match="not an ONNX model"):
        read_onnx_metadata(text)
    node = helper.make_node("Identity", ["input"], ["logits"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
    )
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(foreign))
    with pytest.raises(ModelMetadataError, match="no 'resnet_gui_format'") as caught:
        read_onnx_metadata(foreign)
    assert "foreign.onnx" in str(caught.value)


def test_a_graph_torch_cannot_export_is_a_typed_error(tmp_path: Path) -> None:
    import torch

    from resnet_gui.core.models import LoadedModel

    class DataDependent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pooled = x.mean(dim=(2, 3))
            return self.fc(pooled) if pooled.sum() > 0 else -self.fc(pooled)

    loaded = LoadedModel(DataDependent().eval(), "odd", "resnet18", Preprocessing(72, 64), ("a", "b"), "test")
    with pytest.raises(GraphExportError, match=r"cannot be exported to ONNX: .*data-dependent") as caught:
        export_onnx_graph(loaded, tmp_path / "odd.onnx")
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


# --- the parity check ---


def test_compare_fails_beyond_the_tolerance() -> None:
    reference = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=np.float32)
    same = compare(reference, reference + 1e-5, FP32_TOLERANCE)
    assert same.passed and same.top1_agreement == 1.0 and same.max_probability_delta < 1e-4
    drift = compare(
        reference, reference + np.array([[-0.01, 0.01, 0.0]] * 2, dtype=np.float32), FP32_TOLERANCE
    )
    assert not drift.passed and drift.top1_agreement == 1.0  # 0.01 > 1e-3: fp32 must be exact
    assert compare(reference, reference + np.array([[-0.01, 0.01, 0.0]] * 2), INT8_TOLERANCE).passed
    swapped = compare(reference, reference[:, ::-1].copy(), INT8_TOLERANCE)
    assert not swapped.passed and swapped.top1_agreement == 0.0
    assert "FAILED" in swapped.sentence() and "top-1 agreement 0.0%" in swapped.sentence()


def test_onnx_export_passes_its_check_and_leaves_only_its_files(exported: ExportResult) -> None:
    folder = exported.path.parent
    assert exported.parity.passed and exported.parity.images == 3 and exported.parity.top1_agreement == 1.0
    assert sorted(path.name for path in folder.iterdir()) == ["tiny.onnx", "tiny.onnx.json"]
    sidecar = json.loads(exported.sidecar.read_text())
    assert list(sidecar)[: len(METADATA_KEYS)] == list(METADATA_KEYS)
    assert sidecar["parity"]["passed"] is True and sidecar["parity"]["top1_agreement"] == 1.0


@pytest.mark.parametrize("fmt", FORMAT_KEYS)
@pytest.mark.usefixtures("quick_graph")
def test_export_yields_progress_then_its_result(fmt: str, tiny_model, photos: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    items = list(iter_export(tiny_model, out_dir / "tiny", format=fmt, check_images=photos))
    result = items[-1]
    assert isinstance(result, ExportResult) and all(isinstance(item, ExportProgress) for item in items[:-1])
    phases = list(dict.fromkeys(item.phase for item in items[:-1]))
    assert phases == ["photos", "export", "reference", "exported", "write"]
    suffix = EXPORT_FORMATS[fmt].suffix
    assert result.path == out_dir / f"tiny{suffix}" and result.parity.passed
    assert sorted(path.name for path in out_dir.iterdir()) == [f"tiny{suffix}", f"tiny{suffix}.json"]
    if fmt == "onnx":
        info = read_onnx_metadata(result.path)
    else:
        from resnet_gui.core.export.torchscript import read_torchscript_metadata

        info = read_torchscript_metadata(result.path)
    assert info.preprocessing == tiny_model.preprocessing and info.categories == tiny_model.categories
    # A second export replaces the first (it is ours); someone else's file is not replaced.
    export_model(tiny_model, result.path, format=fmt, check_images=photos)
    (out_dir / "theirs.onnx").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    with pytest.raises(OutputExistsError, match="already exists"):
        export_model(tiny_model, out_dir / "theirs.onnx", check_images=photos)
    assert (out_dir / "theirs.onnx").read_bytes().startswith(b"\x89PNG")


@pytest.mark.usefixtures("quick_graph")
def test_closing_the_generator_midway_leaves_nothing(tiny_model, photos: Path, tmp_path: Path) -> None:
    steps = iter_export(tiny_model, tmp_path / "tiny.onnx", check_images=photos)
    for item in steps:
        if isinstance(item, ExportProgress) and item.phase == "reference":
            break
    steps.close()  # what a GUI does when the user cancels
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("quick_graph")
def test_an_export_that_disagrees_is_kept_under_a_failed_name(
    tiny_model, photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnet_gui.core.export import pipeline

    class Disagreeing(pipeline.OnnxRunner):  # type: ignore[name-defined, misc]
        def __call__(self, batch: np.ndarray) -> np.ndarray:
            return super().__call__(batch)[:, ::-1].copy()  # every photo's classes reversed

    monkeypatch.setattr(pipeline, "OnnxRunner", Disagreeing)
    with pytest.raises(ParityError, match="did not pass its check") as caught:
        export_model(tiny_model, tmp_path / "tiny.onnx", check_images=photos)
    assert caught.value.kept == tmp_path / "tiny.FAILED-PARITY.onnx"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny.FAILED-PARITY.onnx"]
    assert read_onnx_metadata(caught.value.kept).categories == tiny_model.categories


@pytest.mark.usefixtures("quick_graph")
def test_int8_is_smaller_and_says_what_it_costs(tiny_model, photos: Path, tmp_path: Path) -> None:
    result = export_model(
        tiny_model, tmp_path / "tiny.onnx", quantize="int8", calibrate=photos, check_images=photos
    )
    assert result.int8 is not None and result.fp32_parity is not None and result.fp32_parity.passed
    assert result.int8.int8_bytes < result.int8.fp32_bytes / 3
    assert result.parity.tolerance is INT8_TOLERANCE and result.parity.passed
    assert read_onnx_metadata(result.path).preprocessing == tiny_model.preprocessing
    assert result.metadata["quantization"] == "int8"
    sentence = result.int8.sentence()
    assert "smaller" in sentence and "faster" in sentence and "check photos" in sentence
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny.onnx", "tiny.onnx.json"]


def test_int8_without_calibration_photos_is_refused_before_any_work(tiny_model, tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="no calibration photos"):
        export_model(tiny_model, tmp_path / "out" / "tiny.onnx", quantize="int8")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CalibrationError, match="no calibration photos in"):
        export_model(tiny_model, tmp_path / "out" / "tiny.onnx", quantize="int8", calibrate=empty)
    assert not (tmp_path / "out").exists()


def test_an_unwritable_destination_is_an_output_error(tiny_model, photos: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="a-file"):
        export_model(tiny_model, blocker / "tiny.onnx", check_images=photos)
    assert blocker.read_text() == "not a folder"


def test_without_the_export_extra_the_message_says_how_to_get_it(
    tiny_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript now raises ImportError
    with pytest.raises(ExportExtraMissingError, match=r"pip install 'resnet-gui\[export\]'"):
        export_model(tiny_model, tmp_path / "tiny.onnx")
    assert list(tmp_path.iterdir()) == []


# --- the command line ---


@pytest.mark.usefixtures("quick_graph")
def test_cli_export_prints_the_parity_result(
    tiny_weights_file: Path, photos: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "tiny.onnx"
    code = main(
        ["export", "--model", str(tiny_weights_file), "--check-images", str(photos), "--out", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Parity check passed" in captured.out and "top-1 agreement 100.0%" in captured.out
    assert read_onnx_metadata(out).name == "tiny-resnet18"


def test_cli_export_errors_are_one_sentence(tiny_weights_file: Path, tmp_path: Path, capsys) -> None:
    code = main(
        ["export", "--model", str(tiny_weights_file), "--quantize", "int8", "--out", str(tmp_path / "m.onnx")]
    )
    err = capsys.readouterr().err
    assert code == CalibrationError.exit_code != 0
    assert err.startswith("resnet-gui: error: INT8 needs calibration photos") and err.count("\n") == 1, err
    torchscript = ["--format", "torchscript", "--quantize", "int8", "--calibrate", str(tmp_path)]
    code = main(["export", "--model", str(tiny_weights_file), *torchscript, "--out", str(tmp_path / "m.pt")])
    assert code != 0 and "TorchScript has no 'int8' quantization" in capsys.readouterr().err


def test_the_formats_table_and_the_parser_stay_torch_free() -> None:
    code = (
        "import sys; import resnet_gui.core.export as e; from resnet_gui.cli import build_parser; "
        "build_parser(); assert 'torch' not in sys.modules and 'onnx' not in sys.modules; "
        "print(e.FORMAT_KEYS)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(FORMAT_KEYS)


def test_a_bundles_own_photos_are_found_in_the_folder_it_was_trained_on(
    tiny_model, photos: Path, tmp_path: Path
) -> None:
    import dataclasses

    from resnet_gui.core.export import ExportError
    from resnet_gui.core.export.photos import calibration_photos, check_photos

    split = {
        "classes": ["ant", "bee", "cat"],
        "train": [["train/ant/image0.jpg", 0], ["train/bee/image1.jpg", 1], ["../../outside.jpg", 2]],
        "val": [["val/cat/image2.jpg", 2], ["val/cat/gone.jpg", 2]],
    }
    for rel, _ in (*split["train"][:2], split["val"][0]):
        (tmp_path / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / rel).hardlink_to(photos / Path(rel).name)
    (tmp_path / "outside.jpg").write_bytes((photos / "image0.jpg").read_bytes())
    bundle = dataclasses.replace(tiny_model, metadata={**tiny_model.metadata, "split": json.dumps(split)})
    checked = check_photos(bundle, data_root=tmp_path / "data")
    assert checked.paths == (tmp_path / "data" / "val/cat/image2.jpg",) and checked.labels == (2,)
    assert checked.description == "1 of the model's own validation photos"
    calibration = calibration_photos(bundle, data_root=tmp_path / "data")
    assert [path.name for path in calibration.paths] == [
        "image0.jpg",
        "image1.jpg",
    ]  # never outside the folder
    assert check_photos(bundle, folder=photos).labels == (None, None, None)  # --check-images comes first
    assert check_photos(tiny_model, data_root=tmp_path / "data").description == "the app's 3 sample photos"
    with pytest.raises(ExportError, match="None of the model's 2 validation photos are in"):
        check_photos(bundle, data_root=tmp_path)
