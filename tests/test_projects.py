"""Labelling projects (core, no Qt): classes made in the app, photos copied in, every change undoable."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnet_gui.core import paths
from resnet_gui.core.errors import Cancelled
from resnet_gui.core.projects import (
    SAVED_IMAGE_FORMATS,
    ClassExistsError,
    ClassNameError,
    LabellingProject,
    NotAProjectError,
    ProjectError,
    ProjectExistsError,
    UnknownClassError,
    forget_project,
    projects_dir,
    recent_projects,
    remember_project,
    validate_class_name,
)
from resnet_gui.core.training.dataset import scan_dataset
from resnet_gui.core.training.health import check_health


@pytest.fixture()
def data_dir(isolated_dirs: Path) -> Path:
    return paths.data_dir()


def _photos(folder: Path, count: int, seed: int, prefix: str = "img") -> list[Path]:
    """``count`` distinct small JPEGs (random content: no two are equal)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    made = []
    for index in range(count):
        path = folder / f"{prefix}{index}.jpg"
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path, quality=90)
        made.append(path)
    return made


@pytest.fixture()
def project(data_dir: Path) -> LabellingProject:
    return LabellingProject.create("Garden birds")


def test_create_puts_the_project_in_the_data_folder(project: LabellingProject, data_dir: Path) -> None:
    assert project.root.parent == projects_dir().resolve()
    assert str(project.root).startswith(str(data_dir.resolve()))
    assert project.name == "Garden birds"
    assert project.class_names() == []
    with pytest.raises(ProjectExistsError) as info:
        LabellingProject.create("Garden birds")
    assert str(info.value).endswith(".") and "\n" not in str(info.value)


def test_add_files_copies_and_never_touches_the_originals(project: LabellingProject, tmp_path: Path) -> None:
    sources = _photos(tmp_path / "mine", 3, seed=1)
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in sources}
    project.add_class("robin")
    seen: list[tuple[int, int]] = []
    result = project.add_files("robin", sources, progress=lambda done, total: seen.append((done, total)))
    assert len(result.added) == 3 and not result.duplicates and not result.skipped
    assert seen[-1] == (3, 3)
    for source in sources:  # still there, unchanged
        assert (source.read_bytes(), source.stat().st_mtime_ns) == before[source]
    copies = project.photos("robin")
    assert sorted(p.read_bytes() for p in copies) == sorted(b for b, _ in before.values())
    assert all(project.root / "robin" in copy.parents for copy in copies)
    assert project.counts() == {"robin": 3}


def test_folders_are_walked_and_bad_files_reported(project: LabellingProject, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    _photos(folder, 2, seed=2)
    _photos(folder / "deeper", 1, seed=3, prefix="deep")
    (folder / "notes.txt").write_text("not a photo")
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    (folder / ".hidden.jpg").write_bytes(b"skip")
    project.add_class("sparrow")
    result = project.add_files("sparrow", [folder, tmp_path / "missing.jpg"])
    assert len(result.added) == 3
    reasons = {skip.path.name: skip.reason for skip in result.skipped}
    assert set(reasons) == {"notes.txt", "broken.jpg", "missing.jpg"}
    assert "not an image" in reasons["broken.jpg"]
    assert project.counts()["sparrow"] == 3
    assert "3 photos added" in result.summary() and "3 files skipped" in result.summary()


def test_duplicates_by_content_are_skipped_and_counted(project: LabellingProject, tmp_path: Path) -> None:
    sources = _photos(tmp_path / "a", 2, seed=4)
    twin = tmp_path / "b" / "renamed-copy.jpg"
    twin.parent.mkdir()
    twin.write_bytes(sources[0].read_bytes())
    project.add_class("robin")
    project.add_class("wren")
    project.add_files("robin", sources)
    result = project.add_files("wren", [twin, sources[1]])
    assert result.added == []
    assert [given for given, _ in result.duplicates] == [twin, sources[1]]
    assert {existing.parent.name for _, existing in result.duplicates} == {"robin"}
    assert project.counts() == {"robin": 2, "wren": 0}


def test_a_png_named_jpg_keeps_a_suffix_of_its_format(project: LabellingProject, tmp_path: Path) -> None:
    path = tmp_path / "really-a-png.jpg"
    Image.new("RGB", (20, 20), "red").save(path, format="PNG")
    project.add_class("red")
    (copy,) = project.add_files("red", [path]).added
    assert copy.suffix == ".png" and Image.open(copy).format == "PNG"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "Give the class a name."),
        ("   ", "Give the class a name."),
        ("a/b", "may not contain"),
        ("a\\b", "may not contain"),
        (".hidden", "hidden"),
        ("_left_out", "left-out"),
        ("train", "train/val"),
        ("Validation", "train/val"),
        ("CON", "Windows"),
        ("bad\x07bell", "control characters"),
    ],
)
def test_bad_class_names_are_refused_in_one_sentence(project: LabellingProject, name: str, why: str) -> None:
    with pytest.raises(ClassNameError) as info:
        project.add_class(name)
    message = str(info.value)
    assert why in message and message.endswith(".") and "\n" not in message
    assert project.class_names() == []


def test_class_names_clash_without_regard_to_case(project: LabellingProject) -> None:
    project.add_class("Robin")
    with pytest.raises(ClassExistsError):
        project.add_class("robin")
    assert validate_class_name("  Wren ") == "Wren"
    project.rename_class("Robin", "robin")  # another spelling of its own name is fine
    assert project.class_names() == ["robin"]


def test_rename_merge_delete_and_undo(project: LabellingProject, tmp_path: Path) -> None:
    project.add_class("robin")
    project.add_class("wren")
    robin_sources = _photos(tmp_path / "r", 3, seed=5)
    wren_sources = _photos(tmp_path / "w", 2, seed=6)
    project.add_files("robin", robin_sources)
    project.add_files("wren", wren_sources)
    robin_bytes = sorted(p.read_bytes() for p in project.photos("robin"))

    project.rename_class("robin", "European robin")
    assert project.class_names() == ["European robin", "wren"]
    assert {r.class_name for r in project.records().values()} == {"European robin", "wren"}

    project.merge_classes("wren", "European robin")
    assert project.counts() == {"European robin": 5}

    count = project.delete_class("European robin")
    assert count == 5 and project.class_names() == []
    assert "deletion" in project.undo_description()

    assert project.undo_last() is not None  # the delete
    assert project.counts() == {"European robin": 5}
    assert project.undo_last() is not None  # the merge
    assert project.counts() == {"European robin": 3, "wren": 2}
    undone = project.undo_last()  # the rename
    assert undone is not None and undone.kind == "rename"
    assert project.class_names() == ["robin", "wren"]
    assert sorted(p.read_bytes() for p in project.photos("robin")) == robin_bytes
    assert {r.class_name for r in project.records().values() if r.path.parent.name == "robin"} == {"robin"}
    assert project.undo_last() is None


def test_move_photo_and_undo(project: LabellingProject, tmp_path: Path) -> None:
    project.add_class("robin")
    project.add_class("wren")
    project.add_files("robin", _photos(tmp_path / "r", 2, seed=7))
    photo = project.photos("robin")[0]
    content = photo.read_bytes()
    moved = project.move_photo(photo, "wren")
    assert moved.parent == project.root / "wren" and moved.read_bytes() == content and not photo.exists()
    assert project.record(moved) is not None and project.record(moved).class_name == "wren"  # type: ignore[union-attr]
    assert project.counts() == {"robin": 1, "wren": 1}
    project.undo_last()
    assert project.counts() == {"robin": 2, "wren": 0} and photo.read_bytes() == content
    with pytest.raises(ProjectError):
        project.move_photo(tmp_path / "r" / "img0.jpg", "wren")  # not a photo of the project
    with pytest.raises(UnknownClassError):
        project.move_photo(photo, "eagle")


def test_a_moved_photo_never_overwrites_a_namesake(project: LabellingProject, tmp_path: Path) -> None:
    project.add_class("robin")
    project.add_class("wren")
    project.add_files("robin", _photos(tmp_path / "r", 1, seed=8))
    project.add_files("wren", _photos(tmp_path / "w", 1, seed=9))  # also named img0.jpg
    moved = project.move_photo(project.photos("robin")[0], "wren")
    assert moved.name == "img0-1.jpg" and project.counts()["wren"] == 2


def test_remove_photos_is_undoable(project: LabellingProject, tmp_path: Path) -> None:
    project.add_class("robin")
    project.add_files("robin", _photos(tmp_path / "r", 3, seed=10))
    assert project.remove_photos(project.photos("robin")[:2]) == 2
    assert project.counts() == {"robin": 1}
    project.undo_last()
    assert project.counts() == {"robin": 3}


@pytest.mark.parametrize("image_format", sorted(SAVED_IMAGE_FORMATS))
def test_add_image_in_every_format_is_read_back(project: LabellingProject, image_format: str) -> None:
    project.add_class("robin")
    frame = np.random.default_rng(21).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    photo = project.add_image("robin", frame, "camera", image_format=image_format)
    suffix, pillow_format, _ = SAVED_IMAGE_FORMATS[image_format]
    assert photo.suffix == suffix and Image.open(photo).format == pillow_format
    assert project.photos("robin") == [photo]


def test_add_image_saves_camera_and_pasted_frames(project: LabellingProject) -> None:
    project.add_class("robin")
    frame = np.random.default_rng(11).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    jpeg = project.add_image("robin", frame, "camera")
    png = project.add_image("robin", frame, "pasted")
    assert Image.open(jpeg).format == "JPEG" and Image.open(png).format == "PNG"
    assert np.array_equal(np.asarray(Image.open(png).convert("RGB")), frame)
    assert project.add_image("robin", frame, "pasted") == png  # exactly the same image: not twice
    assert {r.source for r in project.records().values()} == {"camera", "pasted"}
    with pytest.raises(ValueError):
        project.add_image("robin", frame.astype(np.float32), "camera")


def test_export_as_folders_is_the_class_layout(project: LabellingProject, tmp_path: Path) -> None:
    project.add_class("robin")
    project.add_class("wren")
    project.add_class("empty one")
    project.add_files("robin", _photos(tmp_path / "r", 2, seed=12))
    project.add_files("wren", _photos(tmp_path / "w", 3, seed=13))
    project.delete_class("empty one")  # something in the trash, which must not be exported
    out = project.export_as_folders(tmp_path / "export")
    assert sorted(p.name for p in out.iterdir()) == ["robin", "wren"]
    assert scan_dataset(out).counts() == project.counts()
    assert not any(p.name.startswith(".") for p in out.rglob("*"))
    with pytest.raises(ProjectError, match="not empty"):
        project.export_as_folders(out)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert project.export_as_folders(empty) == empty and (empty / "wren").is_dir()


def test_manifest_round_trip_and_reopen(project: LabellingProject, tmp_path: Path) -> None:
    project.add_class("robin")
    sources = _photos(tmp_path / "r", 2, seed=14)
    project.add_files("robin", sources)
    manifest = json.loads((project.root / ".project" / "manifest.json").read_text())
    assert manifest["format"] == "resnet-gui-project/1"
    assert {entry["source"] for entry in manifest["photos"].values()} == {str(s.resolve()) for s in sources}
    assert all(len(entry["sha256"]) == 64 and entry["added"] for entry in manifest["photos"].values())

    again = LabellingProject.open(project.root)
    assert again.name == "Garden birds"
    assert again.counts() == {"robin": 2}
    assert {r.source for r in again.records().values()} == {str(s.resolve()) for s in sources}
    # a photo dropped into a class folder from outside the app counts, and is recognised as a duplicate
    (by_hand,) = _photos(tmp_path / "elsewhere", 1, seed=20, prefix="by-hand")
    (project.root / "robin" / by_hand.name).write_bytes(by_hand.read_bytes())
    assert again.counts() == {"robin": 3}
    result = again.add_files("robin", [by_hand])
    assert result.added == [] and result.duplicates == [(by_hand, project.root / "robin" / by_hand.name)]
    assert again.record(project.root / "robin" / by_hand.name).source == "found in the project folder"  # type: ignore[union-attr]


def test_open_refuses_what_is_not_a_project(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(NotAProjectError):
        LabellingProject.open(tmp_path)
    with pytest.raises(NotAProjectError):
        LabellingProject.open(tmp_path / "gone")
    project = LabellingProject.create("Damaged")
    (project.root / ".project" / "manifest.json").write_text("{ not json")
    with pytest.raises(NotAProjectError, match="damaged"):
        LabellingProject.open(project.root)


def test_health_check_sees_exactly_the_classes(project: LabellingProject, tmp_path: Path) -> None:
    project.add_class("robin")
    project.add_class("wren")
    project.add_class("nothing yet")
    project.add_files("robin", _photos(tmp_path / "r", 5, seed=15))
    project.add_files("wren", _photos(tmp_path / "w", 5, seed=16))
    project.add_class("gone")
    project.add_files("gone", _photos(tmp_path / "g", 2, seed=17))
    project.delete_class("gone")  # its photos are in .project/trash: not a class
    dataset = scan_dataset(project.root)
    assert dataset.classes == ("robin", "wren")
    assert dataset.layout == "classes"
    report = check_health(dataset)
    assert report.classes == ("robin", "wren")
    assert report.training_counts == {"robin": 5, "wren": 5}
    assert [p.name for p in report.empty] == ["nothing yet"]


def test_cancelled_add_keeps_what_was_copied(project: LabellingProject, tmp_path: Path) -> None:
    sources = _photos(tmp_path / "r", 6, seed=18)
    project.add_class("robin")
    stop = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 2:
            stop.set()

    with pytest.raises(Cancelled):
        project.add_files("robin", sources, cancel=stop, progress=progress)
    assert project.counts() == {"robin": 2}
    assert len(project.records()) == 2  # recorded although cancelled
    assert not [p for p in (project.root / "robin").iterdir() if p.name.startswith(".")]  # no temp left


def test_two_objects_keep_each_others_photos(project: LabellingProject, tmp_path: Path) -> None:
    other = LabellingProject.open(project.root)
    project.add_class("robin")
    project.add_files("robin", _photos(tmp_path / "r", 2, seed=19))
    other.add_image("robin", np.zeros((8, 8, 3), np.uint8), "camera")
    assert len(LabellingProject.open(project.root).records()) == 3


def test_recent_projects(data_dir: Path) -> None:
    first = LabellingProject.create("First")
    second = LabellingProject.create("Second")
    remember_project(first.root)
    remember_project(second.root)
    remember_project(first.root)
    assert recent_projects() == [first.root, second.root]
    forget_project(first.root)
    assert recent_projects() == [second.root]
    remember_project(first.root)
    os.rename(second.root, second.root.with_name("moved away"))
    assert recent_projects() == [first.root]  # a missing project is dropped
    (data_dir / "recent_projects.json").write_text("garbage")
    assert recent_projects() == []  # a damaged list is started afresh, not an error
