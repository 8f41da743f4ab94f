"""The preprocessing a set of weights expects, as data.

torchvision weights carry their own transforms (resize, centre crop, mean/std); weights
imported from Keras expect BGR input in 0-255 minus the ImageNet mean. Both are described
by one :class:`Preprocessing`, stored with the weights, and applied by one function so a
single image and a batch are always prepared identically.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

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
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(
            resize_size=int(data["resize_size"]),
            crop_size=int(data["crop_size"]),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
            interpolation=str(data.get("interpolation", "bilinear")),
            channel_order=str(data.get("channel_order", "RGB")),
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
        """An RGB PIL image to a normalised float32 CHW array the model takes."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        new_size = self.resized_size(*image.size)
        if new_size != image.size:
            image = image.resize(new_size, _INTERPOLATIONS[self.interpolation])
        left = round((new_size[0] - self.crop_size) / 2.0)
        top = round((new_size[1] - self.crop_size) / 2.0)
        image = image.crop((left, top, left + self.crop_size, top + self.crop_size))
        return self.to_array(image)

    def to_array(self, image: Image.Image) -> np.ndarray:
        """An RGB image, already at model size, to the normalised float32 CHW array."""
        array = np.asarray(image, dtype=np.float32) / 255.0
        if self.channel_order == "BGR":
            array = array[:, :, ::-1]
        array = (array - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(array.transpose(2, 0, 1))

    def prepare_batch(self, images: list[Image.Image]) -> np.ndarray:
        """Several images to one NCHW float32 array, each prepared exactly as by :meth:`prepare`."""
        return np.stack([self.prepare(image) for image in images])


IMAGENET = Preprocessing()

KERAS_CAFFE = Preprocessing(
    resize_size=256,
    crop_size=224,
    mean=(103.939 / 255.0, 116.779 / 255.0, 123.68 / 255.0),
    std=(1 / 255.0, 1 / 255.0, 1 / 255.0),
    channel_order="BGR",
)
