"""Sorting classified files into class folders: collisions never overwrite, link/move/copy modes,
the unsure folder, and re-running a finished sort does nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from resnet_gui.core.batch import (
    UNSURE_FOLDER,
    BatchRow,
    apply_sort,
    class_folder_name,
    format_plan,
    plan_sort,
)
from resnet_gui.core.engine import Prediction


def row(path: Path, label: str, probability: float = 0.9) -> BatchRow:
    return BatchRow(path, (Prediction(label, 0, probability), Prediction("other", 1, 1 - probability)))


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """Two folders holding files of the same name, with different contents."""
    for folder in ("trip", "garden"):
        (tmp_path / folder).mkdir()
        for name in ("ant.jpg", "bee.jpg"):
            (tmp_path / folder / name).write_bytes(f"{folder}/{name}".encode())
    return tmp_path


def test_collisions_get_suffixes_and_nothing_is_overwritten(photos: Path) -> None:
    dest = photos / "sorted"
    (dest / "ant").mkdir(parents=True)
    (dest / "ant" / "ant.jpg").write_bytes(b"someone else's file")
    rows = [
        row(photos / "trip" / "ant.jpg", "ant"),
        row(photos / "garden" / "ant.jpg", "ant"),
        row(photos / "trip" / "bee.jpg", "bee"),
        BatchRow(photos / "garden" / "bee.jpg", error="file is empty"),  # failed: not sorted
    ]
    plan = plan_sort(rows, dest)
    assert [(a.source, a.destination) for a in plan] == [
        (photos / "trip" / "ant.jpg", dest / "ant" / "ant-1.jpg"),
        (photos / "garden" / "ant.jpg", dest / "ant" / "ant-2.jpg"),
        (photos / "trip" / "bee.jpg", dest / "bee" / "bee.jpg"),
    ]
    assert not (dest / "bee").exists()  # planning changes nothing
    report = apply_sort(plan)
    assert len(report.done) == 3 and not report.failed
    assert (dest / "ant" / "ant.jpg").read_bytes() == b"someone else's file"
    assert (dest / "ant" / "ant-1.jpg").read_bytes() == b"trip/ant.jpg"
    assert (dest / "ant" / "ant-2.jpg").read_bytes() == b"garden/ant.jpg"
    assert (photos / "trip" / "ant.jpg").exists()  # copy keeps the original
    # Sorting the same rows again finds them already there: nothing to do, no "-3" copies.
    assert plan_sort(rows, dest) == []


def test_a_file_appearing_after_planning_is_not_overwritten(photos: Path) -> None:
    dest = photos / "sorted"
    plan = plan_sort([row(photos / "trip" / "ant.jpg", "ant")], dest)
    (dest / "ant").mkdir(parents=True)
    (dest / "ant" / "ant.jpg").write_bytes(b"arrived meanwhile")
    report = apply_sort(plan)
    assert report.done[0].destination == dest / "ant" / "ant-1.jpg"
    assert (dest / "ant" / "ant.jpg").read_bytes() == b"arrived meanwhile"


def test_link_mode_makes_absolute_symlinks(photos: Path, monkeypatch) -> None:
    monkeypatch.chdir(photos)
    plan = plan_sort([row(Path("trip/ant.jpg"), "ant")], "sorted", mode="link")
    report = apply_sort(plan)
    link = photos / "sorted" / "ant" / "ant.jpg"
    assert report.done and link.is_symlink() and os.path.isabs(os.readlink(link))
    assert link.read_bytes() == b"trip/ant.jpg"
    assert plan_sort([row(Path("trip/ant.jpg"), "ant")], "sorted", mode="link") == []


def test_move_mode_moves_and_a_second_sort_skips_moved_files(photos: Path) -> None:
    dest = photos / "sorted"
    rows = [row(photos / "trip" / "ant.jpg", "ant"), row(photos / "garden" / "ant.jpg", "ant")]
    report = apply_sort(plan_sort(rows, dest, mode="move"))
    assert len(report.done) == 2
    assert not (photos / "trip" / "ant.jpg").exists() and not (photos / "garden" / "ant.jpg").exists()
    assert sorted(p.read_bytes() for p in (dest / "ant").iterdir()) == [b"garden/ant.jpg", b"trip/ant.jpg"]
    assert plan_sort(rows, dest, mode="move") == []


def test_min_confidence_sends_unsure_files_aside(photos: Path) -> None:
    dest = photos / "sorted"
    rows = [row(photos / "trip" / "ant.jpg", "ant", 0.8), row(photos / "trip" / "bee.jpg", "bee", 0.4)]
    plan = plan_sort(rows, dest, min_confidence=0.5)
    assert [a.destination for a in plan] == [dest / "ant" / "ant.jpg", dest / UNSURE_FOLDER / "bee.jpg"]
    lines = format_plan(plan)
    assert lines[1] == f"copy {photos / 'trip' / 'bee.jpg'} -> {dest / UNSURE_FOLDER / 'bee.jpg'}"
    with pytest.raises(ValueError):
        plan_sort(rows, dest, min_confidence=1.5)
    with pytest.raises(ValueError):
        plan_sort(rows, dest, mode="delete")


def test_failures_while_applying_are_reported_not_raised(photos: Path) -> None:
    plan = plan_sort([row(photos / "trip" / "ant.jpg", "ant")], photos / "sorted")
    (photos / "trip" / "ant.jpg").unlink()  # vanished between planning and applying
    report = apply_sort(plan)
    assert not report.done and "no such file" in report.failed[0][1]


def test_class_names_become_safe_folder_names() -> None:
    assert class_folder_name("T-shirt/top") == "T-shirt_top"
    assert class_folder_name("..") == "_unnamed"
    assert class_folder_name("great white shark") == "great white shark"
    assert class_folder_name('a:b*c?"d<e>f|g\\h\x01') == "a_b_c__d_e_f_g_h_"
