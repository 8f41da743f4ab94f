"""Per-frame results of a video, as CSV, JSON Lines or JSON, and read back.

One table, :data:`VIDEO_FORMATS`, lists the formats (the names and suffixes of ``resnet-gui
batch``'s, so ``--out results.csv`` means the same in both commands). A writer writes to a binary
handle as the frames come (the CLI gives it the temporary file of
:func:`~resnet_gui.core.atomic.atomic_path`, so the results appear whole, or not at all) and
:meth:`VideoResultsWriter.finish` ends it, saying whether the run covered the whole video.

* CSV: ``frame, time_s, label_1, probability_1, index_1, …, not_sure, unlike_training``; text
  cells (class names) are escaped against formula injection (:mod:`resnet_gui.core.csvcells`).
* JSON Lines: one object per frame: ``{"frame", "time_s", "predictions": [...], "not_sure",
  "unlike_training"}``.
* JSON: one object: ``{"format": "resnet-gui-video-results/1", "video", "model", "every_s",
  "unsure_threshold", "frames": [...], "complete", "stopped"}`` (``stopped``: why it did not reach
  the end, a sentence, or null).

No torch, no PyAV (the engine's ``Prediction`` is imported only to read a file back).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from resnet_gui.core.csvcells import csv_bytes, csv_line
from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.formats import VIDEO_RESULTS_FORMAT
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
    "VIDEO_CSV_FIRST_COLUMNS",
    "VIDEO_FORMATS",
    "VideoFormat",
    "VideoResultsError",
    "VideoResultsWriter",
    "VideoRun",
    "frame_record",
    "read_video_results",
    "video_format_for",
]

VIDEO_CSV_FIRST_COLUMNS = ("frame", "time_s")


class VideoResultsError(ResNetGuiError):
    """A video results file cannot be read back (not one of ours, or damaged)."""

    exit_code = 5


def frame_record(result: Any, unsure_threshold: float | None) -> dict[str, Any]:
    """The JSON form of a :class:`~resnet_gui.core.video.FrameResult`."""
    return {
        "frame": result.index,
        "time_s": round(result.time_s, 6),
        "predictions": prediction_records(result.predictions),
        "not_sure": result.not_sure(unsure_threshold),
        "unlike_training": result.unusual,
    }


@dataclass
class VideoRun:
    """What a results file says about its run (the JSON document's header)."""

    video: str
    model: str
    every_s: float | None
    unsure_threshold: float | None
    top_k: int


class VideoResultsWriter:
    """Writes frame results to ``handle`` (binary) as they come; :meth:`finish` ends the file."""

    format_name = ""

    def __init__(self, handle: IO[bytes], run: VideoRun) -> None:
        self.handle = handle
        self.run = run
        self.count = 0
        self.start()

    def start(self) -> None:
        """Write what the file begins with."""

    def write(self, result: Any) -> None:
        self.handle.write(self._encode(result))
        self.count += 1

    def _encode(self, result: Any) -> bytes:
        raise NotImplementedError

    def finish(self, stopped: str | None = None) -> None:
        """End the file; ``stopped``: why the run did not reach the end of the video (a sentence)."""
        self.handle.flush()


def video_csv_header(top_k: int) -> list[str]:
    return [*VIDEO_CSV_FIRST_COLUMNS, *top_k_csv_header(top_k), "not_sure", "unlike_training"]


class VideoCsvWriter(VideoResultsWriter):
    format_name = "csv"

    def start(self) -> None:
        self.handle.write(csv_bytes(csv_line(video_csv_header(self.run.top_k))))

    def _encode(self, result: Any) -> bytes:
        fields: list[str | int] = [result.index, f"{result.time_s:.6f}"]
        fields += top_k_csv_cells(result.predictions, self.run.top_k)
        fields += [CSV_FLAG[result.not_sure(self.run.unsure_threshold)], CSV_FLAG[result.unusual]]
        return csv_bytes(csv_line(fields))


class VideoJsonLinesWriter(VideoResultsWriter):
    format_name = "jsonl"

    def _encode(self, result: Any) -> bytes:
        return json_bytes(frame_record(result, self.run.unsure_threshold)) + b"\n"


class VideoJsonWriter(VideoResultsWriter):
    """One JSON object; its ``frames`` array is written record by record, the rest at the end."""

    format_name = "json"

    def start(self) -> None:
        head = {
            "format": VIDEO_RESULTS_FORMAT,
            "video": self.run.video,
            "model": self.run.model,
            "every_s": self.run.every_s,
            "unsure_threshold": self.run.unsure_threshold,
        }
        self.handle.write(json_bytes(head)[:-1] + b', "frames": [\n')

    def _encode(self, result: Any) -> bytes:
        return (b",\n" if self.count else b"") + json_bytes(frame_record(result, self.run.unsure_threshold))

    def finish(self, stopped: str | None = None) -> None:
        tail = {"complete": stopped is None, "stopped": stopped}
        self.handle.write(b"\n], " + json_bytes(tail)[1:] + b"\n")
        super().finish(stopped)


@dataclass(frozen=True)
class VideoFormat:
    name: str
    suffixes: tuple[str, ...]
    description: str
    writer: type[VideoResultsWriter]
    kind: str  # the output kind of core.outputs (how an earlier file of ours is recognised)


VIDEO_FORMATS: dict[str, VideoFormat] = {
    "csv": VideoFormat(
        "csv", (".csv",), "a spreadsheet table, one row per frame", VideoCsvWriter, "video-csv"
    ),
    "jsonl": VideoFormat(
        "jsonl",
        (".jsonl", ".ndjson"),
        "JSON Lines, one object per frame",
        VideoJsonLinesWriter,
        "video-jsonl",
    ),
    "json": VideoFormat(
        "json", (".json",), "one JSON object with the run and its frames", VideoJsonWriter, "video-json"
    ),
}


def video_format_for(path: str | os.PathLike[str] | None, name: str | None = None) -> VideoFormat:
    """The format named, else the one the file's suffix says, else CSV."""
    if name is not None:
        return VIDEO_FORMATS[name]
    if path is not None:
        suffix = Path(path).suffix.lower()
        for video_format in VIDEO_FORMATS.values():
            if suffix in video_format.suffixes:
                return video_format
    return VIDEO_FORMATS["csv"]


# --- reading back ------------------------------------------------------------------------------


def _from_record(record: Any) -> Any:
    from resnet_gui.core.video import FrameResult

    if not isinstance(record, dict):
        raise ValueError("not an object")
    predictions = predictions_from_records(record["predictions"])
    unusual = record.get("unlike_training")
    if unusual is not None and not isinstance(unusual, bool):
        raise ValueError("unlike_training is not true, false or null")
    return FrameResult(int(record["frame"]), float(record["time_s"]), predictions, unusual)


def _read_csv(data: bytes) -> list[Any]:
    from resnet_gui.core.video import FrameResult

    rows = list(csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"))))
    if not rows or tuple(rows[0][:2]) != VIDEO_CSV_FIRST_COLUMNS:
        raise ValueError("unexpected header")
    top_k = (len(rows[0]) - 4) // 3
    if rows[0] != video_csv_header(top_k):
        raise ValueError("unexpected header")
    results = []
    for fields in rows[1:]:
        if not fields:
            continue
        if len(fields) != len(rows[0]):
            raise ValueError("wrong number of fields")
        predictions = predictions_from_csv_cells(fields[2:], top_k)
        results.append(FrameResult(int(fields[0]), float(fields[1]), predictions, CSV_FLAG_BACK[fields[-1]]))
    return results


def _read_jsonl(data: bytes) -> list[Any]:
    return [_from_record(json.loads(line)) for line in data.splitlines() if line.strip()]


def _read_json(data: bytes) -> list[Any]:
    document = json.loads(data)
    if not isinstance(document, dict) or document.get("format") != VIDEO_RESULTS_FORMAT:
        raise ValueError("not a video results document")
    return [_from_record(record) for record in document["frames"]]


_READERS: dict[str, Callable[[bytes], list[Any]]] = {
    "csv": _read_csv,
    "jsonl": _read_jsonl,
    "json": _read_json,
}


def read_video_results(path: str | os.PathLike[str], name: str | None = None) -> list[Any]:
    """The :class:`~resnet_gui.core.video.FrameResult` rows of a results file of
    ``resnet-gui classify-video`` (format from ``name``, else the suffix)."""
    path = Path(path)
    video_format = video_format_for(path, name)
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise VideoResultsError(f"Cannot read '{path}': {reason}.") from None
    try:
        return _READERS[video_format.name](data)
    except (ValueError, KeyError, TypeError, IndexError):
        raise VideoResultsError(
            f"'{path}' is not a {video_format.name} results file of `resnet-gui classify-video`."
        ) from None
