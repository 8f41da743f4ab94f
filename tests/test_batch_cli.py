"""``resnet-gui batch`` end to end with the tiny model: results file, summary, exit codes, resume,
sorting, progress display, interruption."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from test_batch import deny_reading, make_corpus

from resnet_gui.cli import EXIT_SOME_IMAGES_FAILED, build_parser, main
from resnet_gui.core.batch import FORMATS, BatchOutputError, read_rows
from resnet_gui.core.batch import pipeline as pipeline_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def batch(*args: str | Path, weights: Path) -> int:
    return main(["batch", *map(str, args), "--weights", str(weights), "--batch-size", "4"])


@pytest.fixture()
def photos(tmp_path: Path, sample_images: list[Path]) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sample_images:
        path.rename(folder / path.name)
    return folder


def test_corpus_end_to_end(tmp_path: Path, tiny_weights_file: Path, monkeypatch, capsys) -> None:
    from resnet_gui.core.images import get_max_image_pixels, set_max_image_pixels

    folder = tmp_path / "corpus"
    expected, unreadable = make_corpus(folder)
    deny_reading(monkeypatch, unreadable)
    previous = get_max_image_pixels()
    set_max_image_pixels(20_000)
    out = tmp_path / "results.csv"
    try:
        code = batch(folder, "--recursive", "--out", out, "--top-k", "2", weights=tiny_weights_file)
    finally:
        set_max_image_pixels(previous)
        unreadable.chmod(0o644)
    captured = capsys.readouterr()
    failures = sum(reason is not None for reason in expected.values())
    assert code == 0, captured.err
    assert f"Classified {len(expected) - failures} of {len(expected)} files" in captured.out
    assert f"; {failures} failed." in captured.out and "Top-1 classes: " in captured.out
    assert "Traceback" not in captured.err and "\r" not in captured.err  # not a terminal: no bar
    assert captured.err.count("cannot classify") == failures
    rows = {row.path.relative_to(folder).as_posix(): row for row in read_rows(out)}
    assert rows.keys() == expected.keys()
    for name, reason in expected.items():
        assert (rows[name].error is None) if reason is None else (reason in rows[name].error)


def test_results_on_stdout_and_summary_on_stderr(photos: Path, tiny_weights_file: Path, capsys) -> None:
    assert batch(photos, "--format", "jsonl", weights=tiny_weights_file) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert len(records) == 3 and all(len(r["predictions"]) == 3 for r in records)  # top-5 capped at 3
    assert "Classified 3 of 3 files" in captured.err


def test_resume_classifies_only_new_files(
    photos: Path, tiny_weights_file: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "results.json"
    assert batch(photos, "--out", out, weights=tiny_weights_file) == 0
    (photos / "later.jpg").write_bytes((photos / "image0.jpg").read_bytes())
    capsys.readouterr()
    assert batch(photos, "--out", out, "--resume", weights=tiny_weights_file) == 0
    captured = capsys.readouterr()
    assert "Classified 1 of 1 files" in captured.out and "Skipped 3 files already" in captured.out
    names = sorted(r.path.name for r in read_rows(out))
    assert names == ["image0.jpg", "image1.jpg", "image2.jpg", "later.jpg"]
    assert batch(photos, "--out", out, "--resume", weights=tiny_weights_file) == 0  # nothing left: fine
    assert len(json.loads(out.read_text())) == 4


@pytest.mark.parametrize("kind", ["empty", "no-images", "missing"])
def test_nothing_to_classify_is_an_error(kind: str, tmp_path: Path, tiny_weights_file: Path, capsys) -> None:
    folder = tmp_path / kind
    if kind != "missing":
        folder.mkdir()
    if kind == "no-images":
        (folder / "notes.txt").write_text("hello")
    code = batch(folder, weights=tiny_weights_file)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert ("does not exist" if kind == "missing" else "No image files in") in err


def test_only_bad_files_exit_non_zero(tmp_path: Path, tiny_weights_file: Path, capsys) -> None:
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.png").write_text("not a png")
    out = tmp_path / "out.csv"
    assert batch(tmp_path, "--out", out, weights=tiny_weights_file) == EXIT_SOME_IMAGES_FAILED
    assert "Classified 0 of 2 files" in capsys.readouterr().out
    assert len(read_rows(out)) == 2


def test_unwritable_output_exits_with_its_code(photos: Path, tiny_weights_file: Path, capsys) -> None:
    code = batch(photos, "--out", photos / "image0.jpg" / "results.csv", weights=tiny_weights_file)
    err = capsys.readouterr().err
    assert code == BatchOutputError.exit_code and "Cannot write" in err and "Traceback" not in err


def test_sort_dry_run_then_link(photos: Path, tiny_weights_file: Path, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "sorted"
    out = tmp_path / "r.csv"
    args = ["--out", out, "--sort-into", dest, "--min-confidence", "0.99"]
    assert batch(photos, *args, "--dry-run", weights=tiny_weights_file) == 0
    captured = capsys.readouterr().out
    assert not dest.exists()
    assert captured.count("copy ") == 3 and "/_unsure/" in captured and "nothing was changed" in captured
    assert batch(photos, *args, "--mode", "link", weights=tiny_weights_file) == 0
    assert "Linked 3 files" in capsys.readouterr().out
    links = sorted((dest / "_unsure").iterdir())  # a random 3-class model is never 99 % sure
    assert [p.name for p in links] == ["image0.jpg", "image1.jpg", "image2.jpg"]
    assert all(p.is_symlink() for p in links)


def test_sort_options_need_sort_into(photos: Path, tiny_weights_file: Path, capsys) -> None:
    assert batch(photos, "--dry-run", weights=tiny_weights_file) == 1
    assert "--sort-into" in capsys.readouterr().err


def test_progress_bar_on_a_terminal(
    photos: Path, tiny_weights_file: Path, tmp_path: Path, monkeypatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert batch(photos, "--out", tmp_path / "r.csv", weights=tiny_weights_file) == 0
    text = terminal.getvalue()
    assert "\r\x1b[K[" in text and "3/3 (100 %)" in text and "images/s" in text


def test_interrupt_keeps_valid_output_and_says_resume(
    photos: Path, tiny_weights_file: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    real = pipeline_module.classify_folder

    def interrupted(*args, **kwargs):
        for count, item in enumerate(real(*args, **kwargs)):
            if count == 3:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(pipeline_module, "classify_folder", interrupted)
    out = tmp_path / "r.json"
    assert batch(photos, "--out", out, weights=tiny_weights_file) == 130
    assert "--resume" in capsys.readouterr().err
    assert len(json.loads(out.read_text())) == 2  # progress, row, row, then Ctrl-C


def test_format_choices_come_from_the_registry() -> None:
    parser = build_parser()
    args = parser.parse_args(["batch", "x"])
    assert args.command == "batch" and args.format is None and args.top_k == 5
    batch_parser = parser._subparsers._group_actions[0].choices["batch"]
    (format_action,) = [a for a in batch_parser._actions if a.dest == "format"]
    assert list(format_action.choices) == list(FORMATS)
