"""How a top-k list of predictions is written in a results file, the same for ``batch`` (a row per
photo) and ``classify-video`` (a row per frame): CSV cells ``label_K, probability_K, index_K`` (text
escaped against formula injection), JSON records ``{"label", "index", "probability"}``, the flags'
CSV words, and one JSON encoding. Reading back is the inverse of each; a bad cell is a ValueError.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from resnet_gui.core.csvcells import unescape_csv_cell

if TYPE_CHECKING:
    from resnet_gui.core.engine import Prediction

__all__ = [
    "CSV_FLAG",
    "CSV_FLAG_BACK",
    "json_bytes",
    "prediction_records",
    "predictions_from_csv_cells",
    "predictions_from_records",
    "top_k_csv_cells",
    "top_k_csv_header",
]

CSV_FLAG = {True: "true", False: "false", None: ""}
CSV_FLAG_BACK = {text: value for value, text in CSV_FLAG.items()}


def json_bytes(record: Any) -> bytes:
    """Compact JSON, UTF-8; lone surrogates (non-UTF-8 names) are written as escapes."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(record).encode("ascii")


def prediction_records(predictions: Iterable[Prediction]) -> list[dict[str, Any]]:
    return [{"label": p.label, "index": p.index, "probability": round(p.probability, 6)} for p in predictions]


def predictions_from_records(records: Iterable[Any]) -> tuple[Prediction, ...]:
    from resnet_gui.core.engine import Prediction

    return tuple(Prediction(str(p["label"]), int(p["index"]), float(p["probability"])) for p in records)


def top_k_csv_header(top_k: int) -> list[str]:
    header: list[str] = []
    for rank in range(1, top_k + 1):
        header += [f"label_{rank}", f"probability_{rank}", f"index_{rank}"]
    return header


def top_k_csv_cells(predictions: Sequence[Prediction], top_k: int) -> list[str]:
    """Three cells per rank (empty past the predictions); the label is escaped by ``csv_line``."""
    cells: list[str] = []
    for rank in range(top_k):
        if rank < len(predictions):
            p = predictions[rank]
            cells += [p.label, f"{p.probability:.6f}", str(p.index)]
        else:
            cells += ["", "", ""]
    return cells


def predictions_from_csv_cells(cells: Sequence[str], top_k: int) -> tuple[Prediction, ...]:
    from resnet_gui.core.engine import Prediction

    predictions = []
    for rank in range(top_k):
        label, probability, index = cells[3 * rank : 3 * rank + 3]
        if label or probability:
            predictions.append(Prediction(unescape_csv_cell(label), int(index), float(probability)))
    return tuple(predictions)
