"""``resnet-gui evaluate --label-issues`` and ``resnet-gui finetune --add`` on the tiny ResNet-18."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from test_training import make_shapes
from test_training_cli import run_cli

from resnet_gui.core.outputs import LABEL_ISSUES_COLUMNS
from resnet_gui.core.training import read_bundle_info

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["--batch-size", "8", "--epochs", "3"]


@pytest.fixture()
def data(tmp_path: Path, isolated_dirs: Path) -> Path:
    root = tmp_path / "pets"
    make_shapes(root, {"circle": 8, "square": 8}, split="train")
    make_shapes(root, {"circle": 3, "square": 3}, seed=5, split="val")
    return root


@pytest.fixture()
def bundle(tiny_weights_file: Path, data: Path, tmp_path: Path) -> Path:
    out = tmp_path / "models" / "pets.safetensors"
    assert run_cli(["finetune", str(data), "--model", str(tiny_weights_file), "--out", str(out), *FAST]) == 0
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_label_issues_table_is_written_and_ours_to_replace(
    bundle: Path, data: Path, tmp_path, capsys
) -> None:
    table = tmp_path / "issues.csv"
    argv = ["evaluate", str(data), "--model", str(bundle), "--label-issues", str(table), "--top-wrong", "100"]
    assert run_cli(argv) == 0
    out = capsys.readouterr().out
    assert "Possible label errors:" in out and "of the 22 training and validation photos" in out
    assert tuple(table.read_text().splitlines()[0].split(",")) == LABEL_ISSUES_COLUMNS
    rows = _rows(table)
    assert {row["kind"] for row in rows} <= {"label_issue", "top_loss"}
    for row in rows:
        assert Path(row["path"]).is_file()
        assert row["given"] in ("circle", "square") and row["suggested"] in ("circle", "square")
        assert row["given"] != row["suggested"]
        assert 0.0 <= float(row["given_probability"]) <= 1.0
    losses = [row for row in rows if row["kind"] == "top_loss"]
    assert all(row["split"] == "val" for row in losses)
    assert run_cli(argv) == 0  # an earlier table of ours is replaced without --overwrite


def test_label_issues_never_lands_on_a_photo(bundle: Path, data: Path, tmp_path, capsys) -> None:
    photo = data / "val" / "circle" / "circle000.png"
    before = photo.read_bytes()
    for extra in ([], ["--overwrite"]):
        code = run_cli(["evaluate", str(data), "--model", str(bundle), "--label-issues", str(photo), *extra])
        err = capsys.readouterr().err
        assert code == 5 and "own inputs" in err and len(err.strip().splitlines()) == 1
    assert photo.read_bytes() == before
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own,table\n")
    assert run_cli(["evaluate", str(data), "--model", str(bundle), "--label-issues", str(notes)]) == 5
    assert "add --overwrite" in capsys.readouterr().err
    assert notes.read_text() == "my,own,table\n"


def test_label_issues_of_a_model_not_fine_tuned_here_is_one_sentence(
    tiny_weights_file: Path, tmp_path: Path, isolated_dirs, capsys
) -> None:
    folder = make_shapes(tmp_path / "eval", {"ant": 2, "bee": 2})
    table = tmp_path / "issues.csv"
    code = run_cli(["evaluate", str(folder), "--model", str(tiny_weights_file), "--label-issues", str(table)])
    err = capsys.readouterr().err
    assert code == 2 and "records no dataset folder" in err and "Traceback" not in err
    assert not table.exists()


def test_label_issues_when_the_dataset_moved(bundle: Path, data: Path, tmp_path, capsys) -> None:
    moved = data.rename(tmp_path / "moved")
    code = run_cli(
        ["evaluate", str(moved), "--model", str(bundle), "--label-issues", str(tmp_path / "i.csv")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "has moved or been deleted" in err


def _extra_photos(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    make_shapes(folder, {"circle": 2}, seed=9)
    return folder / "circle"


def test_finetune_add_trains_on_the_listed_photos_in_place(
    tiny_weights_file: Path, data: Path, tmp_path: Path, capsys
) -> None:
    photos = _extra_photos(tmp_path)
    table = tmp_path / "corrections.csv"
    table.write_text(f"path,class\ninbox/circle/circle000.png,square\n{photos / 'circle001.png'},circle\n")
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    out = tmp_path / "m.safetensors"
    argv = ["finetune", str(data), "--model", str(tiny_weights_file), "--out", str(out), "--add", str(table)]
    assert run_cli([*argv, *FAST]) == 0
    captured = capsys.readouterr()
    assert "Added 2 photos" in captured.out and "18 train, 6 val" in captured.out
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before  # not moved, not copied
    assert sorted(p.name for p in (data / "train" / "square").iterdir()) == sorted(
        f"square{i:03d}.png" for i in range(8)
    )
    split = read_bundle_info(out).split
    train = {rel: label for rel, label in split["train"]}
    assert train[str(photos / "circle000.png")] == split["classes"].index("square")
    assert train[str(photos / "circle001.png")] == split["classes"].index("circle")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("path,class\ninbox/circle/circle000.png,wasp\n", "Row 2 of --add"),
        ("path,class\ninbox/circle/circle000.png,circle\nmissing.png,circle\n", "Row 3 of --add"),
        ("path,class\nnotes.txt,circle\n", "cannot read"),
        ("file,label\ninbox/circle/circle000.png,circle\n", "header 'path,class'"),
        ("path,class\ninbox/circle/circle000.png\n", "is not 'path,class'"),
        ("path,class\npets/val/circle/circle000.png,circle\n", "already a val photo"),
    ],
)
def test_finetune_add_checks_each_row(
    tiny_weights_file: Path, data: Path, tmp_path: Path, capsys, content: str, says: str
) -> None:
    _extra_photos(tmp_path)
    (tmp_path / "notes.txt").write_text("not a photo")
    table = tmp_path / "corrections.csv"
    table.write_text(content)
    out = tmp_path / "m.safetensors"
    argv = ["finetune", str(data), "--model", str(tiny_weights_file), "--out", str(out), "--add", str(table)]
    code = run_cli([*argv, "--check"])
    err = capsys.readouterr().err
    assert code != 0 and says in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_resume_keeps_the_added_photos(
    tiny_weights_file: Path, data: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnet_gui import cli_training
    from resnet_gui.core import training

    photos = _extra_photos(tmp_path)
    table = tmp_path / "corrections.csv"
    table.write_text("path,class\ninbox/circle/circle000.png,circle\n")
    out = tmp_path / "run.safetensors"
    original = training.train

    def interrupted(*args, **kwargs):
        steps = 0
        kwargs["cancel"] = lambda: steps >= 4
        for event in original(*args, **kwargs):
            steps += isinstance(event, training.StepMetrics)
            yield event

    monkeypatch.setattr(training, "train", interrupted)
    argv = ["finetune", str(data), "--model", str(tiny_weights_file), "--out", str(out), "--add", str(table)]
    assert run_cli([*argv, *FAST]) == cli_training.EXIT_CANCELLED
    monkeypatch.setattr(training, "train", original)
    capsys.readouterr()
    # Resumed without --add: the checkpoint's split has the photo.
    assert run_cli(["finetune", str(data), "--out", str(out), "--resume"]) == 0, capsys.readouterr().err
    assert "17 train, 6 val" in capsys.readouterr().out
    train = [rel for rel, _ in read_bundle_info(out).split["train"]]
    assert str(photos / "circle000.png") in train
