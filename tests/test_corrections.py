"""Corrections ("Wrong? → pick the right class"): copies into the training folder, persisted, undoable."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnet_gui.core import corrections as corrections_module
from resnet_gui.core.corrections import (
    CORRECTIONS_FILE,
    CorrectionError,
    Corrections,
    dataset_key,
    dataset_record_folder,
)


def _photo(path: Path, seed: int = 0, size: int = 40) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "my pets"
    for label, name in enumerate(("ant", "bee")):
        for index in range(3):
            _photo(root / name / f"{name}{index}.png", seed=10 * label + index)
    return root


@pytest.fixture()
def split_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "splits"
    for split in ("train", "val"):
        for label, name in enumerate(("ant", "bee")):
            _photo(root / split / name / f"{name}.png", seed=label + (5 if split == "val" else 0))
    return root


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "appdata"


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    return _photo(tmp_path / "inbox" / "IMG_0001.png", seed=99)


def test_add_copies_into_the_class_folder_and_persists(dataset, data_dir, photo) -> None:
    before = photo.read_bytes()
    corrections = Corrections(dataset, data_dir)
    made = corrections.add(photo, "bee", "ant")
    assert made.copy.parent == dataset.resolve() / "bee"
    assert made.copy.name == photo.name
    assert made.copy.read_bytes() == before
    assert made.digest == _digest(photo)
    assert made.label == "bee" and made.predicted == "ant"
    assert made.photo == photo.resolve()
    assert photo.read_bytes() == before  # never moved, never changed
    assert not [p for p in made.copy.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    record = dataset_record_folder(dataset, data_dir) / CORRECTIONS_FILE
    assert corrections.path == record and record.is_file()
    again = Corrections(dataset, data_dir)  # survives a restart
    assert again.entries() == [made]
    assert len(again) == 1


def test_record_folder_key_is_name_and_hash(dataset, data_dir) -> None:
    key = dataset_key(dataset)
    assert key.startswith("my_pets-")
    assert len(key.split("-")[-1]) == 12
    assert dataset_key(dataset.parent / "." / dataset.name) == key  # resolved
    assert dataset_record_folder(dataset, data_dir) == data_dir / "datasets" / key


def test_a_taken_name_gets_a_suffix_never_overwritten(dataset, data_dir, tmp_path) -> None:
    existing = dataset / "bee" / "bee0.png"
    before = existing.read_bytes()
    photo = _photo(tmp_path / "elsewhere" / "bee0.png", seed=123)
    made = Corrections(dataset, data_dir).add(photo, "bee", "ant")
    assert made.copy.name == "bee0-1.png"
    assert existing.read_bytes() == before


def test_a_new_class_gets_a_sanitised_folder_and_undo_removes_it(dataset, data_dir, photo) -> None:
    corrections = Corrections(dataset, data_dir)
    made = corrections.add(photo, "wasp/hornet", "bee")
    assert made.copy.parent == dataset.resolve() / "wasp_hornet"
    assert made.created_folder
    undone = corrections.undo()
    assert undone.note == ""
    assert not made.copy.exists()
    assert not (dataset / "wasp_hornet").exists()
    assert photo.is_file()
    assert Corrections(dataset, data_dir).entries() == []


def test_train_val_datasets_get_the_copy_in_train(split_dataset, data_dir, photo) -> None:
    corrections = Corrections(split_dataset, data_dir)
    assert corrections.has_splits()
    assert corrections.class_folder("bee") == split_dataset.resolve() / "train" / "bee"
    assert corrections.class_folder("moth") == split_dataset.resolve() / "train" / "moth"
    made = corrections.add(photo, "bee", "ant")
    assert made.copy.parent == split_dataset.resolve() / "train" / "bee"


@pytest.mark.parametrize("label", ["train", ".hidden", "_left_out", " "])
def test_names_that_cannot_be_a_class_folder_are_refused(dataset, data_dir, photo, label) -> None:
    with pytest.raises(CorrectionError) as caught:
        Corrections(dataset, data_dir).add(photo, label, "ant")
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in dataset.iterdir()) == ["ant", "bee"]


def test_undo_keeps_a_copy_changed_since(dataset, data_dir, photo) -> None:
    corrections = Corrections(dataset, data_dir)
    made = corrections.add(photo, "bee", "ant")
    _photo(made.copy, seed=7)  # the user edited the copy
    edited = made.copy.read_bytes()
    undone = corrections.undo(made)
    assert "changed" in undone.note
    assert made.copy.read_bytes() == edited
    assert corrections.entries() == []


def test_undo_of_a_copy_already_gone_says_so(dataset, data_dir, photo) -> None:
    corrections = Corrections(dataset, data_dir)
    made = corrections.add(photo, "bee", "ant")
    made.copy.unlink()
    assert "already gone" in corrections.undo().note


def test_undo_picks_the_given_correction_and_refuses_when_empty(dataset, data_dir, tmp_path) -> None:
    corrections = Corrections(dataset, data_dir)
    first = corrections.add(_photo(tmp_path / "a.png", seed=1), "bee", "ant")
    second = corrections.add(_photo(tmp_path / "b.png", seed=2), "ant", "bee")
    corrections.undo(first)
    assert corrections.entries() == [second]
    assert second.copy.is_file() and not first.copy.exists()
    corrections.undo()
    with pytest.raises(CorrectionError, match="no correction to undo"):
        corrections.undo()
    with pytest.raises(CorrectionError, match="not in the list"):
        corrections.undo(second)


def test_correcting_a_photo_again_replaces_its_earlier_correction(dataset, data_dir, photo) -> None:
    corrections = Corrections(dataset, data_dir)
    first = corrections.add(photo, "bee", "ant")
    assert corrections.add(photo, "bee", "ant") == first  # same class: nothing new
    second = corrections.add(photo, "ant", "bee")
    assert corrections.entries() == [second]
    assert not first.copy.exists() and second.copy.is_file()


def test_clear_forgets_but_keeps_the_copies(dataset, data_dir, photo) -> None:
    corrections = Corrections(dataset, data_dir)
    made = corrections.add(photo, "bee", "ant")
    corrections.clear()
    assert corrections.entries() == [] and Corrections(dataset, data_dir).entries() == []
    assert made.copy.is_file()


def test_a_photo_of_the_dataset_itself_is_refused(dataset, data_dir) -> None:
    with pytest.raises(CorrectionError, match="already in the dataset"):
        Corrections(dataset, data_dir).add(dataset / "ant" / "ant0.png", "bee", "ant")


def test_an_unreadable_photo_is_one_sentence(dataset, data_dir, tmp_path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(CorrectionError) as caught:
        Corrections(dataset, data_dir).add(junk, "bee", "ant")
    assert "junk.jpg" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(CorrectionError):
        Corrections(dataset, data_dir).add(tmp_path / "missing.png", "bee", "ant")
    assert sorted(p.name for p in (dataset / "bee").iterdir()) == ["bee0.png", "bee1.png", "bee2.png"]


def test_a_photo_without_an_image_suffix_gets_one(dataset, data_dir, tmp_path) -> None:
    odd = tmp_path / "download"
    Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(odd, format="JPEG")
    made = Corrections(dataset, data_dir).add(odd, "bee", "ant")
    assert made.copy.suffix in (".jpg", ".jpeg", ".jpe", ".jfif")


def test_a_read_only_class_folder_is_one_sentence_and_nothing_is_recorded(
    dataset, data_dir, photo, monkeypatch
) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # root writes into a folder of mode 555 anyway
    corrections = Corrections(dataset, data_dir)
    with pytest.raises(CorrectionError) as caught:
        corrections.add(photo, "bee", "ant")
    message = str(caught.value)
    assert "permission denied" in message and "bee" in message and "\n" not in message
    assert corrections.entries() == []
    assert photo.is_file()


def test_a_list_that_cannot_be_saved_leaves_no_copy(dataset, data_dir, photo, monkeypatch) -> None:
    corrections = Corrections(dataset, data_dir)
    real = tempfile.mkstemp

    def refuse_outside_dataset(*args, **kwargs):
        if str(kwargs.get("dir", "")).startswith(str(data_dir)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse_outside_dataset)
    with pytest.raises(CorrectionError, match="disk is full"):
        corrections.add(photo, "bee", "ant")
    assert sorted(p.name for p in (dataset / "bee").iterdir()) == ["bee0.png", "bee1.png", "bee2.png"]


def test_an_unreadable_photo_descriptor_is_one_sentence(dataset, data_dir, photo, monkeypatch) -> None:
    from resnet_gui.core import userfiles

    real = userfiles._open_descriptor

    def refuse(path, flags, *rest):
        if Path(path) == photo:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(path, flags, *rest)

    monkeypatch.setattr(userfiles, "_open_descriptor", refuse)
    with pytest.raises(CorrectionError, match="permission denied"):
        Corrections(dataset, data_dir).add(photo, "bee", "ant")


def test_a_damaged_list_is_one_sentence(dataset, data_dir) -> None:
    record = dataset_record_folder(dataset, data_dir) / CORRECTIONS_FILE
    record.parent.mkdir(parents=True)
    for content in (
        "{not json",
        '{"format": "other"}',
        '{"format": "resnet-gui-corrections/1", "corrections": [1]}',
    ):
        record.write_text(content)
        with pytest.raises(CorrectionError) as caught:
            Corrections(dataset, data_dir)
        assert "damaged" in str(caught.value) and "\n" not in str(caught.value)
        assert record.read_text() == content  # not replaced behind the user's back


def test_a_moved_dataset_is_one_sentence(tmp_path, data_dir) -> None:
    with pytest.raises(CorrectionError, match="moved or deleted"):
        Corrections(tmp_path / "gone", data_dir)


def test_for_bundle_uses_the_recorded_data_root(dataset, data_dir, photo) -> None:
    metadata = {"training": json.dumps({"data_root": os.path.abspath(dataset)})}
    corrections = Corrections.for_bundle(metadata, data_dir)
    assert corrections.root == dataset.resolve()
    with pytest.raises(CorrectionError, match="records no dataset folder"):
        Corrections.for_bundle({}, data_dir)
    moved = {"training": json.dumps({"data_root": str(dataset.parent / "moved away")})}
    with pytest.raises(CorrectionError, match="has moved"):
        Corrections.for_bundle(moved, data_dir)


def test_core_corrections_imports_no_qt_and_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, resnet_gui.core.corrections; "
        "assert 'PySide6' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_module_writes_through_the_atomic_writer() -> None:
    assert corrections_module.write_text_atomic.__module__ == "resnet_gui.core.atomic"
