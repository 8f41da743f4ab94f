"""Batch classification engine: scanning, the streaming pipeline, bad input, memory, cancel.

The bad-input corpus is generated here (:func:`make_corpus`) and reused by ``test_batch_cli.py``.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_gui.core.batch import (
    BatchInputError,
    BatchProgress,
    BatchRow,
    classify_folder,
    default_workers,
    scan_folder,
)
from resnet_gui.core.batch import pipeline as pipeline_module
from resnet_gui.core.engine import Classifier
from resnet_gui.core.images import get_max_image_pixels, set_max_image_pixels
from resnet_gui.core.models import LoadedModel
from resnet_gui.core.preprocessing import Preprocessing

NON_UTF8_NAME = b"caf\xe9-latin1.jpg"
BOMB_LIMIT = 20_000  # pixels; every good image of the corpus is smaller
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- the corpus ----------------------------------------------------------------------------------


def _rgb(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def make_corpus(folder: Path) -> tuple[dict[str, str | None], Path]:
    """Every kind of file a folder of photos may hold. Returns ``{name: expected reason or None}``
    for the files a scan should list (``None``: must be classified), and the unreadable file.

    Also adds what a scan must skip: a hidden file, a hidden folder, a text file, and a symlink
    from a subfolder back to the top (a loop for a recursive scan).
    """
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str | None] = {}

    def good(name: str) -> Path:
        expected[name] = None
        return folder / name

    _rgb(80, 60, 1).save(good("good.jpg"), quality=90)
    _rgb(70, 50, 2).save(good("png-named.jpg"), format="PNG")  # content is sniffed, not the suffix
    _rgb(64, 64, 3).convert("CMYK").save(good("cmyk.jpg"), quality=90)
    deep = np.linspace(0, 65535, 90 * 60, dtype=np.uint16).reshape(60, 90)
    Image.fromarray(deep).save(good("deep16.png"))  # mode I;16
    palette = _rgb(60, 60, 4).convert("P", palette=Image.Palette.ADAPTIVE)
    palette.save(good("palette.png"), transparency=0)
    frames = [_rgb(50, 40, 5 + i).convert("P") for i in range(3)]
    frames[0].save(good("animated.gif"), save_all=True, append_images=frames[1:], duration=50)
    rotated = _rgb(90, 60, 8)
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.save(good("rotated.jpg"), quality=90, exif=exif)
    with open(os.path.join(os.fsencode(folder), NON_UTF8_NAME), "wb") as handle:
        _rgb(72, 72, 9).save(handle, format="JPEG")
    expected[os.fsdecode(NON_UTF8_NAME)] = None

    (folder / "empty.jpg").write_bytes(b"")
    expected["empty.jpg"] = "file is empty"
    whole = folder / "good.jpg"
    (folder / "truncated.jpg").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    expected["truncated.jpg"] = "truncated or corrupt"
    (folder / "text.jpg").write_text("this is not a photo\n")
    expected["text.jpg"] = "not an image file"
    Image.new("L", (300, 300), 128).save(folder / "bomb.png")  # 90,000 pixels > 2 x BOMB_LIMIT
    expected["bomb.png"] = "decompression bomb"
    unreadable = folder / "unreadable.jpg"
    _rgb(40, 40, 10).save(unreadable)
    unreadable.chmod(0)
    expected["unreadable.jpg"] = "permission denied"
    os.symlink("self-loop.jpg", folder / "self-loop.jpg")  # a link to itself: ELOOP
    expected["self-loop.jpg"] = "symbolic link"

    sub = folder / "sub"
    sub.mkdir()
    _rgb(66, 66, 11).save(sub / "nested.JPG")  # upper-case suffix
    expected["sub/nested.JPG"] = None
    os.symlink("..", sub / "back-to-top")  # a folder loop: the scan must not follow it forever

    (folder / ".hidden.jpg").write_bytes(whole.read_bytes())
    (folder / ".hidden-folder").mkdir()
    _rgb(30, 30, 12).save(folder / ".hidden-folder" / "inside.jpg")
    (folder / "notes.txt").write_text("not an image suffix\n")
    return expected, unreadable


@pytest.fixture()
def small_bomb_limit():
    """A small decompression-bomb limit for the test, restored afterwards."""
    previous = get_max_image_pixels()
    set_max_image_pixels(BOMB_LIMIT)
    yield BOMB_LIMIT
    set_max_image_pixels(previous)


def deny_reading(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make ``path`` unreadable to the image loader.

    chmod 000 is enough for a normal user. Root reads it anyway, so then ``open`` in the loader's
    file check (core.userfiles) is replaced by one raising PermissionError for that file (simulated).
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    from resnet_gui.core import userfiles

    real_open = userfiles._open_descriptor

    def guarded_open(file, *args, **kwargs):
        if os.fspath(file) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(userfiles, "_open_descriptor", guarded_open)


@pytest.fixture()
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_bomb_limit: int):
    folder = tmp_path / "corpus"
    expected, unreadable = make_corpus(folder)
    deny_reading(monkeypatch, unreadable)
    yield folder, expected
    unreadable.chmod(0o644)


def relative_name(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def rows_and_progress(items) -> tuple[list[BatchRow], list[BatchProgress]]:
    items = list(items)
    return [i for i in items if isinstance(i, BatchRow)], [i for i in items if isinstance(i, BatchProgress)]


# --- scanning ------------------------------------------------------------------------------------


def test_scan_lists_images_skips_hidden_and_survives_symlink_loops(tmp_path: Path) -> None:
    expected, unreadable = make_corpus(tmp_path / "c")
    try:
        found = scan_folder(tmp_path / "c", recursive=True)
    finally:
        unreadable.chmod(0o644)
    names = [relative_name(p, tmp_path / "c") for p in found]
    assert sorted(names) == sorted(expected)  # no hidden, no .txt, nothing twice through the loop
    assert found == sorted(found, key=lambda p: p.parts)
    top_only = scan_folder(tmp_path / "c")
    assert [p.name for p in top_only] == [n for n in names if "/" not in n]


def test_scan_empty_folders_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "no-images").mkdir()
    (tmp_path / "no-images" / "readme.md").write_text("hello")
    assert scan_folder(tmp_path / "empty") == []
    assert scan_folder(tmp_path / "no-images", recursive=True) == []
    with pytest.raises(BatchInputError, match="does not exist"):
        scan_folder(tmp_path / "missing")


# --- every file gets a row -----------------------------------------------------------------------


def test_bad_input_corpus_every_file_gets_a_row(corpus, tiny_classifier: Classifier) -> None:
    folder, expected = corpus
    rows, progress = rows_and_progress(
        classify_folder(tiny_classifier, folder, recursive=True, top_k=2, batch_size=4, workers=2)
    )
    by_name = {relative_name(row.path, folder): row for row in rows}
    assert len(rows) == len(by_name) == len(expected)
    for name, reason in expected.items():
        row = by_name[name]
        if reason is None:
            assert row.ok, f"{name} should be classified, got: {row.error}"
            assert len(row.predictions) == 2 and sum(row.probabilities) <= 1.0 + 1e-6
        else:
            assert not row.ok and reason in row.error, f"{name}: {row.error!r} lacks {reason!r}"
        # The kind, not the words, tells a caller a photo is only too large (the user may allow it).
        assert row.kind == (
            None if reason is None else "too_large" if name == "bomb.png" else "unreadable"
        ), name
    failures = sum(reason is not None for reason in expected.values())
    assert progress[0].done == 0 and progress[0].total == len(expected)
    assert (progress[-1].done, progress[-1].failed, progress[-1].cancelled) == (
        len(expected),
        failures,
        False,
    )
    assert [p.done for p in progress] == sorted(p.done for p in progress)


class _OrientationNet(torch.nn.Module):
    """Scores which side of the picture is bright: a classifier that cares about orientation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = x.mean(dim=1)
        h, w = grey.shape[1] // 2, grey.shape[2] // 2
        vertical = grey[:, :h].mean(dim=(1, 2)) - grey[:, h:].mean(dim=(1, 2))
        horizontal = grey[:, :, :w].mean(dim=(1, 2)) - grey[:, :, w:].mean(dim=(1, 2))
        return torch.stack([vertical, -vertical, horizontal, -horizontal], dim=1) * 4.0


def orientation_classifier() -> Classifier:
    loaded = LoadedModel(
        model=_OrientationNet(),
        name="orientation",
        architecture="test",
        preprocessing=Preprocessing(resize_size=72, crop_size=64),
        categories=("top bright", "bottom bright", "left bright", "right bright"),
        weights_description="test",
    )
    return Classifier(loaded, device="cpu")


def test_exif_rotated_photo_is_classified_upright(tmp_path: Path) -> None:
    upright = np.zeros((96, 64, 3), dtype=np.uint8)  # portrait, bright top half
    upright[:48] = 230
    Image.fromarray(upright).save(tmp_path / "upright.jpg", quality=95)
    # Stored lying on its side, with EXIF orientation 6 ("rotate 90° clockwise to view").
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    stored.save(tmp_path / "sideways-no-exif.jpg", quality=95)
    rows, _ = rows_and_progress(classify_folder(orientation_classifier(), tmp_path, top_k=4))
    by_name = {row.path.name: row for row in rows}
    probabilities = {
        name: np.array([dict(zip(row.labels, row.probabilities, strict=True))[c] for c in sorted(row.labels)])
        for name, row in by_name.items()
    }
    assert by_name["upright.jpg"].top1.label == "top bright"
    assert by_name["rotated.jpg"].top1.label == "top bright"
    np.testing.assert_allclose(probabilities["rotated.jpg"], probabilities["upright.jpg"], atol=0.02)
    # The same pixels without the EXIF tag are seen sideways: the check above is meaningful.
    assert by_name["sideways-no-exif.jpg"].top1.label in ("left bright", "right bright")


def test_pipeline_matches_the_engine_exactly(tiny_classifier: Classifier, sample_images: list[Path]) -> None:
    paths = [*sample_images, sample_images[0]]  # a repeated file gets its row each time
    rows, _ = rows_and_progress(classify_folder(tiny_classifier, paths, top_k=3, batch_size=2, workers=2))
    reference = list(tiny_classifier.classify_paths(paths, top_k=3, batch_size=4))
    assert [row.path for row in rows] == [Path(p) for p in paths]
    for row, result in zip(rows, reference, strict=True):
        assert row.labels == tuple(p.label for p in result.predictions)
        np.testing.assert_allclose(row.probabilities, [p.probability for p in result.predictions], atol=1e-5)


def test_worker_counts_give_the_same_rows(tiny_classifier: Classifier, sample_images: list[Path]) -> None:
    paths = [*sample_images, sample_images[1]]
    results = []
    for workers in (0, 1, 3):
        rows, _ = rows_and_progress(classify_folder(tiny_classifier, paths, batch_size=3, workers=workers))
        results.append([(r.path, r.labels) for r in rows])
    assert results[0] == results[1] == results[2] and len(results[0]) == 4


def test_a_model_failure_fails_that_batch_not_the_run(
    tiny_classifier: Classifier, sample_images: list[Path], monkeypatch
) -> None:
    calls = {"n": 0}
    real = tiny_classifier.logits

    def flaky(batch):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("out of memory")
        return real(batch)

    monkeypatch.setattr(tiny_classifier, "logits", flaky)
    rows, _ = rows_and_progress(classify_folder(tiny_classifier, sample_images * 2, batch_size=3))
    assert all("out of memory" in r.error for r in rows[:3]) and all(r.ok for r in rows[3:])
    assert [r.kind for r in rows] == ["model_failed"] * 3 + [None] * 3


def test_a_too_large_photo_is_known_by_its_kind_not_its_words(
    corpus, tiny_classifier: Classifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Engine and pipeline carry the loader's error type as a kind, whatever its message says."""
    from resnet_gui.core import images
    from resnet_gui.core.engine import ImageFailure

    folder, _ = corpus
    monkeypatch.setattr(images, "_bomb_reason", lambda exc: "more pixels than allowed")
    names = ["bomb.png", "empty.jpg", "text.jpg", "good.jpg"]
    rows, _ = rows_and_progress(classify_folder(tiny_classifier, [folder / n for n in names], workers=0))
    outcomes = list(tiny_classifier.classify_paths([folder / n for n in names]))
    assert [row.kind for row in rows] == ["too_large", "unreadable", "unreadable", None]
    assert rows[0].error == "more pixels than allowed"
    failures = [o for o in outcomes if isinstance(o, ImageFailure)]
    assert [(Path(f.source).name, f.kind) for f in failures] == [
        ("bomb.png", "too_large"),
        ("empty.jpg", "unreadable"),
        ("text.jpg", "unreadable"),
    ]
    assert failures[0].reason == "more pixels than allowed"


def test_a_row_kind_defaults_and_is_only_for_failures() -> None:
    assert BatchRow(Path("a.jpg")).kind is None
    assert BatchRow(Path("a.jpg"), error="file is empty").kind == "unreadable"
    assert BatchRow(Path("a.jpg"), error="too big", kind="too_large").kind == "too_large"
    with pytest.raises(ValueError, match="no failure kind"):
        BatchRow(Path("a.jpg"), kind="too_large")


# --- bounded, flat memory ------------------------------------------------------------------------


def test_read_ahead_is_bounded(tiny_classifier: Classifier, sample_images: list[Path], monkeypatch) -> None:
    prepared = []
    real_prepare = pipeline_module._prepare

    def counting_prepare(path, classifier):
        prepared.append(path)
        return real_prepare(path, classifier)

    monkeypatch.setattr(pipeline_module, "_prepare", counting_prepare)
    paths = sample_images * 100
    batch_size, prefetch = 4, 2
    generator = classify_folder(
        tiny_classifier, paths, batch_size=batch_size, workers=2, prefetch_batches=prefetch
    )
    for item in generator:
        if isinstance(item, BatchProgress) and item.done == batch_size:
            break
    generator.close()
    # The batch taken, plus at most (prefetch + 1) batches submitted ahead of the model.
    assert len(prepared) <= batch_size * (prefetch + 2)


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss


class _PoolNet(torch.nn.Module):
    """Nearly free to run, so 2,000 images measure the pipeline's memory, not the model's time."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def many_small_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("small")
    files = []
    for index in range(8):
        path = folder / f"small{index}.jpg"
        _rgb(64, 64, 100 + index).save(path, quality=90)
        files.append(path)
    return files


@pytest.mark.slow
def test_memory_stays_flat_over_2000_images(many_small_files: list[Path], tmp_path: Path) -> None:
    if _rss_bytes() is None:
        pytest.skip("no way to read this process's RSS here (/proc or psutil)")
    from resnet_gui.core.batch import open_writer

    loaded = LoadedModel(
        model=_PoolNet().eval(),
        name="pool",
        architecture="test",
        preprocessing=Preprocessing(resize_size=72, crop_size=64),
        categories=("a", "b", "c"),
        weights_description="test",
    )
    classifier = Classifier(loaded, device="cpu")
    paths = many_small_files * 250  # 2,000 files: the same few on disk, listed many times
    samples: dict[int, int] = {}
    with open_writer(tmp_path / "rows.jsonl", "jsonl", top_k=3) as writer:
        for item in classify_folder(classifier, paths, top_k=3, batch_size=16, workers=2):
            if isinstance(item, BatchRow):
                writer.write(item)
            elif item.done in (208, 2000):
                writer.flush()
                gc.collect()
                samples[item.done] = _rss_bytes()
    assert set(samples) == {208, 2000}
    growth = samples[2000] - samples[208]
    # Keeping the prepared arrays alive would add ~49 KB per image (~88 MB here).
    assert growth < 16 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB between 200 and 2,000 images"


# --- cancel --------------------------------------------------------------------------------------


def test_cancel_stops_between_batches(tiny_classifier: Classifier, sample_images: list[Path]) -> None:
    stop = threading.Event()
    rows = []
    last = None
    for item in classify_folder(tiny_classifier, sample_images * 10, batch_size=4, cancel=stop):
        if isinstance(item, BatchRow):
            rows.append(item)
        else:
            last = item
            if item.done == 8:
                stop.set()
    assert len(rows) == 8 and last.cancelled and (last.done, last.total) == (8, 30)


def test_cancel_callable_and_closing_early_stop_the_loader_threads(
    tiny_classifier: Classifier, sample_images: list[Path]
) -> None:
    before = {t.name for t in threading.enumerate()}
    items = list(classify_folder(tiny_classifier, sample_images * 5, batch_size=2, cancel=lambda: True))
    assert len(items) == 2 and items[-1].cancelled  # initial progress, then the cancelled one
    generator = classify_folder(tiny_classifier, sample_images * 20, batch_size=2, workers=3)
    next(generator)
    next(generator)
    generator.close()
    leftover = {t.name for t in threading.enumerate() if t.name.startswith("batch-decode")} - before
    assert not leftover


def test_default_workers_leave_the_model_its_cores(tiny_classifier: Classifier, monkeypatch) -> None:
    monkeypatch.setattr(pipeline_module, "_usable_cpus", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert default_workers(tiny_classifier) == 1  # never 0: decoding must still overlap
    monkeypatch.setattr(pipeline_module, "_usable_cpus", lambda: 16)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert default_workers(tiny_classifier) == 4
    monkeypatch.setattr(tiny_classifier, "device", torch.device("cuda"))  # not moved: only read here
    monkeypatch.setattr(pipeline_module, "_usable_cpus", lambda: 3)
    assert default_workers(tiny_classifier) == 3


def test_progress_figures() -> None:
    progress = BatchProgress(done=50, total=150, failed=2, elapsed_seconds=10.0)
    assert progress.images_per_second == 5.0 and progress.eta_seconds == 20.0 and not progress.finished
    assert BatchProgress(0, 10, 0, 0.0).eta_seconds is None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names")
def test_non_utf8_name_round_trips(tmp_path: Path, tiny_classifier: Classifier) -> None:
    name = os.path.join(os.fsencode(tmp_path), NON_UTF8_NAME)
    _rgb(64, 64, 0).save(os.fsdecode(name), format="JPEG")
    rows, _ = rows_and_progress(classify_folder(tiny_classifier, tmp_path))
    assert len(rows) == 1 and rows[0].ok and os.fsencode(rows[0].path) == name
