"""Output that others read, fed hostile names: file names, class names and error texts that a
spreadsheet would run as formulas, that split CSV records, that are not UTF-8, or that act on a
terminal. Every case is one line of a table; each is checked in every format that applies."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import tempfile
import unicodedata
from pathlib import Path

import pytest

from resnet_gui.core.batch import (
    FORMATS,
    BatchOutputError,
    BatchRow,
    BatchSummary,
    SortAction,
    display_path,
    format_plan,
    open_writer,
    read_rows,
)
from resnet_gui.core.csvcells import unescape_csv_cell
from resnet_gui.core.engine import Prediction
from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.training.evaluate import OTHER, EvaluationReport, compute_metrics, evaluate

FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets run as a formula (OWASP)

# Legal file and folder names on Linux (no "/", no NUL). A new hostile case is one line here.
HOSTILE_NAMES = [
    pytest.param('=HYPERLINK("evil.example","click")', id="hyperlink"),
    pytest.param("+1", id="plus"),
    pytest.param("-2", id="minus"),
    pytest.param("@SUM(1)", id="at"),
    pytest.param("\tx", id="tab"),
    pytest.param("\rx", id="leading-cr"),
    pytest.param("\nx", id="leading-lf"),
    pytest.param("'quoted", id="quote"),
    pytest.param("''=1", id="quotes-then-formula"),
    pytest.param("a\rb", id="cr"),
    pytest.param("a\nb", id="lf"),
    pytest.param("a\r\nb", id="crlf"),
    pytest.param("ends\r", id="trailing-cr"),
    pytest.param('"q"', id="double-quotes"),
    pytest.param('a,b"', id="comma"),
    pytest.param(os.fsdecode(b"caf\xe9"), id="not-utf8"),
    pytest.param(os.fsdecode(b"\xff=1"), id="not-utf8-first"),
    pytest.param("\x1b[31mred\x1b[0m", id="terminal-escape"),
    pytest.param("\u202eevil", id="bidi-override"),
]

# Names shown to a person: no control character may reach the terminal as it is.
CONTROL_NAMES = [
    pytest.param("\x1b[2J\x1b[Hcleared", id="clear-screen"),
    pytest.param("done\rfake", id="carriage-return"),
    pytest.param("a\nb", id="newline"),
    pytest.param("\x07bell", id="bell"),
    pytest.param("\x9b31m", id="c1-csi"),
    pytest.param("\u202eevil", id="bidi-override"),
    pytest.param(os.fsdecode(b"caf\xe9\x1b"), id="not-utf8-and-escape"),
]

# How a name is shown: control characters and raw (non-UTF-8) bytes as escapes, the rest as it is.
SHOWN_AS = [
    pytest.param(os.fsdecode(b"caf\xe9\x1b[0m.jpg"), "caf\\xe9\\x1b[0m.jpg", id="not-utf8-and-escape"),
    pytest.param("été\r.jpg", "été\\r.jpg", id="accents-kept-cr-escaped"),
    pytest.param("a\nb.jpg", "a\\nb.jpg", id="newline"),
]

# Files that are not ours (or not only ours): resume must refuse them and leave them as they are.
FOREIGN_FILES = [
    pytest.param("notes.jsonl", b"hello world\n", id="jsonl-one-line"),
    pytest.param("notes.jsonl", b"hello world", id="jsonl-no-newline"),
    pytest.param("notes.json", b"[\nhello", id="json-bracket-then-text"),
    pytest.param("notes.csv", b"name,size", id="csv-no-newline"),
    pytest.param("notes.csv", b"name,size\nx,1\n", id="csv-other-header"),
]

# A bad record before the last one: the file is refused and the message names its line.
BAD_MIDDLE = [
    pytest.param("csv", b"not,a,row\n", 3, id="csv-wrong-field-count"),
    pytest.param("csv", b"x.jpg,,ant,0.5,zero,,,\n", 3, id="csv-bad-index"),
    pytest.param("csv", b"x.jpg,,ant,0.5,0,,,,,,,\n", 3, id="csv-extra-fields"),
    pytest.param("jsonl", b"{not json}\n", 2, id="jsonl-garbage"),
    pytest.param("jsonl", b'{"path": "x.jpg", "predictions": 1}\n', 2, id="jsonl-not-a-record"),
    pytest.param("json", b"{not json},\n", 3, id="json-garbage"),
    pytest.param("json", b'{"path": "x.jpg", "predict\n', 3, id="json-torn-record-in-the-middle"),
]


def hostile_rows(name: str) -> list[BatchRow]:
    """Rows that carry ``name`` in every text cell: a path, an error text, class labels."""
    return [
        BatchRow(Path("plain.jpg"), (Prediction("ant", 0, 0.75), Prediction("bee", 1, 0.25))),
        BatchRow(Path(name + ".bad"), error=name),
        BatchRow(Path("photos") / name, (Prediction("cat", 2, 1.0),)),
        BatchRow(Path(name), (Prediction(name, 1, 0.5), Prediction("ant", 0, 0.5))),
    ]


def row_key(row: BatchRow):
    return (os.fspath(row.path), row.error, row.labels, tuple(round(p, 6) for p in row.probabilities))


def keys(rows: list[BatchRow]) -> list:
    return [row_key(row) for row in rows]


def write_rows(path: Path, name: str, rows: list[BatchRow]) -> bytes:
    with open_writer(path, name, top_k=2) as writer:
        for row in rows:
            writer.write(row)
    return path.read_bytes()


def csv_cells(data: bytes) -> list[list[str]]:
    """The records as Python's csv module (and so a spreadsheet importing it) sees them."""
    return list(csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"), newline="")))


def no_control_characters(text: str) -> bool:
    return not any(
        unicodedata.category(char) in ("Cc", "Cs") or 0x202A <= ord(char) <= 0x202E for char in text
    )


# --- batch results files -----------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_csv_cells_never_start_a_formula(tmp_path: Path, name: str) -> None:
    rows = hostile_rows(name)
    records = csv_cells(write_rows(tmp_path / "out.csv", "csv", rows))
    assert len(records) == 1 + len(rows)  # no record split by a "\r" or "\n" in a name
    for record in records:
        assert not [cell for cell in record if cell.startswith(FORMULA)]
    last = records[-1]
    assert [unescape_csv_cell(last[0]), unescape_csv_cell(last[2])] == [name, name]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("output", list(FORMATS))
def test_hostile_names_read_back_exactly(tmp_path: Path, output: str, name: str) -> None:
    path = tmp_path / f"out.{output}"
    rows = hostile_rows(name)
    write_rows(path, output, rows)
    assert keys(read_rows(path)) == keys(rows)
    with open_writer(path, output, top_k=2, resume=True) as writer:
        assert keys(writer.existing) == keys(rows)
    assert keys(read_rows(path)) == keys(rows)  # resuming changed nothing


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("output", list(FORMATS))
def test_a_torn_last_row_resumes_at_every_cut(tmp_path: Path, monkeypatch, output: str, name: str) -> None:
    """Cut the file at every byte of its last row (a crash mid-write): resume keeps every whole row."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # thousands of resumes; durability is not tested here
    rows = hostile_rows(name)
    before = len(write_rows(tmp_path / f"before.{output}", output, rows[:-1]))
    if output == "json":
        before -= len(b"\n]\n")  # the next record overwrites the closing bracket
    data = write_rows(tmp_path / f"whole.{output}", output, rows)
    path = tmp_path / f"torn.{output}"
    for cut in range(before, len(data)):
        path.write_bytes(data[:cut])
        with open_writer(path, output, top_k=2, resume=True) as writer:
            kept = len(writer.existing)
            # Only JSON's closing bracket comes after the last row: cut there, the row is whole.
            assert keys(writer.existing) == keys(rows[:kept]), cut
            assert kept == len(rows) - 1 or (output == "json" and cut >= len(data) - 3), cut
            for row in rows[kept:]:
                writer.write(row)
        assert keys(read_rows(path)) == keys(rows), cut


@pytest.mark.parametrize(("output", "bad", "line"), BAD_MIDDLE)
def test_a_bad_row_before_the_last_is_refused_with_its_line(
    tmp_path: Path, output: str, bad: bytes, line: int
) -> None:
    path = tmp_path / f"out.{output}"
    rows = hostile_rows("x")[:2]
    data = write_rows(path, output, rows)
    # After the first row (JSON: after its ",\n"), before the second.
    cut = len(write_rows(tmp_path / f"one.{output}", output, rows[:1]))
    cut = cut - 3 + 2 if output == "json" else cut
    corrupt = data[:cut] + bad + data[cut:]
    path.write_bytes(corrupt)
    with pytest.raises(BatchOutputError, match=f"line {line}"):
        open_writer(path, output, top_k=2, resume=True)
    assert path.read_bytes() == corrupt


@pytest.mark.parametrize(("file_name", "content"), FOREIGN_FILES)
def test_resume_refuses_a_foreign_file_and_leaves_it(tmp_path: Path, file_name: str, content: bytes) -> None:
    path = tmp_path / file_name
    path.write_bytes(content)
    with pytest.raises(BatchOutputError, match="not a results file"):
        open_writer(path, top_k=2, resume=True)
    assert path.read_bytes() == content


# --- words for people --------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONTROL_NAMES)
def test_names_shown_to_people_are_escaped(name: str) -> None:
    shown = display_path(Path("photos") / name)
    assert no_control_characters(shown) and shown.startswith("photos/")
    summary = BatchSummary(total=1)
    summary.add(BatchRow(Path(name), (Prediction(name, 0, 0.9),)))
    assert all(no_control_characters(line) for line in summary.lines())
    action = SortAction(Path(name), Path("sorted") / name / name, "copy", name, 0.9)
    (line,) = format_plan([action])
    assert no_control_characters(line) and line.startswith("copy ")


@pytest.mark.parametrize(("name", "shown"), SHOWN_AS)
def test_display_path_shows_escapes_and_raw_bytes_as_hex(name: str, shown: str) -> None:
    assert display_path(Path("/photos") / name) == "/photos/" + shown


# --- evaluate's report -------------------------------------------------------------------------


def hostile_report(folder: Path, name: str) -> EvaluationReport:
    """Two classes, ``name`` and ``plain``; one image of ``name`` (named ``name`` too) taken for plain."""
    classes = (name, "plain")
    confusion, per_class, accuracy = compute_metrics([0, 1], [1, 1], classes, columns=3)
    wrong = folder / name / f"{name}.png"
    return EvaluationReport(
        model="tiny",
        folder=folder,
        classes=classes,
        columns=(*classes, OTHER),
        confusion=confusion,
        per_class=per_class,
        accuracy=accuracy,
        count=2,
        predictions=[(wrong, name, "plain", 0.9), (folder / "plain" / "p.png", "plain", "plain", 0.8)],
    )


def assert_report_files(written: dict[str, Path], columns: list[str], paths: list[str]) -> None:
    """Every file is there, whole, with the names exact and no CSV cell a formula."""
    assert sorted(p.name for p in written["report"].parent.iterdir()) == sorted(
        p.name for p in written.values()
    )  # nothing half-written (no .partial) beside them
    report = json.loads(written["report"].read_text(encoding="ascii"))
    assert report["columns"] == columns
    classes = report["classes"]
    confusion = csv_cells(written["confusion_csv"].read_bytes())
    predictions = csv_cells(written["predictions"].read_bytes())
    for record in confusion + predictions:
        assert not [cell for cell in record if cell.startswith(FORMULA)]
    assert [unescape_csv_cell(cell) for cell in confusion[0][1:]] == columns
    assert [unescape_csv_cell(record[0]) for record in confusion[1:]] == classes
    assert [unescape_csv_cell(record[0]) for record in predictions[1:]] == paths
    assert written["confusion_png"].read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_evaluation_report_with_hostile_names(tmp_path: Path, name: str) -> None:
    report = hostile_report(tmp_path / "data", name)
    written = report.write(tmp_path / "report")
    assert_report_files(written, [name, "plain", OTHER], [f"{name}/{name}.png", "plain/p.png"])
    predictions = csv_cells(written["predictions"].read_bytes())
    assert [unescape_csv_cell(cell) for cell in predictions[1][1:3]] == [name, "plain"]


def test_evaluate_folders_with_hostile_class_names(tiny_weights_file: Path, tmp_path: Path) -> None:
    """End to end: class folders (and images) with hostile names, scored by a bundle with those classes."""
    from PIL import Image

    from resnet_gui.core.checkpoints import read_weights_file, write_weights_file

    names = [os.fsdecode(b"caf\xe9"), "=1+1", "\x1b[31m$\\frac$"]  # $…$: matplotlib's maths markup
    tensors, metadata = read_weights_file(tiny_weights_file)
    metadata["categories"] = json.dumps(names)
    bundle = tmp_path / "hostile.safetensors"
    write_weights_file(bundle, tensors, metadata)
    root = tmp_path / "data"
    for index, name in enumerate(names):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (64, 64), (80 * index, 40, 200 - 60 * index)).save(root / name / f"{name}.png")
    report = evaluate(str(bundle), root, workers=0)
    written = report.write(tmp_path / "report")
    expected_paths = [f"{name}/{name}.png" for name in report.classes]
    assert_report_files(written, list(report.columns), expected_paths)
    assert sorted(report.classes) == sorted(report.columns) == sorted(names)


def _fail_on_call(number: int, error: OSError, real):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            raise error
        return real(*args, **kwargs)

    return failing


def _out_dir_is_a_file(tmp_path: Path, monkeypatch) -> Path:
    target = tmp_path / "report"
    target.write_bytes(b"old")
    return target


def _report_json_is_a_folder(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "report" / "report.json").mkdir(parents=True)
    return tmp_path / "report"


def _read_only_folder(tmp_path: Path, monkeypatch) -> Path:
    target = tmp_path / "report"
    target.chmod(0o555)
    if os.geteuid() == 0:  # root writes there anyway: refuse the way the kernel does for anyone else
        denied = PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        monkeypatch.setattr(tempfile, "mkstemp", _fail_on_call(1, denied, tempfile.mkstemp))
    return target


def _disk_full_on_the_third_file(tmp_path: Path, monkeypatch) -> Path:
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(Path, "write_bytes", _fail_on_call(3, full, Path.write_bytes))
    return tmp_path / "report"


def _rename_fails_on_the_second_file(tmp_path: Path, monkeypatch) -> Path:
    busy = OSError(errno.EBUSY, os.strerror(errno.EBUSY))
    monkeypatch.setattr(os, "replace", _fail_on_call(2, busy, os.replace))
    return tmp_path / "report"


WRITE_FAILURES = [
    pytest.param(_out_dir_is_a_file, id="target-is-a-file"),
    pytest.param(_report_json_is_a_folder, id="report-json-is-a-folder"),
    pytest.param(_read_only_folder, id="read-only-folder"),
    pytest.param(_disk_full_on_the_third_file, id="disk-full-midway"),
    pytest.param(_rename_fails_on_the_second_file, id="rename-fails-midway"),
]


@pytest.mark.parametrize("setup", WRITE_FAILURES)
def test_report_write_failure_is_one_sentence_and_leaves_nothing(tmp_path: Path, monkeypatch, setup) -> None:
    report = hostile_report(tmp_path / "data", "=1+1")
    if setup not in (_out_dir_is_a_file, _report_json_is_a_folder):
        (tmp_path / "report").mkdir()
        (tmp_path / "report" / "predictions.csv").write_bytes(b"old")  # a previous report's file
    target = setup(tmp_path, monkeypatch)
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()} if target.is_dir() else {}
    with pytest.raises(ResNetGuiError) as caught:
        report.write(target)
    monkeypatch.undo()
    message = str(caught.value)
    assert "\n" not in message and message.startswith("Cannot write") and message.endswith(".")
    if target.is_dir():
        left = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
        assert not [name for name in left if name.endswith(".partial")]
        assert all(left[name] == before.get(name) for name in left)  # no file of this call is left
    else:
        assert target.read_bytes() == b"old"
