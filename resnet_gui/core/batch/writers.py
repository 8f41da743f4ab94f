"""Result files of a batch run, written as the run goes and readable back for ``resume``.

One table, :data:`FORMATS`, lists the formats (the CLI's ``--format`` choices and the tests are
parametrised over it). Every writer is flushed (and fsync'ed) at each batch boundary, so a crash
loses at most the batch in progress, and a JSON array file is a valid JSON document after every
flush: its closing bracket is written at each flush and overwritten by the next rows.

File names that are not valid UTF-8 (possible on Linux) are kept exactly: CSV holds the raw
bytes (read back with ``surrogateescape``), JSON escapes them (``"\\udce9"``), which
``json.loads`` turns back into the same :class:`~pathlib.Path`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from resnet_gui.core.atomic import atomic_path
from resnet_gui.core.batch.rows import BatchRow
from resnet_gui.core.errors import ResNetGuiError

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


def row_to_record(row: BatchRow) -> dict[str, Any]:
    """The JSON form of a row: the same shape as ``resnet-gui classify --json`` results."""
    if not row.ok:
        return {"path": os.fspath(row.path), "error": row.error}
    return {
        "path": os.fspath(row.path),
        "predictions": [
            {"label": p.label, "index": p.index, "probability": round(p.probability, 6)}
            for p in row.predictions
        ],
    }


def record_to_row(record: Any) -> BatchRow:
    """A row back from its JSON form; ``ValueError`` if it is not one."""
    from resnet_gui.core.engine import Prediction

    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        raise ValueError("a record needs a 'path'")
    if record.get("error") is not None:
        return BatchRow(Path(record["path"]), error=str(record["error"]))
    predictions = tuple(
        Prediction(str(p["label"]), int(p["index"]), float(p["probability"])) for p in record["predictions"]
    )
    return BatchRow(Path(record["path"]), predictions)


def _json_bytes(record: dict[str, Any]) -> bytes:
    """One compact JSON line, UTF-8; lone surrogates (non-UTF-8 names) are written as escapes."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        return text.encode(_ENCODING)
    except UnicodeEncodeError:
        return json.dumps(record).encode("ascii")


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

    ``existing`` holds the rows that were already in the file when it was opened with ``resume``.
    """

    format_name = ""

    def __init__(self, sink: _Sink, top_k: int, existing: Sequence[BatchRow] = ()) -> None:
        self._sink = sink
        self.top_k = top_k
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


def csv_header(top_k: int) -> list[str]:
    """``path, error, label_1, probability_1, index_1, …`` for ``top_k`` classes."""
    header = ["path", "error"]
    for rank in range(1, top_k + 1):
        header += [f"label_{rank}", f"probability_{rank}", f"index_{rank}"]
    return header


class CsvWriter(RowWriter):
    """One row per file; an empty ``error`` column means the file was classified."""

    format_name = "csv"

    def start(self, resumed: bool) -> None:
        if not resumed:
            self._sink.write(self._line(csv_header(self.top_k)))

    @staticmethod
    def _line(fields: list[str]) -> bytes:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(fields)
        return text.getvalue().encode(_ENCODING, _PATH_ERRORS)

    def _encode(self, row: BatchRow) -> bytes:
        fields = [os.fspath(row.path), row.error or ""]
        for rank in range(self.top_k):
            if rank < len(row.predictions):
                p = row.predictions[rank]
                fields += [p.label, f"{p.probability:.6f}", str(p.index)]
            else:
                fields += ["", "", ""]
        return self._line(fields)


class JsonLinesWriter(RowWriter):
    """One JSON object per line: appendable, and readable line by line whatever its size."""

    format_name = "jsonl"

    def _encode(self, row: BatchRow) -> bytes:
        return _json_bytes(row_to_record(row)) + b"\n"


class JsonArrayWriter(RowWriter):
    """A JSON array, one record per line, that is a valid document after every flush.

    In a file the closing bracket is written at each flush and the next rows overwrite it; on a
    stream (stdout) it is written once, at close.
    """

    format_name = "json"
    _HEAD = b"[\n"
    _TAIL = b"\n]\n"

    def __init__(self, sink: _Sink, top_k: int, existing: Sequence[BatchRow] = ()) -> None:
        super().__init__(sink, top_k, existing)
        self._end = 0  # where the next record goes (before the tail)
        self._records = 0

    def start(self, resumed: bool) -> None:
        if resumed:  # open_writer rewrote the file as HEAD + records + TAIL
            self._records = len(self.existing)
            self._end = self._sink.handle.seek(0, os.SEEK_END) - len(self._TAIL)
            return
        self._sink.write(self._HEAD)
        self._end = len(self._HEAD)

    def write(self, row: BatchRow) -> None:
        data = (b",\n" if self._records else b"") + _json_bytes(row_to_record(row))
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
        body = b",\n".join(_json_bytes(record) for record in records)
        return cls._HEAD + body + cls._TAIL if records else cls._HEAD + cls._TAIL


# --- reading back ------------------------------------------------------------------------------


@dataclass
class _Existing:
    """What a results file holds, and how many of its bytes are complete rows."""

    rows: list[BatchRow]
    top_k: int | None = None
    complete_bytes: int | None = None  # a torn last line (crash mid-write) starts here


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise BatchOutputError(f"Cannot read '{path}' to resume it: {_os_message(error)}.") from None


def _not_results(path: Path, detail: str) -> BatchOutputError:
    return BatchOutputError(
        f"Cannot resume from '{path}': it is not a results file of `resnet-gui batch` ({detail})."
    )


def _complete_lines(data: bytes) -> tuple[bytes, int]:
    """The bytes up to the last newline: a line without one was torn by a crash and is dropped."""
    end = data.rfind(b"\n") + 1
    return data[:end], end


def _read_csv(path: Path) -> _Existing:
    from resnet_gui.core.engine import Prediction

    data, end = _complete_lines(_read_bytes(path))
    if not data.strip():
        return _Existing([], None, 0)
    try:
        records = list(csv.reader(io.StringIO(data.decode(_ENCODING, _PATH_ERRORS), newline="")))
    except csv.Error as error:
        raise _not_results(path, str(error)) from None
    header, body = records[0], records[1:]
    top_k = (len(header) - 2) // 3
    if header != csv_header(top_k):
        raise _not_results(path, "unexpected header")
    rows = []
    for number, fields in enumerate(body, start=2):
        if not fields:
            continue
        try:
            path_text, error = fields[0], fields[1]
            if error:
                rows.append(BatchRow(Path(path_text), error=error))
                continue
            predictions = []
            for rank in range(top_k):
                label, probability, index = fields[2 + 3 * rank : 5 + 3 * rank]
                if label or probability:
                    predictions.append(Prediction(label, int(index), float(probability)))
            rows.append(BatchRow(Path(path_text), tuple(predictions)))
        except (ValueError, IndexError):
            raise _not_results(path, f"line {number}") from None
    return _Existing(rows, top_k, end)


def _parse_records(path: Path, lines: list[bytes], first_line: int = 1) -> list[BatchRow]:
    rows = []
    for number, line in enumerate(lines, start=first_line):
        line = line.strip().rstrip(b",")
        if not line:
            continue
        try:
            rows.append(record_to_row(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            raise _not_results(path, f"line {number}") from None
    return rows


def _read_jsonl(path: Path) -> _Existing:
    data, end = _complete_lines(_read_bytes(path))
    return _Existing(_parse_records(path, data.splitlines()), None, end)


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
            return _Existing([record_to_row(record) for record in document])
        except (ValueError, KeyError, TypeError):
            raise _not_results(path, "unexpected record") from None
    lines = data.splitlines()
    if not lines or lines[0].strip() != b"[":
        raise _not_results(path, "not a JSON array")
    body = [line for line in lines[1:] if line.strip() != b"]"]
    if body and not data.endswith(b"\n"):
        # A crash before the closing bracket: the last record is kept if it is whole (records
        # are written without a trailing newline), dropped if the write was torn.
        try:
            json.loads(body[-1].strip().rstrip(b","))
        except ValueError:
            body = body[:-1]
    return _Existing(_parse_records(path, body, first_line=2))


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


def open_writer(
    path: str | os.PathLike[str] | None,
    output_format: OutputFormat | str | None = None,
    *,
    top_k: int,
    resume: bool = False,
    stream: IO[str] | IO[bytes] | None = None,
) -> RowWriter:
    """A writer for ``path`` (``None``: ``stream``, by default standard output).

    With ``resume`` an existing file is read first (its rows are in ``writer.existing``) and new
    rows are appended after them; a missing file is simply started. A file written with another
    ``top_k`` cannot be resumed in CSV (its columns differ). Raises :class:`BatchOutputError`
    when the file cannot be created, written or read.
    """
    if not isinstance(output_format, OutputFormat):
        output_format = format_for(path, output_format)
    if path is None:
        if resume:
            raise BatchOutputError("Resuming needs a results file (--out FILE), not standard output.")
        writer = output_format.writer(_Sink(None, stream or sys.stdout, owns=False), top_k)
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if resumed and output_format.writer is JsonArrayWriter:
            # Rewrite in our layout (the old file may be pretty-printed or torn); atomic, so a
            # crash now leaves the old file as it was.
            with atomic_path(path) as tmp:
                tmp.write_bytes(JsonArrayWriter.document([row_to_record(r) for r in existing.rows]))
            handle = open(path, "r+b")  # noqa: SIM115 - the writer owns and closes it
        elif resumed:
            if existing.complete_bytes is not None:
                os.truncate(path, existing.complete_bytes)
            handle = open(path, "ab")  # noqa: SIM115
        else:
            handle = open(path, "wb")  # noqa: SIM115
    except OSError as error:
        raise BatchOutputError(f"Cannot write the results to {path}: {_os_message(error)}.") from None
    writer = output_format.writer(_Sink(path, handle, owns=True), top_k, existing.rows)
    try:
        writer.start(resumed)
        writer.flush()
    except BaseException:
        with contextlib.suppress(Exception):
            handle.close()
        raise
    return writer
