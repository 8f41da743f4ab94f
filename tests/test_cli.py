"""The command line: readable output, JSON, clear errors with non-zero exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_CATEGORIES

from resnet_gui.cli import EXIT_SOME_IMAGES_FAILED, main
from resnet_gui.core.models import model_names

REPO = Path(__file__).resolve().parent.parent


def test_classify_prints_a_table(tiny_weights_file: Path, sample_images: list[Path], capsys) -> None:
    code = main(["classify", *map(str, sample_images), "--weights", str(tiny_weights_file), "--top-k", "2"])
    out = capsys.readouterr().out
    assert code == 0
    for path in sample_images:
        assert str(path) in out
    assert out.count(" %") == 2 * len(sample_images)
    assert any(label in out for label in TINY_CATEGORIES)


def test_classify_json(tiny_weights_file: Path, sample_images: list[Path], capsys) -> None:
    code = main(["classify", str(sample_images[1]), "--weights", str(tiny_weights_file), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    (result,) = data["results"]
    assert result["path"] == str(sample_images[1]) and (result["width"], result["height"]) == (120, 200)
    assert [p["label"] for p in result["predictions"]] != []
    assert len(result["predictions"]) == 3  # top-5 capped at the 3 classes of the tiny model
    assert sum(p["probability"] for p in result["predictions"]) == pytest.approx(1.0, abs=1e-4)


def test_bad_image_is_reported_and_the_rest_classified(
    tiny_weights_file: Path, sample_images: list[Path], tmp_path: Path, capsys
) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    code = main(["classify", str(empty), str(sample_images[0]), "--weights", str(tiny_weights_file)])
    captured = capsys.readouterr()
    assert code == EXIT_SOME_IMAGES_FAILED
    assert f"{empty}: cannot classify" in captured.err
    assert str(sample_images[0]) in captured.out
    assert "Traceback" not in captured.err


def test_missing_weights_is_a_clear_error(isolated_dirs: Path, sample_images: list[Path], capsys) -> None:
    code = main(["classify", str(sample_images[0])])
    err = capsys.readouterr().err
    assert code != 0
    assert "resnet50-11ad3fa6.pth" in err and str(isolated_dirs / "torch" / "hub" / "checkpoints") in err
    assert "import-keras" in err and "Traceback" not in err


def test_unknown_model_and_device(tiny_weights_file: Path, sample_images: list[Path], capsys) -> None:
    assert main(["classify", str(sample_images[0]), "--model", "vgg16"]) != 0
    assert "Unknown model 'vgg16'" in capsys.readouterr().err
    if "cuda" not in __import__("resnet_gui.core.engine", fromlist=["x"]).available_devices():
        code = main(
            ["classify", str(sample_images[0]), "--weights", str(tiny_weights_file), "--device", "cuda"]
        )
        assert code != 0 and "not available" in capsys.readouterr().err


def test_models_lists_every_model_with_its_weights_status(isolated_dirs: Path, capsys) -> None:
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["model"] for row in rows} == set(model_names())
    statuses = {(row["model"], row["weights"]): row["status"] for row in rows}
    assert statuses[("resnet50", "IMAGENET1K_V2")] == "downloadable"
    assert statuses[("resnet50_v1", "KERAS_IMAGENET")] == "missing"
    cached = Path(next(r["path"] for r in rows if r["model"] == "resnet18"))
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    resnet18_line = next(line for line in table.splitlines() if line.startswith("resnet18 "))
    assert "cached" in resnet18_line


def test_python_dash_m_and_version() -> None:
    env = {**os.environ, "DISPLAY": ""}
    done = subprocess.run(
        [sys.executable, "-m", "resnet_gui", "--version"], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert done.returncode == 0 and done.stdout.startswith("resnet-gui ")


def test_corrupt_weights_file_is_refused_cleanly(tmp_path: Path, sample_images: list[Path], capsys) -> None:
    bogus = tmp_path / "weights.pth"
    bogus.write_text("not weights")
    code = main(["classify", str(sample_images[0]), "--weights", str(bogus)])
    assert code != 0
    err = capsys.readouterr().err
    assert str(bogus) in err and "Traceback" not in err


@pytest.fixture()
def restore_max_pixels():
    from resnet_gui.core.images import get_max_image_pixels, set_max_image_pixels

    saved = get_max_image_pixels()
    yield
    set_max_image_pixels(saved)


@pytest.mark.parametrize("command", ["classify", "batch"])
def test_max_megapixels_opens_photos_over_the_size_limit(
    tiny_weights_file: Path, tmp_path: Path, capsys, restore_max_pixels, command: str
) -> None:
    from PIL import Image

    photo = tmp_path / "photos" / "wide.png"
    photo.parent.mkdir()
    Image.new("RGB", (300, 100), (200, 30, 30)).save(photo)  # 30,000 pixels
    target = str(photo if command == "classify" else photo.parent)
    extra = ["--out", str(tmp_path / "out.csv")] if command == "batch" else []
    model = ["--model", str(tiny_weights_file), *extra]
    # Over a 0.01 MP limit: refused, and the message says how to open it anyway.
    assert main([command, target, *model, "--max-megapixels", "0.01"]) != 0
    err = capsys.readouterr().err
    assert "too large (30,000 pixels, limit 10,000)" in err and "--max-megapixels" in err
    # A higher limit, or none, opens it.
    for limit in ("0.05", "0"):
        assert main([command, target, *model, "--max-megapixels", limit]) == 0, limit
        assert "too large" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([command, target, *model, "--max-megapixels", "-1"])
    assert "must be 0 (no limit) or a number of megapixels" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["classify", "batch", "explain"])
def test_the_size_hint_follows_the_failure_kind_not_its_words(
    tiny_weights_file: Path, tmp_path: Path, capsys, restore_max_pixels, monkeypatch, command: str
) -> None:
    """A too-large photo gets the --max-megapixels hint however core words it; other failures never do."""
    from PIL import Image

    from resnet_gui.core import images

    photos = tmp_path / "photos"
    photos.mkdir()
    wide = photos / "wide.png"
    Image.new("RGB", (300, 100), (200, 30, 30)).save(wide)  # 30,000 pixels
    monkeypatch.setattr(images, "_bomb_reason", lambda exc: "more pixels than allowed")
    target = str(wide if command != "batch" else photos)
    extra = ["--out", str(tmp_path / "out.csv")] if command == "batch" else []
    assert main([command, target, "--model", str(tiny_weights_file), *extra, "--max-megapixels", "0.01"]) != 0
    err = capsys.readouterr().err
    assert "more pixels than allowed" in err and "--max-megapixels" in err
    # A file that cannot be read, named with the words core once used for a huge photo: no hint.
    wide.unlink()
    named = photos / "possible decompression bomb.png"
    named.write_bytes(b"")
    target = str(named if command != "batch" else photos)
    extra = ["--out", str(tmp_path / "out2.csv")] if command == "batch" else []
    assert main([command, target, "--model", str(tiny_weights_file), *extra]) != 0
    err = capsys.readouterr().err
    assert "file is empty" in err and "--max-megapixels" not in err
