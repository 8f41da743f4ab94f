"""The hostile-input corpus, the machine's part: odd images, a full disk, a full or ASCII-only
terminal, over-long paths, power cuts. Tables where the cases are alike; a subprocess where the
condition is the process's own (its file size limit, its standard output, its encoding)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hostile.conftest import World, tampered_model, write_photo
from resnet_gui.core.preprocessing import IMAGENET, KERAS_CAFFE, Preprocessing

# --- images whose resize would be enormous: bounded work whatever the aspect ratio --------------

EXTREME_SIZES = [(20000, 1), (65000, 1), (1, 40000), (30000, 3)]


@pytest.mark.parametrize("size", EXTREME_SIZES, ids=[f"{w}x{h}" for w, h in EXTREME_SIZES])
@pytest.mark.parametrize("preprocessing", [IMAGENET, KERAS_CAFFE], ids=["imagenet", "caffe"])
def test_extreme_aspect_ratio_is_resized_at_the_cost_of_a_normal_photo(
    size: tuple[int, int], preprocessing: Preprocessing, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[tuple[int, int]] = []
    real_resize = Image.Image.resize

    def recording_resize(self: Image.Image, new_size, *args, **kwargs):
        sizes.append(tuple(new_size))
        return real_resize(self, new_size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", recording_resize)
    image = Image.new("RGB", size, (200, 120, 40))
    array = preprocessing.prepare(image)
    assert array.shape == (3, preprocessing.crop_size, preprocessing.crop_size)
    assert np.isfinite(array).all()
    # No intermediate image larger than a few crops (the old code built 5 million x 256 pixels).
    assert max(w * h for w, h in sizes) <= 4 * preprocessing.resize_size**2


def test_the_bounded_path_gives_the_same_pixels_as_resize_then_crop() -> None:
    """On a moderately wide photo (both paths possible), the crop-region resize equals the full one."""
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 255, (40, 700, 3), dtype=np.uint8))
    narrow = Preprocessing(resize_size=32, crop_size=28)  # 700x40 -> 560x32: over 4 x 32², bounded path
    new_size = narrow.resized_size(*image.size)
    full = image.resize(new_size, Image.Resampling.BILINEAR)
    left, top = round((new_size[0] - 28) / 2), round((new_size[1] - 28) / 2)
    expected = narrow.to_array(full.crop((left, top, left + 28, top + 28)))
    np.testing.assert_allclose(narrow.prepare(image), expected, atol=1.5 / 255 / 0.224)


# --- a full disk: one sentence, nothing half-written ------------------------------------------


def _limited(max_bytes: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def _cli(
    *args: str, env: dict[str, str] | None = None, limit: int | None = None, **kwargs
) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(
        [sys.executable, "-m", "resnet_gui", *args],
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        preexec_fn=_limited(limit) if limit is not None else None,
        **kwargs,
    )


FULL_DISK = [
    ("explain-png", ["explain", "{photo}", "--weights", "{model}", "--out", "{out}/overlay.png"]),
    ("explain-heatmap", ["explain", "{photo}", "--weights", "{model}", "--save-heatmap", "{out}/heat.npy"]),
    (
        "finetune-bundle",
        [
            "finetune",
            "{dataset}",
            "--weights",
            "{model}",
            "--epochs",
            "1",
            "--no-disk-cache",
            "--out",
            "{out}/m.safetensors",
        ],
    ),
    ("evaluate-report", ["evaluate", "{dataset}", "--weights", "{model}", "--out-dir", "{out}"]),
]


@pytest.mark.parametrize(("name", "argv"), FULL_DISK, ids=[name for name, _ in FULL_DISK])
def test_a_full_disk_is_one_sentence_and_leaves_nothing_behind(
    name: str, argv: list[str], world: World
) -> None:
    out = world.root / "out"
    out.mkdir()
    values = {**world.placeholders(), "out": str(out)}
    result = _cli(*(part.format(**values) for part in argv), limit=2000)
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr
    assert "larger than the system allows" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [], "a partial or temporary file was left behind"


def test_classify_json_to_a_full_device_is_one_sentence(world: World) -> None:
    with open("/dev/full", "w") as full:
        result = _cli(
            "classify",
            str(world.photo),
            "--weights",
            str(world.model),
            "--json",
            stdout=full,
            stderr=subprocess.PIPE,
        )
    assert result.returncode == 5
    assert "Cannot write to the standard output: the disk is full" in result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def test_a_non_ascii_class_name_on_an_ascii_terminal(world: World) -> None:
    bundle = tampered_model(
        world.model, world.root / "fr.safetensors", categories='["abeille", "été", "fourmi"]'
    )
    result = _cli(
        "classify",
        str(world.photo),
        "--weights",
        str(bundle),
        "--top-k",
        "3",
        env={"PYTHONIOENCODING": "ascii"},
    )
    assert result.returncode == 0, result.stderr
    assert "\\xe9t\\xe9" in result.stdout and "Traceback" not in result.stderr


# --- power cuts: every atomic write reaches the disk before it replaces the old file -----------


def test_atomic_writes_fsync_the_file_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch
) -> None:
    from resnet_gui.core import atomic

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append("fsync-folder" if os.path.isdir(target) else "fsync-file")
        real_fsync(fd)

    def replace(source, destination) -> None:
        events.append("rename")
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic.write_text_atomic(tmp_path / "a.txt", "hello")
    assert events == ["fsync-file", "rename", "fsync-folder"]
    assert (tmp_path / "a.txt").read_text() == "hello"


# --- paths longer than the system allows -------------------------------------------------------


def test_a_file_under_an_over_long_path_is_reported_not_dropped(tmp_path: Path, capsys, world: World) -> None:
    from resnet_gui.cli import main

    root = tmp_path / "deep"
    root.mkdir()
    write_photo(root / "short.png")
    fd = os.open(root, os.O_RDONLY)
    depth = 0
    try:
        while len(str(root)) + depth * 201 < 3900:  # folders just short of PATH_MAX (4096)
            os.mkdir("d" * 200, dir_fd=fd)
            next_fd = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, depth = next_fd, depth + 1
        photo = os.open("p" * 250 + ".png", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(photo, b"not really a png")
        os.close(photo)
    finally:
        os.close(fd)
    code = main(["batch", str(root), "--recursive", "--weights", str(world.model)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "skipped: the path is longer than the system allows" in err
