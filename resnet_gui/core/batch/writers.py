"""Result files of a batch run, written as the run goes and readable back for ``resume``.

One table, :data:`FORMATS`, lists the formats (the CLI's ``--format`` choices and the tests are
parametrised over it). Every writer is flushed (and fsync'ed) at each batch boundary, so a crash
loses at most the batch in progress, and a JSON array file is a valid JSON document after every
flush: its closing bracket is written at each flush and overwritten by the next rows.

File names that are not valid UTF-8 (possible on Linux) are kept exactly: CSV holds the raw
bytes (read back with ``surrogateescape``), JSON escapes them (``"\\udce9"``), which
``json.loads`` turns back into the same :class:`~pathlib.Path`. CSV text cells are escaped
against formula injection (:mod:`resnet_gui.core.csvcells`) and unescaped on reading.

A crash can tear the last record of a file; resuming drops that record (and truncates the file
there), while a bad record before the last one means the file is not ours and is refused.

Every row says whether its top-1 prediction is *not sure* under the run's threshold
(``not_sure``, decided by :meth:`BatchRow.not_sure`, the rule ``--sort-into`` and the summary use)
and whether the photo looks unlike the model's training photos (``unlike_training``; empty/null
when the model cannot tell). A file written before these fields existed is upgraded when it is
resumed: it is rewritten (atomically) with them, its old rows' ``not_sure`` decided by this run's
threshold and their ``unlike_training`` left unknown. Resuming a file whose ``not_sure`` marks
another threshold's verdicts is refused, so a file never mixes two rules.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from resnet_gui.core.atomic import atomic_path
from resnet_gui.core.batch.rows import BatchRow
from resnet_gui.core.confidence import is_not_sure
from resnet_gui.core.csvcells import csv_bytes, csv_line, unescape_csv_cell
from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.prediction_cells import (
    CSV_FLAG,
    CSV_FLAG_BACK,
    json_bytes,
    prediction_records,
    predictions_from_csv_cells,
    predictions_from_records,
    top_k_csv_cells,
    top_k_csv_header,
)

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "BatchOutputError",
    "OutputFormat",
    "RowWriter",
    "format_for",
    "open_writer",
    "read_rows",
    "record_to_row",
    "row_to_record",
]

_ENCODING = "utf-8"
_PATH_ERRORS = "surrogateescape"  # raw bytes of non-UTF-8 file names survive a round trip


class BatchOutputError(ResNetGuiError):
    """The results file cannot be written, or an existing one cannot be read to resume it."""

    exit_code = 5


def _os_message(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


# --- rows as records ---------------------------------------------------------------------------


#: The two flags every row carries, in this order (the last CSV columns, the last JSON keys).
FLAG_FIELDS = ("not_sure", "unlike_training")


def row_to_record(row: BatchRow, unsure_threshold: float | None = None) -> dict[str, Any]:
    """The JSON form of a row: the same shape as ``resnet-gui classify --json`` results, with
    ``not_sure`` under ``unsure_threshold`` and ``unlike_training`` (both null for a failed file)."""
    if not row.ok:
        return {"path": os.fspath(row.path), "error": row.error, "not_sure": None, "unlike_training": None}
    return {
        "path": os.fspath(row.path),
        "predictions": prediction_records(row.predictions),
        "not_sure": row.not_sure(unsure_threshold),
        "unlike_training": row.unusual,
    }


def _optional_bool(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"'{name}' is not true, false or null")


def record_to_row(record: Any) -> BatchRow:
    """A row back from its JSON form; ``ValueError`` if it is not one. A record of an earlier
    version (no ``not_sure``) gives a row whose ``not_sure`` is left to the run's threshold."""

    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        raise ValueError("a record needs a 'path'")
    if record.get("error") is not None:
        return BatchRow(Path(record["path"]), error=str(record["error"]))
    predictions = predictions_from_records(record["predictions"])
    return BatchRow(
        Path(record["path"]),
        predictions,
        unusual=_optional_bool(record.get("unlike_training"), "unlike_training"),
        recorded_not_sure=_optional_bool(record.get("not_sure"), "not_sure"),
    )


def _has_flags(record: Any) -> bool:
    """Whether a JSON record was written with the flags (not by an earlier version)."""
    return isinstance(record, dict) and all(name in record for name in FLAG_FIELDS)


# --- where the bytes go ------------------------------------------------------------------------


class _Sink:
    """A results file (seekable, fsync'ed at each flush) or a stream such as stdout."""

    def __init__(self, path: Path | None, handle: IO[bytes] | IO[str], *, owns: bool) -> None:
        self.path = path
        self.handle = handle
        self.owns = owns
        # A regular file is rewritable in place (the JSON tail) and worth an fsync; a pipe or a
        # device given as --out (/dev/stdout) is written like a stream.
        self.seekable = self.regular = False
        if path is not None:
            try:
                self.regular = stat.S_ISREG(os.fstat(handle.fileno()).st_mode)
                self.seekable = self.regular and handle.seekable()
            except (OSError, ValueError):
                pass

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else "standard output"

    def _fail(self, error: OSError) -> BatchOutputError:
        return BatchOutputError(f"Cannot write the results to {self.name}: {_os_message(error)}.")

    def write(self, data: bytes) -> None:
        try:
            if isinstance(self.handle, io.TextIOBase):
                buffer = getattr(self.handle, "buffer", None)
                if buffer is not None:
                    self.handle.flush()
                    buffer.write(data)
                else:
                    self.handle.write(data.decode(_ENCODING, "backslashreplace"))
            else:
                self.handle.write(data)
        except OSError as error:
            raise self._fail(error) from None

    def seek(self, offset: int) -> None:
        self.handle.seek(offset)

    def truncate(self) -> None:
        try:
            self.handle.truncate()
        except OSError as error:
            raise self._fail(error) from None

    def flush(self) -> None:
        try:
            self.handle.flush()
            buffer = getattr(self.handle, "buffer", None)
            if buffer is not None:
                buffer.flush()
            if self.regular:
                os.fsync(self.handle.fileno())
        except OSError as error:
            raise self._fail(error) from None

    def close(self) -> None:
        if self.owns:
            try:
                self.handle.close()
            except OSError as error:
                raise self._fail(error) from None


# --- writers -----------------------------------------------------------------------------------


class RowWriter:
    """Writes rows as they come; :meth:`flush` at every batch boundary, :meth:`close` in ``finally``.

    ``existing`` holds the rows that were already in the file when it was opened with ``resume``;
    ``unsure_threshold`` is the run's "not sure" threshold (None: no row is marked not sure).
    """

    format_name = ""

    def __init__(
        self,
        sink: _Sink,
        top_k: int,
        existing: Sequence[BatchRow] = (),
        unsure_threshold: float | None = None,
    ) -> None:
        self._sink = sink
        self.top_k = top_k
        self.unsure_threshold = unsure_threshold
        self.existing = list(existing)
        self.count = 0  # rows written by this writer (not counting ``existing``)
        self.closed = False

    @property
    def name(self) -> str:
        return self._sink.name

    def start(self, resumed: bool) -> None:
        """Write whatever a new file begins with (a header, an opening bracket)."""

    def write(self, row: BatchRow) -> None:
        self._sink.write(self._encode(row))
        self.count += 1

    def _encode(self, row: BatchRow) -> bytes:
        raise NotImplementedError

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        """Finish the file (closing bracket) and close it; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        try:
            self.flush()
        finally:
            self._sink.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _legacy_csv_header(top_k: int) -> list[str]:
    """The header of an earlier version: ``path, error, label_1, probability_1, index_1, …``."""
    return ["path", "error", *top_k_csv_header(top_k)]


def csv_header(top_k: int) -> list[str]:
    """``path, error, label_1, probability_1, index_1, …, not_sure, unlike_training`` for ``top_k``
    classes (the flags last, so the columns of earlier versions keep their places)."""
    return [*_legacy_csv_header(top_k), *FLAG_FIELDS]


class CsvWriter(RowWriter):
    """One row per file; an empty ``error`` column means the file was classified."""

    format_name = "csv"

    def start(self, resumed: bool) -> None:
        if not resumed:
            self._sink.write(self._line(csv_header(self.top_k)))

    @staticmethod
    def _line(fields: list[str]) -> bytes:
        return csv_bytes(csv_line(fields))

    def _encode(self, row: BatchRow) -> bytes:
        fields = [os.fspath(row.path), row.error or "", *top_k_csv_cells(row.predictions, self.top_k)]
        fields += [CSV_FLAG[row.not_sure(self.unsure_threshold)], CSV_FLAG[row.unusual]]
        return self._line(fields)


class JsonLinesWriter(RowWriter):
    """One JSON object per line: appendable, and readable line by line whatever its size."""

    format_name = "jsonl"

    def _encode(self, row: BatchRow) -> bytes:
        return json_bytes(row_to_record(row, self.unsure_threshold)) + b"\n"


class JsonArrayWriter(RowWriter):
    """A JSON array, one record per line, that is a valid document after every flush.

    In a file the closing bracket is written at each flush and the next rows overwrite it; on a
    stream (stdout) it is written once, at close.
    """

    format_name = "json"
    _HEAD = b"[\n"
    _TAIL = b"\n]\n"
    _end = 0  # where the next record goes (before the tail); set by start
    _records = 0

    def start(self, resumed: bool) -> None:
        if resumed:  # open_writer rewrote the file as HEAD + records + TAIL
            self._records = len(self.existing)
            self._end = self._sink.handle.seek(0, os.SEEK_END) - len(self._TAIL)
            return
        self._sink.write(self._HEAD)
        self._end = len(self._HEAD)

    def write(self, row: BatchRow) -> None:
        data = (b",\n" if self._records else b"") + json_bytes(row_to_record(row, self.unsure_threshold))
        if self._sink.seekable:
            self._sink.seek(self._end)
        self._sink.write(data)
        self._end += len(data)
        self._records += 1
        self.count += 1

    def flush(self) -> None:
        if self._sink.seekable:
            self._sink.seek(self._end)
            self._sink.write(self._TAIL)
            self._sink.truncate()
        super().flush()

    def close(self) -> None:
        if not self.closed and not self._sink.seekable:
            self._sink.write(self._TAIL)
        super().close()

    @classmethod
    def document(cls, records: Sequence[dict[str, Any]]) -> bytes:
        """A whole file in this writer's layout, for rewriting a file on resume."""
        body = b",\n".join(json_bytes(record) for record in records)
        return cls._HEAD + body + cls._TAIL if records else cls._HEAD + cls._TAIL


# --- reading back ------------------------------------------------------------------------------


@dataclass
class _Existing:
    """What a results file holds, and how many of its bytes are complete rows."""

    rows: list[BatchRow]
    top_k: int | None = None
    complete_bytes: int | None = None  # a torn last line (crash mid-write) starts here
    legacy: bool = False  # written by an earlier version: rows without the not_sure/unlike_training flags


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise BatchOutputError(f"Cannot read '{path}' to resume it: {_os_message(error)}.") from None


def _not_results(path: Path, detail: str) -> BatchOutputError:
    return BatchOutputError(
        f"Cannot resume from '{path}': it is not a results file of `resnet-gui batch` ({detail})."
    )


_RECORD_START = b'{"path": '  # how every JSON record we write begins (row_to_record's first key)


def _looks_torn(line: bytes) -> bool:
    """Whether ``line`` can be one of our JSON records cut short, rather than someone else's text."""
    line = line.strip()
    return line.startswith(_RECORD_START) or _RECORD_START.startswith(line)


def _byte_lines(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """``(line number, byte offset, line with its newline)`` for each line of ``data``."""
    start = number = 0
    while start < len(data):
        end = data.find(b"\n", start) + 1 or len(data)
        number += 1
        yield number, start, data[start:end]
        start = end


@dataclass
class _CsvRecord:
    fields: list[str]
    line: int  # the line it starts on
    start: int  # byte offset of its first byte
    whole: bool  # ends with a newline outside quotes: not torn by a crash


class _LineSource:
    """The lines of ``data`` for ``csv.reader``, remembering how far the reader has taken them.

    The reader takes no line beyond the end of the record it returns, so ``offset`` is where that
    record ends; a quoted field still open at the end of the data shows as ``exhausted``.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0
        self.lines = 0
        self.exhausted = False

    def __iter__(self) -> _LineSource:
        return self

    def __next__(self) -> str:
        if self.offset >= len(self.data):
            self.exhausted = True
            raise StopIteration
        end = self.data.find(b"\n", self.offset) + 1 or len(self.data)
        line = self.data[self.offset : end]
        self.offset = end
        self.lines += 1
        return line.decode(_ENCODING, _PATH_ERRORS)


def _csv_records(path: Path, data: bytes) -> Iterator[_CsvRecord]:
    """The records of a CSV file, each with where it starts and whether it is complete."""
    source = _LineSource(data)
    reader = csv.reader(source)
    while True:
        start, line = source.offset, source.lines + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            if source.offset < len(data):
                raise _not_results(path, f"line {line}") from None
            yield _CsvRecord([], line, start, whole=False)  # e.g. cut right after a "\r"
            return
        whole = data[source.offset - 1 : source.offset] == b"\n" and not source.exhausted
        yield _CsvRecord(fields, line, start, whole)


def _csv_row(fields: list[str], top_k: int, legacy: bool = False) -> BatchRow:
    """A row back from its CSV fields (text cells unescaped); ``ValueError`` if it is not one.
    ``legacy``: the columns of an earlier version, without the two flags."""

    if len(fields) != 2 + 3 * top_k + (0 if legacy else len(FLAG_FIELDS)):
        raise ValueError("wrong number of fields")
    path, error = Path(unescape_csv_cell(fields[0])), unescape_csv_cell(fields[1])
    flags: tuple[bool | None, bool | None] = (None, None)
    if not legacy:
        try:
            flags = (CSV_FLAG_BACK[fields[-2]], CSV_FLAG_BACK[fields[-1]])
        except KeyError:
            raise ValueError("a flag is not true, false or empty") from None
    if error:
        if flags != (None, None):
            raise ValueError("a failed file has no flags")
        return BatchRow(path, error=error)
    predictions = predictions_from_csv_cells(fields[2:], top_k)
    if not legacy and flags[0] is None:
        raise ValueError("a classified file's not_sure is empty")
    return BatchRow(path, predictions, unusual=flags[1], recorded_not_sure=flags[0])


def _torn_header(data: bytes) -> bool:
    """Whether ``data`` (with no line end) can be the start of one of our headers, new or earlier."""
    data = data.lstrip()
    complete = data.count(b"index_")  # the flags come after the last index_K
    return any(
        csv_bytes(csv_line(csv_header(top_k))).startswith(data)
        for top_k in {max(1, complete), len(data) // 8 + 1}
    )


def _read_csv(path: Path) -> _Existing:
    data = _read_bytes(path)
    if not data.strip():
        return _Existing([], None, 0)
    records = list(_csv_records(path, data))
    end = len(data)
    torn = bool(records) and not records[-1].whole
    if torn:
        end = records.pop().start
    records = [record for record in records if record.fields]  # blank lines
    if not records:
        # Only a torn header: ours if it is the start of one (the file then starts afresh).
        if not _torn_header(data[end:]):
            raise _not_results(path, "unexpected header")
        return _Existing([], None, 0)
    header, body = records[0].fields, records[1:]
    legacy = tuple(header[-2:]) != FLAG_FIELDS
    top_k = (len(header) - 2 - (0 if legacy else len(FLAG_FIELDS))) // 3
    if top_k < 1 or header != (_legacy_csv_header(top_k) if legacy else csv_header(top_k)):
        raise _not_results(path, "unexpected header")
    rows = []
    for record in body:
        try:
            rows.append(_csv_row(record.fields, top_k, legacy))
        except (ValueError, IndexError):
            if torn or record is not body[-1]:
                raise _not_results(path, f"line {record.line}") from None
            end = record.start  # a last row that is not whole (a crash mid-write): dropped
    return _Existing(rows, top_k, end, legacy)


def _read_jsonl(path: Path) -> _Existing:
    data = _read_bytes(path)
    lines = [entry for entry in _byte_lines(data) if entry[2].strip()]
    rows = []
    end = len(data)
    legacy = False
    for number, start, line in lines:
        try:
            if not line.endswith(b"\n"):
                raise ValueError("no newline: the write was cut short")
            record = json.loads(line)
            rows.append(record_to_row(record))
            legacy = legacy or not _has_flags(record)
        except (ValueError, KeyError, TypeError):
            if number != lines[-1][0] or not _looks_torn(line):
                raise _not_results(path, f"line {number}") from None
            end = start  # the last line, torn by a crash: dropped
    return _Existing(rows, None, end, legacy)


def _read_json(path: Path) -> _Existing:
    """A complete array (any layout), or our one-record-per-line layout cut short by a crash."""
    data = _read_bytes(path)
    if not data.strip():
        return _Existing([])
    try:
        document = json.loads(data)
    except ValueError:
        document = None
    if isinstance(document, list):
        try:
            rows = [record_to_row(record) for record in document]
        except (ValueError, KeyError, TypeError):
            raise _not_results(path, "unexpected record") from None
        return _Existing(rows, legacy=not all(_has_flags(record) for record in document))
    lines = list(_byte_lines(data))
    if not lines or lines[0][2].strip() != b"[":
        raise _not_results(path, "not a JSON array")
    # Records are written without a trailing newline and the closing bracket after them, so a
    # crash can leave a record cut short, or a record followed by part of the old "]".
    body = [(number, line.strip().rstrip(b",]")) for number, _, line in lines[1:]]
    body = [(number, text) for number, text in body if text]
    rows = []
    legacy = False
    for number, text in body:
        try:
            record = json.loads(text)
            rows.append(record_to_row(record))
            legacy = legacy or not _has_flags(record)
        except (ValueError, KeyError, TypeError):
            if number != body[-1][0] or not _looks_torn(text):
                raise _not_results(path, f"line {number}") from None
    return _Existing(rows, legacy=legacy)


# --- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputFormat:
    """One results format: its name (``--format``), file suffixes, writer and reader."""

    name: str
    suffixes: tuple[str, ...]
    description: str
    writer: type[RowWriter]
    reader: Callable[[Path], _Existing]


FORMATS: dict[str, OutputFormat] = {
    "csv": OutputFormat("csv", (".csv",), "a spreadsheet table, one row per file", CsvWriter, _read_csv),
    "jsonl": OutputFormat(
        "jsonl", (".jsonl", ".ndjson"), "JSON Lines, one object per file", JsonLinesWriter, _read_jsonl
    ),
    "json": OutputFormat("json", (".json",), "one JSON array", JsonArrayWriter, _read_json),
}
DEFAULT_FORMAT = "csv"


def format_for(path: str | os.PathLike[str] | None, name: str | None = None) -> OutputFormat:
    """The format named, else the one the file's suffix says, else CSV."""
    if name is not None:
        try:
            return FORMATS[name]
        except KeyError:
            raise BatchOutputError(
                f"Unknown results format '{name}'. Choose one of: {', '.join(FORMATS)}."
            ) from None
    if path is not None:
        suffix = Path(path).suffix.lower()
        for output_format in FORMATS.values():
            if suffix in output_format.suffixes:
                return output_format
    return FORMATS[DEFAULT_FORMAT]


def read_rows(
    path: str | os.PathLike[str], output_format: OutputFormat | str | None = None
) -> list[BatchRow]:
    """The rows of a results file (a torn last line from a crash is ignored)."""
    path = Path(path)
    if not isinstance(output_format, OutputFormat):
        output_format = format_for(path, output_format)
    return output_format.reader(path).rows


#: How far a probability read back (written with 6 decimals) may be from the one it was decided on.
_ROUNDING = 1e-6


def _disagrees(row: BatchRow, threshold: float | None) -> bool:
    """Whether a row read back says ``not_sure`` otherwise than ``threshold`` would (beyond the
    rounding of the probability in the file)."""
    top1 = row.top1
    if row.recorded_not_sure is None or top1 is None:
        return False
    if row.recorded_not_sure == is_not_sure(top1.probability, threshold):
        return False
    return threshold is None or abs(top1.probability - threshold) > _ROUNDING


def _check_not_sure(path: Path, rows: Sequence[BatchRow], threshold: float | None) -> None:
    if any(_disagrees(row, threshold) for row in rows):
        shown = "no threshold" if threshold is None else f"{threshold:.6g}"
        raise BatchOutputError(
            f"Cannot resume '{path}': its not_sure column was decided with another --min-confidence "
            f"than this run's ({shown}); resume it with the --min-confidence it was written with, or "
            "write to a new file."
        )


def _rewrite(
    path: Path, output_format: OutputFormat, rows: Sequence[BatchRow], top_k: int, threshold: float | None
) -> None:
    """Write ``rows`` as the whole file in this version's layout, atomically (a crash now leaves the
    old file as it was)."""
    if output_format.writer is JsonArrayWriter:
        data = JsonArrayWriter.document([row_to_record(row, threshold) for row in rows])
    elif output_format.writer is CsvWriter:
        encoder = CsvWriter(_Sink(None, io.BytesIO(), owns=False), top_k, unsure_threshold=threshold)
        data = CsvWriter._line(csv_header(top_k)) + b"".join(encoder._encode(row) for row in rows)
    else:
        data = b"".join(json_bytes(row_to_record(row, threshold)) + b"\n" for row in rows)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def open_writer(
    path: str | os.PathLike[str] | None,
    output_format: OutputFormat | str | None = None,
    *,
    top_k: int,
    resume: bool = False,
    stream: IO[str] | IO[bytes] | None = None,
    unsure_threshold: float | None = None,
) -> RowWriter:
    """A writer for ``path`` (``None``: ``stream``, by default standard output).

    With ``resume`` an existing file is read first (its rows are in ``writer.existing``) and new
    rows are appended after them; a missing file is simply started. A file written with another
    ``top_k`` cannot be resumed in CSV (its columns differ), nor one whose ``not_sure`` column was
    decided with another threshold than ``unsure_threshold``; a file of an earlier version (without
    the flags) is rewritten with them first. Raises :class:`BatchOutputError` when the file cannot
    be created, written or read.
    """
    if not isinstance(output_format, OutputFormat):
        output_format = format_for(path, output_format)
    if path is None:
        if resume:
            raise BatchOutputError("Resuming needs a results file (--out FILE), not standard output.")
        sink = _Sink(None, stream or sys.stdout, owns=False)
        writer = output_format.writer(sink, top_k, unsure_threshold=unsure_threshold)
        writer.start(resumed=False)
        return writer
    path = Path(path)
    existing = _Existing([])
    resumed = False
    if resume and path.exists():
        existing = output_format.reader(path)
        resumed = True
        if existing.top_k is not None and existing.top_k != top_k:
            raise BatchOutputError(
                f"'{path}' was written with --top-k {existing.top_k}: resume it with --top-k "
                f"{existing.top_k}, or write to a new file."
            )
        if existing.top_k is None and output_format.name == "csv":
            resumed = False  # an empty file: start it with a header
        _check_not_sure(path, existing.rows, unsure_threshold)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if resumed and output_format.writer is JsonArrayWriter:
            # Rewrite in our layout (the old file may be pretty-printed, torn, or of an earlier
            # version): the writer then goes on after its last record.
            _rewrite(path, output_format, existing.rows, top_k, unsure_threshold)
            handle = open(path, "r+b")  # noqa: SIM115 - the writer owns and closes it
        elif resumed:
            if existing.legacy:
                _rewrite(path, output_format, existing.rows, top_k, unsure_threshold)  # add the flags
            elif existing.complete_bytes is not None:
                os.truncate(path, existing.complete_bytes)
            handle = open(path, "ab")  # noqa: SIM115
        else:
            handle = open(path, "wb")  # noqa: SIM115
    except OSError as error:
        raise BatchOutputError(f"Cannot write the results to {path}: {_os_message(error)}.") from None
    writer = output_format.writer(_Sink(path, handle, owns=True), top_k, existing.rows, unsure_threshold)
    try:
        writer.start(resumed)
        writer.flush()
    except BaseException:
        with contextlib.suppress(Exception):
            handle.close()
        raise
    return writer
