"""Training views of an image, built from the model's own preprocessing.

The centre view is exactly what inference feeds the model (``Preprocessing.prepare``), so the
validation score measured here is the one ``resnet-gui classify``/``evaluate`` reproduce. The
augmented views use the same resampling, channel order (BGR for the Keras model) and
normalisation (``Preprocessing.to_array``), after a random crop, a horizontal flip and,
optionally, a colour jitter. The crop is one of :data:`AUGMENTATION_KINDS`: a random resized crop
(for pretrained ImageNet networks) or the CIFAR recipe of the 2015 ResNet paper, the inference
view padded by an eighth of its side (4 px at 32) and cropped back at a random offset.

Randomness comes from a numpy generator seeded per (run seed, epoch, image), never from a global
state, so a view is the same whichever thread builds it and whether or not the run was resumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from resnet_gui.core.images import load_image
from resnet_gui.core.preprocessing import Preprocessing

__all__ = [
    "AUGMENTATION_KINDS",
    "Augmentation",
    "AugmentationKind",
    "decode",
    "pad_of",
    "random_view",
    "view_rng",
]

AugmentationKind = Literal["resized_crop", "pad_crop"]
AUGMENTATION_KINDS: tuple[AugmentationKind, ...] = ("resized_crop", "pad_crop")
PAD_FRACTION = 8
"""``pad_crop`` pads by the side over this (4 px at 32 px, the paper's)."""


@dataclass(frozen=True)
class Augmentation:
    """How augmented views are drawn. Scale is the crop's share of the image area."""

    scale: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    color_jitter: float = 0.0
    """Brightness, contrast and saturation each scaled by a factor in [1 - j, 1 + j]; 0 is off."""
    kind: AugmentationKind = "resized_crop"
    """``resized_crop`` (``scale``/``ratio`` apply) or ``pad_crop`` (pad and crop back, no resizing)."""

    def __post_init__(self) -> None:
        if self.kind not in AUGMENTATION_KINDS:
            raise ValueError(f"unknown augmentation {self.kind!r}; choose one of {AUGMENTATION_KINDS}")


def pad_of(size: int) -> int:
    """The zero padding of ``pad_crop`` for a ``size``-pixel view (4 for 32)."""
    return max(1, size // PAD_FRACTION)


def view_rng(seed: int, epoch: int, index: int, view: int = 0) -> np.random.Generator:
    """The generator of one view of one image: independent of order and threads."""
    return np.random.default_rng([seed & 0xFFFFFFFF, epoch, index, view])


def decode(path, preprocessing: Preprocessing) -> Image.Image:
    """Decode for training at no less than the resize size (JPEG draft decoding makes it fast)."""
    return load_image(path, min_size=preprocessing.resize_size)


def _crop_box(width: int, height: int, aug: Augmentation, rng: np.random.Generator) -> tuple[int, ...]:
    """torchvision's RandomResizedCrop box, drawn from ``rng``."""
    area = width * height
    log_ratio = (math.log(aug.ratio[0]), math.log(aug.ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*aug.scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, left + w, top + h
    # Fallback: the largest central crop within the allowed ratios.
    in_ratio = width / height
    if in_ratio < aug.ratio[0]:
        w, h = width, round(width / aug.ratio[0])
    elif in_ratio > aug.ratio[1]:
        h, w = height, round(height * aug.ratio[1])
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def random_view(
    image: Image.Image, preprocessing: Preprocessing, aug: Augmentation, rng: np.random.Generator
) -> np.ndarray:
    """One augmented, normalised CHW float32 view of an RGB image."""
    size = preprocessing.crop_size
    resample = Image.Resampling[preprocessing.interpolation.upper()]
    if aug.kind == "pad_crop":
        view = _pad_crop(image, preprocessing, rng)
    else:
        left, top, right, bottom = _crop_box(*image.size, aug, rng)
        box = (float(left), float(top), float(right), float(bottom))
        view = image.resize((size, size), resample, box=box)
    if aug.flip and rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if aug.color_jitter > 0:
        low, high = max(0.0, 1 - aug.color_jitter), 1 + aug.color_jitter
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            view = enhancer(view).enhance(float(rng.uniform(low, high)))
    return preprocessing.to_array(view)


def _pad_crop(image: Image.Image, preprocessing: Preprocessing, rng: np.random.Generator) -> Image.Image:
    """The inference view (resize + centre crop), zero-padded on every side and cropped back to
    its size at a random offset: the CIFAR recipe, which moves the picture by up to the pad."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    size = preprocessing.crop_size
    box = preprocessing.crop_box(*image.size)
    resample = Image.Resampling[preprocessing.interpolation.upper()]
    view = (
        image
        if image.size == (size, size) and box == (0, 0, size, size)
        else image.resize((size, size), resample, box=box)
    )
    pad = pad_of(size)
    padded = ImageOps.expand(view, border=pad, fill=(0, 0, 0))
    left, top = (int(v) for v in rng.integers(0, 2 * pad + 1, 2))
    return padded.crop((left, top, left + size, top + size))
