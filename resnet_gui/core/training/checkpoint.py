"""Checkpoints of a run in progress: enough to continue it exactly where it stopped.

Written atomically after every epoch next to the bundle (``<bundle>.checkpoint.safetensors``):
the trained part's weights, the best weights so far, the optimiser state and where the run is.
The header also records what makes a run *this* run (settings, split, fingerprints of the images
and of the base weights), so a resume never continues a different one by mistake.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_gui.core.checkpoints import read_weights_file, write_weights_file
from resnet_gui.core.formats import CHECKPOINT_FORMAT
from resnet_gui.core.training.bundle import (
    WRITE_ERRORS,
    SaveError,
    checkpoint_path,
    normalise_bundle_path,
    write_failure_reason,
)
from resnet_gui.core.training.config import RUNTIME_FIELDS, TrainConfig
from resnet_gui.core.training.events import TrainingError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointInfo",
    "RunState",
    "read_checkpoint_info",
    "restore_checkpoint",
    "write_checkpoint",
]



@dataclass
class RunState:
    """What a checkpoint restores: where the run is and the best weights so far."""

    stage_index: int = 0
    epoch: int = 0
    """Epochs completed in the current stage."""
    stage_done: bool = False
    best_loss: float = math.inf
    best_stage: str | None = None
    best_epoch: int | None = None
    stage_best_loss: float = math.inf
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    optimizer_state: dict[str, Any] | None = None


def write_checkpoint(
    path: Path,
    trained: dict[str, torch.Tensor],
    state: RunState,
    optimizer: torch.optim.Optimizer | None,
    identity: dict[str, str],
) -> None:
    """Write the checkpoint atomically: on failure the previous one stays. Raises :class:`SaveError`."""
    tensors: dict[str, torch.Tensor] = {f"model/{k}": v for k, v in trained.items()}
    if state.best_state is not None:
        tensors.update({f"best/{k}": v for k, v in state.best_state.items()})
    optimizer_meta: dict[str, Any] | None = None
    if optimizer is not None:
        saved = optimizer.state_dict()
        for index, values in saved["state"].items():
            for name, value in values.items():
                tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
                tensors[f"optim/{index}/{name}"] = tensor
        optimizer_meta = {"param_groups": saved["param_groups"]}
    position = {
        "stage_index": state.stage_index,
        "epoch": state.epoch,
        "stage_done": state.stage_done,
        "best_loss": None if math.isinf(state.best_loss) else state.best_loss,
        "best_stage": state.best_stage,
        "best_epoch": state.best_epoch,
        "stage_best_loss": None if math.isinf(state.stage_best_loss) else state.stage_best_loss,
        "bad_epochs": state.bad_epochs,
    }
    metadata = {
        "format": CHECKPOINT_FORMAT,
        **identity,
        "position": json.dumps(position),
        "history": json.dumps(state.history),
        "optimizer": json.dumps(optimizer_meta),
    }
    try:
        write_weights_file(path, tensors, metadata)
    except WRITE_ERRORS as err:
        reason = write_failure_reason(err)
        if reason is None:
            raise
        raise SaveError(path, reason) from None


@dataclass(frozen=True)
class CheckpointInfo:
    """What an interrupted run was doing: enough to resume it with the same settings."""

    path: Path
    config: TrainConfig
    split: dict[str, Any]
    base_model: str
    base_source: str
    epochs_done: int
    stage: str


def read_checkpoint_info(bundle: str | Path) -> CheckpointInfo | None:
    """The checkpoint next to ``bundle`` (header only), or ``None`` when there is none."""
    import safetensors

    path = checkpoint_path(normalise_bundle_path(bundle))
    if not path.is_file():
        return None
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
    except (OSError, safetensors.SafetensorError, ValueError) as err:
        raise TrainingError(
            f"The checkpoint '{path}' cannot be read ({err}); delete it to start over."
        ) from None
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"'{path}' is not a training checkpoint of this app.")
    try:
        config = TrainConfig.from_dict(json.loads(metadata["config"]))
        position = json.loads(metadata["position"])
        history = json.loads(metadata.get("history", "[]"))
        stages = (["probe"] if config.probe_epochs else []) + ["train"]
        return CheckpointInfo(
            path=path,
            config=config,
            split=json.loads(metadata["split"]),
            base_model=str(metadata.get("base_model", "")),
            base_source=str(metadata.get("base_source", "")),
            epochs_done=len(history),
            stage=stages[min(int(position["stage_index"]), len(stages) - 1)],
        )
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        # A tampered or half-understood header: the run cannot be resumed, but it can start over.
        raise TrainingError(
            f"The checkpoint '{path}' is damaged (its header cannot be understood); delete it to start over."
        ) from None


def _read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    tensors, metadata = read_weights_file(path)
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"'{path}' is not a training checkpoint of this app.")
    return tensors, metadata


def restore_checkpoint(
    path: Path, identity: dict[str, str], network: nn.Module
) -> tuple[RunState, dict[str, torch.Tensor]]:
    """Load a checkpoint into ``network`` after checking it belongs to this very run."""
    tensors, metadata = _read_checkpoint(path)
    differences = []
    saved_config = json.loads(metadata.get("config", "{}"))
    wanted_config = json.loads(identity["config"])
    for key in sorted(set(saved_config) | set(wanted_config)):
        if key in RUNTIME_FIELDS:
            continue
        if saved_config.get(key) != wanted_config.get(key):
            differences.append(
                f"{key}: {saved_config.get(key)!r} in the checkpoint, now {wanted_config.get(key)!r}"
            )
    for key, what in (
        ("base_fingerprint", "the base model's weights"),
        ("dataset_fingerprint", "the images (added, removed or changed files)"),
        ("split", "the train/validation split"),
    ):
        if metadata.get(key) != identity[key]:
            differences.append(f"{what} differ")
    if differences:
        raise TrainingError(
            f"The checkpoint '{path}' is from a different run, so it cannot be resumed: "
            + "; ".join(differences)
            + ". Run without --resume to start over (the checkpoint is then replaced)."
        )
    position = json.loads(metadata["position"])
    model_state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    best_state = {k[len("best/") :]: v for k, v in tensors.items() if k.startswith("best/")} or None
    missing = network.load_state_dict(model_state, strict=False)
    if missing.unexpected_keys:
        raise TrainingError(f"The checkpoint '{path}' does not fit the model.")
    optimizer_meta = json.loads(metadata.get("optimizer", "null"))
    optimizer_state = None
    if optimizer_meta is not None:
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim/"):
                _, index, name = key.split("/", 2)
                per_param.setdefault(int(index), {})[name] = value
        optimizer_state = {"state": per_param, "param_groups": optimizer_meta["param_groups"]}
    state = RunState(
        stage_index=int(position["stage_index"]),
        epoch=int(position["epoch"]),
        stage_done=bool(position["stage_done"]),
        best_loss=math.inf if position["best_loss"] is None else float(position["best_loss"]),
        best_stage=position["best_stage"],
        best_epoch=position["best_epoch"],
        stage_best_loss=math.inf
        if position["stage_best_loss"] is None
        else float(position["stage_best_loss"]),
        bad_epochs=int(position["bad_epochs"]),
        history=json.loads(metadata.get("history", "[]")),
        best_state=best_state,
        optimizer_state=optimizer_state,
    )
    return state, model_state
