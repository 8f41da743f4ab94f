"""The output guard recognises our JSON files (a bundle's sidecar, an evaluate report) from their
start, so an existing file is told apart without reading a huge one whole."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resnet_gui.core.errors import OutputExistsError
from resnet_gui.core.formats import BUNDLE_FORMAT, REPORT_FORMAT
from resnet_gui.core.outputs import JSON_SNIFF_BYTES, OutputTarget, check_outputs, leading_members

BIG = JSON_SNIFF_BYTES * 3  # well past what recognition may read


class _CountingReader:
    def __init__(self, handle: Any, reads: list[int]) -> None:
        self._handle = handle
        self._reads = reads

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._reads.append(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


@pytest.fixture()
def bytes_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of every read the guard makes through ``open_user_file`` during the test."""
    from resnet_gui.core import userfiles

    real = userfiles.open_user_file
    reads: list[int] = []

    @contextlib.contextmanager
    def counting(path: Any, **kwargs: Any) -> Iterator[_CountingReader]:
        with real(path, **kwargs) as handle:
            yield _CountingReader(handle, reads)

    monkeypatch.setattr(userfiles, "open_user_file", counting)
    return reads


def _document(first: dict[str, Any], padding: int, last: dict[str, Any] | None = None) -> bytes:
    """A JSON object: ``first``'s members, then a ``padding``-character string, then ``last``'s."""
    members = {**first, "padding": "x" * padding, **(last or {})}
    return json.dumps(members, indent=2).encode("ascii")


@pytest.mark.parametrize(
    ("data", "members"),
    [
        (b'{\n  "format": "tag",\n  "split": {"train": [1, 2', {"format": "tag"}),  # cut in a value
        (b'{"format": "tag", "count": 12', {"format": "tag"}),  # a cut number is not trusted
        (b'{"format": "tag", "count": 12}', {"format": "tag", "count": 12}),
        (b' { "a" : {"b": [1]} , "c": null }', {"a": {"b": [1]}, "c": None}),
        ('{"a": "\u00e9t\u00e9"}'.encode("utf-16"), {"a": "\u00e9t\u00e9"}),  # as json.loads reads bytes
        (b"\xef\xbb\xbf" + b'{"a": 1}', {"a": 1}),
        (b"[1, 2]", {}),
        (b"", {}),
        (b"{}", {}),
        (b'{"a" 1}', {}),
        (b'{"a": 1 "b": 2}', {}),
        (b"\x89PNG\r\n\x1a\n", {}),
    ],
)
def test_leading_members_reads_only_whole_members(data: bytes, members: dict[str, Any]) -> None:
    assert leading_members(data) == members


def test_a_huge_sidecar_is_recognised_from_its_first_bytes(tmp_path: Path, bytes_read: list[int]) -> None:
    """Tag first, then more than the window: ours, although the rest is never read (nor even valid)."""
    sidecar = tmp_path / "model.json"
    sidecar.write_bytes(_document({"format": BUNDLE_FORMAT}, BIG)[:-10] + b"\x00 not JSON")
    check_outputs([OutputTarget(sidecar, "bundle-sidecar")])  # recognised: no refusal
    assert bytes_read and sum(bytes_read) <= JSON_SNIFF_BYTES < sidecar.stat().st_size


@pytest.mark.parametrize("kind", ["bundle-sidecar", "report-json"])
def test_a_huge_foreign_json_is_refused_without_being_read_whole(
    tmp_path: Path, bytes_read: list[int], kind: str
) -> None:
    """A valid JSON document with our tag (or a report's keys) only past the window is not ours."""
    foreign = tmp_path / "data.json"
    late = {"format": BUNDLE_FORMAT if kind == "bundle-sidecar" else REPORT_FORMAT}
    late |= {"accuracy": 1.0, "confusion_matrix": [[1]], "per_class": []}
    foreign.write_bytes(_document({"name": "someone's data"}, BIG, late))
    assert json.loads(foreign.read_bytes())["format"] == late["format"]  # a whole read would accept it
    bytes_read.clear()
    with pytest.raises(OutputExistsError, match="add --overwrite"):
        check_outputs([OutputTarget(foreign, kind)])
    assert max(bytes_read) <= JSON_SNIFF_BYTES and sum(bytes_read) < 2 * JSON_SNIFF_BYTES
    check_outputs([OutputTarget(foreign, kind)], overwrite=True)  # the user may still say so


def _report() -> Any:
    import numpy as np

    from resnet_gui.core.training.evaluate import EvaluationReport, compute_metrics

    classes = ("ant", "bee")
    confusion, per_class, accuracy = compute_metrics([0, 1], [0, 1], classes, columns=2)
    return EvaluationReport(
        model="tiny",
        folder=Path("/photos"),
        classes=classes,
        columns=classes,
        confusion=np.asarray(confusion),
        per_class=per_class,
        accuracy=accuracy,
        count=2,
    )


def test_a_report_is_written_tag_first_and_recognised_at_any_size(
    tmp_path: Path, bytes_read: list[int]
) -> None:
    written = _report().write(tmp_path / "report")["report"]
    assert written.read_text(encoding="ascii").startswith(f'{{\n  "format": "{REPORT_FORMAT}",')
    check_outputs([OutputTarget(written, "report-json")])
    # Larger than the window (e.g. a 1000-class confusion matrix): still ours, from its start.
    document = {"format": REPORT_FORMAT, **{k: v for k, v in _report().to_dict().items() if k != "format"}}
    big = tmp_path / "big" / "report.json"
    big.parent.mkdir()
    big.write_bytes(_document(document, BIG))
    big.with_name("confusion_matrix.csv").write_text("true \\ predicted,ant,bee\n")  # told by its report
    bytes_read.clear()
    check_outputs(
        [OutputTarget(big, "report-json"), OutputTarget(big.with_name("confusion_matrix.csv"), "report-csv")]
    )
    assert max(bytes_read) <= JSON_SNIFF_BYTES


def test_a_report_written_before_the_tag_is_still_recognised_by_its_keys(tmp_path: Path) -> None:
    legacy = {k: v for k, v in _report().to_dict().items() if k != "format"}
    old = tmp_path / "report.json"
    old.write_text(json.dumps(legacy, indent=2) + "\n")
    check_outputs([OutputTarget(old, "report-json")])
    (tmp_path / "confusion_matrix.csv").write_text("true \\ predicted,ant,bee\n")
    check_outputs([OutputTarget(tmp_path / "confusion_matrix.csv", "report-csv")])
    del legacy["confusion_matrix"]
    old.write_text(json.dumps(legacy, indent=2) + "\n")
    with pytest.raises(OutputExistsError, match="is not a report"):
        check_outputs([OutputTarget(old, "report-json")])


def test_a_bundle_sidecar_is_written_tag_first(tmp_path: Path) -> None:
    import torch

    from resnet_gui.core.preprocessing import Preprocessing
    from resnet_gui.core.training.bundle import sidecar_path, write_bundle

    bundle = tmp_path / "model.safetensors"
    write_bundle(
        bundle,
        {"weight": torch.zeros(2)},
        architecture="resnet18",
        name="tiny",
        categories=("ant", "bee"),
        preprocessing=Preprocessing(),
        training={},
        split={"train": ["x" * 100] * 20_000},  # a large split: the sidecar outgrows the window
        metrics={},
        dataset_fingerprint="0" * 16,
    )
    sidecar = sidecar_path(bundle)
    assert sidecar.stat().st_size > JSON_SNIFF_BYTES
    assert sidecar.read_text(encoding="utf-8").startswith(f'{{\n  "format": "{BUNDLE_FORMAT}",')
    check_outputs([OutputTarget(sidecar, "bundle-sidecar")])
