"""Input that must never hang, exhaust memory or end in a traceback: special files in a training
folder (FIFOs, links to devices, links to folders, broken links), names that are not UTF-8, empty
class folders, decompression bombs, and Keras/TF.js folders with hostile files or malformed
model.json documents. Every case is one line of a table.

A call that could block runs in a daemon thread joined with a deadline, so a regression fails
instead of hanging CI. The Keras special-file cases run in a child process with a memory limit:
reading ``/dev/zero`` unbounded (what a regression would do) then fails fast instead of
swallowing the machine's memory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from resnet_gui.core.errors import KerasImportError
from resnet_gui.core.keras_import import (
    MAX_MODEL_JSON_BYTES,
    _expected_conv_geometry,
    import_keras_resnet50,
    keras_to_torch_names,
)
from resnet_gui.core.training import HealthReport, Sample, Split, check_health, make_split, scan_dataset
from resnet_gui.core.training.dataset import fingerprint

DEADLINE_S = 20.0
IMAGES_PER_CLASS = 5
IMAGE_SIDE = 36


def finishes(function: Callable[..., Any], *args: Any, seconds: float = DEADLINE_S) -> Any:
    """``function(*args)`` in a daemon thread; fail if it is still running after ``seconds``."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # re-raised in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{getattr(function, '__name__', function)} still runs after {seconds:.0f} s: it blocks")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def save_image(path: str | os.PathLike[str] | bytes, seed: int, side: int = IMAGE_SIDE) -> None:
    array = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(array).save(os.fsdecode(path), format="PNG")


def two_classes(root: Path) -> Path:
    """``root/a`` and ``root/b`` with distinct small images: a dataset with no problem of its own."""
    for class_index, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for index in range(IMAGES_PER_CLASS):
            save_image(root / name / f"{index}.png", 100 * class_index + index)
    return root


# --- special entries in a training folder ------------------------------------------------------
# Each maker adds one hostile entry under ``root`` (a dataset of classes a and b) and returns it.


def _fifo(root: Path) -> Path:
    os.mkfifo(root / "a" / "pipe.png")
    return root / "a" / "pipe.png"


def _link(target: str, name: str) -> Callable[[Path], Path]:
    """A link ``a/<name>`` to ``target``: absolute, or relative to the dataset root."""

    def make(root: Path) -> Path:
        os.symlink(target if target.startswith("/") else root / target, root / "a" / name)
        return root / "a" / name

    return make


def _folder_link(root: Path) -> Path:
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir()
    save_image(elsewhere / "inside.png", 7)
    os.symlink(elsewhere, root / "a" / "folder.png")
    return root / "a" / "folder.png"


def _folder_named_like_an_image(root: Path) -> Path:
    (root / "a" / "dir.png").mkdir()
    return root / "a" / "dir.png"


def _left_out_folder(root: Path) -> Path:
    """The review's ``_left_out/`` folder, holding photos the user left out: never a class."""
    (root / "_left_out" / "a").mkdir(parents=True)
    save_image(root / "_left_out" / "a" / "out.png", 0)
    return root / "_left_out"


def _not_utf8_file(root: Path) -> Path:
    raw = os.path.join(os.fsencode(root / "a"), b"ph\xe9.png")
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    save_image(raw, 55)
    return Path(os.fsdecode(raw))


def _not_utf8_class(root: Path) -> Path:
    folder = os.path.join(os.fsencode(root), b"cl\xe9")
    os.mkdir(folder)
    for index in range(IMAGES_PER_CLASS):
        save_image(os.path.join(folder, b"\xff%d.png" % index), 300 + index)
    return Path(os.fsdecode(folder))


def _empty_class(root: Path) -> Path:
    (root / "c").mkdir()
    return root / "c"


def _class_without_images(root: Path) -> Path:
    (root / "c" / "sub").mkdir(parents=True)
    (root / "c" / "notes.txt").write_text("no image here")
    return root / "c"


def _bomb(root: Path) -> Path:
    """Over the pixel limit the test sets (below twice it: where Pillow only warns)."""
    save_image(root / "a" / "bomb.png", 9, side=50)
    return root / "a" / "bomb.png"


NOT_REGULAR = ("unreadable", "not a regular file")

SPECIAL_ENTRIES = [
    pytest.param(_fifo, NOT_REGULAR, id="fifo"),
    pytest.param(_link("/dev/zero", "zero.jpg"), NOT_REGULAR, id="link-to-dev-zero"),
    pytest.param(_link("/dev/null", "null.png"), NOT_REGULAR, id="link-to-dev-null"),
    pytest.param(_link("missing.png", "broken.png"), ("unreadable", "no such file"), id="broken-link"),
    pytest.param(_link("a/0.png", "loop.png"), ("usable", None), id="link-to-an-image"),
    pytest.param(_folder_link, ("absent", None), id="link-to-a-folder"),
    pytest.param(_folder_named_like_an_image, ("absent", None), id="folder-named-like-an-image"),
    pytest.param(_left_out_folder, ("absent", None), id="left-out-folder"),
    pytest.param(_not_utf8_file, ("usable", None), id="not-utf8-file-name"),
    pytest.param(_not_utf8_class, ("class", None), id="not-utf8-class-name"),
    pytest.param(
        _empty_class, ("empty", "The class folder 'c' holds no images; it is left out."), id="empty"
    ),
    pytest.param(_class_without_images, ("empty", "The class folder 'c' holds no images"), id="no-images"),
    pytest.param(_bomb, ("unreadable", "too large"), id="decompression-bomb"),
]


@pytest.mark.parametrize(("make", "expected"), SPECIAL_ENTRIES)
def test_special_entries_in_a_training_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[Path], Path], expected: tuple[str, Any]
) -> None:
    root = two_classes(tmp_path / "data")
    entry = make(root)
    # Normal images (36x36) are under the limit, the bomb (50x50) is between 1x and 2x of it.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", IMAGE_SIDE * IMAGE_SIDE + 100)
    dataset = scan_dataset(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report: HealthReport = finishes(check_health, dataset)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    split = make_split(dataset, val_fraction=0.2, exclude={issue.path for issue in report.unreadable})
    in_split = {sample.path for sample in (*split.train, *split.val)}
    unreadable = {issue.path: issue.reason for issue in report.unreadable}
    kind, detail = expected
    if kind == "unreadable":
        assert detail in unreadable[entry] and entry not in in_split
        assert report.warnings()[0] == "1 file cannot be read and is left out."
    elif kind == "usable":
        assert entry in in_split and not unreadable
    elif kind == "class":
        assert entry.name in dataset.classes and not unreadable
        label = dataset.classes.index(entry.name)
        assert {s.path.parent for s in (*split.train, *split.val) if s.label == label} == {entry}
    elif kind == "absent":
        assert not any(sample.path == entry or entry in sample.path.parents for sample in dataset.samples)
        assert report.warnings() == []
    else:  # an empty class folder: said so, and no class of zero images to break the split
        assert entry.name not in dataset.classes and dataset.classes == ("a", "b")
        assert any(line.startswith(detail) for line in report.warnings())
        assert report.to_dict()["empty_class_folders"] == ["c"]
    json.loads(report.to_json())  # non-UTF-8 names, reasons: all serialisable
    json.loads(split.to_json())


BATCH_PIXEL_LIMIT = 10_000  # over the 72 x 72 the tiny model resizes to, under the bombs below


def _batch_bomb(side: int) -> Callable[[Path], Path]:
    """A photo of ``side`` x ``side`` pixels: between 1x and 2x the limit Pillow only warns, above it refuses."""

    def make(root: Path) -> Path:
        save_image(root / "a" / f"big-{side}.png", side, side=side)
        return root / "a" / f"big-{side}.png"

    return make


def _named_like_the_size_message(root: Path) -> Path:
    """An empty file whose name holds the words core uses for a photo over the size limit."""
    path = root / "a" / "image is too large - possible decompression bomb.png"
    path.write_bytes(b"")
    return path


BATCH_ENTRIES = [
    pytest.param(_batch_bomb(120), "too_large", id="bomb-pillow-warns"),
    pytest.param(_batch_bomb(160), "too_large", id="bomb-pillow-refuses"),
    pytest.param(_named_like_the_size_message, "unreadable", id="named-like-the-size-message"),
    pytest.param(_fifo, "unreadable", id="fifo"),
    pytest.param(_link("missing.png", "broken.png"), "unreadable", id="broken-link"),
]


@pytest.mark.parametrize(("make", "kind"), BATCH_ENTRIES)
def test_hostile_entries_in_a_batch_fail_with_their_kind(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny_classifier: Any,
    make: Callable[[Path], Path],
    kind: str,
) -> None:
    """Batch and the engine say why a file failed by kind (a too-large photo: "too_large", which
    the user may allow), decided by the loader's error type, never by the words of the reason."""
    from resnet_gui.core.batch import BatchRow, classify_folder
    from resnet_gui.core.engine import ImageFailure

    root = two_classes(tmp_path / "data")
    entry = make(root)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", BATCH_PIXEL_LIMIT)
    files = [root / "a" / "0.png", entry, root / "b" / "0.png"]
    items = finishes(lambda: list(classify_folder(tiny_classifier, files, top_k=1, workers=1)))
    rows = [item for item in items if isinstance(item, BatchRow)]
    assert [row.kind for row in rows] == [None, kind, None], [row.error for row in rows]
    outcomes = finishes(lambda: list(tiny_classifier.classify_paths(files, top_k=1)))
    failure = outcomes[1]
    assert isinstance(failure, ImageFailure) and failure.kind == kind
    assert not any(isinstance(outcome, ImageFailure) for outcome in (outcomes[0], outcomes[2]))


def test_empty_train_folder_of_a_class_is_named(tmp_path: Path) -> None:
    """train/val layout: a class with validation images only is reported, and the split refuses it."""
    root = tmp_path / "data"
    for split, count in (("train", 3), ("val", 2)):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                save_image(root / split / name / f"{index}.png", hash((split, name, index)) % 1000)
    (root / "train" / "c").mkdir()
    (root / "val" / "c").mkdir()
    save_image(root / "val" / "c" / "0.png", 999)
    dataset = scan_dataset(root)
    report = finishes(check_health, dataset)
    assert "The class folder 'train/c' holds no images." in report.warnings()
    from resnet_gui.core.training import DatasetError

    with pytest.raises(DatasetError, match="No training images left for: c"):
        make_split(dataset)


def test_non_utf8_names_fingerprint_and_split_round_trip(tmp_path: Path) -> None:
    root = two_classes(tmp_path / "data")
    entry = _not_utf8_file(root)
    _not_utf8_class(root)
    dataset = scan_dataset(root)
    first = make_split(dataset, val_fraction=0.4, seed=3)
    assert make_split(dataset, val_fraction=0.4, seed=3) == first  # seeded by the raw class name
    again = Split.from_dict(json.loads(first.to_json()), root)

    def listed(samples: tuple[Sample, ...]) -> list[tuple[Path, int]]:
        return [(sample.path, sample.label) for sample in samples]

    assert listed(again.train) == listed(first.train) and listed(again.val) == listed(first.val)
    assert again.classes == dataset.classes and again.missing_files() == []
    assert entry in {s.path for s in (*again.train, *again.val)}
    # Names that are UTF-8 hash as they always did; a raw byte changes the fingerprint.
    import hashlib

    plain = [("a/x.png", "a", "d1")]
    assert fingerprint(plain) == hashlib.sha256(b"a/x.png\ta\td1\n").hexdigest()[:24]
    raw = [(os.fsdecode(b"a/\xe9.png"), "a", "d1")]
    assert fingerprint(raw) != fingerprint([(os.fsdecode(b"a/\xe8.png"), "a", "d1")])


# --- Keras / TF.js folders ---------------------------------------------------------------------

SHARD = "group1-shard1of1.bin"
SHARD_BYTES = 16


def valid_model_json() -> dict[str, Any]:
    """A topology that passes the ResNet-50 v1 check, and a manifest of one small shard."""
    geometry = _expected_conv_geometry()
    layers: list[dict[str, Any]] = [{"name": "input_1", "class_name": "InputLayer", "config": {}}]
    kinds = {"conv": "Conv2D", "bn": "BatchNormalization", "dense": "Dense"}
    for name, (_, kind) in keras_to_torch_names().items():
        config: dict[str, Any] = {"name": name}
        if kind == "conv":
            size, stride = geometry[name]
            config.update(kernel_size=[size, size], strides=[stride, stride], data_format="channels_last")
        elif kind == "bn":
            config.update(axis=[3], epsilon=1e-3, center=True, scale=True)
        layers.append({"name": name, "class_name": kinds[kind], "config": config})
    return {
        "format": "layers-model",
        "modelTopology": {"model_config": {"class_name": "Model", "config": {"layers": layers}}},
        "weightsManifest": [
            {"paths": [SHARD], "weights": [{"name": "conv1/kernel", "shape": [2, 2], "dtype": "float32"}]}
        ],
    }


def tfjs_folder(folder: Path, document: Any = None) -> Path:
    """A TF.js folder: model.json (a dict is dumped, bytes are written as they are) and its shard."""
    folder.mkdir(parents=True)
    document = valid_model_json() if document is None else document
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    (folder / "model.json").write_bytes(data)
    (folder / SHARD).write_bytes(b"\0" * SHARD_BYTES)
    return folder


def _edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[], Any]:
    """A malformed document: the valid one, changed by ``change`` (which may return a replacement)."""

    def make() -> Any:
        document = valid_model_json()
        replaced = change(document)
        return document if replaced is None else replaced

    return make


def _layer(document: dict[str, Any], name: str) -> dict[str, Any]:
    layers = document["modelTopology"]["model_config"]["config"]["layers"]
    return next(layer for layer in layers if layer["name"] == name)


def _group(document: dict[str, Any]) -> dict[str, Any]:
    return document["weightsManifest"][0]


def _entry(document: dict[str, Any]) -> dict[str, Any]:
    return _group(document)["weights"][0]


def _set(getter: Callable[[dict[str, Any]], dict[str, Any]], key: str, value: Any) -> Callable[[], Any]:
    return _edit(lambda document: getter(document).update({key: value}))


def _drop(getter: Callable[[dict[str, Any]], dict[str, Any]], key: str) -> Callable[[], Any]:
    def change(document: dict[str, Any]) -> None:
        del getter(document)[key]

    return _edit(change)


def _raw(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _top(document: dict[str, Any]) -> dict[str, Any]:
    return document


def _topology(document: dict[str, Any]) -> dict[str, Any]:
    return document["modelTopology"]


def _conv1(document: dict[str, Any]) -> dict[str, Any]:
    return _layer(document, "conv1")["config"]


def _bn_conv1(document: dict[str, Any]) -> dict[str, Any]:
    return _layer(document, "bn_conv1")["config"]


BIG = {"name": "big/kernel", "shape": [200_000_000], "dtype": "float32"}  # 800 MB, one of two

MALFORMED_MODEL_JSON = [
    pytest.param(_raw(b"{not json"), "not valid JSON", id="not-json"),
    pytest.param(_raw(b""), "not valid JSON", id="empty-file"),
    pytest.param(_raw(b'{"format": "layers-model\xff"}'), "not UTF-8", id="not-utf8"),
    pytest.param(_raw(b"[1, 2]"), "not a JSON object", id="top-level-list"),
    pytest.param(_raw(b'"model"'), "not a JSON object", id="top-level-string"),
    pytest.param(_raw(b"[" * 100_000 + b"]" * 100_000), "refuses to read", id="nested-too-deep"),
    pytest.param(_raw(b'{"n": ' + b"7" * 5000 + b"}"), "refuses to read", id="number-of-5000-digits"),
    pytest.param(_set(_top, "format", {"a": 1}), "not a 'layers-model'", id="format-not-a-string"),
    pytest.param(_set(_top, "modelTopology", ["layers"]), "modelTopology", id="topology-a-list"),
    pytest.param(_set(_top, "modelTopology", "resnet"), "modelTopology", id="topology-a-string"),
    pytest.param(_set(_topology, "model_config", {"config": []}), "no list of layers", id="config-a-list"),
    pytest.param(_set(_topology, "model_config", {"config": {"layers": {}}}), "no list", id="layers-a-dict"),
    pytest.param(
        _set(_top, "modelTopology", {"model_config": 5}), "no list of layers", id="model-config-int"
    ),
    pytest.param(
        _edit(lambda d: _layer(d, "conv1").update(config="x")), "conv1 has kernel", id="layer-config-str"
    ),
    pytest.param(
        _edit(lambda d: _layer(d, "conv1").update(class_name=["Conv2D"])), "conv1 is a", id="class-list"
    ),
    pytest.param(_set(_conv1, "kernel_size", None), "conv1 has kernel None", id="kernel-size-none"),
    pytest.param(_set(_conv1, "strides", 5), "conv1 has strides 5", id="strides-an-int"),
    pytest.param(_set(_bn_conv1, "epsilon", "small"), "epsilon 'small'", id="epsilon-a-string"),
    pytest.param(_set(_bn_conv1, "epsilon", None), "epsilon None", id="epsilon-null"),
    pytest.param(_set(_bn_conv1, "epsilon", float("nan")), "epsilon nan", id="epsilon-nan"),
    pytest.param(_set(_top, "weightsManifest", {"paths": []}), "weightsManifest", id="manifest-a-dict"),
    pytest.param(_set(_top, "weightsManifest", []), "weightsManifest", id="manifest-empty"),
    pytest.param(
        _set(_top, "weightsManifest", ["group"]), "group 1 of model.json is not", id="group-a-string"
    ),
    pytest.param(_set(_group, "paths", SHARD), "no list of shard", id="paths-a-string"),
    pytest.param(_set(_group, "paths", [1]), "no list of shard", id="paths-of-numbers"),
    pytest.param(_set(_group, "paths", ["a\0b"]), "cannot exist", id="path-with-nul"),
    pytest.param(_set(_group, "paths", ["../model.json"]), "outside its folder", id="path-outside"),
    pytest.param(
        _set(_group, "weights", {"conv1/kernel": [2, 2]}), "no list of weights", id="weights-a-dict"
    ),
    pytest.param(_set(_group, "weights", ["conv1/kernel"]), "not an object", id="weight-a-string"),
    pytest.param(_drop(_entry, "name"), "without a name", id="weight-without-name"),
    pytest.param(_set(_entry, "name", 12), "without a name", id="weight-name-a-number"),
    pytest.param(_drop(_entry, "shape"), "has shape None", id="weight-without-shape"),
    pytest.param(_set(_entry, "shape", [-4, -1]), "has shape", id="negative-shape"),
    pytest.param(_set(_entry, "shape", [2.5, 2]), "has shape", id="fractional-shape"),
    pytest.param(_set(_entry, "shape", "22"), "has shape", id="shape-a-string"),
    pytest.param(_set(_entry, "shape", [None]), "has shape", id="shape-of-null"),
    pytest.param(_set(_entry, "shape", [True, 4]), "has shape", id="shape-of-booleans"),
    pytest.param(_set(_entry, "shape", [0, 10**30]), "has shape", id="shape-huge-and-empty"),
    pytest.param(_set(_entry, "shape", [2**40, 2**40]), "has shape", id="shape-huge"),
    pytest.param(_set(_group, "weights", [BIG, BIG]), "far more than a ResNet-50", id="manifest-too-large"),
    pytest.param(_set(_entry, "quantization", "uint8"), "quantised", id="quantization-a-string"),
    pytest.param(_set(_entry, "dtype", ["float32"]), "not float32", id="dtype-a-list"),
    pytest.param(_set(_entry, "shape", [8]), "bytes", id="shard-smaller-than-manifest"),
    pytest.param(_set(_entry, "shape", [2]), "bytes", id="shard-larger-than-manifest"),
]


@pytest.mark.parametrize(("make", "message"), MALFORMED_MODEL_JSON)
def test_malformed_model_json_is_one_sentence(tmp_path: Path, make: Callable[[], Any], message: str) -> None:
    folder = tfjs_folder(tmp_path / "model", make())
    destination = tmp_path / "out" / "w.safetensors"
    with pytest.raises(KerasImportError, match=re.escape(message)) as caught:
        finishes(import_keras_resnet50, folder, destination)
    text = str(caught.value)
    assert text.endswith(".") and "\n" not in text and len(text) < 400
    assert not destination.exists()


# Each maker turns part of a valid TF.js folder into a hostile file (only ever under tmp_path).
def _replace(name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / name).unlink()
        make(folder / name)

    return change


def _sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with open(path, "wb") as handle:
            handle.truncate(size)

    return make


HOSTILE_TFJS_FILES = [
    pytest.param(_replace(SHARD, os.mkfifo), "not a regular file", id="shard-fifo"),
    pytest.param(
        _replace(SHARD, lambda p: os.symlink("/dev/zero", p)), "not a regular file", id="shard-dev-zero"
    ),
    pytest.param(_replace(SHARD, lambda p: p.mkdir()), "is a directory", id="shard-a-folder"),
    pytest.param(
        _replace(SHARD, lambda p: os.symlink(p.parent / "gone", p)), "no such file", id="shard-broken-link"
    ),
    pytest.param(_replace(SHARD, _sparse(1 << 30)), "hold more bytes", id="shard-of-1-GB"),
    pytest.param(_replace("model.json", os.mkfifo), "not a regular file", id="model-json-fifo"),
    pytest.param(
        _replace("model.json", lambda p: os.symlink("/dev/zero", p)), "not a regular", id="json-dev-zero"
    ),
    pytest.param(
        _replace("model.json", _sparse(2 * MAX_MODEL_JSON_BYTES)), "more than the", id="json-over-64-MB"
    ),
    pytest.param(_replace("model.json", lambda p: p.mkdir()), "is a directory", id="model-json-a-folder"),
]

_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # reading /dev/zero unbounded fails fast
from resnet_gui.core.errors import KerasImportError
from resnet_gui.core.keras_import import open_tfjs_model, read_tfjs_weights
try:
    with open_tfjs_model(sys.argv[1]) as folder:
        read_tfjs_weights(folder)
except KerasImportError as error:
    print(json.dumps(str(error)))
"""


def _in_child(path: Path) -> str:
    """The KerasImportError message of reading ``path``'s model, in a child with a memory limit."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)],
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading '{path}' still runs after {DEADLINE_S:.0f} s: it blocks")
    assert done.returncode == 0 and done.stdout.strip(), done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize(("damage", "message"), HOSTILE_TFJS_FILES)
def test_hostile_files_in_a_tfjs_folder(tmp_path: Path, damage: Callable[[Path], None], message: str) -> None:
    folder = tfjs_folder(tmp_path / "model")
    damage(folder)
    text = _in_child(folder)
    assert message in text and text.endswith(".")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(os.mkfifo, id="fifo"),
        pytest.param(lambda p: os.symlink("/dev/zero", p), id="dev-zero"),
    ],
)
def test_hostile_archive_path(tmp_path: Path, make: Callable[[Path], None]) -> None:
    path = tmp_path / "resnet.tgz"
    make(path)
    assert "not a regular file" in _in_child(path)
