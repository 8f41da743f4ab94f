"""The runtimes (``--backend``): the table, the exported-graph cache, .onnx files, agreement with torch.

Most tests use the tiny 3-class ResNet-18 of conftest. Its graph is exported for real once per
module (``tiny_graph``, ~10 s: torch's exporter); the cache tests count exports through a stand-in
exporter that copies that graph, so they assert what is exported when without paying for it.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CATEGORIES
from PIL import Image

from resnet_gui.cli import build_parser, main
from resnet_gui.core import runtime
from resnet_gui.core.engine import Classifier
from resnet_gui.core.models import LoadedModel, load_model
from resnet_gui.core.runtime import BACKEND_KEYS, BACKENDS, INSTALL_HINT, make_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")

onnxruntime = pytest.importorskip("onnxruntime")
from resnet_gui.core.export import onnx_graph  # noqa: E402  (needs the export extra, as the skip says)
from resnet_gui.core.runtime_ort import OrtClassifier, cache_key  # noqa: E402

#: What each backend key runs on this machine (onnxruntime is installed, the CPU is the device).
RUNS_ON = {"auto": "onnxruntime", "torch": "torch", "onnxruntime": "onnxruntime"}


@pytest.fixture(scope="module")
def tiny_loaded(tiny_weights_file: Path) -> LoadedModel:
    return load_model(weights_file=tiny_weights_file)


@pytest.fixture(scope="module")
def tiny_graph(tiny_loaded: LoadedModel) -> Path:
    """The tiny model's graph, exported for real into the app's (test session's) cache folder."""
    return OrtClassifier(tiny_loaded, cache=runtime.cache_dir()).graph_path


@pytest.fixture()
def exports(tiny_graph: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Each export the cache asks for, recorded; the stand-in exporter copies the real tiny graph."""
    calls: list[Path] = []

    def export(loaded: LoadedModel, out: Path, **_: object) -> Path:
        calls.append(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tiny_graph, out)
        return out

    monkeypatch.setattr(onnx_graph, "export_onnx_graph", export)
    yield calls


@pytest.fixture()
def tiny_batch(tiny_loaded: LoadedModel, sample_images: list[Path]) -> np.ndarray:
    return tiny_loaded.preprocessing.prepare_batch([Image.open(p).convert("RGB") for p in sample_images])


# --- the table ---


def test_the_table_feeds_the_cli_choices_and_auto_comes_first() -> None:
    assert BACKEND_KEYS == ("auto", "torch", "onnxruntime")
    parser = build_parser()
    for command in ("classify", "batch"):
        args = parser.parse_args([command, "x.jpg"])
        assert args.backend == "auto"
        for key in BACKEND_KEYS:
            assert parser.parse_args([command, "x.jpg", "--backend", key]).backend == key
    with pytest.raises(SystemExit):
        parser.parse_args(["classify", "x.jpg", "--backend", "tensorrt"])
    assert all(backend.name and backend.description.endswith(".") for backend in BACKENDS.values())


def test_the_table_imports_neither_torch_nor_onnxruntime() -> None:
    code = (
        "import sys; import resnet_gui.core.runtime as r; r.BACKENDS; r.onnxruntime_available(); "
        "print([m for m in ('torch', 'onnxruntime') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the cache of exported graphs ---


def test_the_second_start_finds_the_exported_graph(
    tiny_loaded: LoadedModel, exports: list[Path], tmp_path: Path
) -> None:
    told: list[str] = []
    first = OrtClassifier(tiny_loaded, cache=tmp_path, on_export=told.append)
    assert (first.cache_hit, len(exports), len(told)) == (False, 1, 1)
    assert first.graph_path.parent == tmp_path and first.graph_path.is_file()
    second = OrtClassifier(tiny_loaded, cache=tmp_path, on_export=told.append)
    assert (second.cache_hit, len(exports), len(told)) == (True, 1, 1)
    assert second.graph_path == first.graph_path
    assert [p.name for p in tmp_path.iterdir()] == [first.graph_path.name]  # nothing half-written beside


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_cache_file_is_exported_again(
    tiny_loaded: LoadedModel, exports: list[Path], tmp_path: Path, tiny_batch: np.ndarray, damage: str
) -> None:
    path = OrtClassifier(tiny_loaded, cache=tmp_path).graph_path
    data = path.read_bytes()
    path.write_bytes(
        {"garbage": b"not a graph" * 100, "truncated": data[: len(data) // 2], "empty": b""}[damage]
    )
    again = OrtClassifier(tiny_loaded, cache=tmp_path)
    assert not again.cache_hit and len(exports) == 2
    assert path.read_bytes() == data
    expected = Classifier(tiny_loaded, "cpu").probabilities(tiny_batch)
    np.testing.assert_allclose(again.probabilities(tiny_batch), expected, atol=1e-4)


def test_the_cache_keeps_the_most_recently_used_graphs(
    tiny_loaded: LoadedModel, exports: list[Path], tmp_path: Path
) -> None:
    import os

    from resnet_gui.core.runtime_ort import MAX_CACHED_GRAPHS

    old = [tmp_path / f"old-{index}.onnx" for index in range(MAX_CACHED_GRAPHS)]
    for age, path in enumerate(old):
        path.write_bytes(b"graph")
        os.utime(path, (1000 + age, 1000 + age))  # old-0 is the least recently used
    fresh = OrtClassifier(tiny_loaded, cache=tmp_path).graph_path
    left = sorted(path.name for path in tmp_path.glob("*.onnx"))
    assert left == sorted([fresh.name, *(path.name for path in old[1:])])


def test_the_cache_key_follows_the_weights_content(
    tiny_weights_file: Path, tiny_loaded: LoadedModel, tmp_path: Path
) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    same = tmp_path / "same-content.safetensors"
    shutil.copyfile(tiny_weights_file, same)
    assert cache_key(load_model(weights_file=same)) == cache_key(tiny_loaded)

    with safe_open(str(tiny_weights_file), "pt") as reader:
        metadata = reader.metadata()
        tensors = {key: reader.get_tensor(key) for key in reader.keys()}  # noqa: SIM118
    tensors["fc.bias"] = tensors["fc.bias"] + 1.0
    changed = tmp_path / "changed.safetensors"
    save_file(tensors, str(changed), metadata=metadata)
    assert cache_key(load_model(weights_file=changed)) != cache_key(tiny_loaded)


def test_a_model_without_a_file_is_keyed_by_its_tensors(tiny_loaded: LoadedModel) -> None:
    import copy

    unsaved = copy.copy(tiny_loaded)
    unsaved.source = None
    assert cache_key(unsaved) == cache_key(copy.copy(unsaved))
    changed = copy.copy(unsaved)
    changed.model = copy.deepcopy(tiny_loaded.model)
    changed.model.fc.bias.data += 1.0
    assert cache_key(changed) != cache_key(unsaved)


# --- the classifiers ---


def test_onnxruntime_gives_the_probabilities_of_torch(
    tiny_loaded: LoadedModel, tiny_graph: Path, tiny_batch
) -> None:
    fast = make_classifier(tiny_loaded, "onnxruntime", "cpu")
    assert isinstance(fast, OrtClassifier) and fast.cache_hit and fast.graph_path == tiny_graph
    expected = Classifier(tiny_loaded, "cpu").probabilities(tiny_batch)
    np.testing.assert_allclose(fast.probabilities(tiny_batch), expected, atol=1e-4)
    assert fast.probabilities(tiny_batch[:1]).shape == (1, len(TINY_CATEGORIES))  # the batch stays dynamic


def test_explanations_still_run_on_the_torch_model(tiny_loaded: LoadedModel, tiny_graph: Path) -> None:
    from resnet_gui.core.explain.pipeline import explain_photo

    fast = make_classifier(tiny_loaded, "onnxruntime", "cpu")
    image = Image.new("RGB", (90, 70), (120, 80, 40))
    result = explain_photo(fast, image, method="gradcam", top_k=1)
    (explained,) = result.classes
    assert explained.map_on_image.shape == (70, 90)


def test_loader_threads_get_the_cores_the_runtime_leaves(
    tiny_loaded: LoadedModel, tiny_graph: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnet_gui.core.batch import pipeline

    monkeypatch.setattr(pipeline, "_usable_cpus", lambda: 4)
    fast = OrtClassifier(tiny_loaded, cache=runtime.cache_dir(), threads=3)
    assert fast.compute_threads() == 3 and pipeline.default_workers(fast) == 1


# --- the command line, on every backend ---


def _top1_of_classify(args: list[str], capsys) -> tuple[dict, list[str]]:
    code = main(["classify", *args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    return data, [result["predictions"][0]["label"] for result in data["results"]]


@pytest.mark.parametrize("backend", BACKEND_KEYS)
def test_classify_runs_on_each_backend_with_the_same_top1(
    backend: str, tiny_weights_file: Path, tiny_graph: Path, sample_images: list[Path], capsys
) -> None:
    common = [*map(str, sample_images), "--weights", str(tiny_weights_file)]
    _, expected = _top1_of_classify([*common, "--backend", "torch"], capsys)
    data, top1 = _top1_of_classify([*common, "--backend", backend], capsys)
    assert data["backend"] == RUNS_ON[backend]
    assert top1 == expected and set(top1) <= set(TINY_CATEGORIES)


def _batch_top1(args: list[str], out: Path) -> list[tuple[str, str]]:
    assert main(["batch", *args, "--out", str(out), "--overwrite"]) == 0
    with out.open(newline="", encoding="utf-8") as stream:
        return [(row["path"], row["label_1"]) for row in csv.DictReader(stream)]


@pytest.mark.parametrize("backend", BACKEND_KEYS)
def test_batch_runs_on_each_backend_with_the_same_top1(
    backend: str, tiny_weights_file: Path, tiny_graph: Path, sample_images: list[Path], tmp_path: Path, capsys
) -> None:
    common = [str(sample_images[0].parent), "--weights", str(tiny_weights_file)]
    expected = _batch_top1([*common, "--backend", "torch"], tmp_path / "torch.csv")
    rows = _batch_top1([*common, "--backend", backend], tmp_path / "out.csv")
    assert rows == expected and len(rows) == len(sample_images)
    assert f"on cpu with {RUNS_ON[backend]}" in capsys.readouterr().err


def test_without_onnxruntime_asking_for_it_says_how_to_install(
    tiny_weights_file: Path, sample_images: list[Path], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(runtime, "onnxruntime_available", lambda: False)
    code = main(
        ["classify", str(sample_images[0]), "--weights", str(tiny_weights_file), "--backend", "onnxruntime"]
    )
    err = capsys.readouterr().err
    assert code != 0 and INSTALL_HINT in err and err.count("\n") == 1


def test_without_onnxruntime_auto_runs_on_torch_and_says_so(
    tiny_weights_file: Path, sample_images: list[Path], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(runtime, "onnxruntime_available", lambda: False)
    data, _ = _top1_of_classify([str(sample_images[0]), "--weights", str(tiny_weights_file)], capsys)
    assert data["backend"] == "torch"
    assert main(["classify", str(sample_images[0]), "--weights", str(tiny_weights_file)]) == 0
    assert "with torch (auto: onnxruntime is not installed)" in capsys.readouterr().err


def test_auto_falls_back_to_torch_when_the_export_fails(
    tiny_loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from resnet_gui.core.export.errors import GraphExportError

    def refuse(loaded: LoadedModel, out: Path, **_: object) -> Path:
        raise GraphExportError("The model cannot be exported to ONNX: no.")

    monkeypatch.setattr(onnx_graph, "export_onnx_graph", refuse)
    classifier = make_classifier(tiny_loaded, "auto", "cpu", cache=tmp_path)
    assert classifier.backend == "torch" and "cannot be exported" in (classifier.fallback_reason or "")
    with pytest.raises(GraphExportError, match="cannot be exported"):  # asked for: the reason itself
        make_classifier(tiny_loaded, "onnxruntime", "cpu", cache=tmp_path)


def test_off_the_cpu_auto_keeps_torch_and_onnxruntime_is_refused(tiny_loaded: LoadedModel) -> None:
    import copy

    import torch

    elsewhere = torch.device("meta")  # stands for a GPU: a device that is not the CPU
    unsaved = copy.copy(tiny_loaded)
    unsaved.model = copy.deepcopy(tiny_loaded.model)  # the classifier moves its model there
    classifier = make_classifier(unsaved, "auto", elsewhere)
    assert classifier.backend == "torch" and classifier.device == elsewhere
    assert "runs on the processor" in (classifier.fallback_reason or "")
    with pytest.raises(runtime.BackendError, match="runs on the processor"):
        make_classifier(unsaved, "onnxruntime", elsewhere)


# --- .onnx files given to --model ---


@pytest.fixture()
def our_onnx_file(tiny_graph: Path, tmp_path: Path) -> Path:
    path = tmp_path / "ants-and-bees.onnx"
    shutil.copyfile(tiny_graph, path)
    return path


@pytest.mark.parametrize("command", ["classify", "batch"])
def test_an_onnx_file_of_ours_classifies(
    command: str,
    our_onnx_file: Path,
    tiny_weights_file: Path,
    sample_images: list[Path],
    tmp_path: Path,
    capsys,
) -> None:
    if command == "classify":
        data, top1 = _top1_of_classify([*map(str, sample_images), "--model", str(our_onnx_file)], capsys)
        _, expected = _top1_of_classify(
            [*map(str, sample_images), "--weights", str(tiny_weights_file)], capsys
        )
        assert data["model"] == "tiny-resnet18" and data["backend"] == "onnxruntime"
        assert top1 == expected
    else:
        folder = [str(sample_images[0].parent)]
        rows = _batch_top1([*folder, "--model", str(our_onnx_file)], tmp_path / "onnx.csv")
        assert rows == _batch_top1([*folder, "--weights", str(tiny_weights_file)], tmp_path / "torch.csv")


def test_an_onnx_file_on_the_torch_backend_is_refused(
    our_onnx_file: Path, sample_images: list[Path], capsys
) -> None:
    code = main(["classify", str(sample_images[0]), "--model", str(our_onnx_file), "--backend", "torch"])
    err = capsys.readouterr().err
    assert code != 0 and "ONNX Runtime" in err and err.count("\n") == 1


def test_an_onnx_file_from_elsewhere_says_what_is_missing(
    our_onnx_file: Path, sample_images: list[Path], tmp_path: Path, capsys
) -> None:
    import onnx

    proto = onnx.load_model(str(our_onnx_file))
    kept = [(e.key, e.value) for e in proto.metadata_props if e.key != "categories"]
    del proto.metadata_props[:]
    for key, value in kept:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    foreign = tmp_path / "foreign.onnx"
    onnx.save_model(proto, str(foreign))
    not_onnx = tmp_path / "not-a-model.onnx"
    not_onnx.write_bytes(b"\x00garbage" * 50)
    for path, words in ((foreign, "categories"), (not_onnx, "not an ONNX model")):
        code = main(["classify", str(sample_images[0]), "--model", str(path)])
        err = capsys.readouterr().err
        assert code != 0 and words in err and str(path) in err, err


def test_explain_with_an_onnx_file_says_it_can_only_classify(
    our_onnx_file: Path, sample_images: list[Path], capsys
) -> None:
    code = main(["explain", str(sample_images[0]), "--model", str(our_onnx_file)])
    err = capsys.readouterr().err
    assert code != 0 and "can only classify" in err and err.count("\n") == 1


def test_finetune_with_an_onnx_file_says_it_can_only_classify(our_onnx_file: Path) -> None:
    from resnet_gui.core.errors import WeightsError

    with pytest.raises(WeightsError, match="can only classify"):
        load_model(str(our_onnx_file))  # what finetune and evaluate call with --model


# --- the real model ---


@pytest.mark.real_model
def test_onnxruntime_gives_the_top1_of_torch_on_real_photos(real_resnet50: LoadedModel) -> None:
    from shared_data import HYMENOPTERA

    photos = sorted(HYMENOPTERA.glob("val/*/*.jpg"))[::5]  # 31 of the 153, ants and bees
    if len(photos) < 20:
        pytest.skip(f"the hymenoptera photos are missing from {HYMENOPTERA}")
    torch_run = Classifier(real_resnet50, "cpu")
    fast = make_classifier(real_resnet50, "onnxruntime", "cpu")
    assert fast.backend == "onnxruntime"
    images = [torch_run.load(path) for path in photos]
    expected = [top[0].index for top in torch_run.classify_images(images, top_k=1)]
    got = [top[0].index for top in fast.classify_images(images, top_k=1)]
    assert got == expected
    assert len(set(expected)) > 1  # real predictions, not one class for everything
