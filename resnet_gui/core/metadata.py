"""A model file's metadata, validated once, where it is read.

A bundle or checkpoint is untrusted input: its header says how to preprocess photos and what
the classes are called. Read here, every field is checked for type, range and length, and a
bad one is refused with :class:`~resnet_gui.core.errors.ModelMetadataError` naming the field,
so no later step (a resize, a table, a file name built from a class name) meets nonsense.
The weights themselves are checked for NaN and infinity, which would make every prediction
meaningless (and ``--json`` print invalid JSON).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from resnet_gui.core.errors import ModelMetadataError, NonFiniteWeightsError
from resnet_gui.core.preprocessing import Preprocessing

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_NAME_LENGTH",
    "check_finite_weights",
    "metadata_categories",
    "metadata_name",
    "metadata_preprocessing",
    "metadata_unsure_threshold",
]

#: The longest class or model name accepted (a folder name is at most 255 bytes on most systems).
MAX_NAME_LENGTH = 200


def _json_field(metadata: Mapping[str, str], key: str) -> Any:
    try:
        return json.loads(metadata[key])
    except (ValueError, TypeError):
        raise ModelMetadataError(f"its '{key}' field is not valid JSON") from None


def metadata_preprocessing(metadata: Mapping[str, str], default: Preprocessing) -> Preprocessing:
    """The preprocessing recorded in ``metadata``, validated; ``default`` when there is none."""
    if "preprocessing" not in metadata:
        return default
    return Preprocessing.from_dict(_json_field(metadata, "preprocessing"))


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ModelMetadataError(f"{what} is not a text")
    if not value.strip():
        raise ModelMetadataError(f"{what} is empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ModelMetadataError(f"{what} is {len(value):,} characters long (at most {MAX_NAME_LENGTH})")
    return value


def metadata_categories(
    metadata: Mapping[str, str], num_classes: int, default: Callable[[int], tuple[str, ...]]
) -> tuple[str, ...]:
    """The class names in ``metadata``: a list of ``num_classes`` distinct, bounded strings.

    Without names, ``default(num_classes)`` gives them (ImageNet's, or "class 0", "class 1", ...).
    """
    if not metadata.get("categories"):
        return default(num_classes)
    categories = _json_field(metadata, "categories")
    if not isinstance(categories, list):
        raise ModelMetadataError("its class names ('categories') are not a list")
    if len(categories) != num_classes:
        raise ModelMetadataError(
            f"it names {len(categories)} classes but its classifier has {num_classes} outputs"
        )
    names = tuple(_check_name(name, f"class name {index + 1}") for index, name in enumerate(categories))
    if len(set(names)) != len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise ModelMetadataError(f"the class name {json.dumps(repeated)[:60]} appears twice")
    return names


def metadata_name(metadata: Mapping[str, str], fallback: str) -> str:
    """The model's own name from ``metadata`` (bounded), else ``fallback``."""
    if "name" not in metadata:
        return fallback
    return _check_name(metadata["name"], "its name")


def metadata_unsure_threshold(metadata: Mapping[str, Any]) -> float | None:
    """The probability under which a bundle's own metrics call its top prediction unsure, if it says.

    Read from ``metrics`` → ``unsure_threshold`` (a JSON string in a weights file's metadata, or a
    dict): a fraction in (0, 1), or a percentage in [1, 100). Anything else (absent, malformed, out of
    range) gives None, so the app's default applies: a bad value never stops a model from loading.
    """
    metrics = metadata.get("metrics")
    if isinstance(metrics, str):
        try:
            metrics = json.loads(metrics)
        except ValueError:
            return None
    if not isinstance(metrics, Mapping):
        return None
    value = metrics.get("unsure_threshold")
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    value = float(value)
    if 1.0 <= value < 100.0:
        value /= 100.0
    return value if 0.0 < value < 1.0 else None


def check_finite_weights(state_dict: Mapping[str, torch.Tensor], source: str = "") -> None:
    """Refuse weights holding NaN or infinity, naming the first such layer."""
    import torch

    for key, tensor in state_dict.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            where = f" in '{source}'" if source else ""
            raise NonFiniteWeightsError(
                f"The weights{where} hold NaN or infinite values (first in '{key}'), so every prediction "
                "would be meaningless: the file is damaged, or the training that made it diverged."
            )
