"""Batch classification of folders: scan, classify in a streaming pipeline, write results, sort.

The pieces, each usable alone (the CLI's ``resnet-gui batch`` and the GUI combine them):

* :func:`scan_folder` finds the image files of a folder;
* :func:`classify_folder` is a generator of :class:`BatchRow` and :class:`BatchProgress`, with
  decoding overlapped with the model and memory that does not grow with the folder;
* :func:`open_writer` and :data:`FORMATS` write CSV / JSON Lines / JSON as the run goes, and
  read an existing file back to resume it;
* :func:`plan_sort` and :func:`apply_sort` copy, link or move files into class folders.

Nothing here imports Qt, and only the pipeline imports torch: it is loaded on first use of
:func:`classify_folder`, so the CLI can read :data:`FORMATS` for its choices cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resnet_gui.core.batch.report import BatchSummary, display_path, format_duration, format_progress
from resnet_gui.core.batch.rows import BatchProgress, BatchRow
from resnet_gui.core.batch.scan import BatchInputError, path_key, scan_folder, scan_inputs
from resnet_gui.core.batch.sort import (
    SORT_MODES,
    UNSURE_FOLDER,
    SortAction,
    SortReport,
    apply_sort,
    class_folder_name,
    format_plan,
    plan_sort,
)
from resnet_gui.core.batch.writers import (
    DEFAULT_FORMAT,
    FORMATS,
    BatchOutputError,
    OutputFormat,
    RowWriter,
    format_for,
    open_writer,
    read_rows,
    record_to_row,
    row_to_record,
)

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "SORT_MODES",
    "UNSURE_FOLDER",
    "BatchInputError",
    "BatchOutputError",
    "BatchProgress",
    "BatchRow",
    "BatchSummary",
    "CancelCheck",
    "OutputFormat",
    "RowWriter",
    "SortAction",
    "SortReport",
    "apply_sort",
    "class_folder_name",
    "classify_folder",
    "default_workers",
    "display_path",
    "format_duration",
    "format_for",
    "format_plan",
    "format_progress",
    "open_writer",
    "path_key",
    "plan_sort",
    "read_rows",
    "record_to_row",
    "row_to_record",
    "scan_folder",
    "scan_inputs",
]

if TYPE_CHECKING:
    from resnet_gui.core.batch.pipeline import CancelCheck, classify_folder, default_workers

_LAZY = {"CancelCheck", "classify_folder", "default_workers"}


def __getattr__(name: str) -> Any:
    """Import the pipeline (and with it torch) only when it is used."""
    if name in _LAZY:
        from resnet_gui.core.batch import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
