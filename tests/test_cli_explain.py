"""`resnet-gui explain`: files written where asked, aligned to the photo, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CATEGORIES
from PIL import Image

from resnet_gui.cli import main
from resnet_gui.core.explain import METHODS


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_writes_an_overlay_and_an_aligned_heatmap(
    method: str, tiny_weights_file: Path, sample_images: list[Path], tmp_path: Path, capsys
) -> None:
    photo = sample_images[2]  # 300 x 90: the crop geometry matters
    params = {
        "occlusion": ["--param", "window=16", "--param", "stride=16"],
        "integrated_gradients": ["--param", "n_steps=4"],
        "smoothgrad": ["--param", "nt_samples=2"],
    }
    out, heat = tmp_path / "overlay.png", tmp_path / "heat.npy"
    code = main(
        [
            "explain",
            str(photo),
            "--weights",
            str(tiny_weights_file),
            "--method",
            method,
            "--out",
            str(out),
            "--save-heatmap",
            str(heat),
            *params.get(method, []),
        ]
    )
    assert code == 0, capsys.readouterr().err
    with Image.open(out) as overlay, Image.open(photo) as original:
        assert overlay.size == original.size and overlay.mode == "RGB"
    heatmap = np.load(heat)
    assert heatmap.shape == (90, 300) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
    # fit=crop: the model saw only the central 90x90 square; the margins carry no heat.
    assert heatmap[:, :100].max() == 0.0 and heatmap[:, -100:].max() == 0.0
    assert str(out) in capsys.readouterr().out


def test_top_k_writes_one_file_per_class_and_names_them(
    tiny_weights_file: Path, sample_images: list[Path], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "o.png"
    code = main(
        [
            "explain",
            str(sample_images[0]),
            "--weights",
            str(tiny_weights_file),
            "--top-k",
            "3",
            "--out",
            str(out),
            "--fit",
            "whole",
            "--view",
            "side-by-side",
            "--colormap",
            "viridis",
        ]
    )
    assert code == 0
    written = sorted(p.name for p in tmp_path.glob("o-*.png"))
    assert len(written) == 3 and {name.split("-", 2)[2][:-4] for name in written} == set(TINY_CATEGORIES)
    with Image.open(tmp_path / written[0]) as side_by_side:
        assert side_by_side.size == (160, 60)  # photo | overlay
    assert capsys.readouterr().out.count(" %") == 3


def test_named_target_and_score(tiny_weights_file: Path, sample_images: list[Path], capsys) -> None:
    base = ["explain", str(sample_images[0]), "--weights", str(tiny_weights_file), "--target", "be"]
    assert main([*base, "--score", "deletion"]) == 0
    out = capsys.readouterr().out
    assert "bee" in out and "faithfulness: removing the top 20 %" in out and "ROAD" not in out


def test_score_alone_is_road_with_its_curve(
    tiny_weights_file: Path, sample_images: list[Path], capsys
) -> None:
    assert main(["explain", str(sample_images[0]), "--weights", str(tiny_weights_file), "--score"]) == 0
    out = capsys.readouterr().out
    assert "faithfulness: " in out and "(ROAD " in out and "ROAD curve" in out
    removed = next(line for line in out.splitlines() if "removed:" in line)
    assert removed.split()[1:] == [f"{p}%" for p in range(10, 100, 10)]
    for row in ("important:", "unimportant:"):
        values = next(line for line in out.splitlines() if line.strip().startswith(row)).split()[1:]
        assert len(values) == 9 and all(0.0 <= float(v) <= 1.0 for v in values)
    with pytest.raises(SystemExit) as refused:
        main(["explain", str(sample_images[0]), "--weights", str(tiny_weights_file), "--score", "blur"])
    assert refused.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--target", "a"], "ant (0), cat (2)"),  # ambiguous: the candidates are listed
        (["--target", "dog"], "dog"),
        (["--target", "7"], "7"),
        (["--param", "n_steps"], "NAME=VALUE"),
        (["--method", "integrated_gradients", "--param", "n_steps=-1"], "n_steps"),
    ],
)
def test_bad_requests_are_clear_errors(
    arguments: list[str], message: str, tiny_weights_file: Path, sample_images: list[Path], capsys
) -> None:
    code = main(["explain", str(sample_images[0]), "--weights", str(tiny_weights_file), *arguments])
    err = capsys.readouterr().err
    assert code != 0
    assert message.lower() in err.lower() and "Traceback" not in err


def test_unreadable_image(tiny_weights_file: Path, tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert main(["explain", str(broken), "--weights", str(tiny_weights_file)]) == 3
    assert "broken.png" in capsys.readouterr().err


def test_help_lists_the_faithfulness_scores(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["explain", "--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--score [{road,deletion}]" in out and "(alone: road)" in out and "10 % to 90 %" in out


def test_json_has_the_road_curve_of_the_result(
    tiny_weights_file: Path, sample_images: list[Path], tmp_path: Path, capsys, monkeypatch
) -> None:
    """The curve printed is the one core computed: the JSON's values are the RoadResult's."""
    import json

    from resnet_gui.core.explain import pipeline

    computed = []
    real = pipeline.explain_photo

    def recording(*args, **kwargs):
        result = real(*args, **kwargs)
        computed.append(result)
        return result

    monkeypatch.setattr(pipeline, "explain_photo", recording)
    out = tmp_path / "o.png"
    base = ["explain", str(sample_images[0]), "--weights", str(tiny_weights_file), "--top-k", "2"]
    assert main([*base, "--score", "--json", "--out", str(out)]) == 0
    document = json.loads(capsys.readouterr().out)  # nothing but the JSON on stdout
    [result] = computed
    assert document["method"] == "gradcam" and document["image"] == str(sample_images[0])
    assert [c["label"] for c in document["classes"]] == [c.label for c in result.classes]
    for record, explained in zip(document["classes"], result.classes, strict=True):
        road = explained.road
        assert road is not None
        score = record["faithfulness"]
        assert score["score"] == "road" and score["value"] == pytest.approx(road.score)
        assert score["verdict"] == road.verdict and score["sentence"] == road.sentence
        np.testing.assert_allclose(score["removed"], road.removed)
        np.testing.assert_allclose(score["removed"], np.arange(1, 10) / 10)
        np.testing.assert_allclose(score["most_relevant_first"], road.morf)
        np.testing.assert_allclose(score["least_relevant_first"], road.lerf)
        assert score["original"] == pytest.approx(road.original)
        assert score["random_score"] == pytest.approx(road.random_score)
        np.testing.assert_allclose(score["random_most_relevant_first"], road.random_morf)
        assert Path(record["overlay"]).is_file() and record["heatmap"] is None
    # The random maps' curves are the yardstick's: their score is the random score.
    first = document["classes"][0]["faithfulness"]
    random_gap = np.mean(first["random_least_relevant_first"]) - np.mean(first["random_most_relevant_first"])
    assert random_gap / 2 == pytest.approx(first["random_score"], abs=1e-9)


def test_json_has_the_deletion_curve_and_none_without_a_score(
    tiny_weights_file: Path, sample_images: list[Path], capsys
) -> None:
    import json

    base = ["explain", str(sample_images[0]), "--weights", str(tiny_weights_file), "--json"]
    assert main([*base, "--score", "deletion"]) == 0
    [record] = json.loads(capsys.readouterr().out)["classes"]
    score = record["faithfulness"]
    assert score["score"] == "deletion"
    assert len(score["removed"]) == len(score["curve"]) == len(score["random_curve"]) == 11
    assert score["removed"][0] == 0.0 and score["removed"][-1] == 1.0
    assert score["curve"][0] == pytest.approx(record["probability"], abs=1e-5)  # nothing deleted yet
    assert score["better_than_random"] == (score["auc"] < score["random_auc"])
    assert main(base) == 0
    [plain] = json.loads(capsys.readouterr().out)["classes"]
    assert plain["faithfulness"] is None and plain["label"] == record["label"]
