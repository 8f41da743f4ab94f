"""Results files of a batch run: every format round-trips, is flushed per batch, stays valid after a
cancel or a crash, and resumes without losing or duplicating a row."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import pytest

from resnet_gui.core.batch import (
    FORMATS,
    BatchOutputError,
    BatchProgress,
    BatchRow,
    classify_folder,
    format_for,
    open_writer,
    read_rows,
)
from resnet_gui.core.engine import Prediction

ALL_FORMATS = list(FORMATS)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic_rows() -> list[BatchRow]:
    odd_name = Path(os.fsdecode(b"/photos/caf\xe9.jpg"))  # not UTF-8: must survive the round trip
    return [
        BatchRow(Path("/photos/a.jpg"), (Prediction("ant", 0, 0.75), Prediction("bee", 1, 0.25))),
        BatchRow(Path('/photos/with, comma "quoted"\nnewline.jpg'), (Prediction("cat", 2, 1.0),)),
        BatchRow(Path("/photos/bad.jpg"), error="file is truncated or corrupt"),
        BatchRow(odd_name, (Prediction("été", 1, 0.5), Prediction("ant", 0, 0.5))),
    ]


def same_rows(actual: list[BatchRow], expected: list[BatchRow]) -> bool:
    def key(row: BatchRow):
        return (row.path, row.error, row.labels, tuple(round(p, 6) for p in row.probabilities))

    return [key(r) for r in actual] == [key(r) for r in expected]


def assert_valid_document(path: Path, name: str) -> None:
    """The file parses as a whole in its format (a JSON array must be complete)."""
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    if name == "json":
        assert isinstance(json.loads(text), list)
    elif name == "jsonl":
        assert all(json.loads(line) for line in text.splitlines())
    else:
        assert text.startswith("path,error,label_1,")


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"results.{name}"
    rows = synthetic_rows()
    with open_writer(path, name, top_k=2) as writer:
        for row in rows:
            writer.write(row)
    assert_valid_document(path, name)
    assert same_rows(read_rows(path), rows)  # the format is known from the suffix


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_flushed_after_every_batch(tmp_path: Path, name: str, tiny_classifier, sample_images) -> None:
    path = tmp_path / f"out.{name}"
    seen: list[BatchRow] = []
    checks = 0
    writer = open_writer(path, name, top_k=3)
    try:
        for item in classify_folder(tiny_classifier, sample_images * 3, top_k=3, batch_size=2):
            if isinstance(item, BatchRow):
                writer.write(item)
                seen.append(item)
            else:
                writer.flush()
                # Read from another handle mid-run: everything so far is on disk, and a JSON
                # array is already a complete document.
                assert_valid_document(path, name)
                assert same_rows(read_rows(path, name), seen)
                checks += 1
    finally:
        writer.close()
    assert checks == 1 + 5 and len(seen) == 9


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_cancel_leaves_valid_output_then_resume_completes_it(
    tmp_path: Path, name: str, tiny_classifier, sample_images
) -> None:
    path = tmp_path / f"out.{name}"
    paths = [*sample_images, *sample_images]  # 6 files, listed as distinct entries below
    paths = [p.with_name(f"{p.stem}{i}{p.suffix}") for i, p in enumerate(paths)]
    for source, target in zip([*sample_images, *sample_images], paths, strict=True):
        target.write_bytes(source.read_bytes())
    stop = threading.Event()
    writer = open_writer(path, name, top_k=2)
    try:
        for item in classify_folder(tiny_classifier, paths, top_k=2, batch_size=2, cancel=stop):
            if isinstance(item, BatchRow):
                writer.write(item)
            else:
                writer.flush()
                if item.done == 2:
                    stop.set()
    finally:
        writer.close()
    assert_valid_document(path, name)
    first = read_rows(path)
    assert [r.path for r in first] == paths[:2]

    with open_writer(path, name, top_k=2, resume=True) as writer:
        assert [r.path for r in writer.existing] == paths[:2]
        done = {r.path for r in writer.existing}
        for item in classify_folder(tiny_classifier, [p for p in paths if p not in done], top_k=2):
            if isinstance(item, BatchRow):
                writer.write(item)
            elif isinstance(item, BatchProgress):
                writer.flush()
    assert_valid_document(path, name)
    final = read_rows(path)
    assert [r.path for r in final] == paths and all(r.ok for r in final)


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_resume_after_a_crash_mid_write(tmp_path: Path, name: str) -> None:
    """A process killed while writing leaves a torn last record and (JSON) no closing bracket."""
    path = tmp_path / f"out.{name}"
    rows = synthetic_rows()
    with open_writer(path, name, top_k=2) as writer:
        for row in rows[:3]:
            writer.write(row)
    data = path.read_bytes()
    torn = data.rstrip(b"\n]")  # JSON: drop the tail; all: cut into the last record
    path.write_bytes(torn[: len(torn) - 5])
    assert same_rows(read_rows(path), rows[:2])
    with open_writer(path, name, top_k=2, resume=True) as writer:
        assert same_rows(writer.existing, rows[:2])
        writer.write(rows[2])
        writer.write(rows[3])
    assert_valid_document(path, name)
    assert same_rows(read_rows(path), rows)


def test_json_killed_before_its_closing_bracket_keeps_every_whole_record(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    rows = synthetic_rows()
    with open_writer(path, top_k=2) as writer:
        for row in rows[:2]:
            writer.write(row)
    path.write_bytes(path.read_bytes().removesuffix(b"\n]\n"))  # SIGKILL between rows and tail
    assert same_rows(read_rows(path), rows[:2])


def test_json_resume_accepts_a_pretty_printed_array(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    rows = synthetic_rows()
    from resnet_gui.core.batch import row_to_record

    path.write_text(json.dumps([row_to_record(r) for r in rows[:2]], indent=2))
    with open_writer(path, top_k=2, resume=True) as writer:
        writer.write(rows[2])
    assert same_rows(read_rows(path), rows[:3])


def test_resume_of_a_missing_file_starts_it(tmp_path: Path) -> None:
    path = tmp_path / "new.csv"
    with open_writer(path, top_k=2, resume=True) as writer:
        assert writer.existing == []
        writer.write(synthetic_rows()[0])
    assert len(read_rows(path)) == 1


def test_resume_refuses_other_columns_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with open_writer(path, top_k=2) as writer:
        writer.write(synthetic_rows()[0])
    with pytest.raises(BatchOutputError, match="--top-k 2"):
        open_writer(path, top_k=5, resume=True)
    foreign = tmp_path / "other.csv"
    foreign.write_text("name,size\nx,1\n")
    with pytest.raises(BatchOutputError, match="not a results file"):
        open_writer(foreign, top_k=2, resume=True)
    bad_json = tmp_path / "other.json"
    bad_json.write_text('{"not": "an array"}')
    with pytest.raises(BatchOutputError, match="not a results file"):
        open_writer(bad_json, top_k=2, resume=True)


def test_unwritable_output_is_a_typed_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(BatchOutputError, match="Cannot write the results"):
        open_writer(blocker / "results.csv", top_k=1)
    if not os.path.exists("/dev/full"):
        return
    with pytest.raises(BatchOutputError, match="space"):  # a disk that fills up during the run
        writer = open_writer("/dev/full", "jsonl", top_k=1)
        for row in synthetic_rows() * 2000:
            writer.write(row)
        writer.flush()


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_stream_output(name: str) -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    writer = open_writer(None, name, top_k=2, stream=stream)
    for row in synthetic_rows()[:3]:
        writer.write(row)
    writer.close()
    stream.flush()
    text = stream.buffer.getvalue().decode("utf-8")
    if name == "json":
        assert len(json.loads(text)) == 3
    elif name == "jsonl":
        assert len(text.splitlines()) == 3
    else:
        assert text.count("\n") == 1 + 3 + 1  # header, 3 rows, one newline inside a quoted name
    with pytest.raises(BatchOutputError, match="--out"):
        open_writer(None, name, top_k=2, resume=True)


def test_format_registry() -> None:
    assert format_for("x.CSV").name == "csv"
    assert format_for("x.ndjson").name == format_for("x.jsonl").name == "jsonl"
    assert format_for("x.json").name == "json"
    assert format_for("x.txt").name == format_for(None).name == "csv"
    assert format_for("x.csv", "json").name == "json"
    with pytest.raises(BatchOutputError, match="Unknown results format"):
        format_for(None, "xml")
    for name, output_format in FORMATS.items():
        assert output_format.name == name and output_format.suffixes and output_format.description


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_round_trip_keeps_both_flags(tmp_path: Path, name: str) -> None:
    """``not_sure`` (under the writer's threshold) and ``unlike_training`` (true, false, unknown) come
    back exactly; a failed file has neither."""
    path = tmp_path / f"flags.{name}"
    rows = [
        BatchRow(Path("/p/a.jpg"), (Prediction("ant", 0, 0.55), Prediction("bee", 1, 0.45)), unusual=True),
        BatchRow(Path("/p/b.jpg"), (Prediction("bee", 1, 0.8), Prediction("ant", 0, 0.2)), unusual=False),
        BatchRow(Path("/p/c.jpg"), (Prediction("ant", 0, 0.6), Prediction("bee", 1, 0.4))),
        BatchRow(Path("/p/d.jpg"), error="file is empty"),
    ]
    with open_writer(path, name, top_k=2, unsure_threshold=0.6) as writer:
        for row in rows:
            writer.write(row)
    back = read_rows(path)
    assert same_rows(back, rows)
    # Read back, a row says what the file says, whatever threshold is asked about now.
    assert [row.not_sure(None) for row in back] == [True, False, False, None]
    assert [row.not_sure(0.99) for row in back] == [True, False, False, None]
    assert [row.unusual for row in back] == [True, False, None, None]


def test_csv_torn_inside_the_flag_columns_of_its_header_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_bytes(b"path,error,label_1,probability_1,index_1,not_su")  # killed while writing the header
    with open_writer(path, top_k=1, resume=True) as writer:
        assert writer.existing == []
        writer.write(synthetic_rows()[1])
    assert path.read_text(encoding="utf-8").startswith("path,error,label_1,probability_1,index_1,not_sure,")
    assert same_rows(read_rows(path), synthetic_rows()[1:2])
