"""A run with a few new photos extracts only those: the centre-view rows of earlier runs are reused.

This is what makes "Retrain with N new photos" take seconds in head mode. The reused rows must be
the rows a full extraction gives (else the retrained model would differ from a fresh one).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_training import FAST, make_shapes

from resnet_gui.core.training import FeatureCache, Progress, TrainConfig, make_split, scan_dataset, train
from resnet_gui.core.training.train import MAX_CLASS_WEIGHT_RATIO, _class_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def extracted(events: list) -> dict[str, int]:
    """Per phase, how many photos went through the network (the last Progress of each phase)."""
    totals: dict[str, int] = {}
    for event in events:
        if isinstance(event, Progress) and event.phase.startswith("features"):
            totals[event.phase] = event.total
    return totals


def test_only_the_new_photos_are_extracted_and_the_rows_match(
    tiny_weights_file: Path, tmp_path: Path
) -> None:
    root = make_shapes(tmp_path / "shapes", {"circle": 6, "square": 6})
    split = make_split(scan_dataset(root), val_fraction=0.25)
    config = TrainConfig(mode="head", epochs=1, **FAST)
    cache = FeatureCache(tmp_path / "cache")
    first = list(train(str(tiny_weights_file), split, tmp_path / "a", config, feature_cache=cache))
    assert extracted(first) == {"features (val)": len(split.val), "features (train)": len(split.train)}

    extra = make_shapes(tmp_path / "extra", {"square": 2}, seed=9)
    bigger = split.with_training_photos([(p, "square") for p in sorted((extra / "square").iterdir())])
    reused = FeatureCache(tmp_path / "cache")  # a new instance: the rows come from the files on disk
    second = list(train(str(tiny_weights_file), bigger, tmp_path / "b", config, feature_cache=reused))
    assert extracted(second) == {"features (train)": 2}, "photos seen before were extracted again"

    memory = FeatureCache()  # a full extraction of the bigger split, for comparison
    fresh = list(train(str(tiny_weights_file), bigger, tmp_path / "c", config, feature_cache=memory))
    assert extracted(fresh)["features (train)"] == len(bigger.train)
    [rows_b] = [t for t in reused._memory.values() if t.shape[0] == len(bigger.train)]
    [rows_d] = [t for t in memory._memory.values() if t.shape[0] == len(bigger.train)]
    torch.testing.assert_close(rows_b, rows_d, rtol=1e-4, atol=1e-5)


def test_random_views_are_not_reused_row_by_row(tiny_weights_file: Path, tmp_path: Path) -> None:
    root = make_shapes(tmp_path / "shapes", {"circle": 6, "square": 6})
    split = make_split(scan_dataset(root), val_fraction=0.25)
    config = TrainConfig(mode="head", epochs=1, cached_views=1, **FAST)
    cache = FeatureCache(tmp_path / "cache")
    list(train(str(tiny_weights_file), split, tmp_path / "a", config, feature_cache=cache))
    extra = make_shapes(tmp_path / "extra", {"square": 1}, seed=9)
    bigger = split.with_training_photos([(extra / "square" / "square000.png", "square")])
    second = list(train(str(tiny_weights_file), bigger, tmp_path / "b", config, feature_cache=cache))
    assert extracted(second)["features (train)"] == len(bigger.train)


def test_one_photo_in_a_new_class_gets_a_bounded_weight(tmp_path: Path) -> None:
    root = make_shapes(tmp_path / "shapes", {"circle": 40, "square": 40})
    split = make_split(scan_dataset(root), val_fraction=0.25)
    bigger = split.with_training_photos([(tmp_path / "t.png", "triangle")])
    weights = _class_weights(bigger, "auto")
    assert weights is not None
    assert float(weights.max() / weights.min()) == pytest.approx(MAX_CLASS_WEIGHT_RATIO)
    assert float(weights[0]) == pytest.approx(float(weights[1]))
