"""ROAD: a faithfulness score that stays in the distribution the model knows.

Rong, Leemann, Borisov, Kasneci, Kasneci, "A Consistent and Efficient Evaluation Strategy for
Attribution Methods", ICML 2022. A map is faithful when removing the pixels it calls important
hurts the prediction more than removing the pixels it calls unimportant. The deletion test
(:func:`resnet_gui.core.explain.maps.deletion_score`) removes pixels by blurring them, which
takes the photo out of the distribution the model was trained on: the model then reacts to the
blur, not to the missing evidence. ROAD removes them by *noisy linear imputation* instead: each
removed pixel becomes the weighted mean of its 8 neighbours (solved as one sparse linear system
over all removed pixels, so large holes are filled smoothly from their border), plus a little
noise, so that the shape of the hole does not give away which pixels were removed.

This is a re-implementation of pytorch-grad-cam's ``pytorch_grad_cam/metrics/road.py`` (which
takes its imputer from the paper authors' code): the same neighbour weights, the same
thresholds (``np.percentile`` of the map), the same removal order for ties and the same combined
score, ``ROADCombined = (mean LeRF - mean MoRF) / 2``. ``tests/test_explain_road.py`` checks it
against the reference numerically. It is written here, not imported, so that the app does not
depend on OpenCV (which pytorch-grad-cam needs); scipy's sparse solver does the linear algebra
(a conjugate-gradient solve in torch took over ten times longer on a 224 x 224 input).

numpy and scipy only: no torch, no Qt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from resnet_gui.core.explain.maps import (
    ProbabilityModel,
    RoadResult,
    road_sentence,
    road_verdict,
    target_probabilities,
)

__all__ = [
    "NEIGHBOUR_WEIGHTS",
    "ROAD_NOISE",
    "ROAD_PERCENTILES",
    "noisy_linear_impute",
    "random_map",
    "road_keep_masks",
    "road_score",
]

#: The reference's percentiles: at percentile ``p``, the pixels at or above the map's ``p``-th
#: percentile are removed (MoRF), or those at or below the ``100 - p``-th (LeRF): ``100 - p`` %.
ROAD_PERCENTILES: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)

#: The side of the grid of :func:`random_map`: Grad-CAM's resolution on a ResNet at 224 px.
RANDOM_MAP_CELLS = 7

#: The imputer's noise (standard deviation, in the model's normalised input units), as in the reference.
ROAD_NOISE = 0.01

#: The weights of the 8 neighbours in the imputation: (row offset, column offset), weight.
NEIGHBOUR_WEIGHTS: tuple[tuple[tuple[int, int], float], ...] = (
    ((1, 1), 1 / 12),
    ((0, 1), 1 / 6),
    ((-1, 1), 1 / 12),
    ((1, -1), 1 / 12),
    ((0, -1), 1 / 6),
    ((-1, -1), 1 / 12),
    ((1, 0), 1 / 6),
    ((-1, 0), 1 / 6),
)


def noisy_linear_impute(
    image: np.ndarray,
    keep: np.ndarray,
    *,
    noise: float = ROAD_NOISE,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """``image`` (C, H, W) with the pixels where ``keep`` (H, W) is False filled in: float32.

    Each removed pixel ``i`` solves ``s_i x_i = sum_j w_ij x_j`` over its in-image neighbours
    ``j`` (known ones with their values, removed ones as unknowns), with ``s_i`` the sum of
    those neighbours' weights: the weighted mean of its neighbours, all channels at once. Then
    ``noise`` times standard normal noise (from ``rng``) is added to the filled-in pixels.
    Every removed region must touch a kept pixel (else it has no value to take): at least one
    pixel must be kept.
    """
    image = np.asarray(image, dtype=np.float32)
    keep = np.asarray(keep, dtype=bool)
    if image.ndim != 3 or keep.shape != image.shape[1:]:
        raise ValueError(f"need an image (C, H, W) and a mask (H, W), not {image.shape} and {keep.shape}")
    if not keep.any():
        raise ValueError("noisy linear imputation needs at least one kept pixel")
    channels, height, width = image.shape
    flat_keep = keep.ravel()
    missing = np.flatnonzero(~flat_keep)
    out = image.reshape(channels, -1).copy()
    if missing.size == 0:
        return out.reshape(image.shape)
    variable = np.full(flat_keep.size, -1, dtype=np.int64)
    variable[missing] = np.arange(missing.size)
    rows, cols = np.divmod(missing, width)
    values = image.reshape(channels, -1).astype(np.float64)

    diagonal = np.zeros(missing.size)
    right_hand = np.zeros((missing.size, channels))
    entry_rows, entry_cols, entry_values = [], [], []
    for (d_row, d_col), weight in NEIGHBOUR_WEIGHTS:
        n_rows, n_cols = rows + d_row, cols + d_col
        inside = (n_rows >= 0) & (n_rows < height) & (n_cols >= 0) & (n_cols < width)
        equation = np.flatnonzero(inside)
        neighbour = n_rows[inside] * width + n_cols[inside]
        diagonal[equation] += weight
        known = flat_keep[neighbour]
        right_hand[equation[known]] += weight * values[:, neighbour[known]].T
        entry_rows.append(equation[~known])
        entry_cols.append(variable[neighbour[~known]])
        entry_values.append(np.full(int((~known).sum()), -weight))
    solution = _solve(
        diagonal,
        np.concatenate(entry_rows),
        np.concatenate(entry_cols),
        np.concatenate(entry_values),
        right_hand,
    )
    filled = solution.T.astype(np.float32)
    if noise:
        generator = rng if rng is not None else np.random.default_rng()
        filled += np.float32(noise) * generator.standard_normal(filled.shape, dtype=np.float32)
    out[:, missing] = filled
    return out.reshape(image.shape)


def _solve(
    diagonal: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, right_hand: np.ndarray
) -> np.ndarray:
    """Solve the sparse system (``diagonal`` plus the off-diagonal entries) for every channel."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    size = diagonal.size
    index = np.arange(size)
    matrix = coo_matrix(
        (np.concatenate([diagonal, values]), (np.concatenate([index, rows]), np.concatenate([index, cols]))),
        shape=(size, size),
    ).tocsc()
    solution = spsolve(matrix, right_hand)
    return np.asarray(solution, dtype=np.float64).reshape(size, -1)


def road_keep_masks(
    heatmap: np.ndarray, percentiles: Sequence[float] = ROAD_PERCENTILES
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The pixels kept at each percentile: (most relevant removed first, least relevant first).

    As in the reference: MoRF keeps ``map < percentile(map, p)``, LeRF keeps ``1 - map <
    percentile(1 - map, p)``, with the threshold rounded to float32 the way torch compares a
    float32 tensor with a number. NaN counts as 0 (no evidence).
    """
    heat = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0)
    inverted = np.float32(1.0) - heat
    most, least = [], []
    for percentile in percentiles:
        most.append(heat < np.float32(np.percentile(heat, percentile)))
        least.append(inverted < np.float32(np.percentile(inverted, percentile)))
    return most, least


def random_map(shape: tuple[int, int], seed: int, cells: int = RANDOM_MAP_CELLS) -> np.ndarray:
    """A random map as coarse as Grad-CAM's: uniform noise on ``cells`` x ``cells``, upsampled
    bilinearly to ``shape`` (H, W). The yardstick of :func:`road_score`."""
    from PIL import Image

    grid = np.random.default_rng(seed).random((cells, cells), dtype=np.float32)
    resized = Image.fromarray(grid).resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def road_score(
    classifier: ProbabilityModel,
    prepared: np.ndarray,
    heatmap: np.ndarray,
    target: int,
    *,
    percentiles: Sequence[float] = ROAD_PERCENTILES,
    noise: float = ROAD_NOISE,
    seed: int = 0,
    random_maps: int = 1,
    batch_size: int = 32,
    method: str | None = None,
    label: str = "",
    cancel: Callable[[], bool] | None = None,
) -> RoadResult:
    """The ROAD score of a heat map for class ``target`` (see :class:`RoadResult`).

    ``prepared`` is the model input (C, H, W) the map explains and ``heatmap`` the map at input
    resolution (H, W), raw or normalised (only its order matters). For each percentile the
    input is imputed twice (most and least relevant pixels removed). ``random_maps`` random
    maps (:func:`random_map`, seeded from ``seed``) are scored the same way as the yardstick
    (:attr:`RoadResult.random_score`, their mean; 0: none, and the verdict judges the score
    alone). All imputed inputs and the original go through ``classifier.probabilities``
    together, in batches of ``batch_size`` (37 inputs for the defaults: two batches). The
    imputer's noise is seeded by ``seed``. ``method`` (a catalog key) and ``label`` only shape
    the sentence and the suggestion. ``cancel`` is asked between imputations; when it says yes,
    :class:`~resnet_gui.core.explain.base.ExplanationCancelled` is raised.
    """
    prepared = np.asarray(prepared, dtype=np.float32)
    heat = np.asarray(heatmap, dtype=np.float32)
    if prepared.ndim != 3:
        raise ValueError(f"prepared input must be (C, H, W), not shape {prepared.shape}")
    if heat.shape != prepared.shape[1:]:
        raise ValueError(f"heat map shape {heat.shape} does not match the input's {prepared.shape[1:]}")
    if not percentiles or not all(0 < p < 100 for p in percentiles):
        raise ValueError(f"percentiles must be between 0 and 100 (exclusive), not {list(percentiles)!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size!r}")
    if random_maps < 0:
        raise ValueError(f"random_maps must be >= 0, not {random_maps!r}")

    rng = np.random.default_rng(seed)
    maps = [heat] + [random_map(heat.shape, seed * 1000 + index + 1) for index in range(random_maps)]
    inputs = [prepared]
    for current in maps:
        most, least = road_keep_masks(current, percentiles)
        for keep in [*most, *least]:
            if cancel is not None and cancel():
                from resnet_gui.core.explain.base import ExplanationCancelled

                raise ExplanationCancelled("The faithfulness check was cancelled.")
            # A flat map keeps nothing below its own percentile: nothing is told apart, keep all.
            inputs.append(
                noisy_linear_impute(prepared, keep, noise=noise, rng=rng) if keep.any() else prepared
            )
    column = target_probabilities(classifier, inputs, target, batch_size)
    count = len(percentiles)
    original = float(column[0])
    curves = column[1:].reshape(len(maps), 2, count)  # map, (MoRF, LeRF), percentile
    scores = (curves[:, 1].mean(axis=1) - curves[:, 0].mean(axis=1)) / 2.0
    score = float(scores[0])
    random_score = float(scores[1:].mean()) if random_maps else None
    # Ascending share removed: percentile p removes 100 - p %.
    order = np.argsort([100.0 - p for p in percentiles], kind="stable")
    removed = np.array([(100.0 - percentiles[i]) / 100.0 for i in order])
    morf, lerf = curves[0, 0][order], curves[0, 1][order]
    random_curves = curves[1:].mean(axis=0)[:, order] if random_maps else None
    sentence, suggestion = road_sentence(score, morf, lerf, original, label, method, random_score)
    return RoadResult(
        score=score,
        verdict=road_verdict(score, random_score),
        sentence=sentence,
        suggestion=suggestion,
        removed=removed,
        morf=morf,
        lerf=lerf,
        original=original,
        random_score=random_score,
        target=int(target),
        method=method,
        label=label,
        random_morf=None if random_curves is None else random_curves[0],
        random_lerf=None if random_curves is None else random_curves[1],
    )
