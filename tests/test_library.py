"""Core, without Qt: the user's model library, folder summaries, plain model names, sidecars as --model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from resnet_gui.core import library
from resnet_gui.core.batch.scan import describe_found, folder_counts, scan_folder, subfolder_of
from resnet_gui.core.errors import WeightsError


def make_bundle(folder: Path, name: str, source: Path, date: str = "2025-05-01T10:00:00+00:00") -> Path:
    """A copy of the tiny bundle, with a sidecar (carrying the date) and a checkpoint beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    bundle = folder / f"{name}.safetensors"
    shutil.copy(source, bundle)
    sidecar = {
        "format": library.BUNDLE_FORMAT,
        "name": name,
        "categories": ["ant", "bee", "cat"],
        "date": date,
    }
    (folder / f"{name}.json").write_text(json.dumps(sidecar))
    (folder / f"{name}.checkpoint.safetensors").write_bytes(b"resume state")
    return bundle


# ---------------------------------------------------------------- folders


def photo_tree(root: Path) -> Path:
    for sub, count in (("ants", 3), ("bees", 2)):
        (root / "val" / sub).mkdir(parents=True)
        for index in range(count):
            (root / "val" / sub / f"{index}.jpg").write_bytes(b"x")
    return root / "val"


def test_a_folder_of_sub_folders_is_described_by_sub_folder(tmp_path: Path) -> None:
    val = photo_tree(tmp_path)
    assert scan_folder(val) == []  # the newcomer's "empty" folder
    files = scan_folder(val, recursive=True)
    assert len(files) == 5
    assert folder_counts(val, files) == {"ants": 3, "bees": 2}
    assert describe_found(val, files) == "5 photos in 2 folders: ants 3, bees 2"
    assert describe_found(tmp_path, files) == "5 photos in 2 folders: val/ants 3, val/bees 2"
    (val / "loose.jpg").write_bytes(b"x")
    files = scan_folder(val, recursive=True)
    assert describe_found(val, files) == "6 photos in 3 folders: (this folder) 1, ants 3, bees 2"
    assert subfolder_of(val, val / "loose.jpg") == ""
    assert describe_found(val / "ants", scan_folder(val / "ants")) == "3 photos"
    assert describe_found(val, []) == "no photos"


# ---------------------------------------------------------------- the library


def test_bundles_of_the_data_folder_and_remembered_ones_are_listed(
    isolated_dirs: Path, tiny_weights_file: Path
) -> None:
    mine = make_bundle(library.models_dir(), "ants-bees", tiny_weights_file)
    elsewhere = make_bundle(
        isolated_dirs / "desk", "pets", tiny_weights_file, date="2025-06-01T10:00:00+00:00"
    )
    (library.models_dir() / "notes.safetensors").write_bytes(b"not a bundle")
    assert [entry.name for entry in library.list_bundles()] == ["ants-bees"]  # a checkpoint is no model

    assert library.remember(elsewhere) is True
    assert library.remember(elsewhere) is False  # once
    assert library.remember(mine) is False  # listed anyway
    assert library.remember(isolated_dirs / "desk" / "pets.json") is False  # not a bundle
    entries = library.list_bundles()
    assert [entry.name for entry in entries] == ["pets", "ants-bees"]  # newest first
    pets = entries[0]
    assert pets.categories == ("ant", "bee", "cat") and not pets.in_data_folder
    assert pets.summary == "3 classes: ant, bee, cat · 2025-06-01"
    assert set(pets.files) == {
        elsewhere,
        elsewhere.with_suffix(".json"),
        elsewhere.parent / "pets.checkpoint.safetensors",
    }

    elsewhere.unlink()  # gone: left out, without an error
    assert [entry.name for entry in library.list_bundles()] == ["ants-bees"]


def test_the_header_is_enough_without_a_sidecar(isolated_dirs: Path, tiny_weights_file: Path) -> None:
    library.models_dir().mkdir(parents=True)
    shutil.copy(tiny_weights_file, library.models_dir() / "tiny.safetensors")
    [entry] = library.list_bundles()
    assert entry.categories == ("ant", "bee", "cat") and entry.architecture == "resnet18"
    assert entry.date == "" and entry.summary == "3 classes: ant, bee, cat"


def test_rename_moves_the_bundle_its_sidecar_and_checkpoint(
    isolated_dirs: Path, tiny_weights_file: Path
) -> None:
    bundle = make_bundle(isolated_dirs / "desk", "ants", tiny_weights_file)
    library.remember(bundle)
    new = library.rename_bundle(bundle, " insects ")
    assert new == bundle.with_name("insects.safetensors")
    assert sorted(p.name for p in new.parent.iterdir()) == [
        "insects.checkpoint.safetensors",
        "insects.json",
        "insects.safetensors",
    ]
    assert [entry.path for entry in library.list_bundles()] == [new]  # the remembered path follows

    other = make_bundle(isolated_dirs / "desk", "pets", tiny_weights_file)
    with pytest.raises(library.LibraryError, match="already a model called “insects”"):
        library.rename_bundle(other, "insects")
    for bad in ("", "a/b", "..", ".hidden", "x.checkpoint"):
        with pytest.raises(library.LibraryError):
            library.rename_bundle(other, bad)
    assert other.is_file() and other.with_suffix(".json").is_file()  # nothing moved


def test_delete_removes_exactly_the_bundle_files(isolated_dirs: Path, tiny_weights_file: Path) -> None:
    bundle = make_bundle(library.models_dir(), "ants", tiny_weights_file)
    neighbour = library.models_dir() / "ants-notes.txt"
    neighbour.write_text("mine")
    files = library.companion_files(bundle)
    assert len(files) == 3
    assert sorted(library.delete_bundle(bundle)) == sorted(files)
    assert not any(path.exists() for path in files)
    assert neighbour.read_text() == "mine"
    assert library.list_bundles() == []


# ---------------------------------------------------------------- plain names


def test_model_names_are_plain_and_say_what_they_need(isolated_dirs: Path) -> None:
    from resnet_gui.core.models import KERAS_WEIGHTS, RESNET50_V1, get_model_spec, plain_words

    keras = get_model_spec(RESNET50_V1)
    imported = plain_words(keras, keras.get_weights(KERAS_WEIGHTS), "imported")
    assert imported.text == "ResNet-50 (ImageNet, on this computer)" and imported.usable
    missing = plain_words(keras, keras.get_weights(KERAS_WEIGHTS), "missing")
    assert not missing.usable and "Import Keras ResNet-50" in missing.explanation
    resnet18 = get_model_spec("resnet18")
    words = plain_words(resnet18, resnet18.get_weights("IMAGENET1K_V1"))
    assert words.text == "ResNet-18 (ImageNet, 70 % correct) — needs a 45 MB download"
    assert "internet" in words.explanation
    for text in (imported.text, missing.text, words.text, words.explanation, missing.explanation):
        assert "IMAGENET1K" not in text and "KERAS_IMAGENET" not in text and "--" not in text


# ---------------------------------------------------------------- a sidecar as --model


def test_a_sidecar_names_its_bundle(tmp_path: Path, tiny_weights_file: Path) -> None:
    from resnet_gui.core.models import load_model, looks_like_a_file

    bundle = make_bundle(tmp_path, "my_model", tiny_weights_file)
    sidecar = bundle.with_suffix(".json")
    assert looks_like_a_file("my_model.json")
    loaded = load_model(str(sidecar))
    assert loaded.source == bundle and loaded.categories == ("ant", "bee", "cat")

    bundle.unlink()
    with pytest.raises(
        WeightsError, match=r"only describes a fine-tuned model; its weights, 'my_model\.safetensors'"
    ):
        load_model(str(sidecar))
    other = tmp_path / "config.json"
    other.write_text("{}")
    with pytest.raises(WeightsError, match="is a JSON file, not a model") as error:
        load_model(str(other))
    assert "Keras" not in str(error.value)


def test_rename_writes_the_new_name_into_the_bundle_and_keeps_its_weights(
    isolated_dirs: Path, tiny_weights_file: Path
) -> None:
    from resnet_gui.core.checkpoints import read_weights_file
    from resnet_gui.core.models import load_model

    bundle = make_bundle(isolated_dirs / "desk", "ants", tiny_weights_file)
    before, header_before = read_weights_file(bundle)
    new = library.rename_bundle(bundle, "insects")
    after, header_after = read_weights_file(new)
    assert header_after["name"] == "insects"
    assert {k: v for k, v in header_after.items() if k != "name"} == {
        k: v for k, v in header_before.items() if k != "name"
    }
    assert before.keys() == after.keys() and all((before[k] == after[k]).all() for k in before)
    assert json.loads(new.with_suffix(".json").read_text())["name"] == "insects"
    assert load_model(weights_file=str(new)).name == "insects"  # what the app shows once it is loaded


def test_a_rename_that_cannot_write_the_new_header_changes_nothing(
    isolated_dirs: Path, tiny_weights_file: Path, monkeypatch
) -> None:
    import errno

    bundle = make_bundle(isolated_dirs / "desk", "ants", tiny_weights_file)
    contents = {path.name: path.read_bytes() for path in bundle.parent.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(library.shutil, "copyfileobj", disk_full)
    with pytest.raises(
        library.LibraryError, match=r"^Cannot rename 'ants.safetensors': cannot write .*: the disk is full\.$"
    ):
        library.rename_bundle(bundle, "insects")
    assert {path.name: path.read_bytes() for path in bundle.parent.iterdir()} == contents


def test_what_a_model_knows_in_plain_words() -> None:
    from resnet_gui.core.models import imagenet_categories, what_it_knows

    assert what_it_knows(imagenet_categories()) == "Knows 1,000 kinds of everyday things (ImageNet)"
    assert what_it_knows(("ants", "bees")) == "Knows 2 classes: ants, bees"
    seven = tuple("abcdefg")
    assert what_it_knows(seven) == "Knows 7 classes: a, b, c, d, e and 2 more"
