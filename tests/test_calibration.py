"""Calibration (core.calibration): temperature scaling, ECE, reliability, "not sure", the OOD score;
the metadata readers; and the plumbing that fits it at the end of a fine-tune and reports it in
``evaluate``, on synthetic logits and the tiny ResNet-18. Real photos: test_calibration_real.py.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from test_training import FAST, make_shapes

from resnet_gui.core import calibration as cal
from resnet_gui.core.metadata import (
    metadata_data_root,
    metadata_has_temperature,
    metadata_ood_threshold,
    metadata_temperature,
    metadata_unsure_threshold,
)
from resnet_gui.core.training import (
    TrainConfig,
    evaluate,
    make_split,
    read_bundle_info,
    run_training,
    scan_dataset,
)


def _sampled(n: int, classes: int, seed: int, scale: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from their own softmax: a perfectly calibrated model."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, scale, (n, classes))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = (rng.random(n)[:, None] > np.cumsum(p, 1)).sum(1)
    return logits, np.minimum(labels, classes - 1)


# --- temperature ------------------------------------------------------------------------------


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_fit_recovers_a_known_temperature(true_temperature: float) -> None:
    logits, labels = _sampled(20_000, 5, seed=1)
    # A model whose logits are the calibrated ones times T0 is calibrated again by dividing by T0.
    model = logits * true_temperature
    fitted = cal.fit_temperature(model, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)
    assert cal.fit_temperature(model, labels) == fitted  # deterministic
    assert cal.mean_nll(model, labels, fitted) <= cal.mean_nll(model, labels, 1.0)


def test_fit_stays_within_its_bounds() -> None:
    logits, labels = _sampled(2_000, 3, seed=2)
    assert cal.fit_temperature(logits * 1e4, labels) == pytest.approx(cal.TEMPERATURE_MAX)
    assert cal.fit_temperature(np.zeros((0, 3)), []) == 1.0


def test_scaling_lowers_the_ece_of_an_overconfident_model() -> None:
    logits, labels = _sampled(5_000, 4, seed=3)
    overconfident = logits * 3.0
    fit = cal.calibrate(overconfident, labels)
    assert fit is not None and fit.temperature == pytest.approx(3.0, rel=0.1)
    assert fit.ece_before > 0.1 and fit.ece_after < 0.03
    assert sum(b.count for b in fit.reliability_after) == 5_000
    assert "before scaling" in fit.sentences()[0]


def test_ece_of_a_calibrated_model_is_near_zero_and_by_hand_otherwise() -> None:
    logits, labels = _sampled(20_000, 3, seed=4)
    assert cal.expected_calibration_error(cal.calibrated_probabilities(logits, 1.0), labels) < 0.015
    # By hand: two photos at 0.9 (one right), one at 0.6 (right): bins hold |0.5-0.9| and |1-0.6|.
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6]])
    labels_ = [0, 1, 1]
    assert cal.expected_calibration_error(probabilities, labels_) == pytest.approx((2 * 0.4 + 0.4) / 3)
    table = cal.reliability(probabilities, labels_)
    assert len(table) == cal.ECE_BINS and [b.count for b in table if b.count] == [1, 2]
    (at_06,) = (b for b in table if b.count == 1)
    assert (at_06.lower, at_06.upper) == (pytest.approx(8 / 15), pytest.approx(9 / 15))
    assert at_06.confidence == pytest.approx(0.6) and at_06.accuracy == 1.0
    assert cal.describe_bin(at_06) == (
        "When the model says 53–60 % (on average 60 %), it is right 100 % of the time (1 photo)."
    )


def test_plain_words_never_round_to_always_or_never() -> None:
    nearly = cal.ReliabilityBin(14 / 15, 1.0, 250, 0.999, 0.996)
    assert cal.describe_bin(nearly) == (
        "When the model says 93–100 % (on average 99.9 %), it is right 99.6 % of the time (250 photos)."
    )
    assert "right 100 % of" in cal.describe_bin(cal.ReliabilityBin(14 / 15, 1.0, 2, 0.95, 1.0))
    assert cal.describe_bin(cal.ReliabilityBin(0.0, 0.1, 0, None, None)) == ""


def test_a_confidence_on_a_bin_edge_goes_to_the_lower_bin() -> None:
    edge = 9 / 15
    table = cal.reliability(np.array([[edge, 1 - edge]]), [0])
    assert next(i for i, b in enumerate(table) if b.count) == 8


def test_probabilities_and_scores() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [10.0, 11.0, 9.0]], dtype=np.float32)
    plain = cal.calibrated_probabilities(logits, 1.0)
    assert plain.dtype == np.float32
    assert np.allclose(plain, torch.softmax(torch.from_numpy(logits), 1).numpy(), atol=1e-6)
    soft = cal.calibrated_probabilities(logits, 2.0)
    assert np.allclose(soft.sum(1), 1.0) and (soft.argmax(1) == plain.argmax(1)).all()
    assert soft.max() < plain.max()  # a temperature above 1 softens
    assert np.allclose(cal.rescale_probabilities(plain, 2.0), soft, atol=1e-6)
    energy = cal.ood_scores(logits, 2.0)
    assert np.allclose(energy, -2.0 * torch.logsumexp(torch.from_numpy(logits) / 2.0, 1).numpy())
    assert energy[1] < energy[0]  # strong logits: familiar; weak ones: unusual
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="temperature"):
            cal.calibrated_probabilities(logits, bad)
    with pytest.raises(ValueError, match="labels"):
        cal.expected_calibration_error(plain, [0])


# --- thresholds -------------------------------------------------------------------------------


def test_unsure_threshold_is_the_lowest_confidence_reaching_the_target() -> None:
    # Confidences 0.99 … 0.55; right except the 0.8 and 0.6 ones.
    confidence = np.array([0.99, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55])
    right = np.array([1, 1, 1, 1, 0, 1, 1, 1, 0, 1], dtype=bool)
    probabilities = np.stack([confidence, 1 - confidence], 1)
    labels = np.where(right, 0, 1)
    # At or above 0.85: 4/4; at 0.8: 4/5; ... at 0.65: 7/8 = 87.5 %; at 0.55: 8/10. The threshold
    # is halfway to the next photo down (for all photos: to 1/2, the least a top-1 can be).
    assert cal.unsure_threshold(probabilities, labels, 0.95) == pytest.approx(0.825)
    assert cal.unsure_threshold(probabilities, labels, 0.875) == pytest.approx(0.625)
    assert cal.unsure_threshold(probabilities, labels, 0.8) == pytest.approx(0.525)
    assert cal.unsure_threshold(probabilities, np.ones(10, int), 0.5) is None  # always wrong
    # Scored again in float32, the photos keep their side of the threshold.
    threshold = cal.unsure_threshold(probabilities, labels, 0.95)
    assert ((probabilities.astype(np.float32).max(1) >= threshold) == (confidence >= 0.85)).all()


def test_unsure_threshold_never_splits_equal_confidences() -> None:
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.7, 0.3]])
    # The first photo alone would be 100 %, but a threshold over 0.7 takes both 0.9 photos (50 %).
    assert cal.unsure_threshold(probabilities, [0, 1, 0], 0.9) is None
    assert cal.unsure_threshold(probabilities, [0, 1, 0], 0.6) == pytest.approx(0.6)  # all: 2 of 3
    assert cal.unsure_threshold(probabilities, [0, 0, 1], 0.9) == pytest.approx(0.8)  # 2 of 2


def test_ood_threshold_flags_the_stated_share_of_validation() -> None:
    scores = np.arange(200, dtype=np.float64)
    threshold = cal.ood_threshold(scores, 0.05)
    assert threshold is not None and np.mean(scores > threshold) == pytest.approx(0.05, abs=0.006)
    assert cal.ood_threshold(np.array([np.nan])) is None


def test_calibrate_refuses_too_little_and_keeps_a_perfect_model_as_it_is() -> None:
    assert cal.calibrate(np.array([[1.0, 0.0]]), [0]) is None
    logits = np.array([[3.0, 0.0], [0.0, 2.0], [4.0, 1.0]])
    fit = cal.calibrate(logits, [0, 1, 0])
    assert fit is not None and fit.temperature == 1.0 and "every validation photo right" in fit.note
    metrics = fit.to_metrics()
    assert metrics["temperature"] == 1.0 and metrics["ood_score"] == cal.OOD_SCORE
    assert json.loads(json.dumps(metrics)) == metrics  # JSON-safe: it goes into the bundle


# --- the readers (untrusted input) -----------------------------------------------------------------


def _md(metrics: object) -> dict[str, str]:
    return {"metrics": metrics if isinstance(metrics, str) else json.dumps(metrics)}


def test_metadata_temperature_refuses_bad_values() -> None:
    assert metadata_temperature({}) == 1.0 and not metadata_has_temperature({})
    assert metadata_temperature(_md({"temperature": 1.7})) == 1.7
    assert metadata_temperature({"metrics": {"temperature": 0.5}}) == 0.5  # a decoded sidecar
    assert metadata_has_temperature(_md({"temperature": 1.0}))
    for bad in ("{", '{"temperature": NaN}', '{"temperature": Infinity}', "[1.5]"):
        assert metadata_temperature({"metrics": bad}) == 1.0
    for bad_value in ("1.5", True, None, 0.0, -2.0, 0.01, 25.0, [1.5]):
        assert metadata_temperature(_md({"temperature": bad_value})) == 1.0
        assert not metadata_has_temperature(_md({"temperature": bad_value}))


def test_metadata_ood_threshold_refuses_bad_values() -> None:
    assert metadata_ood_threshold({}) is None
    assert metadata_ood_threshold(_md({"ood_threshold": -7.25})) == -7.25
    assert metadata_ood_threshold(_md({"ood_threshold": -7.25, "ood_score": "energy"})) == -7.25
    assert metadata_ood_threshold(_md({"ood_threshold": -7.25, "ood_score": "max-logit"})) is None
    for bad in ('{"ood_threshold": NaN}', '{"ood_threshold": -Infinity}', json.dumps({"ood_threshold": 1e9})):
        assert metadata_ood_threshold({"metrics": bad}) is None
    assert metadata_ood_threshold(_md({"ood_threshold": "-3"})) is None


def test_metadata_unsure_threshold_still_reads_what_a_fine_tune_stores() -> None:
    assert metadata_unsure_threshold(_md({"unsure_threshold": 0.8123})) == 0.8123
    assert metadata_unsure_threshold(_md({"unsure_threshold": None})) is None  # no threshold found
    assert metadata_unsure_threshold({"metrics": '{"unsure_threshold": NaN}'}) is None


def test_metadata_data_root(tmp_path: Path) -> None:
    assert metadata_data_root({}) is None
    assert metadata_data_root({"training": json.dumps({"data_root": str(tmp_path)})}) == tmp_path
    assert metadata_data_root({"training": {"data_root": str(tmp_path)}}) == tmp_path
    for bad in ("relative/folder", "", 3, None, "/x" * 3000, "/a\x00b"):
        assert metadata_data_root({"training": json.dumps({"data_root": bad})}) is None
    assert metadata_data_root({"training": "{"}) is None


def test_summary_of_stored_metrics_survives_damage() -> None:
    fit = cal.calibrate(*_sampled(500, 3, seed=5))
    assert fit is not None
    lines = cal.calibration_summary(fit.to_metrics())
    assert lines[0].startswith("Calibration error (ECE, 15 bins)") and "When the model says" in lines[1]
    assert cal.calibration_summary({}) == []
    damaged = {"ece_before": "x", "ece_after": 0.1, "temperature": 2, "calibration": {"note": 5}}
    assert cal.calibration_summary(damaged) == []
    damaged = {**fit.to_metrics(), "calibration": {"reliability_after": [{"count": 3, "lower": "a"}]}}
    assert len(cal.calibration_summary(damaged)) == 1


# --- a fine-tune stores it; evaluate reports it ------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tiny_weights_file: Path, tmp_path_factory: pytest.TempPathFactory):
    root = make_shapes(tmp_path_factory.mktemp("calibration") / "shapes", {"circle": 12, "square": 12})
    split = make_split(scan_dataset(root), val_fraction=0.25)
    out = tmp_path_factory.mktemp("bundle") / "shapes.safetensors"
    result = run_training(str(tiny_weights_file), split, out, TrainConfig(mode="head", epochs=3, **FAST))
    return root, split, result


def test_a_fine_tune_stores_its_calibration_and_data_root(tiny_run) -> None:
    root, split, result = tiny_run
    info = read_bundle_info(result.bundle)
    metrics = info.metrics
    assert set(metrics) >= {"temperature", "ece_before", "ece_after", "unsure_threshold", "ood_threshold"}
    assert cal.TEMPERATURE_MIN <= metrics["temperature"] <= cal.TEMPERATURE_MAX
    assert metrics["calibration"]["photos"] == len(split.val) == 6
    assert metrics == {k: v for k, v in result.metrics.items()}  # the result says the same
    assert info.training["data_root"] == os.path.abspath(root)
    assert metadata_data_root(info.metadata) == Path(os.path.abspath(root))
    # The thresholds agree with the stored fit, recomputed from the model's own val logits.
    assert metadata_temperature({"metrics": metrics}) == metrics["temperature"]
    assert metadata_ood_threshold({"metrics": metrics}) == metrics["ood_threshold"]


def test_no_validation_split_says_why_there_is_no_calibration(
    tiny_weights_file: Path, tmp_path: Path
) -> None:
    root = make_shapes(tmp_path / "shapes", {"circle": 4, "square": 4})
    split = make_split(scan_dataset(root), val_fraction=0.0)
    result = run_training(
        str(tiny_weights_file), split, tmp_path / "m", TrainConfig(mode="head", epochs=1, **FAST)
    )
    assert "temperature" not in result.metrics
    assert "no validation split" in result.metrics["calibration"]["note"]
    assert metadata_temperature({"metrics": result.metrics}) == 1.0


def _bundle_with(tiny_weights_file: Path, path: Path, metrics: dict | None) -> Path:
    """The tiny model made to always say "ant" (logits 5, 0, 0) with these stored metrics."""
    from resnet_gui.core.checkpoints import read_weights_file, write_weights_file

    tensors, metadata = read_weights_file(tiny_weights_file)
    tensors["fc.weight"] = torch.zeros_like(tensors["fc.weight"])
    tensors["fc.bias"] = torch.tensor([5.0, 0.0, 0.0])
    if metrics is not None:
        metadata = {**metadata, "metrics": json.dumps(metrics)}
    write_weights_file(path, tensors, metadata)
    return path


def test_evaluate_reports_the_ece_before_and_after_the_bundles_temperature(
    tiny_weights_file: Path, tmp_path: Path
) -> None:
    root = make_shapes(tmp_path / "eval", {"ant": 3, "bee": 2})
    metrics = {"temperature": 2.0, "unsure_threshold": 0.9, "ood_threshold": -3.0}
    bundle = _bundle_with(tiny_weights_file, tmp_path / "calibrated.safetensors", metrics)
    report = evaluate(str(bundle), root, workers=0)
    before = math.exp(5) / (math.exp(5) + 2)  # every photo: "ant", 3 of 5 right
    after = math.exp(2.5) / (math.exp(2.5) + 2)
    c = report.calibration
    assert c is not None and c.temperature == 2.0
    assert c.ece_before == pytest.approx(abs(before - 0.6), rel=1e-5)
    assert c.ece_after == pytest.approx(abs(after - 0.6), rel=1e-5)
    assert report.most_confident_wrong[0].confidence == pytest.approx(after, rel=1e-5)  # scaled
    assert c.unsure_share == 1.0 and c.sure_accuracy is None  # 0.86 < 0.9: all not sure
    energy = -2.0 * math.log(math.exp(2.5) + 2)  # -5.3: familiar, under -3
    assert c.ood_share == 0.0 and energy < -3.0
    data = json.loads(report.to_json())
    assert next(iter(data)) == "format" and data["calibration"]["ece_after"] == pytest.approx(c.ece_after)
    assert len(data["calibration"]["reliability_after"]) == cal.ECE_BINS
    assert "before scaling" in data["calibration"]["sentences"][0]


def test_evaluate_an_old_bundle_without_calibration(tiny_weights_file: Path, tmp_path: Path, capsys) -> None:
    root = make_shapes(tmp_path / "eval", {"ant": 3, "bee": 2})
    bundle = _bundle_with(tiny_weights_file, tmp_path / "old.safetensors", None)
    report = evaluate(str(bundle), root, workers=0)
    c = report.calibration
    assert c is not None and c.temperature is None and c.ece_after is None and c.ood_share is None
    assert c.ece_before == pytest.approx(abs(math.exp(5) / (math.exp(5) + 2) - 0.6), rel=1e-5)
    assert "holds no calibration" in c.sentences()[0]

    from resnet_gui.cli import main

    assert main(["evaluate", str(root), "--model", str(bundle)]) == 0
    out = capsys.readouterr().out
    assert "Confidence:" in out and "holds no calibration" in out and "Reliability" in out
