"""The metadata an exported model carries, as plain strings (a public interface; README documents it).

Written into an ONNX file's ``metadata_props``, a TorchScript file's ``_extra_files`` and a JSON file
beside either, so a program that has only the exported file knows how to feed it. Every value is a
string, JSON where structured::

    resnet_gui_format  "resnet-gui-export/1"
    name               the model's name in the app
    architecture       "resnet50", "resnet50_v1", ...
    categories         JSON list of the class names, in output index order
    resize_size        "256": the shorter side is resized to this many pixels ...
    interpolation      "bilinear" | "bicubic" | "nearest": ... with this filter
    crop_size          "224": then the centre square of this side is cut out
    channel_order      "RGB" | "BGR": the order of the input's 3 channels
    value_range        "[0, 1]" | "[0, 255]": pixel values are scaled to this range ...
    mean, std          JSON lists of 3 numbers, per input channel, in that value range:
                       input = (pixel - mean) / std
    input, output      "input" (NCHW float32, any batch size), "logits" (apply softmax)
    quantization       "none" | "int8"
    preprocessing      the same in one sentence, for people

The value range is chosen so the numbers read naturally: a model fed pixel values minus a mean
(Keras/Caffe style, std 1/255 in 0-1 units) is described in 0-255 (``mean [103.939, 116.779, 123.68]``,
``std [1, 1, 1]``), every other model in 0-1 (``mean [0.485, 0.456, 0.406]``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from resnet_gui.core.errors import ModelMetadataError
from resnet_gui.core.formats import EXPORT_FORMAT
from resnet_gui.core.metadata import metadata_categories, metadata_name
from resnet_gui.core.preprocessing import Preprocessing

__all__ = [
    "FORMAT_KEY",
    "INPUT_NAME",
    "METADATA_KEYS",
    "OUTPUT_NAME",
    "OnnxModelInfo",
    "describe_preprocessing",
    "export_metadata",
    "parse_export_metadata",
    "value_range_of",
]

FORMAT_KEY = "resnet_gui_format"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
VALUE_RANGES: dict[str, float] = {"[0, 1]": 1.0, "[0, 255]": 255.0}

#: Every key an exported model's metadata has, in the order written.
METADATA_KEYS: tuple[str, ...] = (
    FORMAT_KEY,
    "name",
    "architecture",
    "categories",
    "resize_size",
    "interpolation",
    "crop_size",
    "channel_order",
    "value_range",
    "mean",
    "std",
    "input",
    "output",
    "quantization",
    "preprocessing",
)
#: Below this std (in 0-1 units) on every channel, a model takes raw pixel values minus a mean.
_RAW_PIXEL_STD = 0.02


@dataclass(frozen=True)
class OnnxModelInfo:
    """What an exported model's metadata says (an ONNX file's, or a TorchScript file's: the same keys).

    ``preprocessing`` keeps mean/std in 0-1 units as :class:`Preprocessing` always does, so
    ``preprocessing.prepare(image)`` feeds the exported model exactly as the app fed the original.
    """

    preprocessing: Preprocessing
    categories: tuple[str, ...]
    architecture: str
    name: str


def value_range_of(preprocessing: Preprocessing) -> str:
    """``"[0, 255]"`` for a model fed raw pixel values minus a mean, else ``"[0, 1]"``."""
    return "[0, 255]" if max(preprocessing.std) < _RAW_PIXEL_STD else "[0, 1]"


def _numbers(values: tuple[float, float, float], scale: float) -> list[float]:
    # Rounded to 9 significant digits: 103.939/255*255 reads back as 103.939, not 103.93900000000001,
    # and 9 digits still give back the same float32 the app computes with (tested).
    return [float(f"{value * scale:.9g}") for value in values]


def describe_preprocessing(preprocessing: Preprocessing) -> str:
    """One sentence saying how to prepare a photo, with the numbers of :func:`export_metadata`."""
    value_range = value_range_of(preprocessing)
    scale = VALUE_RANGES[value_range]
    return (
        f"Resize the shorter side to {preprocessing.resize_size} pixels ({preprocessing.interpolation}), "
        f"cut out the centre {preprocessing.crop_size}x{preprocessing.crop_size} square, take the "
        f"{preprocessing.channel_order} channels with values in {value_range}, subtract mean "
        f"{_numbers(preprocessing.mean, scale)} and divide by std {_numbers(preprocessing.std, scale)}, "
        "channels first (NCHW, float32)."
    )


def export_metadata(
    *,
    name: str,
    architecture: str,
    categories: tuple[str, ...] | list[str],
    preprocessing: Preprocessing,
    quantization: str = "none",
) -> dict[str, str]:
    """The metadata of an exported model, every value a string (see the module's table)."""
    value_range = value_range_of(preprocessing)
    scale = VALUE_RANGES[value_range]
    values = {
        FORMAT_KEY: EXPORT_FORMAT,
        "name": name,
        "architecture": architecture,
        "categories": json.dumps(list(categories), ensure_ascii=False),
        "resize_size": str(preprocessing.resize_size),
        "interpolation": preprocessing.interpolation,
        "crop_size": str(preprocessing.crop_size),
        "channel_order": preprocessing.channel_order,
        "value_range": value_range,
        "mean": json.dumps(_numbers(preprocessing.mean, scale)),
        "std": json.dumps(_numbers(preprocessing.std, scale)),
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "quantization": quantization,
        "preprocessing": describe_preprocessing(preprocessing),
    }
    return {key: values[key] for key in METADATA_KEYS}


def _field(metadata: Mapping[str, str], key: str) -> str:
    value = metadata.get(key)
    if value is None:
        raise ModelMetadataError(f"its metadata has no '{key}'")
    if not isinstance(value, str):
        raise ModelMetadataError(f"its metadata '{key}' is not a text")
    return value


def _json(metadata: Mapping[str, str], key: str) -> object:
    try:
        return json.loads(_field(metadata, key))
    except ValueError:
        raise ModelMetadataError(f"its metadata '{key}' is not valid JSON") from None


def parse_export_metadata(
    metadata: Mapping[str, str], source: str | Path = "", num_classes: int | None = None
) -> OnnxModelInfo:
    """Read and validate our metadata (untrusted: a file from anywhere).

    Raises :class:`ModelMetadataError` naming the file and the first missing or bad key. With
    ``num_classes`` (the graph's output width, when known), the class names must be that many.
    """
    try:
        tag = metadata.get(FORMAT_KEY)
        if tag is None:
            raise ModelMetadataError(
                f"its metadata has no '{FORMAT_KEY}', so it was not exported by resnet-gui export"
            )
        if tag != EXPORT_FORMAT:
            raise ModelMetadataError(
                f"its '{FORMAT_KEY}' is {json.dumps(str(tag))[:60]}; this version reads {EXPORT_FORMAT}"
            )
        value_range = _field(metadata, "value_range")
        if value_range.replace(" ", "") not in {key.replace(" ", "") for key in VALUE_RANGES}:
            raise ModelMetadataError(
                f"its metadata 'value_range' is {json.dumps(value_range)[:60]}; it must be [0, 1] or [0, 255]"
            )
        scale = 255.0 if value_range.replace(" ", "") == "[0,255]" else 1.0
        raw = {key: _json(metadata, key) for key in ("resize_size", "crop_size", "mean", "std")}
        for key in ("mean", "std"):
            values = raw[key]
            if isinstance(values, list) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values
            ):
                raw[key] = [v / scale for v in values]
        raw["interpolation"] = _field(metadata, "interpolation")
        raw["channel_order"] = _field(metadata, "channel_order")
        preprocessing = Preprocessing.from_dict(raw)
        architecture = _field(metadata, "architecture")
        if not architecture.strip() or len(architecture) > 100:
            raise ModelMetadataError("its metadata 'architecture' is empty or too long")
        names = _json(metadata, "categories")
        if not isinstance(names, list):
            raise ModelMetadataError("its metadata 'categories' is not a list of class names")
        expected = len(names) if num_classes is None else num_classes
        if not names:
            raise ModelMetadataError("its metadata 'categories' is an empty list")
        categories = metadata_categories({"categories": json.dumps(names)}, expected, lambda n: ())
        name = metadata_name({"name": _field(metadata, "name")}, "")
    except ModelMetadataError as error:
        raise error.about(source) if source else error from None
    return OnnxModelInfo(preprocessing, categories, architecture, name)
