"""The two flags of every prediction: *not sure* (below a threshold: the user's --min-confidence, else
the bundle's) and *unlike the training photos* (the bundle's out-of-distribution threshold).

One rule decides "not sure" everywhere: ``classify``, every ``batch`` results format, the summary,
``--sort-into``'s ``_unsure/``. The bundle here is the tiny model with thresholds put between its own
scores on the test photos, so some photos fall on each side; every row is checked against the
probabilities and energy scores computed here, independently of the code under test.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnet_gui.cli import main
from resnet_gui.core.batch import (
    FORMATS,
    UNSURE_FOLDER,
    BatchOutputError,
    BatchRow,
    BatchSummary,
    classify_folder,
    open_writer,
    plan_sort,
    read_rows,
)
from resnet_gui.core.calibration import calibrated_probabilities, ood_scores
from resnet_gui.core.confidence import NOT_SURE_TEXT, UNLIKE_TRAINING_TEXT, is_not_sure, unsure_threshold_for
from resnet_gui.core.engine import Classifier, Prediction
from resnet_gui.core.models import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PHOTOS = 10
TEMPERATURE = 1.5


@dataclass(frozen=True)
class FlaggedBundle:
    """A bundle with known thresholds, the photos it was fitted on, and what each photo should get."""

    path: Path
    folder: Path
    unsure_threshold: float
    ood_threshold: float
    top1: dict[str, float]  # photo name -> calibrated top-1 probability
    unusual: dict[str, bool]  # photo name -> energy score above the threshold

    def not_sure(self, threshold: float | None = None) -> dict[str, bool]:
        threshold = self.unsure_threshold if threshold is None else threshold
        return {name: p < threshold for name, p in self.top1.items()}


def make_photos(folder: Path, count: int = PHOTOS) -> list[Path]:
    """Photos of different colours and patterns (the tiny random model's scores differ on them)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for index in range(count):
        array = np.zeros((70 + 3 * index, 90 - 2 * index, 3), dtype=np.uint8)
        array[:] = rng.integers(0, 255, 3)
        array[:: 2 + index % 3] = rng.integers(0, 255, 3)
        array += rng.integers(0, 40 * (index % 4) + 1, array.shape, dtype=np.uint8)
        path = folder / f"photo{index:02d}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


def _between(values: list[float]) -> float:
    """A threshold with half the values on each side, far (for float32) from every value."""
    ordered = sorted(values)
    low, high = ordered[len(ordered) // 2 - 1], ordered[len(ordered) // 2]
    assert high - low > 1e-4, f"the test photos score too alike: {ordered}"
    return float((low + high) / 2)


def make_flagged_bundle(tiny_weights_file: Path, root: Path) -> FlaggedBundle:
    """The tiny model saved again with a temperature, a not-sure and an OOD threshold in its metrics."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = root / "photos"
    paths = make_photos(folder)
    plain = Classifier(load_model(weights_file=tiny_weights_file), device="cpu")
    batch = plain.preprocessing.prepare_batch([plain.load(path) for path in paths])
    logits = plain.logits(batch)
    top1 = calibrated_probabilities(logits, TEMPERATURE).max(axis=1).astype(float)
    energy = ood_scores(logits, TEMPERATURE)
    unsure, ood = _between(list(top1)), _between(list(energy))
    with safe_open(str(tiny_weights_file), "pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
    metadata["name"] = "tiny-flagged"
    metadata["metrics"] = json.dumps(
        {"temperature": TEMPERATURE, "unsure_threshold": unsure, "ood_threshold": ood, "ood_score": "energy"}
    )
    path = root / "tiny-flagged.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    names = [p.name for p in paths]
    return FlaggedBundle(
        path,
        folder,
        unsure,
        ood,
        dict(zip(names, top1.tolist(), strict=True)),
        {name: bool(score > ood) for name, score in zip(names, energy, strict=True)},
    )


@pytest.fixture(scope="module")
def bundle(tiny_weights_file: Path, tmp_path_factory: pytest.TempPathFactory) -> FlaggedBundle:
    made = make_flagged_bundle(tiny_weights_file, tmp_path_factory.mktemp("flagged"))
    # The point of the fixture: both answers occur, for both flags.
    assert set(made.not_sure().values()) == {True, False}
    assert set(made.unusual.values()) == {True, False}
    return made


@pytest.fixture()
def photos(bundle: FlaggedBundle, tmp_path: Path) -> Path:
    """A copy of the bundle's photos, with a file that cannot be read (it gets no flags)."""
    folder = tmp_path / "photos"
    shutil.copytree(bundle.folder, folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")
    return folder


def run_batch(*args: str | Path, model: Path) -> int:
    return main(["batch", *map(str, args), "--weights", str(model), "--batch-size", "4"])


def csv_flags(path: Path) -> dict[str, tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {Path(r["path"]).name: (r["not_sure"], r["unlike_training"]) for r in csv.DictReader(handle)}


def json_records(path: Path, name: str) -> dict[str, dict]:
    text = path.read_text(encoding="utf-8")
    records = json.loads(text) if name == "json" else [json.loads(line) for line in text.splitlines()]
    return {Path(r["path"]).name: r for r in records}


# --- the rule --------------------------------------------------------------------------------------


def test_the_rule_is_strictly_below_and_needs_a_threshold() -> None:
    assert is_not_sure(0.4999, 0.5) and not is_not_sure(0.5, 0.5) and not is_not_sure(0.9, 0.5)
    assert not is_not_sure(0.01, None) and not is_not_sure(None, 0.5)
    failed = BatchRow(Path("x.jpg"), error="broken")
    assert failed.not_sure(0.5) is None
    row = BatchRow(Path("a.jpg"), (Prediction("ant", 0, 0.3),))
    assert row.not_sure(0.31) is True and row.not_sure(0.3) is False and row.not_sure(None) is False


def test_the_threshold_is_the_users_else_the_bundles(bundle: FlaggedBundle, tiny_weights_file: Path) -> None:
    flagged = Classifier(load_model(weights_file=bundle.path), device="cpu")
    plain = Classifier(load_model(weights_file=tiny_weights_file), device="cpu")
    assert flagged.unsure_threshold == pytest.approx(bundle.unsure_threshold)
    assert unsure_threshold_for(flagged, None) == pytest.approx(bundle.unsure_threshold)
    assert unsure_threshold_for(flagged, 0.8) == 0.8 and unsure_threshold_for(flagged, 0.0) == 0.0
    assert unsure_threshold_for(plain, None) is None and unsure_threshold_for(plain, 0.4) == 0.4
    with pytest.raises(ValueError, match="between 0 and 1"):
        unsure_threshold_for(plain, 1.5)


def test_pipeline_rows_carry_both_flags_photo_by_photo(bundle: FlaggedBundle, photos: Path) -> None:
    classifier = Classifier(load_model(weights_file=bundle.path), device="cpu")
    rows = [
        item
        for item in classify_folder(classifier, photos, top_k=2, batch_size=3)
        if isinstance(item, BatchRow)
    ]
    by_name = {row.path.name: row for row in rows}
    assert by_name.pop("broken.jpg").unusual is None
    assert by_name.keys() == bundle.top1.keys()
    expected_not_sure = bundle.not_sure()
    for name, row in by_name.items():
        assert row.top1.probability == pytest.approx(bundle.top1[name], abs=1e-5)
        assert row.not_sure(bundle.unsure_threshold) is expected_not_sure[name], name
        assert row.unusual is bundle.unusual[name], name


def test_a_model_without_thresholds_flags_nothing(tiny_classifier: Classifier, photos: Path) -> None:
    rows = [item for item in classify_folder(tiny_classifier, photos, top_k=1) if isinstance(item, BatchRow)]
    assert all(row.unusual is None for row in rows)
    assert all(row.not_sure(None) is (None if not row.ok else False) for row in rows)


# --- batch: every format, the summary, the sort ---------------------------------------------------


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_holds_both_flags_per_row(
    name: str, bundle: FlaggedBundle, photos: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / f"results.{name}"
    assert run_batch(photos, "--out", out, "--top-k", "2", model=bundle.path) == 0
    summary = capsys.readouterr().out
    expected_not_sure = bundle.not_sure()
    if name == "csv":
        flags = csv_flags(out)
        assert flags.pop("broken.jpg") == ("", "")
        assert flags == {
            photo: (str(expected_not_sure[photo]).lower(), str(bundle.unusual[photo]).lower())
            for photo in bundle.top1
        }
        header = out.read_text(encoding="utf-8").splitlines()[0]
        assert header.startswith("path,error,label_1,probability_1,index_1,label_2,")
        assert header.endswith(",not_sure,unlike_training")
    else:
        records = json_records(out, name)
        broken = records.pop("broken.jpg")
        assert broken["not_sure"] is None and broken["unlike_training"] is None
        assert {photo: (r["not_sure"], r["unlike_training"]) for photo, r in records.items()} == {
            photo: (expected_not_sure[photo], bundle.unusual[photo]) for photo in bundle.top1
        }
    # Read back by our own reader: the same flags, exactly.
    rows = {row.path.name: row for row in read_rows(out)}
    assert {photo: rows[photo].not_sure(None) for photo in bundle.top1} == expected_not_sure
    assert {photo: rows[photo].unusual for photo in bundle.top1} == bundle.unusual
    # The summary counts the same rows.
    unsure = sum(expected_not_sure.values())
    unusual = sum(bundle.unusual.values())
    assert f"not sure (< {bundle.unsure_threshold:.0%}) {unsure}" in summary
    assert f"{unusual} files look unlike the photos the model was trained on." in summary


def test_min_confidence_sets_the_column_without_sort_into(
    bundle: FlaggedBundle, photos: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "r.csv"
    top = sorted(bundle.top1.values())
    chosen = (top[1] + top[2]) / 2  # another threshold than the bundle's: 2 photos below it
    assert run_batch(photos, "--out", out, "--min-confidence", f"{chosen:.9f}", model=bundle.path) == 0
    flags = csv_flags(out)
    assert {photo: flags[photo][0] == "true" for photo in bundle.top1} == bundle.not_sure(chosen)
    assert sum(value == "true" for value, _ in flags.values()) == 2
    assert "not sure below" in capsys.readouterr().err


def test_sort_into_unsure_is_exactly_the_not_sure_column(
    bundle: FlaggedBundle, photos: Path, tmp_path: Path, capsys
) -> None:
    out, dest = tmp_path / "r.csv", tmp_path / "sorted"
    assert run_batch(photos, "--out", out, "--sort-into", dest, model=bundle.path) == 0  # the bundle's rule
    flags = csv_flags(out)
    unsure_files = {p.name for p in (dest / UNSURE_FOLDER).iterdir()}
    assert unsure_files == {photo for photo, (not_sure, _) in flags.items() if not_sure == "true"}
    assert unsure_files == {photo for photo, flag in bundle.not_sure().items() if flag}
    sorted_elsewhere = {
        p.name for folder in dest.iterdir() if folder.name != UNSURE_FOLDER for p in folder.iterdir()
    }
    assert sorted_elsewhere == {photo for photo, (not_sure, _) in flags.items() if not_sure == "false"}


def test_core_sort_and_summary_use_the_rows_rule(tmp_path: Path) -> None:
    """Rows exactly at, just below and above a threshold: the writer, the summary and the plan agree."""
    threshold = 0.6
    rows = []
    for index, p in enumerate([0.6, 0.599999, 0.7, 0.2]):
        path = tmp_path / f"p{index}.jpg"
        path.write_bytes(b"x")
        rows.append(BatchRow(path, (Prediction("ant", 0, p), Prediction("bee", 1, 1 - p))))
    out = tmp_path / "r.jsonl"
    with open_writer(out, top_k=2, unsure_threshold=threshold) as writer:
        for row in rows:
            writer.write(row)
    column = [json.loads(line)["not_sure"] for line in out.read_text().splitlines()]
    assert column == [False, True, False, True]
    plan = plan_sort(rows, tmp_path / "sorted", "copy", threshold)
    assert [action.destination.parent.name == UNSURE_FOLDER for action in plan] == column
    summary = BatchSummary(total=4, min_confidence=threshold)
    for row in rows:
        summary.add(row)
    assert summary.unsure == sum(column) and sum(summary.per_class.values()) == 4 - sum(column)


# --- resume ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FORMATS))
def test_resume_reads_its_own_flags_back_and_keeps_one_rule(
    name: str, bundle: FlaggedBundle, photos: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / f"r.{name}"
    later = tmp_path / "later"
    later.mkdir()
    for photo in sorted(photos.glob("photo0[5-9].png")):
        photo.rename(later / photo.name)
    assert run_batch(photos, "--out", out, model=bundle.path) == 0
    first = {row.path.name: (row.not_sure(None), row.unusual) for row in read_rows(out)}
    for photo in later.iterdir():
        photo.rename(photos / photo.name)
    capsys.readouterr()
    assert run_batch(photos, "--out", out, "--resume", model=bundle.path) == 0
    assert "Skipped 6 files already" in capsys.readouterr().out
    rows = read_rows(out)
    assert len(rows) == PHOTOS + 1
    final = {row.path.name: (row.not_sure(None), row.unusual) for row in rows}
    assert {photo: final[photo] for photo in first} == first  # the old rows, exactly as written
    expected = bundle.not_sure()
    assert {photo: final[photo] for photo in bundle.top1} == {
        photo: (expected[photo], bundle.unusual[photo]) for photo in bundle.top1
    }
    # Another threshold would contradict the rows already written: refused in one sentence.
    before = out.read_bytes()
    code = run_batch(photos, "--out", out, "--resume", "--min-confidence", "0.99", model=bundle.path)
    err = capsys.readouterr().err
    assert code == BatchOutputError.exit_code
    assert "Cannot resume" in err and "--min-confidence" in err and err.count(". ") == 0
    assert out.read_bytes() == before


LEGACY_CSV = "path,error,label_1,probability_1,index_1\n{path},,ant,0.400000,0\n{broken},cannot read it,,,\n"


@pytest.mark.parametrize("name", list(FORMATS))
def test_resume_upgrades_a_file_of_the_previous_version(
    name: str, bundle: FlaggedBundle, photos: Path, tmp_path: Path, capsys
) -> None:
    """The old layout (no flag columns) is rewritten with them: old rows get not_sure by this run's
    threshold and an unknown unlike_training; the new rows get both."""
    old_photo, broken = photos / "photo00.png", photos / "broken.jpg"
    out = tmp_path / f"old.{name}"
    if name == "csv":
        out.write_text(LEGACY_CSV.format(path=old_photo, broken=broken))
    else:
        records = [
            {"path": str(old_photo), "predictions": [{"label": "ant", "index": 0, "probability": 0.4}]},
            {"path": str(broken), "error": "cannot read it"},
        ]
        lines = [json.dumps(record) for record in records]
        out.write_text("[\n" + ",\n".join(lines) + "\n]\n" if name == "json" else "\n".join(lines) + "\n")
    args = ["--out", out, "--resume", "--top-k", "1", "--min-confidence", "0.5"]
    assert run_batch(photos, *args, model=bundle.path) == 0
    assert "Skipped 2 files already" in capsys.readouterr().out
    expected = bundle.not_sure(0.5)
    if name == "csv":
        flags = csv_flags(out)
        assert flags.pop(old_photo.name) == ("true", "")  # 0.4 < 0.5; not known for an old row
        assert flags.pop(broken.name) == ("", "")
        assert flags == {
            photo: (str(expected[photo]).lower(), str(bundle.unusual[photo]).lower())
            for photo in bundle.top1
            if photo != old_photo.name
        }
    else:
        records = json_records(out, name)
        old = records.pop(old_photo.name)
        assert (old["not_sure"], old["unlike_training"]) == (True, None)
        assert records.pop(broken.name)["not_sure"] is None
        assert {photo: r["not_sure"] for photo, r in records.items()} == {
            photo: expected[photo] for photo in records
        }
    assert len(read_rows(out)) == PHOTOS + 1  # the upgraded file reads back whole


def test_a_results_file_with_a_bad_flag_is_not_ours(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    out.write_text(
        "path,error,label_1,probability_1,index_1,not_sure,unlike_training\n/a.jpg,,ant,0.5,0,maybe,\n/b.jpg,,ant,0.5,0,false,\n"
    )
    with pytest.raises(BatchOutputError, match="not a results file"):
        open_writer(out, top_k=1, resume=True)


# --- classify -------------------------------------------------------------------------------------


def test_classify_json_says_not_sure_and_unlike_training(bundle: FlaggedBundle, photos: Path, capsys) -> None:
    files = sorted(photos.glob("*.png"))
    assert main(["classify", *map(str, files), "--weights", str(bundle.path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["unsure_threshold"] == pytest.approx(bundle.unsure_threshold)
    results = {Path(r["path"]).name: r for r in document["results"]}
    expected = bundle.not_sure()
    for photo, result in results.items():
        assert result["not_sure"] is expected[photo], photo
        assert result["unlike_training"] is bundle.unusual[photo], photo
        assert result["not_sure"] is (result["predictions"][0]["probability"] < document["unsure_threshold"])
    # --min-confidence replaces the bundle's threshold.
    assert (
        main(["classify", *map(str, files), "--weights", str(bundle.path), "--json", "--min-confidence", "0"])
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["unsure_threshold"] == 0 and not any(r["not_sure"] for r in document["results"])


def test_classify_table_marks_the_top_prediction(bundle: FlaggedBundle, photos: Path, capsys) -> None:
    files = sorted(photos.glob("*.png"))
    assert main(["classify", *map(str, files), "--weights", str(bundle.path), "--top-k", "2"]) == 0
    captured = capsys.readouterr()
    assert f"not sure below {bundle.unsure_threshold * 100:.1f} %" in captured.err
    blocks = {}
    for block in captured.out.strip().split("\n" + str(photos)):
        lines = block.strip().splitlines()
        blocks[Path(lines[0].split("  (")[0]).name] = lines[1:]
    assert blocks.keys() == bundle.top1.keys()
    expected = bundle.not_sure()
    for photo, lines in blocks.items():
        first, second = lines[0], lines[1]
        assert first.endswith(f"({NOT_SURE_TEXT})") is expected[photo], photo
        assert NOT_SURE_TEXT not in second
        assert any(UNLIKE_TRAINING_TEXT in line for line in lines) is bundle.unusual[photo], photo


def test_classify_without_thresholds_marks_nothing(
    tiny_weights_file: Path, sample_images: list[Path], capsys
) -> None:
    assert main(["classify", *map(str, sample_images), "--weights", str(tiny_weights_file), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["unsure_threshold"] is None
    assert all(r["not_sure"] is False and r["unlike_training"] is None for r in document["results"])
    assert (
        main(
            [
                "classify",
                *map(str, sample_images),
                "--weights",
                str(tiny_weights_file),
                "--min-confidence",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count(f"({NOT_SURE_TEXT})") == len(sample_images) and UNLIKE_TRAINING_TEXT not in out


@pytest.mark.parametrize("command", ["classify", "batch"])
def test_min_confidence_out_of_range_is_refused_with_the_range(command: str, photos: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, str(photos), "--min-confidence", "1.5"])
    assert exit_.value.code == 2 and "from 0 to 1" in capsys.readouterr().err


# --- one real fine-tuned bundle --------------------------------------------------------------------


@pytest.mark.real_model
@pytest.mark.slow
def test_real_bundle_batch_flags_match_its_thresholds(
    hymenoptera_head_run, hymenoptera: Path, tmp_path: Path, capsys
) -> None:
    """``batch`` over the ants-vs-bees validation photos with the session's real fine-tune: every
    row's flags are the bundle's thresholds applied to scores computed here, and ``_unsure/`` holds
    exactly the not-sure rows. Prints the counts (README, "Classify a folder")."""
    from resnet_gui.core.metadata import metadata_ood_threshold, metadata_unsure_threshold

    result, _ = hymenoptera_head_run
    classifier = Classifier(load_model(weights_file=result.bundle), device="cpu")
    metadata = classifier.loaded.metadata
    unsure, ood = metadata_unsure_threshold(metadata), metadata_ood_threshold(metadata)
    assert unsure is not None and ood is not None
    folder = hymenoptera / "val"
    out, dest = tmp_path / "val.csv", tmp_path / "sorted"
    args = ["batch", str(folder), "--recursive", "--weights", str(result.bundle), "--out", str(out)]
    assert main([*args, "--sort-into", str(dest), "--mode", "link", "--top-k", "1"]) == 0
    capsys.readouterr()
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    paths = [Path(row["path"]) for row in rows]
    unusual = []
    for start in range(0, len(paths), 16):
        batch = classifier.preprocessing.prepare_batch(
            [classifier.load(p) for p in paths[start : start + 16]]
        )
        unusual += list(ood_scores(classifier.logits(batch), classifier.temperature) > ood)
    for row, odd in zip(rows, unusual, strict=True):
        probability = float(row["probability_1"])
        if abs(probability - unsure) > 1e-5:
            assert row["not_sure"] == str(probability < unsure).lower(), row["path"]
        assert row["unlike_training"] == str(bool(odd)).lower(), row["path"]
    marked = {Path(row["path"]).name for row in rows if row["not_sure"] == "true"}
    in_unsure = (
        {p.name for p in (dest / UNSURE_FOLDER).iterdir()} if (dest / UNSURE_FOLDER).exists() else set()
    )
    assert in_unsure == marked
    flagged = sum(row["unlike_training"] == "true" for row in rows)
    print(
        f"\n[batch flags] {len(rows)} validation photos: not sure (< {unsure:.1%}) {len(marked)}, "
        f"unlike the training photos {flagged}"
    )
