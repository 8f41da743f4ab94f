"""The reliability diagram of ``evaluate --out-dir`` (core draws it, the report writes it with the
rest, the output guard knows it as ours) and the one sentence where there is no calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_training import _constant_bundle, make_shapes

from resnet_gui.cli import main
from resnet_gui.core.calibration import (
    NO_CALIBRATION,
    ReliabilityBin,
    missing_calibration_sentence,
    reliability,
    reliability_figure,
)
from resnet_gui.core.outputs import OUTPUT_KINDS, PNG_SOFTWARE

NAME = "reliability_diagram.png"


def _line(figure, label: str):
    return next(line for line in figure.axes[0].lines if line.get_label() == label)


def test_the_figure_draws_each_bin_with_photos_at_its_confidence_and_accuracy() -> None:
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.5, 1.0, 200)
    probabilities = np.stack([confidence, 1 - confidence], axis=1)
    labels = (rng.random(200) > confidence).astype(int)  # right as often as it says: calibrated
    before = reliability(probabilities, labels)
    after = reliability(probabilities**0.5 / (probabilities**0.5).sum(axis=1, keepdims=True), labels)
    figure = reliability_figure(before, after, ece_before=0.031, ece_after=0.052, temperature=2.0)
    for label, table in (("before scaling", before), ("after scaling (T = 2.00)", after)):
        line = _line(figure, label)
        shown = [b for b in table if b.count]
        np.testing.assert_allclose(line.get_xdata(), [b.confidence for b in shown])
        np.testing.assert_allclose(line.get_ydata(), [b.accuracy for b in shown])
    diagonal = _line(figure, "perfectly calibrated")
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata()) == [0, 1]
    assert figure.axes[0].get_title() == "ECE 3.1 % before, 5.2 % after scaling"
    # The photo counts under it: one bar per bin with photos, per series, of that many photos.
    heights = sorted(round(bar.get_height()) for bar in figure.axes[1].patches)
    assert heights == sorted(b.count for b in (*before, *after) if b.count)


def test_the_figure_without_scaling_or_photos_says_so() -> None:
    only_before = reliability_figure([ReliabilityBin(0.9, 1.0, 4, 0.95, 0.75)])
    assert [line.get_label() for line in only_before.axes[0].lines] == [
        "perfectly calibrated",
        "before scaling",
    ]
    empty = reliability_figure(None)
    assert [text.get_text() for text in empty.axes[0].texts] == ["no photos to measure"]


def test_a_bundle_s_note_is_the_sentence_when_it_was_not_calibrated() -> None:
    note = "There is no validation split, so the confidence could not be calibrated."
    assert missing_calibration_sentence({"metrics": json.dumps({"calibration": {"note": note}})}) == note
    assert (
        missing_calibration_sentence({"metrics": {"calibration": {"note": "  two\nlines "}}}) == "two lines"
    )
    for metadata in (
        {},
        {"metrics": "{not json"},
        {"metrics": "[1]"},
        {"metrics": {"calibration": {"note": 3}}},
    ):
        assert missing_calibration_sentence(metadata) == NO_CALIBRATION
    long = missing_calibration_sentence({"metrics": {"calibration": {"note": "x" * 5000}}})
    assert len(long) == 400 and long.endswith("…")


@pytest.fixture()
def evaluated(tiny_weights_file: Path, tmp_path: Path) -> list[str]:
    folder = make_shapes(tmp_path / "eval", {"ant": 3, "bee": 2})
    bundle = _constant_bundle(tiny_weights_file, tmp_path / "always-ant.safetensors", "ant")
    return ["evaluate", str(folder), "--model", str(bundle), "--out-dir", str(tmp_path / "report")]


def test_evaluate_writes_the_diagram_and_replaces_its_own(
    evaluated: list[str], tmp_path: Path, capsys
) -> None:
    assert main(evaluated) == 0
    path = tmp_path / "report" / NAME
    assert NAME in capsys.readouterr().out  # listed under "Wrote:"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.info.get("Software") == PNG_SOFTWARE
        assert image.size[0] > 300 and len(image.convert("RGB").getcolors(1 << 20) or []) > 20
    assert OUTPUT_KINDS["report-reliability-png"].recognise(path)
    # An older diagram of ours (tagged) is replaced on the next run.
    Image.new("RGB", (8, 8)).save(path, pnginfo=_tag())
    assert main(evaluated) == 0
    with Image.open(path) as image:
        assert image.size[0] > 300


def _tag():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", PNG_SOFTWARE)
    return info


@pytest.mark.parametrize("beside_our_report", [False, True])
def test_evaluate_never_overwrites_a_user_png_of_that_name(
    evaluated: list[str], tmp_path: Path, capsys, beside_our_report: bool
) -> None:
    out_dir = tmp_path / "report"
    if beside_our_report:
        assert main(evaluated) == 0  # our report.json is there: still not a licence for this name
    out_dir.mkdir(exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(out_dir / NAME)
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    capsys.readouterr()
    assert main(evaluated) == 5
    err = capsys.readouterr().err
    assert NAME in err and "reliability diagram" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before  # nothing written at all
