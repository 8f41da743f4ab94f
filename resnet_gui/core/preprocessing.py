"""The preprocessing a set of weights expects, as data.

torchvision weights carry their own transforms (resize, centre crop, mean/std); weights
imported from Keras expect BGR input in 0-255 minus the ImageNet mean. Both are described
by one :class:`Preprocessing`, stored with the weights, and applied by one function so a
single image and a batch are always prepared identically.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from resnet_gui.core.errors import ModelMetadataError

#: Bounds of the sizes a model's metadata may ask for: a tampered file saying ``resize_size:
#: 100000`` would otherwise make every photo a multi-gigabyte array.
MIN_SIDE = 8
MAX_SIDE = 1024
#: Beyond this many pixels after resizing (an extreme aspect ratio such as 20000x1), only the part
#: the centre crop keeps is resized, so the work per photo stays that of a normal photo.
MAX_RESIZED_PIXELS_FACTOR = 4

_INTERPOLATIONS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side, centre-crop, scale to 0-1, normalise.

    ``mean`` and ``std`` are in 0-1 units, per channel, in the order the model sees them
    (``channel_order``). Keras "caffe" preprocessing (BGR, 0-255, minus mean, no std) is
    ``mean=(103.939/255, 116.779/255, 123.68/255)``, ``std=(1/255,)*3``, ``channel_order="BGR"``.
    """

    resize_size: int = 256
    crop_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"
    channel_order: str = "RGB"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"unknown channel order {self.channel_order!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Preprocessing:
        """Read and validate preprocessing metadata (a model file's, so untrusted).

        Raises :class:`ModelMetadataError` naming the first bad field: a missing key, a size out of
        ``MIN_SIDE..MAX_SIDE``, a crop larger than the resize, a mean or std that is not three
        finite numbers (std > 0), an unknown interpolation or channel order.
        """
        if not isinstance(data, dict):
            raise ModelMetadataError(f"its preprocessing is {_kind(data)}, not a set of named values")
        resize_size = _side(data, "resize_size")
        crop_size = _side(data, "crop_size")
        if crop_size > resize_size:
            raise ModelMetadataError(
                f"its preprocessing crops {crop_size} pixels out of an image resized to {resize_size}"
            )
        interpolation = data.get("interpolation", "bilinear")
        if interpolation not in _INTERPOLATIONS:
            raise ModelMetadataError(
                f"its preprocessing 'interpolation' is {_shown(interpolation)}; it must be one of "
                f"{', '.join(_INTERPOLATIONS)}"
            )
        channel_order = data.get("channel_order", "RGB")
        if channel_order not in ("RGB", "BGR"):
            raise ModelMetadataError(
                f"its preprocessing 'channel_order' is {_shown(channel_order)}; it must be RGB or BGR"
            )
        return cls(
            resize_size=resize_size,
            crop_size=crop_size,
            mean=_triple(data, "mean", low=-1000.0, high=1000.0),
            std=_triple(data, "std", low=1e-4, high=1000.0),
            interpolation=interpolation,
            channel_order=channel_order,
        )

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """Size after resizing the shorter side, rounded as torchvision's ``Resize`` rounds."""
        if width <= height:
            return self.resize_size, max(1, int(self.resize_size * height / width))
        return max(1, int(self.resize_size * width / height)), self.resize_size

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The region of the original image (left, top, right, bottom) the model sees.

        Explanations use this to put a heat map back on the original image.
        """
        resized_w, resized_h = self.resized_size(width, height)
        left = round((resized_w - self.crop_size) / 2.0)
        top = round((resized_h - self.crop_size) / 2.0)
        sx, sy = width / resized_w, height / resized_h
        return (left * sx, top * sy, (left + self.crop_size) * sx, (top + self.crop_size) * sy)

    def prepare(self, image: Image.Image) -> np.ndarray:
        """An RGB PIL image to a normalised float32 CHW array the model takes.

        An image whose resized form would be huge (a 20000x1 strip resizes to 5 million x 256) has
        only the region of the centre crop resized, with the same scale factors: the same pixels,
        at the cost of a normal photo.
        """
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        new_size = self.resized_size(width, height)
        left = round((new_size[0] - self.crop_size) / 2.0)
        top = round((new_size[1] - self.crop_size) / 2.0)
        if new_size[0] * new_size[1] > MAX_RESIZED_PIXELS_FACTOR * self.resize_size**2:
            sx, sy = width / new_size[0], height / new_size[1]
            box = (left * sx, top * sy, (left + self.crop_size) * sx, (top + self.crop_size) * sy)
            crop = (self.crop_size, self.crop_size)
            return self.to_array(image.resize(crop, _INTERPOLATIONS[self.interpolation], box=box))
        if new_size != image.size:
            image = image.resize(new_size, _INTERPOLATIONS[self.interpolation])
        image = image.crop((left, top, left + self.crop_size, top + self.crop_size))
        return self.to_array(image)

    def to_array(self, image: Image.Image) -> np.ndarray:
        """An RGB image, already at model size, to the normalised float32 CHW array."""
        array = np.asarray(image, dtype=np.float32) / 255.0
        if self.channel_order == "BGR":
            array = array[:, :, ::-1]
        mean, std = np.asarray(self.mean, dtype=np.float32), np.asarray(self.std, dtype=np.float32)
        normalised = (array - mean) / std
        return np.ascontiguousarray(normalised.transpose(2, 0, 1))

    def prepare_batch(self, images: list[Image.Image]) -> np.ndarray:
        """Several images to one NCHW float32 array, each prepared exactly as by :meth:`prepare`."""
        return np.stack([self.prepare(image) for image in images])


def _kind(value: Any) -> str:
    names = {dict: "a set of named values", list: "a list", str: "a text", bool: "true/false"}
    if value is None:
        return "empty"
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _side(data: dict[str, Any], key: str) -> int:
    if key not in data:
        raise ModelMetadataError(f"its preprocessing has no '{key}'")
    value = data[key]
    whole = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value, whole = int(value), True
    if not whole or not MIN_SIDE <= value <= MAX_SIDE:
        raise ModelMetadataError(
            f"its preprocessing '{key}' is {_shown(value)}; it must be a whole number of pixels from "
            f"{MIN_SIDE} to {MAX_SIDE}"
        )
    return int(value)


def _triple(data: dict[str, Any], key: str, *, low: float, high: float) -> tuple[float, float, float]:
    if key not in data:
        raise ModelMetadataError(f"its preprocessing has no '{key}'")
    value = data[key]
    numbers = (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not numbers or not all(math.isfinite(v) and low <= v <= high for v in value):
        raise ModelMetadataError(
            f"its preprocessing '{key}' is {_shown(value)}; it must be three finite numbers (one per "
            f"colour channel) from {low:g} to {high:g}"
        )
    return (float(value[0]), float(value[1]), float(value[2]))


IMAGENET = Preprocessing()

KERAS_CAFFE = Preprocessing(
    resize_size=256,
    crop_size=224,
    mean=(103.939 / 255.0, 116.779 / 255.0, 123.68 / 255.0),
    std=(1 / 255.0, 1 / 255.0, 1 / 255.0),
    channel_order="BGR",
)
