"""Train a fine-tuned model again, with the same settings, on its photos plus new ones.

"Retrain with N new photos" (the app's corrections banner) needs nothing from the user: the bundle
holds its settings, its split, where its photos were and how to load its base model. The new
photos join the training part; the validation photos stay the same, so the new model is judged
on the photos the old one was. In head mode the cached features of the old photos are reused,
so only the new photos cost a forward pass. No Qt.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.training.config import TrainConfig
from resnet_gui.core.training.planning import unique_bundle_path
from resnet_gui.core.training.split import Split

__all__ = ["RetrainError", "RetrainPlan", "base_source_of", "plan_retrain"]

_FILE_PREFIX = "file "


class RetrainError(ResNetGuiError):
    """The model cannot be trained again as it was (not fine-tuned here, its photos are gone)."""

    exit_code = 1


@dataclass(frozen=True)
class RetrainPlan:
    """What "Retrain" runs: the old model's settings and split, the new photos in the training part."""

    bundle: Path
    base: str
    """The base model, as :func:`resnet_gui.core.models.load_model` takes it (a name or a file)."""
    split: Split
    config: TrainConfig
    out: Path
    """A new bundle beside the old one: retraining never replaces the model it started from."""
    added: tuple[Path, ...]


def base_source_of(training: Mapping[str, Any]) -> str:
    """How to load a bundle's base model again: its recorded source, else its registry name or file.

    Bundles written before the source was recorded say ``base_weights: "file PATH"`` for a file
    and ``base_model: "name:WEIGHTS"`` for a registry model.
    """
    source = str(training.get("base_source") or "")
    if source:
        return source
    weights = str(training.get("base_weights") or "")
    if weights.startswith(_FILE_PREFIX):
        return weights[len(_FILE_PREFIX) :]
    return str(training.get("base_model") or "")


def plan_retrain(
    bundle: str | os.PathLike[str],
    metadata: Mapping[str, Any],
    photos: Sequence[tuple[Path, str]],
    out: Path | None = None,
) -> RetrainPlan:
    """The plan to train ``bundle`` again with ``photos`` (``(path, class name)``) added.

    ``metadata`` is the bundle's decoded metadata (:func:`read_bundle_info`'s, or a loaded
    model's, whose JSON fields are still text). Raises :class:`RetrainError` with one sentence
    when the bundle was not fine-tuned here, its base model is unknown, or its photos are gone.
    """
    bundle = Path(bundle)
    training = _json_field(metadata, "training")
    split_data = _json_field(metadata, "split")
    root = training.get("data_root")
    if not training or not split_data or not root:
        raise RetrainError(
            f"'{bundle.name}' was not fine-tuned in this app (it records no training photos), "
            "so it cannot be trained again here."
        )
    base = base_source_of(training)
    if not base:
        raise RetrainError(f"'{bundle.name}' does not say which model it was fine-tuned from.")
    if not Path(root).is_dir():
        raise RetrainError(
            f"The photos '{bundle.name}' was trained on were in '{root}', which is no longer there "
            "(moved or renamed since training). Put the folder back, or fine-tune again from its "
            "new place."
        )
    try:
        split = Split.from_dict(split_data, root)
    except (KeyError, TypeError, ValueError):
        raise RetrainError(f"The record of the training photos in '{bundle.name}' is damaged.") from None
    missing = split.missing_files()
    if missing:
        raise RetrainError(
            f"{len(missing)} of the photos '{bundle.name}' was trained on are gone from '{root}' "
            f"(e.g. '{missing[0].name}'); fine-tune again to use the folder as it is now."
        )
    split = split.with_training_photos(photos)
    config = TrainConfig.from_dict({k: v for k, v in training.items() if k in _CONFIG_FIELDS})
    target = out if out is not None else unique_bundle_path(bundle.parent, _retrained_stem(bundle.stem))
    return RetrainPlan(bundle, base, split, config, target, tuple(Path(p) for p, _ in photos))


_CONFIG_FIELDS = frozenset(TrainConfig.__dataclass_fields__)


def _retrained_stem(stem: str) -> str:
    """``ants-bees-resnet50-head-3`` → ``ants-bees-resnet50-head``: the numbering starts again."""
    head, _, number = stem.rpartition("-")
    return head if head and number.isdigit() else stem


def _json_field(metadata: Mapping[str, Any], key: str) -> dict[str, Any]:
    import json

    value = metadata.get(key)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}
