"""Heat-map display, geometry, export and the deletion faithfulness metric (explain/maps.py)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from resnet_gui.core.engine import Classifier
from resnet_gui.core.explain.maps import (
    COLORMAPS,
    DeletionResult,
    colorize,
    deletion_score,
    map_to_image,
    normalize_maps,
    overlay,
    prepare_whole,
    save_heatmap_npy,
    save_png,
    side_by_side,
)
from resnet_gui.core.models import LoadedModel
from resnet_gui.core.preprocessing import IMAGENET, KERAS_CAFFE, Preprocessing

# --------------------------------------------------------------------------- normalisation


def test_shared_scale_keeps_a_weak_class_weak_and_per_map_does_not() -> None:
    strong = np.zeros((8, 8), np.float32)
    strong[2:6, 2:6] = 10.0
    weak = strong / 10.0
    shared = normalize_maps([strong, weak], shared=True, clip_percentile=None)
    assert shared[0].max() == pytest.approx(1.0)
    assert shared[1].max() == pytest.approx(0.1)
    per_map = normalize_maps([strong, weak], shared=False, clip_percentile=None)
    assert per_map[0].max() == pytest.approx(1.0)
    assert per_map[1].max() == pytest.approx(1.0)
    for out in shared + per_map:
        assert out.dtype == np.float32 and out.shape == (8, 8)
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_shared_mode_shows_the_strongest_map_as_it_would_look_alone() -> None:
    rng = np.random.default_rng(1)
    strong, weak = rng.random((16, 16)) * 5.0, rng.random((16, 16))
    alone = normalize_maps([strong], clip_percentile=99.0)[0]
    together = normalize_maps([strong, weak], shared=True, clip_percentile=99.0)
    np.testing.assert_allclose(together[0], alone)
    assert together[1].max() < 0.3


def test_percentile_clipping_keeps_one_hot_pixel_from_washing_out_the_rest() -> None:
    heat = np.ones((40, 40), np.float32)
    heat[::2] = 0.5
    heat[0, 0] = 1000.0
    clipped = normalize_maps([heat], clip_percentile=99.5)[0]
    assert clipped[0, 0] == 1.0
    assert clipped[1, 1] == pytest.approx(1.0)  # the bulk keeps its full range
    assert clipped[2, 1] == pytest.approx(0.5)
    unclipped = normalize_maps([heat], clip_percentile=None)[0]
    assert unclipped[1, 1] == pytest.approx(0.001)


def test_zero_maps_stay_zero_negative_values_count_as_zero_and_nan_stays_nan() -> None:
    zeros = np.zeros((5, 5), np.float32)
    for shared in (True, False):
        (out,) = normalize_maps([zeros], shared=shared)
        assert not np.isnan(out).any() and not out.any()
    heat = np.array([[np.nan, -3.0, 0.0, 2.0]], np.float32)
    both = normalize_maps([heat, zeros], shared=True, clip_percentile=None)
    np.testing.assert_array_equal(both[0], np.array([[np.nan, 0.0, 0.0, 1.0]], np.float32))
    assert not both[1].any() and not np.isnan(both[1]).any()
    assert normalize_maps([]) == []
    with pytest.raises(ValueError, match="clip_percentile"):
        normalize_maps([heat], clip_percentile=0.0)


def test_a_sparse_map_is_not_saturated_by_its_zeros() -> None:
    heat = np.zeros((100, 100), np.float32)
    heat[10, 10], heat[20, 20] = 1.0, 0.25  # 0.02 % of pixels are non-zero
    out = normalize_maps([heat], clip_percentile=99.5)[0]
    assert out[10, 10] == pytest.approx(1.0)
    assert out[20, 20] < 0.3


# --------------------------------------------------------------------------- geometry

# Crop boxes worked out by hand for the default preprocessing (resize the shorter side to 256,
# centre-crop 224), independently of Preprocessing.crop_box:
#   400x300 -> resized 341x256 (int(256*400/300)), left round(58.5)=58, top 16;
#              box = (58*400/341, 16*300/256, 282*400/341, 240*300/256).
#   300x300 -> resized 256x256, left = top = 16; box = (16, 16, 240, 240) * 300/256.
#   60x40   -> resized 384x256 (an upscale), left 80, top 16; box = (80, 16, 304, 240) * 60/384.
HAND_BOXES = {
    (400, 300): (58 * 400 / 341, 16 * 300 / 256, 282 * 400 / 341, 240 * 300 / 256),
    (300, 400): (16 * 300 / 256, 58 * 400 / 341, 240 * 300 / 256, 282 * 400 / 341),
    (300, 300): (16 * 300 / 256, 16 * 300 / 256, 240 * 300 / 256, 240 * 300 / 256),
    (60, 40): (80 * 60 / 384, 16 * 40 / 256, 304 * 60 / 384, 240 * 40 / 256),
}
# Pixel x is seen when its centre x + 0.5 is inside the box: the seen columns / rows by hand.
HAND_SEEN = {
    (400, 300): ((68, 331), (19, 281)),  # 68.03..330.79 wide, 18.75..281.25 high
    (300, 400): ((19, 281), (68, 331)),
    (300, 300): ((19, 281), (19, 281)),
    (60, 40): ((12, 47), (2, 37)),  # 12.5..47.5 wide, 2.5..37.5 high
}


@pytest.mark.parametrize("size", list(HAND_BOXES), ids=["landscape", "portrait", "square", "small"])
def test_nan_covers_exactly_the_cropped_away_margins(size: tuple[int, int]) -> None:
    width, height = size
    assert IMAGENET.crop_box(width, height) == pytest.approx(HAND_BOXES[size])
    mapped = map_to_image(np.ones((224, 224), np.float32), size, IMAGENET)
    assert mapped.shape == (height, width) and mapped.dtype == np.float32
    (x0, x1), (y0, y1) = HAND_SEEN[size]
    expected = np.ones((height, width), bool)
    expected[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(np.isnan(mapped), expected)
    # And the same from crop_box by the pixel-centre rule.
    left, top, right, bottom = IMAGENET.crop_box(width, height)
    xs, ys = np.arange(width) + 0.5, np.arange(height) + 0.5
    inside = ((ys >= top) & (ys < bottom))[:, None] & ((xs >= left) & (xs < right))[None, :]
    np.testing.assert_array_equal(np.isnan(mapped), ~inside)
    assert np.allclose(mapped[~np.isnan(mapped)], 1.0)


@pytest.mark.parametrize("size", list(HAND_BOXES), ids=["landscape", "portrait", "square", "small"])
def test_a_hot_square_in_input_space_lands_where_the_model_saw_it(size: tuple[int, int]) -> None:
    rows, cols = (100, 124), (40, 60)
    heat = np.zeros((224, 224), np.float32)
    heat[rows[0] : rows[1], cols[0] : cols[1]] = 1.0
    mapped = map_to_image(heat, size, IMAGENET)
    assert mapped.shape == (size[1], size[0])
    left, top, right, bottom = HAND_BOXES[size]
    sx, sy = (right - left) / 224, (bottom - top) / 224
    # Hot pixels: those whose centre lies in the square's image of the original (+-1 px of blur).
    hot_y, hot_x = np.nonzero(np.nan_to_num(mapped) >= 0.5)
    assert hot_x.min() + 0.5 == pytest.approx(left + cols[0] * sx, abs=1.0 + sx / 2)
    assert hot_x.max() + 0.5 == pytest.approx(left + cols[1] * sx, abs=1.0 + sx / 2)
    assert hot_y.min() + 0.5 == pytest.approx(top + rows[0] * sy, abs=1.0 + sy / 2)
    assert hot_y.max() + 0.5 == pytest.approx(top + rows[1] * sy, abs=1.0 + sy / 2)
    # The hot area is the square's area in original pixels.
    assert hot_x.size == pytest.approx(20 * sx * 24 * sy, rel=0.25, abs=4)
    seen = mapped[~np.isnan(mapped)]
    assert seen.min() >= 0.0 and seen.max() <= 1.0


def _ramp_image(width: int, height: int) -> Image.Image:
    """Red encodes the column and green the row, 0..255 from edge to edge."""
    red = np.rint(np.arange(width) * 255 / (width - 1))
    green = np.rint(np.arange(height) * 255 / (height - 1))
    array = np.zeros((height, width, 3), np.uint8)
    array[:, :, 0] = red[None, :]
    array[:, :, 1] = green[:, None]
    return Image.fromarray(array)


def _unnormalise(prepared: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """A prepared CHW input back to 0-255 RGB HWC."""
    array = prepared.transpose(1, 2, 0) * np.asarray(preprocessing.std) + np.asarray(preprocessing.mean)
    if preprocessing.channel_order == "BGR":
        array = array[:, :, ::-1]
    return array * 255.0


@pytest.mark.parametrize(
    "size", [(400, 300), (300, 400), (300, 300)], ids=["landscape", "portrait", "square"]
)
def test_seen_region_matches_what_prepare_really_feeds_the_model(size: tuple[int, int]) -> None:
    """Independent of crop_box: read the original coordinates off a ramp image after prepare()."""
    width, height = size
    model_input = _unnormalise(IMAGENET.prepare(_ramp_image(width, height)), IMAGENET)
    first_x = model_input[:, 0, 0].mean() * (width - 1) / 255
    last_x = model_input[:, -1, 0].mean() * (width - 1) / 255
    first_y = model_input[0, :, 1].mean() * (height - 1) / 255
    last_y = model_input[-1, :, 1].mean() * (height - 1) / 255
    seen_y, seen_x = np.nonzero(~np.isnan(map_to_image(np.ones((7, 7)), size, IMAGENET)))
    # The ramp is quantised to 255 levels (about 1.6 px here): allow 2.5 px.
    assert seen_x.min() == pytest.approx(first_x, abs=2.5)
    assert seen_x.max() == pytest.approx(last_x, abs=2.5)
    assert seen_y.min() == pytest.approx(first_y, abs=2.5)
    assert seen_y.max() == pytest.approx(last_y, abs=2.5)


def test_whole_fit_stretches_the_map_over_the_whole_image() -> None:
    heat = np.zeros((224, 224), np.float32)
    heat[:, 112:] = 1.0  # right half of the input
    mapped = map_to_image(heat, (400, 100), IMAGENET, fit="whole")
    assert mapped.shape == (100, 400) and not np.isnan(mapped).any()
    hot_x = np.nonzero(mapped[50] >= 0.5)[0]
    assert hot_x.min() == 200 and hot_x.max() == 399
    with pytest.raises(ValueError, match="fit"):
        map_to_image(heat, (400, 100), IMAGENET, fit="stretch")


@pytest.mark.parametrize("preprocessing", [IMAGENET, KERAS_CAFFE], ids=["imagenet", "keras-caffe"])
def test_prepare_whole_keeps_the_whole_image_with_the_usual_normalisation(
    preprocessing: Preprocessing,
) -> None:
    colour = np.array([10, 200, 30], np.float32)
    uniform = Image.new("RGB", (300, 100), tuple(int(c) for c in colour))
    prepared = prepare_whole(uniform, preprocessing)
    # Shorter side to the crop size, aspect ratio kept (3:1 is the most kept; beyond, squeezed).
    assert prepared.shape == (3, 224, 672) and prepared.dtype == np.float32
    assert prepare_whole(Image.new("RGB", (200, 300)), preprocessing).shape == (3, 336, 224)
    assert prepare_whole(Image.new("RGB", (100, 1000)), preprocessing).shape == (3, 672, 224)
    ordered = colour[::-1] if preprocessing.channel_order == "BGR" else colour
    expected = (ordered / 255 - np.asarray(preprocessing.mean)) / np.asarray(preprocessing.std)
    np.testing.assert_allclose(prepared[:, 100, 100], expected, rtol=1e-5, atol=1e-4)
    # Every edge of the original reaches the model: nothing is cropped away.
    model_input = _unnormalise(prepare_whole(_ramp_image(300, 100), preprocessing), preprocessing)
    assert model_input[:, 0, 0].mean() < 3 and model_input[:, -1, 0].mean() > 252
    assert model_input[0, :, 1].mean() < 3 and model_input[-1, :, 1].mean() > 252


# --------------------------------------------------------------------------- colour


@pytest.mark.parametrize("name", COLORMAPS)
def test_colormap_endpoints_and_nan_transparency(name: str) -> None:
    rgba = colorize(np.array([[0.0, 1.0, np.nan, -5.0, 7.0]], np.float32), name)
    assert rgba.shape == (1, 5, 4) and rgba.dtype == np.uint8
    cmap = matplotlib.colormaps[name]
    first, last = cmap(0.0, bytes=True), cmap(1.0, bytes=True)
    assert tuple(rgba[0, 0]) == tuple(first) and rgba[0, 0, 3] == 255
    assert tuple(rgba[0, 1]) == tuple(last)
    assert rgba[0, 2, 3] == 0  # NaN: not seen, fully transparent
    assert tuple(rgba[0, 3]) == tuple(first) and tuple(rgba[0, 4]) == tuple(last)  # clipped


def test_unknown_colormap_is_refused() -> None:
    with pytest.raises(ValueError, match="turbo"):
        colorize(np.zeros((2, 2)), "rainbow-unicorn")


def _photo(height: int = 20, width: int = 30) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_overlay_alpha_extremes() -> None:
    photo = _photo()
    heat = np.random.default_rng(4).random((20, 30)).astype(np.float32)
    np.testing.assert_array_equal(overlay(photo, heat, alpha=0.0), photo)
    np.testing.assert_array_equal(
        overlay(photo, heat, alpha=1.0, colormap="viridis"), colorize(heat, "viridis")[..., :3]
    )
    halfway = overlay(photo, heat, alpha=0.5).astype(int)
    expected = (photo.astype(int) + colorize(heat)[..., :3].astype(int)) / 2
    assert np.abs(halfway - expected).max() <= 1
    # A PIL image gives the same as its array.
    np.testing.assert_array_equal(overlay(Image.fromarray(photo), heat), overlay(photo, heat))
    with pytest.raises(ValueError, match="shape"):
        overlay(photo, heat[:10])
    with pytest.raises(ValueError, match="alpha"):
        overlay(photo, heat, alpha=1.5)


def test_unseen_pixels_are_dimmed_not_coloured() -> None:
    photo = _photo()
    heat = np.full((20, 30), 0.8, np.float32)
    heat[:, :5] = np.nan
    for alpha in (0.0, 0.5, 1.0):
        out = overlay(photo, heat, alpha=alpha, unseen="dim")
        unseen, original = out[:, :5].astype(int), photo[:, :5].astype(int)
        assert (unseen[..., 0] == unseen[..., 1]).all() and (unseen[..., 1] == unseen[..., 2]).all()  # grey
        assert unseen.mean() < 0.5 * original.mean()  # darker
        # Seen pixels are blended as usual.
        np.testing.assert_array_equal(out[:, 5:], overlay(photo[:, 5:], heat[:, 5:], alpha=alpha))
    np.testing.assert_array_equal(overlay(photo, heat, unseen="original")[:, :5], photo[:, :5])
    assert (overlay(photo, heat, unseen="grey")[:, :5] == 128).all()
    with pytest.raises(ValueError, match="unseen"):
        overlay(photo, heat, unseen="blur")


def test_side_by_side_puts_the_photo_left_of_its_overlay() -> None:
    photo = _photo()
    heat = np.full((20, 30), 0.5, np.float32)
    pair = side_by_side(Image.fromarray(photo), heat, alpha=0.7, gap=4)
    assert pair.shape == (20, 64, 3) and pair.dtype == np.uint8
    np.testing.assert_array_equal(pair[:, :30], photo)
    assert (pair[:, 30:34] == 255).all()
    np.testing.assert_array_equal(pair[:, 34:], overlay(photo, heat, alpha=0.7))


# --------------------------------------------------------------------------- saving


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".partial")


def test_save_png_is_atomic_and_readable(tmp_path: Path) -> None:
    photo = _photo()
    path = save_png(photo, tmp_path / "out" / "overlay.png")
    assert path == tmp_path / "out" / "overlay.png"
    with Image.open(path) as saved:
        assert saved.format == "PNG" and saved.size == (30, 20) and saved.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(saved), photo)
    save_png(colorize(np.zeros((4, 6))), tmp_path / "rgba.png")
    with Image.open(tmp_path / "rgba.png") as saved:
        assert saved.mode == "RGBA"
    # A bad array leaves nothing behind, and the old file untouched.
    with pytest.raises(ValueError):
        save_png(photo.astype(np.float32), path)
    with Image.open(path) as saved:
        np.testing.assert_array_equal(np.asarray(saved), photo)
    assert _leftovers(tmp_path / "out") == [] and _leftovers(tmp_path) == []


def test_save_heatmap_npy_writes_zero_for_unseen_pixels_at_the_exact_path(tmp_path: Path) -> None:
    heat = map_to_image(np.ones((224, 224), np.float32) * 0.5, (400, 300), IMAGENET)
    heat[150, 200] = 3.0  # clipped to 1
    path = save_heatmap_npy(heat, tmp_path / "heat.bin")  # no ".npy" appended
    assert path.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["heat.bin"]
    loaded = np.load(path, allow_pickle=False)
    assert loaded.shape == (300, 400) and loaded.dtype == np.float32
    assert not np.isnan(loaded).any() and loaded.min() >= 0.0 and loaded.max() <= 1.0
    assert loaded[0, 0] == 0.0 and loaded[150, 200] == 1.0 and loaded[100, 100] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        save_heatmap_npy(np.zeros((2, 2, 2)), tmp_path / "bad.npy")
    assert _leftovers(tmp_path) == [] and not (tmp_path / "bad.npy").exists()


# --------------------------------------------------------------------------- deletion metric

REGION = (slice(8, 16), slice(12, 20))  # the only pixels the cheating model looks at


class RegionModel(torch.nn.Module):
    """Class 0's logit is the mean of channel 0 over REGION: nothing else matters to it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = x[:, 0, REGION[0], REGION[1]].mean(dim=(1, 2)) - 0.5
        return torch.stack([6 * evidence, -6 * evidence], dim=1)


def _cheating_classifier() -> Classifier:
    loaded = LoadedModel(
        model=RegionModel(),
        name="region",
        architecture="region",
        preprocessing=Preprocessing(resize_size=32, crop_size=32),
        categories=("target", "other"),
        weights_description="hand-built",
    )
    return Classifier(loaded, device="cpu")


def _region_input() -> tuple[np.ndarray, np.ndarray]:
    prepared = np.zeros((3, 32, 32), np.float32)
    prepared[:, REGION[0], REGION[1]] = 1.0
    region_map = np.zeros((32, 32), np.float32)
    region_map[REGION] = 1.0
    return prepared, region_map


def test_deletion_ranks_the_true_region_above_random_and_an_inverted_map_below() -> None:
    classifier = _cheating_classifier()
    prepared, region_map = _region_input()
    right = deletion_score(classifier, prepared, region_map, 0, baseline="zero")
    wrong = deletion_score(classifier, prepared, 1.0 - region_map, 0, baseline="zero")
    np.testing.assert_allclose(right.fractions, np.linspace(0, 1, 11))
    assert right.curve[0] == pytest.approx(1 / (1 + math.exp(-6)), abs=1e-5)
    assert right.curve[1] < 0.01  # the region is 6 % of the input: gone after 10 %
    assert right.auc < 0.1 < 0.3 < right.random_auc < 0.7 < 0.9 < wrong.auc
    assert right.better_than_random and not wrong.better_than_random
    # Random order and the shared end points do not depend on the map.
    np.testing.assert_allclose(right.random_curve, wrong.random_curve)
    assert right.random_curve[0] == right.curve[0] and right.random_curve[-1] == right.curve[-1]
    assert right.target == 0 and right.baseline == "zero"
    assert "drops 'target' from 1.00 to 0.00" in right.summary("target")


class RecordingModel:
    """A fake classifier: class 0 is the mean of channel 0 in REGION; records every batch."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.copy())
        p = np.clip(batch[:, 0, REGION[0], REGION[1]].mean(axis=(1, 2)), 0, 1)
        return np.stack([p, 1 - p], axis=1)


def test_deletion_runs_one_batch_and_replaces_pixels_by_the_chosen_baseline() -> None:
    rng = np.random.default_rng(5)
    prepared = rng.normal(size=(3, 32, 32)).astype(np.float32)
    heat = rng.random((32, 32)).astype(np.float32)
    for baseline in ("zero", "mean", "blur"):
        model = RecordingModel()
        result = deletion_score(model, prepared, heat, 0, steps=10, baseline=baseline)
        assert [b.shape for b in model.batches] == [(20, 3, 32, 32)]  # 11 heat-order + 9 random
        batch = model.batches[0]
        np.testing.assert_array_equal(batch[0], prepared)
        everything_deleted = batch[10]
        if baseline == "zero":
            assert not everything_deleted.any()
        elif baseline == "mean":
            np.testing.assert_allclose(
                everything_deleted, prepared.mean(axis=(1, 2), keepdims=True) + 0 * prepared
            )
        else:
            assert everything_deleted.std() < 0.5 * prepared.std()  # smooth
            np.testing.assert_allclose(
                everything_deleted.mean(axis=(1, 2)), prepared.mean(axis=(1, 2)), atol=0.1
            )
        # At 30 %, exactly the 30 % hottest pixels are replaced.
        changed = (batch[3] != prepared).any(axis=0)
        assert changed.sum() <= round(0.3 * 1024)
        assert heat[changed].min() >= np.sort(heat.ravel())[-round(0.3 * 1024)]
        assert len(result.curve) == len(result.random_curve) == 11
    small_batches = RecordingModel()
    deletion_score(small_batches, prepared, heat, 0, steps=10, batch_size=8)
    assert [len(b) for b in small_batches.batches] == [8, 8, 4]


def test_deletion_random_order_is_seeded_and_arguments_are_checked() -> None:
    prepared, region_map = _region_input()
    same = [
        deletion_score(RecordingModel(), prepared, region_map, 0, baseline="zero", seed=7) for _ in range(2)
    ]
    np.testing.assert_array_equal(same[0].random_curve, same[1].random_curve)
    other = deletion_score(RecordingModel(), prepared, region_map, 0, baseline="zero", seed=8)
    assert not np.array_equal(other.random_curve, same[0].random_curve)
    with pytest.raises(ValueError, match="shape"):
        deletion_score(RecordingModel(), prepared, region_map[:16], 0)
    with pytest.raises(ValueError, match="baseline"):
        deletion_score(RecordingModel(), prepared, region_map, 0, baseline="noise")
    with pytest.raises(ValueError, match="target"):
        deletion_score(RecordingModel(), prepared, region_map, 5)


def test_deletion_with_the_tiny_resnet_is_consistent_with_plain_classification(
    tiny_model, sample_images: list[Path]
) -> None:
    classifier = Classifier(tiny_model, device="cpu")
    prepared = tiny_model.preprocessing.prepare(Image.open(sample_images[1]).convert("RGB"))
    heat = np.random.default_rng(6).random(prepared.shape[1:]).astype(np.float32)
    result = deletion_score(classifier, prepared, heat, 2, steps=5)
    assert result.curve.shape == result.random_curve.shape == (6,)
    assert result.curve[0] == pytest.approx(float(classifier.probabilities(prepared[None])[0, 2]), abs=1e-5)
    assert ((result.curve >= 0) & (result.curve <= 1)).all()
    assert 0.0 <= result.auc <= 1.0 and 0.0 <= result.random_auc <= 1.0


def test_summary_sentence_reads_the_curve_at_20_percent() -> None:
    result = DeletionResult(
        fractions=np.linspace(0, 1, 11),
        curve=np.array([0.99, 0.5, 0.12, 0.1, 0.08, 0.06, 0.05, 0.04, 0.03, 0.02, 0.01]),
        auc=0.18,
        random_curve=np.array([0.99, 0.98, 0.97, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.01]),
        random_auc=0.71,
    )
    assert result.summary("espresso") == (
        "removing the top 20 % of highlighted pixels drops 'espresso' from 0.99 to 0.12 "
        "(random squares: 0.97); area under the deletion curve 0.18 vs 0.71 for random order "
        "(lower is better)"
    )
    # Off the grid (3 steps), the 20 % point is interpolated.
    coarse = DeletionResult(np.linspace(0, 1, 4), np.array([0.9, 0.6, 0.3, 0.0]), 0.45, np.ones(4), 1.0)
    assert coarse.at(0.2) == pytest.approx(0.9 - 0.2 * 0.9)
    assert "from 0.90 to 0.72" in coarse.summary("x")
    flat = DeletionResult(np.linspace(0, 1, 6), np.full(6, 0.5), 0.5, np.full(6, 0.5), 0.5)
    assert "leaves 'x' at 0.50" in flat.summary("x")


ESPRESSO = 967


def _blob(size: int, centre: tuple[float, float], sigma: float) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size]
    return np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2)).astype(np.float32)


@pytest.mark.real_model
@pytest.mark.slow
def test_real_resnet50_a_map_on_the_cup_deletes_espresso_faster_than_one_on_a_corner(real_resnet50) -> None:
    from skimage import data

    classifier = Classifier(real_resnet50, device="cpu")
    assert classifier.categories[ESPRESSO] == "espresso"
    photo = Image.fromarray(data.coffee())  # 600x400, the cup's centre near (290, 150)
    preprocessing = classifier.preprocessing
    prepared = preprocessing.prepare(photo)
    size = preprocessing.crop_size
    left, top, right, _ = preprocessing.crop_box(*photo.size)
    scale = size / (right - left)
    cup = ((290 - left) * scale, (150 - top) * scale)
    on_cup = deletion_score(classifier, prepared, _blob(size, cup, size / 6), ESPRESSO, steps=5)
    on_corner = deletion_score(classifier, prepared, _blob(size, (0, size - 1), size / 6), ESPRESSO, steps=5)
    assert on_cup.curve[0] > 0.5  # the model is sure it is an espresso
    assert on_cup.auc < on_corner.auc
    assert on_cup.at(0.2) < on_corner.at(0.2)
    print(on_cup.summary("espresso"))
