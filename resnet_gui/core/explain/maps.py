"""Heat maps for people: scaling, putting them back on the photo, colouring, saving, checking.

The explanation methods return raw, non-negative heat maps at the model's input resolution
(``crop_size`` x ``crop_size``), covering only the resized centre crop the model saw. This
module turns those into something a user can trust:

* :func:`normalize_maps` scales maps to 0-1, by default with ONE scale shared by all the maps
  shown together (the top-k classes), so a class the model barely considers looks faint
  instead of as hot as the winner; a high percentile, not the maximum, sets the scale, so a
  single hot pixel cannot wash the rest out.
* :func:`map_to_image` puts a map back onto the original photo at full resolution; pixels
  the model never saw (cropped away) are NaN, and :func:`overlay` shows them dimmed.
* :func:`prepare_whole` / ``fit="whole"``: the alternative where the whole photo is squeezed
  to the input size (aspect ignored) so every pixel gets explained.
* :func:`deletion_score`: a faithfulness check (the deletion metric of Petsiuk et al. 2018,
  "RISE"): if a map points at what the model really uses, deleting its hottest pixels first
  must make the class probability fall faster than deleting pixels in random order.

numpy and PIL only: no torch, no Qt. matplotlib is imported lazily for its colormaps only (no
pyplot, no backend).
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from resnet_gui.core.atomic import atomic_path
from resnet_gui.core.explain.catalog import COLORMAPS
from resnet_gui.core.preprocessing import Preprocessing

__all__ = [
    "BASELINES",
    "COLORMAPS",
    "FITS",
    "SUMMARY_FRACTION",
    "UNSEEN_STYLES",
    "DeletionResult",
    "FaithfulnessCurve",
    "ProbabilityModel",
    "RoadResult",
    "colorize",
    "deletion_score",
    "faithfulness_curves",
    "map_to_image",
    "normalize_maps",
    "overlay",
    "prepare_whole",
    "save_heatmap_npy",
    "save_png",
    "side_by_side",
    "with_legend",
]

#: How the model input was made from the photo: ``crop`` = the weights' own resize + centre
#: crop (what classification uses), ``whole`` = the whole photo resized to the input size.
FITS: tuple[str, ...] = ("crop", "whole")
# fit="whole": the longest side is at most this times the shorter one; beyond that the image is squeezed.
MAX_WHOLE_ASPECT = 3.0

#: How :func:`overlay` shows pixels the model did not see: ``dim`` (dark greyscale),
#: ``grey`` (flat mid-grey) or ``original`` (unchanged, no heat drawn).
UNSEEN_STYLES: tuple[str, ...] = ("dim", "grey", "original")

#: What deleted pixels are replaced by in :func:`deletion_score`, see there.
BASELINES: tuple[str, ...] = ("blur", "mean", "zero")

#: The fraction of pixels :meth:`DeletionResult.summary` talks about.
SUMMARY_FRACTION = 0.2

_DIM_BRIGHTNESS = 0.35
_GREY_LEVEL = 128


# --------------------------------------------------------------------------- normalisation


def normalize_maps(
    maps: Sequence[np.ndarray], *, shared: bool = True, clip_percentile: float | None = 99.5
) -> list[np.ndarray]:
    """Raw heat maps to float32 maps in 0-1, for display.

    Each map's scale is the ``clip_percentile`` of its positive values (its maximum when
    ``clip_percentile`` is None); values above the scale become 1. The percentile ignores zeros
    (pixels a method found irrelevant) so a sparse map is not saturated, and it keeps a handful
    of extreme pixels from turning everything else dark.

    ``shared=True`` divides every map by the LARGEST of those scales, so maps shown side by side
    (the top-k classes) stay comparable: a weak class looks weak. The strongest map then looks
    exactly as it would alone. ``shared=False`` scales each map by its own scale, which makes
    every map look equally confident: only use it to study the shape of one map.

    Negative values count as 0, NaN (pixels not seen, see :func:`map_to_image`) stays NaN, and a
    map that is all zero stays all zero.
    """
    if clip_percentile is not None and not 0.0 < clip_percentile <= 100.0:
        raise ValueError(f"clip_percentile must be in (0, 100] or None, not {clip_percentile!r}")
    arrays = [np.asarray(m, dtype=np.float32) for m in maps]
    scales = [_map_scale(a, clip_percentile) for a in arrays]
    if shared:
        top = max(scales, default=0.0)
        scales = [top] * len(arrays)
    result = []
    for array, scale in zip(arrays, scales, strict=True):
        nan = np.isnan(array)
        # posinf -> 1 after clipping; a non-finite scale cannot occur (see _map_scale).
        values = np.nan_to_num(array, nan=0.0, posinf=np.float32(np.finfo(np.float32).max), neginf=0.0)
        with np.errstate(over="ignore"):  # huge values / a tiny scale: inf, clipped to 1
            out = np.clip(values / np.float32(scale), 0.0, 1.0) if scale > 0.0 else np.zeros_like(values)
        out = out.astype(np.float32, copy=False)
        out[nan] = np.nan
        result.append(out)
    return result


def _map_scale(array: np.ndarray, clip_percentile: float | None) -> float:
    """The value that becomes 1: a high percentile of the positive finite values (0 if none)."""
    positive = array[np.isfinite(array) & (array > 0)]
    if positive.size == 0:
        return 0.0
    if clip_percentile is None:
        return float(positive.max())
    scale = float(np.percentile(positive, clip_percentile))
    return scale if scale > 0.0 else float(positive.max())


# --------------------------------------------------------------------------- geometry


def map_to_image(
    heatmap: np.ndarray, image_size: tuple[int, int], preprocessing: Preprocessing, fit: str = "crop"
) -> np.ndarray:
    """A heat map of the model input, resampled onto the original image: float32 (H, W).

    ``image_size`` is the original image's (width, height). With ``fit="crop"`` the map covers
    :meth:`Preprocessing.crop_box` (the resized centre crop the model saw); a pixel whose centre
    lies outside that box is NaN, meaning "not seen by the model". With ``fit="whole"`` the
    input was :func:`prepare_whole`'s squeezed whole image, so the map stretches over the whole
    image and nothing is NaN.

    Any map resolution works (input-sized maps, or e.g. a 7x7 Grad-CAM map): it is resampled
    bilinearly, pixel centres aligned the way PIL resized the photo for the model.
    """
    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r}; choose one of {', '.join(FITS)}")
    width, height = (int(v) for v in image_size)
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, not {image_size!r}")
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim != 2 or heat.shape[0] < 1 or heat.shape[1] < 1:
        raise ValueError(f"heat map must be a 2-D array, not shape {heat.shape}")
    heat = np.nan_to_num(heat, nan=0.0)
    if fit == "whole":
        left, top, right, bottom = 0.0, 0.0, float(width), float(height)
    else:
        left, top, right, bottom = preprocessing.crop_box(width, height)

    # The pixels whose centres (x + 0.5) fall inside the box: [x0, x1) x [y0, y1).
    x0, x1 = (min(max(math.ceil(edge - 0.5), 0), width) for edge in (left, right))
    y0, y1 = (min(max(math.ceil(edge - 0.5), 0), height) for edge in (top, bottom))
    out = np.full((height, width), np.nan, dtype=np.float32)
    if x1 <= x0 or y1 <= y0:
        return out

    # Map units per original pixel; the edge pixels reach up to half a pixel outside the box,
    # so the map is padded by edge replication (PIL refuses a box outside the source).
    map_h, map_w = heat.shape
    scale_x, scale_y = map_w / (right - left), map_h / (bottom - top)
    pad_x, pad_y = math.ceil(scale_x) + 1, math.ceil(scale_y) + 1
    padded = np.pad(heat, ((pad_y, pad_y), (pad_x, pad_x)), mode="edge")
    box = (
        pad_x + (x0 - left) * scale_x,
        pad_y + (y0 - top) * scale_y,
        pad_x + (x1 - left) * scale_x,
        pad_y + (y1 - top) * scale_y,
    )
    resampled = Image.fromarray(padded).resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=box)
    out[y0:y1, x0:x1] = np.asarray(resampled, dtype=np.float32)
    return out


def prepare_whole(image: Image.Image, preprocessing: Preprocessing) -> np.ndarray:
    """The model input for ``fit="whole"``: the WHOLE image, resized without cropping.

    The shorter side becomes the crop size and the aspect ratio is kept (a ResNet pools globally,
    so it takes any input size); beyond :data:`MAX_WHOLE_ASPECT` the longer side is capped, and
    only then is the image squeezed. Used when the user wants every pixel explained. Normalisation
    and channel order are those of :meth:`Preprocessing.to_array`, the code path of ``prepare``.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    short = preprocessing.crop_size
    scale = short / min(image.size)
    longest = round(MAX_WHOLE_ASPECT * short)
    width, height = (min(longest, max(short, round(side * scale))) for side in image.size)
    resample = getattr(Image.Resampling, preprocessing.interpolation.upper())
    if image.size != (width, height):
        image = image.resize((width, height), resample)
    return preprocessing.to_array(image)


# --------------------------------------------------------------------------- colour


@functools.cache
def _lookup_table(colormap: str) -> np.ndarray:
    """256 RGBA uint8 colours of a matplotlib colormap, from its first colour to its last."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    import matplotlib  # lazily: only the colormap registry, no pyplot and no backend

    table = matplotlib.colormaps[colormap](np.linspace(0.0, 1.0, 256), bytes=True)
    table = np.ascontiguousarray(table, dtype=np.uint8)
    table.setflags(write=False)
    return table


def _colour_indices(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lookup-table indices (uint8, clipped, rounded) of a 0-1 map, and its NaN mask."""
    scaled = np.multiply(values, np.float32(255.0), dtype=np.float32)
    nan = np.isnan(scaled)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    np.rint(scaled, out=scaled)
    scaled[nan] = 0.0
    return scaled.astype(np.uint8), nan


def colorize(map01: np.ndarray, colormap: str = "turbo") -> np.ndarray:
    """A 0-1 map to uint8 RGBA (H, W, 4): 0 is the colormap's first colour, 1 its last.

    NaN (not seen by the model) becomes fully transparent; values outside 0-1 are clipped.
    """
    table = _lookup_table(colormap)
    index, nan = _colour_indices(np.asarray(map01, dtype=np.float32))
    # One 32-bit lookup per pixel: several times faster than indexing (H, W, 4) bytes.
    packed = np.take(table.view(np.uint32).ravel(), index)
    packed[nan] = 0
    return packed.view(np.uint8).reshape(*index.shape, 4)


def _as_rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    """A PIL image or an array (H, W), (H, W, 3) or (H, W, 4) as uint8 RGB (H, W, 3)."""
    if isinstance(image, Image.Image):
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W), (H, W, 3) or (H, W, 4), not shape {array.shape}")
    return array[:, :, :3]


def overlay(
    image: Image.Image | np.ndarray,
    map_on_image: np.ndarray,
    *,
    colormap: str = "turbo",
    alpha: float = 0.5,
    unseen: str = "dim",
) -> np.ndarray:
    """Blend a 0-1 map (from :func:`map_to_image`, same H x W) over the photo: uint8 RGB (H, W, 3).

    Where the model saw the photo: ``(1 - alpha) * photo + alpha * colour``, so ``alpha=0`` is
    the photo exactly and ``alpha=1`` the colormap alone. Where it did not (NaN), no heat is
    drawn whatever ``alpha`` is, and ``unseen`` says how to mark it (see :data:`UNSEEN_STYLES`):
    ``dim`` darkens and desaturates it, so the user reads "not looked at", not "not important".
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], not {alpha!r}")
    if unseen not in UNSEEN_STYLES:
        raise ValueError(f"unknown unseen style {unseen!r}; choose one of {', '.join(UNSEEN_STYLES)}")
    rgb = _as_rgb(image)
    values = np.asarray(map_on_image, dtype=np.float32)
    if values.shape != rgb.shape[:2]:
        raise ValueError(f"map shape {values.shape} does not match the image's {rgb.shape[:2]}")
    index, nan = _colour_indices(values)
    colours = np.take(_lookup_table(colormap)[:, :3], index, axis=0)
    # Fixed-point blend (alpha in 1/256ths): exact at alpha 0 and 1, and fast on 12 MP photos.
    weight = np.uint16(round(alpha * 256))
    blended = rgb.astype(np.uint16) * (np.uint16(256) - weight)
    blended += colours.astype(np.uint16) * weight
    blended += np.uint16(128)
    out = (blended >> 8).astype(np.uint8)
    if nan.any():
        if unseen == "original":
            out[nan] = rgb[nan]
        elif unseen == "grey":
            out[nan] = _GREY_LEVEL
        else:
            luma = rgb[nan].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            out[nan] = np.rint(luma * _DIM_BRIGHTNESS).astype(np.uint8)[:, None]
    return out


def side_by_side(
    image: Image.Image | np.ndarray,
    map_on_image: np.ndarray,
    *,
    colormap: str = "turbo",
    alpha: float = 0.5,
    unseen: str = "dim",
    gap: int = 0,
) -> np.ndarray:
    """The photo and its overlay next to each other, ``gap`` white pixels apart: uint8 RGB."""
    if gap < 0:
        raise ValueError(f"gap must be >= 0, not {gap!r}")
    rgb = _as_rgb(image)
    blended = overlay(rgb, map_on_image, colormap=colormap, alpha=alpha, unseen=unseen)
    spacer = np.full((rgb.shape[0], gap, 3), 255, dtype=np.uint8)
    return np.concatenate([rgb, spacer, blended], axis=1)


# --------------------------------------------------------------------------- saving


def save_png(array: np.ndarray | Image.Image, path: str | Path) -> Path:
    """Write an image (uint8 (H, W), (H, W, 3), (H, W, 4), or PIL) as PNG, atomically.

    A reader (or a crash) never sees a half-written file. Returns the path written.
    """
    if isinstance(array, Image.Image):
        image = array
    else:
        data = np.asarray(array)
        if (
            data.dtype != np.uint8
            or data.ndim not in (2, 3)
            or (data.ndim == 3 and data.shape[2] not in (3, 4))
        ):
            raise ValueError(
                f"save_png needs uint8 (H, W), (H, W, 3) or (H, W, 4), not {data.dtype} {data.shape}"
            )
        image = Image.fromarray(np.ascontiguousarray(data))
    from PIL.PngImagePlugin import PngInfo

    from resnet_gui.core.outputs import PNG_SOFTWARE

    info = PngInfo()
    info.add_text("Software", PNG_SOFTWARE)  # so a later run knows this file is its own to replace
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", pnginfo=info)
    return path


def save_heatmap_npy(map_on_image: np.ndarray, path: str | Path) -> Path:
    """Export a heat map as an .npy file: float32 (H, W), 0-1, pixel-aligned with the original image.

    Meant for analysis in other tools, so it holds plain numbers: NaN (pixels outside the crop
    the model saw) is written as 0, and values are clipped to 0-1. To know which pixels were
    not seen, use :meth:`Preprocessing.crop_box`. Written atomically, at exactly ``path`` (no
    ``.npy`` is appended). Returns the path written.
    """
    values = np.asarray(map_on_image, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"heat map must be 2-D (H, W), not shape {values.shape}")
    values = np.clip(np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0).astype(np.float32)
    buffer = io.BytesIO()  # numpy's own short-write error carries no reason; a plain write's does
    np.save(buffer, values, allow_pickle=False)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


# --------------------------------------------------------------------------- faithfulness


class ProbabilityModel(Protocol):
    """What :func:`deletion_score` needs of a classifier (:class:`~resnet_gui.core.engine.Classifier`)."""

    def probabilities(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class DeletionResult:
    """The deletion curve of a heat map, and of random pixel order as the yardstick.

    ``curve[i]`` is the target's probability after replacing the ``fractions[i]`` most
    highlighted pixels by the baseline; ``auc`` is the area under it over 0-1 (lower = the map
    found pixels the model needs). ``random_*`` is the same with a random pixel order.
    """

    fractions: np.ndarray
    curve: np.ndarray
    auc: float
    random_curve: np.ndarray
    random_auc: float
    target: int = -1
    baseline: str = "blur"

    key = "deletion"
    """The :data:`~resnet_gui.core.explain.scores.SCORES` key of this result (a class constant)."""

    @property
    def better_than_random(self) -> bool:
        """Whether deleting the map's pixels hurts the prediction more than deleting random ones."""
        return self.auc < self.random_auc

    def to_dict(self, label: str = "") -> dict[str, object]:
        """The result as plain JSON values (``explain --json``'s ``faithfulness``; README there).

        ``removed[i]`` (0 to 1) is the share of pixels deleted when the target's probability was
        ``curve[i]`` (map order) and ``random_curve[i]`` (random squares, the yardstick).
        """
        return {
            "score": self.key,
            "removed": _floats(self.fractions),
            "curve": _floats(self.curve),
            "random_curve": _floats(self.random_curve),
            "auc": float(self.auc),
            "random_auc": float(self.random_auc),
            "better_than_random": bool(self.better_than_random),
            "baseline": self.baseline,
            "target": int(self.target),
            "sentence": self.summary(label or "the class"),
        }

    def at(self, fraction: float, *, random: bool = False) -> float:
        """The probability after deleting ``fraction`` of the pixels (interpolated between steps)."""
        return float(np.interp(fraction, self.fractions, self.random_curve if random else self.curve))

    def summary(self, label: str) -> str:
        """One sentence a user can read, about the class called ``label``."""
        start, after, after_random = (
            self.at(0.0),
            self.at(SUMMARY_FRACTION),
            self.at(SUMMARY_FRACTION, random=True),
        )
        percent = round(SUMMARY_FRACTION * 100)
        if f"{after:.2f}" == f"{start:.2f}":
            change = f"leaves '{label}' at {start:.2f}"
        else:
            verb = "drops" if after < start else "raises"
            change = f"{verb} '{label}' from {start:.2f} to {after:.2f}"
        return (
            f"removing the top {percent} % of highlighted pixels {change} "
            f"(random squares: {after_random:.2f}); area under the deletion curve {self.auc:.2f} "
            f"vs {self.random_auc:.2f} for random order (lower is better)"
        )


#: ROAD scores (see :class:`RoadResult`) at or below this count as "weak" whatever the random
#: maps score: removing the map's pixels moves the probability by only a few hundredths.
ROAD_WEAK_BELOW = 0.02

#: :attr:`RoadResult.verdict`'s values, best first.
VERDICTS: tuple[str, ...] = ("faithful", "weak", "not faithful")


@dataclass(frozen=True)
class RoadResult:
    """A heat map's ROAD score (Rong et al., ICML 2022), its curves and what to tell the user.

    ``removed[i]`` is the share of pixels removed (0.1 to 0.9) and filled in again by noisy
    linear imputation (see :mod:`resnet_gui.core.explain.road`); ``morf[i]`` is the target's
    probability after removing that share of the MOST relevant pixels first, ``lerf[i]`` after
    removing the LEAST relevant first; ``original`` is the probability of the untouched input.

    ``score`` is pytorch-grad-cam's ``ROADCombined``: ``(mean(lerf) - mean(morf)) / 2``, in
    probability units (-0.5 to 0.5). Positive: removing what the map calls important hurts the
    prediction more than removing what it calls unimportant. A random map scores 0 on average,
    but on one photo it can score well above 0 when its blobs happen to fall on the object
    (up to +0.2 on the sample photos), so ``random_score`` is the yardstick: the mean ROAD score
    of random maps as coarse as Grad-CAM's, on the same photo (None when none were scored).
    ``verdict`` is one of :data:`VERDICTS` (see :func:`road_verdict`), ``sentence`` says it in
    plain words for the class ``label``, and ``suggestion`` is the catalog key of the method to
    compare with when the verdict is not ``faithful`` (else None).
    """

    score: float
    verdict: str
    sentence: str
    suggestion: str | None
    removed: np.ndarray
    morf: np.ndarray
    lerf: np.ndarray
    original: float
    random_score: float | None = None
    target: int = -1
    method: str | None = None
    label: str = ""
    key: str = "road"
    random_morf: np.ndarray | None = None
    """The random maps' MoRF curve (their mean at each ``removed``; None without random maps)."""
    random_lerf: np.ndarray | None = None

    @property
    def better_than_random(self) -> bool:
        """Whether the map beats the random maps (or, without them, their average of 0)."""
        return self.score > (self.random_score if self.random_score is not None else 0.0)

    def summary(self, label: str | None = None) -> str:
        """The plain-words sentence (for another ``label``, if given)."""
        if label is None or label == self.label:
            return self.sentence
        return road_sentence(
            self.score, self.morf, self.lerf, self.original, label, self.method, self.random_score
        )[0]

    def to_dict(self) -> dict[str, object]:
        """The result as plain JSON values (``explain --json``'s ``faithfulness``; README there).

        ``removed[i]`` (0.1 to 0.9) is the share of pixels removed when the target's probability
        was ``most_relevant_first[i]`` (MoRF) and ``least_relevant_first[i]`` (LeRF); ``original``
        is its probability on the untouched input (nothing removed). ``random_*`` are the random
        maps' (the yardstick), None without them.
        """
        return {
            "score": self.key,
            "value": float(self.score),
            "verdict": self.verdict,
            "sentence": self.sentence,
            "suggestion": self.suggestion,
            "target": int(self.target),
            "original": float(self.original),
            "removed": _floats(self.removed),
            "most_relevant_first": _floats(self.morf),
            "least_relevant_first": _floats(self.lerf),
            "random_score": None if self.random_score is None else float(self.random_score),
            "random_most_relevant_first": None if self.random_morf is None else _floats(self.random_morf),
            "random_least_relevant_first": None if self.random_lerf is None else _floats(self.random_lerf),
        }


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


@dataclass(frozen=True)
class FaithfulnessCurve:
    """One line of a faithfulness chart: the target's probability as more of the photo is removed.

    ``removed`` are shares of the pixels (0 to 1, ascending, starting at 0: the untouched input);
    ``yardstick`` marks the random order's line, which the map's must beat.
    """

    name: str
    removed: np.ndarray
    probability: np.ndarray
    yardstick: bool = False


def faithfulness_curves(result: RoadResult | DeletionResult) -> tuple[FaithfulnessCurve, ...]:
    """The lines to draw for a score's result, in legend order (what the app's chart shows).

    ROAD: most and least relevant pixels removed first, each from the untouched input (0 %
    removed, :attr:`RoadResult.original`); the random maps are in the score line. Deletion: the
    map's order and random squares.
    """
    if isinstance(result, RoadResult):
        removed = np.concatenate([[0.0], np.asarray(result.removed, dtype=np.float64)])
        start = [float(result.original)]
        return (
            FaithfulnessCurve(
                "important removed first", removed, np.concatenate([start, result.morf]).astype(np.float64)
            ),
            FaithfulnessCurve(
                "unimportant removed first", removed, np.concatenate([start, result.lerf]).astype(np.float64)
            ),
        )
    fractions = np.asarray(result.fractions, dtype=np.float64)
    return (
        FaithfulnessCurve("map order", fractions, np.asarray(result.curve, dtype=np.float64)),
        FaithfulnessCurve(
            "random squares", fractions, np.asarray(result.random_curve, dtype=np.float64), yardstick=True
        ),
    )


def road_verdict(score: float, random_score: float | None = None) -> str:
    """The :data:`VERDICTS` entry for a ROAD score: ``not faithful`` at or below 0, ``weak`` at
    or below the random maps' score or :data:`ROAD_WEAK_BELOW`, else ``faithful``."""
    if score <= 0.0:
        return VERDICTS[2]
    if score <= ROAD_WEAK_BELOW or (random_score is not None and score <= random_score):
        return VERDICTS[1]
    return VERDICTS[0]


def road_sentence(
    score: float,
    morf: np.ndarray,
    lerf: np.ndarray,
    original: float,
    label: str,
    method: str | None,
    random_score: float | None = None,
) -> tuple[str, str | None]:
    """(one sentence for people, the catalog key of the method to try or None) for a ROAD score."""
    from resnet_gui.core.explain.catalog import CATALOG
    from resnet_gui.core.explain.scores import suggest_method

    name = CATALOG[method].display_name if method in CATALOG else "the map"
    label = label or "the class"
    verdict = road_verdict(score, random_score)
    yardstick = f"; a random map scores {random_score:+.2f}" if random_score is not None else ""
    removing = (
        f"removing what {name} marks as important lowers '{label}' from {original:.2f} to "
        f"{float(np.mean(morf)):.2f} on average, removing what it marks as unimportant to "
        f"{float(np.mean(lerf)):.2f}"
    )
    head = f"(ROAD {score:+.2f}{yardstick})"
    if verdict == VERDICTS[0]:
        return f"Faithful {head}: {removing}, so the map shows what the model uses.", None
    suggestion = suggest_method(method)
    advice = f" Try {CATALOG[suggestion].display_name} on the same photo." if suggestion else ""
    if verdict == VERDICTS[1]:
        meaning = "hardly better than a random map, so the map only loosely shows what the model uses."
        return f"Weak {head}: {removing}: {meaning}{advice}", suggestion
    meaning = "no better than chance, so the map does not show what the model uses."
    return f"Not faithful {head}: {removing}: {meaning}{advice}", suggestion


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def _blurred(prepared: np.ndarray) -> np.ndarray:
    """A strongly blurred copy of a prepared (C, H, W) input, in the same normalised units.

    PIL blurs 8-bit images only, so each channel is mapped to 0-255 by its own range, blurred,
    and mapped back: the rounding is no coarser than the 8-bit photo the input came from. The
    Gaussian's standard deviation is 1/20 of the input's size (11 px at 224): objects become
    shapeless colour while the overall colours stay those of the photo.
    """
    channels, height, width = prepared.shape
    radius = max(2.0, max(height, width) / 20.0)
    low = prepared.reshape(channels, -1).min(axis=1)[:, None, None]
    span = prepared.reshape(channels, -1).max(axis=1)[:, None, None] - low
    span = np.where(span > 0, span, 1.0).astype(np.float32)
    levels = np.clip(np.rint((prepared - low) / span * 255.0), 0, 255).astype(np.uint8)
    blurred = np.empty_like(prepared, dtype=np.float32)
    for index in range(channels):
        channel = Image.fromarray(levels[index]).filter(ImageFilter.GaussianBlur(radius))
        blurred[index] = np.asarray(channel, dtype=np.float32) / 255.0 * span[index] + low[index]
    return blurred


def _baseline_input(prepared: np.ndarray, baseline: str) -> np.ndarray:
    """What deleted pixels are replaced by, as a full (C, H, W) array."""
    if baseline == "blur":
        return _blurred(prepared)
    if baseline == "mean":
        return np.broadcast_to(prepared.mean(axis=(1, 2), keepdims=True), prepared.shape).astype(np.float32)
    return np.zeros_like(prepared, dtype=np.float32)


def _random_block_order(shape: tuple[int, ...], block: int, rng: np.random.Generator) -> np.ndarray:
    """Flat pixel indices in a random order of ``block``-sized squares (random within a square)."""
    if block < 1:
        raise ValueError(f"random_block must be >= 1, not {block!r}")
    height, width = shape
    rows, cols = np.divmod(np.arange(height * width), width)
    cells_across = -(-width // block)
    cell = (rows // block) * cells_across + cols // block
    cell_rank = rng.permutation(int(cell.max()) + 1)[cell]
    jitter = rng.random(height * width)
    return np.lexsort((jitter, cell_rank))


def target_probabilities(
    classifier: ProbabilityModel, inputs: Sequence[np.ndarray], target: int, batch_size: int
) -> np.ndarray:
    """The probability of class ``target`` for each prepared input (C, H, W), run ``batch_size`` at
    a time: what the faithfulness scores (deletion, ROAD) follow. Float64, shape ``(len(inputs),)``."""
    probabilities = []
    for start in range(0, len(inputs), batch_size):
        batch = np.stack(inputs[start : start + batch_size]).astype(np.float32, copy=False)
        probabilities.append(np.asarray(classifier.probabilities(batch)))
    all_probabilities = np.concatenate(probabilities)
    if not 0 <= target < all_probabilities.shape[1]:
        raise ValueError(f"target {target} is not a class index (the model has {all_probabilities.shape[1]})")
    return all_probabilities[:, target].astype(np.float64)


def deletion_score(
    classifier: ProbabilityModel,
    prepared: np.ndarray,
    heatmap: np.ndarray,
    target: int,
    *,
    steps: int = 10,
    baseline: str = "blur",
    seed: int = 0,
    batch_size: int = 32,
    random_block: int = 16,
) -> DeletionResult:
    """How faithful a heat map is: the deletion metric (Petsiuk et al. 2018, "RISE").

    ``prepared`` is the model input (C, H, W) the map explains and ``heatmap`` the raw or
    normalised map at input resolution (H, W). Pixels are deleted (all channels) most
    highlighted first, in ``steps`` equal fractions from 0 to 1, and the probability of
    ``target`` is recorded after each; the same is done in a random order (seeded by ``seed``)
    as the yardstick. The random order deletes whole ``random_block`` x ``random_block`` squares
    (1 = single pixels): a heat map deletes contiguous regions, while the same number of single
    pixels scattered over the whole photo destroys texture everywhere at once, which is a
    yardstick of another kind. A map that points at what the model uses deletes the prediction
    faster: a lower area under the curve than random. Ties in the map are broken randomly too, so a
    flat region is not deleted in raster order.

    ``baseline`` is what a deleted pixel becomes:

    * ``blur`` (default): the same pixel of a strongly blurred copy of the input. It removes the
      detail while keeping the photo's colours, so the model is not shown sharp-edged holes of
      an unnatural colour, which by themselves change the prediction: with ``zero``, deleting
      20 % of random pixels already takes the real ResNet-50's "espresso" on the coffee photo
      from 0.99 to 0.56, so random order is no yardstick any more (with ``blur``: 0.96).
    * ``mean``: the input's own mean colour.
    * ``zero``: 0 in normalised units, i.e. the dataset's mean colour (the usual choice in
      RISE's code).

    All perturbed inputs go through ``classifier.probabilities`` in batches of ``batch_size``
    (one batch for the default 10 steps); the unperturbed and fully deleted inputs are shared by
    both orders. With ``steps`` a multiple of 5, the summary's 20 % is on the grid.
    """
    prepared = np.asarray(prepared, dtype=np.float32)
    heat = np.asarray(heatmap, dtype=np.float32)
    if prepared.ndim != 3:
        raise ValueError(f"prepared input must be (C, H, W), not shape {prepared.shape}")
    if heat.shape != prepared.shape[1:]:
        raise ValueError(f"heat map shape {heat.shape} does not match the input's {prepared.shape[1:]}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, not {steps!r}")
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; choose one of {', '.join(BASELINES)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size!r}")

    pixels = heat.size
    rng = np.random.default_rng(seed)
    # NaN = no evidence: deleted last. Shuffling before a stable sort breaks ties at random.
    scores = np.nan_to_num(heat.ravel(), nan=-np.inf)
    shuffle = rng.permutation(pixels)
    heat_order = shuffle[np.argsort(-scores[shuffle], kind="stable")]
    random_order = _random_block_order(heat.shape, random_block, rng)

    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.rint(fractions * pixels).astype(np.int64)
    replacement = _baseline_input(prepared, baseline)

    def perturbed(order: np.ndarray, count: int) -> np.ndarray:
        rank = np.empty(pixels, dtype=np.int64)
        rank[order] = np.arange(pixels)
        deleted = (rank < count).reshape(heat.shape)
        return np.where(deleted[None], replacement, prepared)

    # Heat order at every step, random order at the inner steps only (0 and 1 are the same input).
    inputs = [perturbed(heat_order, int(count)) for count in counts]
    inputs += [perturbed(random_order, int(count)) for count in counts[1:-1]]
    column = target_probabilities(classifier, inputs, target, batch_size)
    curve = column[: steps + 1]
    random_curve = np.concatenate([curve[:1], column[steps + 1 :], curve[-1:]])
    return DeletionResult(
        fractions=fractions,
        curve=curve,
        auc=_trapezoid(curve, fractions),
        random_curve=random_curve,
        random_auc=_trapezoid(random_curve, fractions),
        target=int(target),
        baseline=baseline,
    )


def with_legend(image: np.ndarray, caption: str, colormap: str = COLORMAPS[0]) -> np.ndarray:
    """``image`` (uint8 RGB) with a white band under it: ``caption`` (the method and the class) and
    the colormap as a bar from "less important" to "more important", so an exported PNG says what
    it shows on its own. The image's pixels are unchanged, above the band."""
    width = image.shape[1]
    size = max(12, min(28, width // 40))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    pad = max(6, size // 2)
    bar_height = max(8, size // 2)
    band_height = pad + size + pad + bar_height + 4 + size + pad
    band = Image.new("RGB", (width, band_height), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    draw.text((pad, pad), caption, fill=(20, 20, 20), font=font)
    bar_width = max(1, width - 2 * pad)
    gradient = colorize(np.linspace(0.0, 1.0, bar_width, dtype=np.float32)[None, :], colormap)[:, :, :3]
    top = pad + size + pad
    band.paste(Image.fromarray(np.repeat(gradient, bar_height, axis=0)), (pad, top))
    labels_top = top + bar_height + 4
    draw.text((pad, labels_top), "less important", fill=(90, 90, 90), font=font)
    right = draw.textlength("more important", font=font)
    draw.text((width - pad - right, labels_top), "more important", fill=(90, 90, 90), font=font)
    return np.concatenate([np.asarray(image, dtype=np.uint8)[:, :, :3], np.asarray(band)], axis=0)
