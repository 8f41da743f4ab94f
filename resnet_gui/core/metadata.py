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
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnet_gui.core.errors import ModelMetadataError, NonFiniteWeightsError
from resnet_gui.core.preprocessing import Preprocessing

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_OOD_THRESHOLD",
    "check_finite_weights",
    "metadata_categories",
    "metadata_data_root",
    "metadata_has_temperature",
    "metadata_name",
    "metadata_ood_threshold",
    "metadata_preprocessing",
    "metadata_temperature",
    "metadata_unsure_threshold",
    "metadata_val_accuracy",
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


def _decoded_field(metadata: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    """A JSON-object field (a JSON string in a weights file's metadata, or already a dict), or None."""
    value = metadata.get(key)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def _metric_number(metadata: Mapping[str, Any], key: str) -> float | None:
    """``metrics`` → ``key`` as a finite float, or None (absent, malformed, not a number)."""
    metrics = _decoded_field(metadata, "metrics")
    value = None if metrics is None else metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def metadata_unsure_threshold(metadata: Mapping[str, Any]) -> float | None:
    """The probability under which a bundle's own metrics call its top prediction unsure, if it says.

    Read from ``metrics`` → ``unsure_threshold`` (a JSON string in a weights file's metadata, or a
    dict): a fraction in (0, 1), or a percentage in [1, 100). Anything else (absent, malformed, out of
    range) gives None, so the app's default applies: a bad value never stops a model from loading.
    A fine-tune fits it on its validation photos (:func:`resnet_gui.core.calibration.unsure_threshold`),
    on the temperature-scaled probabilities: compare it with those.
    """
    value = _metric_number(metadata, "unsure_threshold")
    if value is None:
        return None
    if 1.0 <= value < 100.0:
        value /= 100.0
    return value if 0.0 < value < 1.0 else None


def metadata_val_accuracy(metadata: Mapping[str, Any]) -> float | None:
    """The validation accuracy (0-1) a bundle's metrics record, or None (absent or not in [0, 1])."""
    value = _metric_number(metadata, "val_accuracy")
    return value if value is not None and 0.0 <= value <= 1.0 else None


def metadata_temperature(metadata: Mapping[str, Any]) -> float:
    """The temperature a bundle's logits are divided by before the softmax (``metrics`` →
    ``temperature``); 1.0 (no scaling) when absent or not a number in [TEMPERATURE_MIN,
    TEMPERATURE_MAX]: an old bundle, or a damaged or hostile one, is used as it is."""
    from resnet_gui.core.calibration import TEMPERATURE_MAX, TEMPERATURE_MIN

    value = _metric_number(metadata, "temperature")
    return value if value is not None and TEMPERATURE_MIN <= value <= TEMPERATURE_MAX else 1.0


def metadata_has_temperature(metadata: Mapping[str, Any]) -> bool:
    """Whether the bundle holds a usable fitted temperature (it was calibrated), even one of 1.0."""
    from resnet_gui.core.calibration import TEMPERATURE_MAX, TEMPERATURE_MIN

    value = _metric_number(metadata, "temperature")
    return value is not None and TEMPERATURE_MIN <= value <= TEMPERATURE_MAX


#: The largest out-of-distribution threshold accepted (an energy score is a logit-sized number).
MAX_OOD_THRESHOLD = 1e6


def metadata_ood_threshold(metadata: Mapping[str, Any]) -> float | None:
    """The energy score above which a photo looks unlike the bundle's training photos (``metrics``
    → ``ood_threshold``), fitted with the bundle's temperature; None when absent, not a finite
    number within ±:data:`MAX_OOD_THRESHOLD`, or fitted for another score (``ood_score``)."""
    from resnet_gui.core.calibration import OOD_SCORE

    metrics = _decoded_field(metadata, "metrics")
    if metrics is None or metrics.get("ood_score", OOD_SCORE) != OOD_SCORE:
        return None
    value = _metric_number(metadata, "ood_threshold")
    return value if value is not None and abs(value) <= MAX_OOD_THRESHOLD else None


def metadata_data_root(metadata: Mapping[str, Any]) -> Path | None:
    """The dataset folder a bundle was fine-tuned on (``training`` → ``data_root``), or None.

    Only what the file says, checked to be an absolute path of bounded length: whether the folder
    is still there is for the caller to look at (it may have moved since the training).
    """
    training = _decoded_field(metadata, "training")
    value = None if training is None else training.get("data_root")
    if not isinstance(value, str) or not value or len(value) > 4096 or "\x00" in value:
        return None
    path = Path(value)
    return path if path.is_absolute() else None


def trained_dataset_folder(
    metadata: Mapping[str, Any],
    *,
    not_recorded: Callable[[str], Exception],
    moved: Callable[[str], Exception],
    why: str = "",
) -> Path:
    """The dataset folder a bundle was fine-tuned on, still there: what corrections and reviews act on.

    Raises ``not_recorded(sentence)`` for a model that records none (``why`` ends that sentence) and
    ``moved(sentence)`` when the folder is gone: each caller's own typed error, the same words.
    """
    from resnet_gui.core.text import printable_path

    root = metadata_data_root(metadata)
    if root is None:
        raise not_recorded(f"This model records no dataset folder (it was not fine-tuned by this app){why}.")
    if not root.is_dir():
        raise moved(
            f"The dataset folder '{printable_path(root)}' this model was trained on has moved or been "
            "deleted since the training; put it back, or fine-tune on its new place first."
        )
    return root


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
