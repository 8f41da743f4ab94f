"""Classify a photo with a model exported by ``resnet-gui export``, using only onnxruntime, numpy and Pillow.

No PyTorch and no ResNet GUI needed: the .onnx file says how to prepare a photo (its metadata_props:
resize_size, crop_size, interpolation, channel_order, value_range, mean, std) and names its classes
(categories). Usage::

    pip install onnxruntime numpy pillow
    python onnx_classify.py model.onnx photo.jpg [more photos ...] [--top-k 5]

Prints one line per class, most probable first: ``probability  class``; with several photos, each
photo's lines follow a ``== photo`` line.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import onnxruntime
from PIL import Image, ImageOps

FILTERS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}
SCALES = {"[0, 1]": 1.0, "[0, 255]": 255.0}


def read_metadata(session: onnxruntime.InferenceSession) -> dict[str, str]:
    metadata = session.get_modelmeta().custom_metadata_map
    missing = [
        key for key in ("resize_size", "crop_size", "mean", "std", "categories") if key not in metadata
    ]
    if missing:
        sys.exit(
            f"This .onnx file has no {', '.join(missing)} in its metadata: "
            "it was not made by resnet-gui export."
        )
    return metadata


def prepare(path: str, metadata: dict[str, str]) -> np.ndarray:
    """The photo as the model's input: resize the shorter side, centre crop, scale, normalise, NCHW."""
    resize, crop = int(metadata["resize_size"]), int(metadata["crop_size"])
    with Image.open(path) as opened:
        # As the app does: a JPEG is decoded at the smallest scale (1/2, 1/4, 1/8) that keeps the
        # shorter side at least resize_size: faster, and the very pixels the app's model saw.
        opened.draft("RGB", (resize, resize))
        image = ImageOps.exif_transpose(opened).convert("RGB")
    width, height = image.size
    if width <= height:
        size = (resize, max(1, int(resize * height / width)))
    else:
        size = (max(1, int(resize * width / height)), resize)
    image = image.resize(size, FILTERS[metadata.get("interpolation", "bilinear")])
    left, top = round((size[0] - crop) / 2.0), round((size[1] - crop) / 2.0)
    image = image.crop((left, top, left + crop, top + crop))
    scale = SCALES[metadata.get("value_range", "[0, 1]")]
    # As the app computes it: pixels to 0-1 first, mean and std converted to the same units.
    array = np.asarray(image, dtype=np.float32) / 255.0
    if metadata.get("channel_order", "RGB") == "BGR":
        array = array[:, :, ::-1]
    mean = np.asarray([m / scale for m in json.loads(metadata["mean"])], dtype=np.float32)
    std = np.asarray([s / scale for s in json.loads(metadata["std"])], dtype=np.float32)
    array = (array - mean) / std
    return np.ascontiguousarray(array.transpose(2, 0, 1)[None])


def main() -> int:
    parser = argparse.ArgumentParser(description="Top-k classes of a photo with an exported .onnx model.")
    parser.add_argument("model", help="the .onnx file written by resnet-gui export")
    parser.add_argument("photos", nargs="+", metavar="photo", help="a photo (JPEG, PNG, ...)")
    parser.add_argument("--top-k", type=int, default=5, help="how many classes to print (default 5)")
    args = parser.parse_args()

    session = onnxruntime.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    metadata = read_metadata(session)
    categories = json.loads(metadata["categories"])
    input_name = session.get_inputs()[0].name
    for photo in args.photos:
        logits = session.run(None, {input_name: prepare(photo, metadata)})[0][0].astype(np.float64)
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        if len(args.photos) > 1:
            print(f"== {photo}")
        for index in np.argsort(-probabilities, kind="stable")[: max(1, args.top_k)]:
            print(f"{probabilities[index]:.4f}  {categories[index]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
