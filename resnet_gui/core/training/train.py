"""Fine-tune a ResNet on a folder of labelled images, as a generator of progress events.

:func:`train` yields :class:`~resnet_gui.core.training.events.Progress` while frozen features are
computed, a :class:`StepMetrics` after every optimisation step, an :class:`EpochMetrics` after
every epoch and a :class:`TrainResult` last. Whoever iterates decides how to show them (a
progress bar, a Qt signal); ``cancel()`` is looked at before every step.

How a run goes:

* ``head``: the backbone's pooled features are computed once (the centre view of every image,
  plus ``cached_views`` augmented views of training images) and only the new classifier trains:
  after the extraction an epoch costs milliseconds.
* ``partial``: layer3's outputs are cached the same way and layer4 + the classifier train on
  them. ``full``: every layer trains on freshly augmented images, the backbone at a lower
  learning rate. Both first fit the classifier alone on frozen features for ``probe_epochs``
  (linear probing then fine-tuning, Kumar et al. 2022): a random classifier would otherwise send
  large, random gradients into the pretrained layers during the first steps.
* AdamW (or SGD with Nesterov momentum), linear warm-up then cosine decay per step, label
  smoothing, a class-weighted loss when the classes are imbalanced, early stopping on the
  validation loss; the weights with the best validation loss are the ones saved.
* Batch-norm statistics stay frozen (see :mod:`.features`), except in ``scratch`` mode.
* ``scratch``: a network made for small photos (:mod:`.scratch`) starts from random weights drawn
  from the seed; every parameter trains at one rate, on freshly augmented views (pad + random
  crop + flip), with batch norm in training mode during the steps and in eval mode for
  validation. Frozen statistics are right for a pretrained network but not for a fresh one: its
  initial running statistics (mean 0, variance 1) make a deep net's activations explode (measured
  in eval mode: largest output 2.0 for ResNet-20, 3086 for ResNet-56, NaN for ResNet-1202).
* CPU runs are deterministic: every random draw comes from generators seeded by the run's seed
  (and the epoch), never from global state. bf16 autocast is an option, off by default: CPUs
  without native bf16 run it several times slower. On CUDA, mixed precision (bf16 where
  supported, else fp16 with loss scaling) is on by default.
* After every epoch a checkpoint (``<bundle>.checkpoint.safetensors``) is written atomically; a
  cancelled, crashed or killed run is continued with ``resume=True`` and, on the CPU, ends with the
  same weights as an uninterrupted run. The checkpoint is deleted once the bundle is written.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from resnet_gui.core.calibration import MIN_VALIDATION_PHOTOS, Calibration, calibrate
from resnet_gui.core.engine import select_device
from resnet_gui.core.errors import TrainingDivergedError
from resnet_gui.core.metadata import check_finite_weights
from resnet_gui.core.models import LoadedModel, load_model
from resnet_gui.core.preprocessing import Preprocessing
from resnet_gui.core.training.bundle import SaveError, checkpoint_path, normalise_bundle_path, write_bundle
from resnet_gui.core.training.checkpoint import RunState, restore_checkpoint, write_checkpoint
from resnet_gui.core.training.config import PROBE_PATIENCE, TrainConfig
from resnet_gui.core.training.dataset import Sample, file_digest, fingerprint
from resnet_gui.core.training.distributed import Ranks
from resnet_gui.core.training.events import Progress, TrainingError, forward_progress
from resnet_gui.core.training.features import (
    FeatureCache,
    ModelParts,
    all_finite,
    bounded_map,
    extract,
    fast_frozen,
    head_features,
    load_views,
    run_frozen,
    split_model,
    state_fingerprint,
)
from resnet_gui.core.training.split import Split
from resnet_gui.core.userfiles import UserFileError

__all__ = ["EpochMetrics", "StepMetrics", "TrainConfig", "TrainResult", "run_training", "train"]

IMBALANCE_FOR_WEIGHTS = 1.5
"""The loss is weighted per class (``class_weights="auto"``) when the largest class is over this
many times the smallest."""
MAX_CLASS_WEIGHT_RATIO = 10.0
"""The largest class weight is at most this many times the smallest. Inverse-frequency weights
are unbounded: one corrected photo in a new class beside 120 per class got 120 times the weight
and the model then called 60 % of the validation photos by that class (measured with
benchmarks/retrain.py before the cap)."""


@dataclass(frozen=True)
class StepMetrics:
    """After one optimisation step. Loss and accuracy are running means over the epoch so far."""

    stage: str
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    accuracy: float
    lr: float
    images_per_second: float
    eta_seconds: float | None


@dataclass(frozen=True)
class EpochMetrics:
    """After one epoch. ``stage`` is ``probe`` (classifier alone) or ``train``."""

    stage: str
    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    lr: float
    seconds: float
    images_per_second: float
    eta_seconds: float | None
    best: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """The end of a run. ``status``: ``finished``, ``stopped_early`` or ``cancelled``."""

    status: str
    bundle: Path | None
    checkpoint: Path | None
    best_stage: str | None
    best_epoch: int | None
    val_accuracy: float | None
    val_loss: float | None
    test_accuracy: float | None
    history: tuple[EpochMetrics, ...]
    seconds: float
    feature_seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)


TrainEvent = Progress | StepMetrics | EpochMetrics | TrainResult


# --- inputs -----------------------------------------------------------------------------------


class _Source:
    """Batches of (inputs of the trained part, labels): from a cache, or decoded on the fly."""

    def __init__(
        self,
        samples: Sequence[Sample],
        *,
        cached: torch.Tensor | None = None,
        frozen: nn.Module | None = None,
        run: _Run,
        augment: bool,
    ) -> None:
        self.samples = samples
        self.ranks = run.ranks  # under DDP each rank takes rows rank::world of every global batch
        self.labels = torch.tensor([s.label for s in samples], dtype=torch.long)
        self.cached = cached
        self.frozen = frozen
        self.run = run
        self.augment = augment

    def __len__(self) -> int:
        return len(self.samples)

    def steps(self, batch_size: int) -> int:
        return math.ceil(len(self) / batch_size)

    def batches(
        self, batch_size: int, *, epoch: int, stage: str, shuffle: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for inputs, labels, _ in self.indexed_batches(batch_size, epoch=epoch, stage=stage, shuffle=shuffle):
            yield inputs, labels

    def _local(self, index: np.ndarray) -> np.ndarray:
        """This rank's rows of a global batch (all of them without DDP)."""
        return index if self.ranks is None else index[self.ranks.rank :: self.ranks.world]

    def indexed_batches(
        self, batch_size: int, *, epoch: int, stage: str, shuffle: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        """(inputs, labels, sample positions) of this rank's part of every global batch."""
        n = len(self)
        seed = self.run.config.seed
        rng = np.random.default_rng([seed & 0xFFFFFFFF, 1 if stage == "train" else 2, epoch])
        order = rng.permutation(n) if shuffle else np.arange(n)
        if self.cached is not None:
            views = self.cached.shape[1]
            choice = rng.integers(0, views, n) if (self.augment and views > 1) else np.zeros(n, np.int64)
            for start in range(0, n, batch_size):
                rows = self._local(order[start : start + batch_size])
                index = torch.from_numpy(rows)
                view = torch.from_numpy(choice[rows])
                yield self.run.to_device(self.cached[index, view].float()), self.labels[index], rows
            return
        preprocessing = self.run.preprocessing
        aug = self.run.config.augmentation

        def job(i: int) -> np.ndarray:
            views = load_views(
                int(i),
                self.samples[int(i)],
                preprocessing,
                center=not self.augment,
                augmented=1 if self.augment else 0,
                aug=aug,
                seed=seed,
                epoch=epoch,
            )
            return views[0]

        local = np.concatenate(
            [self._local(order[s : s + batch_size]) for s in range(0, n, batch_size)] or [order]
        )
        arrays = bounded_map(job, local.tolist(), self.run.executor, ahead=2 * batch_size)
        for start in range(0, n, batch_size):
            local_rows = self._local(order[start : start + batch_size])
            if len(local_rows) == 0:  # a last global batch smaller than the process count
                size = self.run.preprocessing.crop_size
                batch = np.zeros((0, 3, size, size), np.float32)
            else:
                batch = np.stack([next(arrays) for _ in local_rows])
            if self.frozen is not None:
                frozen_out = run_frozen(
                    self.frozen, batch, self.run.device, True, self.run.autocast, to_cpu=False
                )
                inputs = self.run.to_device(frozen_out)
            else:
                inputs = self.run.to_device(torch.from_numpy(batch))
            yield inputs, self.labels[torch.from_numpy(local_rows)], local_rows


# --- the run ----------------------------------------------------------------------------------


class _Run:
    """The pieces of one run shared by its stages."""

    def __init__(self, config: TrainConfig, device: torch.device, ranks: Ranks | None = None) -> None:
        self.config = config
        self.device = device
        self.ranks = ranks
        self.autocast, self.scaled = _autocast_for(device, config)
        self.executor = ThreadPoolExecutor(max_workers=config.workers) if config.workers > 0 else None
        self.preprocessing: Preprocessing = Preprocessing()  # replaced by the model's own once loaded

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device, non_blocking=True)
        if tensor.ndim == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def context(self) -> contextlib.AbstractContextManager:
        return self.autocast() if self.autocast is not None else contextlib.nullcontext()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)


def _autocast_for(device: torch.device, config: TrainConfig) -> tuple[Callable[[], Any] | None, bool]:
    """Mixed precision where it pays: AMP on CUDA; bf16 on the CPU only when asked."""
    if device.type == "cuda" and config.amp:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return (lambda: torch.autocast("cuda", dtype=dtype)), dtype == torch.float16
    if device.type == "cpu" and config.bf16:
        return (lambda: torch.autocast("cpu", dtype=torch.bfloat16)), False
    return None, False


def _load(model: str | Path | LoadedModel | None, allow_download: bool) -> tuple[LoadedModel, nn.Module]:
    """The base model and a private copy of its network to train (the caller's is never changed)."""
    if isinstance(model, LoadedModel):
        return model, copy.deepcopy(model.model)
    loaded = load_model(None if model is None else str(model), allow_download=allow_download)
    return loaded, loaded.model


def _new_head(in_features: int, num_classes: int, seed: int, *, conv: bool = False) -> nn.Linear | nn.Conv2d:
    """A classifier initialised from the run's seed (small weights: near-uniform first predictions).

    ``conv``: a 1x1 convolution (the kind timm's pre-activation v2 has), so the bundle keeps its
    architecture's state-dict shapes.
    """
    head: nn.Linear | nn.Conv2d
    head = nn.Conv2d(in_features, num_classes, kernel_size=1) if conv else nn.Linear(in_features, num_classes)
    assert head.bias is not None
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.weight.normal_(0.0, 0.01, generator=generator)
        head.bias.zero_()
    return head


def _class_weights(split: Split, setting: str) -> torch.Tensor | None:
    counts = np.array(list(split.counts("train").values()), dtype=np.float64)
    if setting == "off" or counts.min() <= 0:
        return None
    if setting == "auto" and counts.max() / counts.min() <= IMBALANCE_FOR_WEIGHTS:
        return None
    weights = counts.sum() / (len(counts) * counts)
    weights = np.minimum(weights, weights.min() * MAX_CLASS_WEIGHT_RATIO)
    return torch.tensor(weights, dtype=torch.float32)


def _param_groups(
    trainable: nn.Module, head: nn.Module, config: TrainConfig, *, after_probe: bool = False
) -> list[dict[str, Any]]:
    """Classifier at ``lr``, pretrained layers at ``lr * backbone_lr_factor``; no decay on biases/BN.

    From scratch there are no pretrained layers: one group, every parameter at ``lr`` with the
    weight decay, as in the 2015 paper.

    After a linear probe the classifier is already fitted, so it too gets the small rate: at the
    full rate it overfits within an epoch (measured on hymenoptera: the validation loss rose from
    0.13 to 0.18 even with layer4 at 1/100 of the rate).
    """
    if config.from_scratch:
        params = list(trainable.parameters())
        return [
            {"params": params, "lr": config.lr, "initial_lr": config.lr, "weight_decay": config.weight_decay}
        ]
    head_ids = {id(p) for p in head.parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for parameter in trainable.parameters():
        key = (id(parameter) in head_ids, parameter.ndim > 1)
        groups.setdefault(key, []).append(parameter)
    result = []
    small = config.lr * config.backbone_lr_factor  # type: ignore[operator]
    for (is_head, decays), params in sorted(groups.items(), key=lambda item: (not item[0][0], item[0][1])):
        lr = config.lr if is_head and not after_probe else small
        result.append(
            {
                "params": params,
                "lr": lr,
                "initial_lr": lr,
                "weight_decay": config.weight_decay if decays else 0.0,
            }
        )
    return result


def _optimizer(groups: list[dict[str, Any]], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0)
    return torch.optim.AdamW(groups, lr=config.lr)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to zero at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


def _dataset_fingerprint(split: Split) -> tuple[str, dict[Path, str]]:
    """The split's content fingerprint, and each file's digest (they key the feature cache)."""
    entries, digests = [], {}
    for part in ("train", "val", "test"):
        for sample in getattr(split, part):
            try:
                digest = digests.get(sample.path) or file_digest(sample.path)
            except UserFileError as err:  # a FIFO or a device is refused there, never read
                raise TrainingError(
                    f"Cannot read '{sample.path}' ({err.reason}); run the health check and leave it out."
                ) from None
            digests[sample.path] = digest
            entries.append((f"{part}:{split._relative(sample.path)}", split.classes[sample.label], digest))
    return fingerprint(entries), digests


# --- evaluation -------------------------------------------------------------------------------


def _evaluate_source(
    module: nn.Module, source: _Source, run: _Run, batch_size: int, cancel: Callable[[], bool]
) -> tuple[float, float, int] | None:
    """Mean cross-entropy, accuracy and count of ``module`` on ``source``; ``None`` if cancelled."""
    if len(source) == 0:
        return None
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, labels in source.batches(batch_size, epoch=0, stage="eval", shuffle=False):
            if cancel():
                return None
            with run.context():
                logits = module(inputs)
            labels = labels.to(run.device)
            total_loss += float(nn.functional.cross_entropy(logits.float(), labels, reduction="sum"))
            correct += int((logits.argmax(1) == labels).sum())
            count += len(labels)
    if source.ranks is not None:  # each rank scored its shard: the sums over all of them
        total_loss, summed_correct, summed_count = source.ranks.sum([total_loss, correct, count])
        correct, count = int(summed_correct), int(summed_count)
    return total_loss / count, correct / count, count


def _logits_of(
    module: nn.Module, source: _Source, run: _Run, batch_size: int, cancel: Callable[[], bool]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The float32 logits (photos, classes) and labels of ``module`` on ``source``; None if cancelled."""
    chunks, labels, rows = [], [], []
    with torch.no_grad():
        for inputs, batch_labels, index in source.indexed_batches(
            batch_size, epoch=0, stage="eval", shuffle=False
        ):
            if cancel():
                return None
            with run.context():
                chunks.append(module(inputs).float().cpu().numpy())
            labels.append(batch_labels.numpy())
            rows.append(index)
    if source.ranks is not None:  # every rank's shard, put back in the photos' order
        parts = source.ranks.gather_objects((chunks, labels, rows))
        chunks = [c for part in parts for c in part[0]]
        labels = [b for part in parts for b in part[1]]
        order = np.argsort(np.concatenate([r for part in parts for r in part[2]]), kind="stable")
        if chunks:
            return np.concatenate(chunks)[order], np.concatenate(labels)[order]
    if not chunks:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(chunks), np.concatenate(labels)


def _extract_all(
    ranks: Ranks | None, frozen: nn.Module, samples: Sequence[Sample], **options: Any
) -> Generator[Progress, None, torch.Tensor | None]:
    """:func:`extract` on every sample; under DDP each rank runs its shard and all get the whole.

    A shard's batches differ in number between ranks, so no rank may stop alone: under DDP the
    extraction is not cancelled midway (the caller asks all ranks once it is done).
    """
    if ranks is None:
        return (yield from forward_progress(extract(frozen, samples, **options)))
    positions = ranks.shard(len(samples))
    options["cancel"] = None
    total = len(samples)
    local = None
    for item in extract(frozen, [samples[i] for i in positions], indices=positions, **options):
        if isinstance(item, Progress):
            yield dataclasses.replace(item, done=min(total, item.done * ranks.world), total=total)
        else:
            local = item
    return ranks.gather_rows(local, total)


# --- the generator ----------------------------------------------------------------------------


def train(
    model: str | Path | LoadedModel | None,
    split: Split,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    cancel: Callable[[], bool] | None = None,
    feature_cache: FeatureCache | None = None,
    save_on_cancel: bool = False,
    allow_download: bool = True,
    source: str = "",
    distributed: Ranks | None = None,
) -> Iterator[TrainEvent]:
    """Fine-tune ``model`` (a registry name, a weights file, a :class:`LoadedModel`, or the default).

    Writes the bundle ``out`` (``.safetensors`` + ``.json`` sidecar) at the end. With ``resume``,
    continues from ``out``'s checkpoint, which must come from the same settings, split, images
    and base model. ``save_on_cancel`` also writes a bundle of the best weights so far when
    cancelled. ``source`` says how to load a :class:`LoadedModel` again (its name or path), for
    a resume started from the command line. The last event is always a :class:`TrainResult`.

    ``distributed``: this process's rank in a DDP run (:mod:`.distributed`): every rank calls
    ``train`` with the same arguments; rank 0 alone writes the checkpoints, the feature cache and
    the bundle (the others' results have ``bundle=None``).
    """
    config = (config or TrainConfig()).resolved()
    out = normalise_bundle_path(out)
    ckpt = checkpoint_path(out)
    cancel = cancel or (lambda: False)
    ranks = distributed if distributed is not None and distributed.world > 1 else None
    if ranks is not None:
        local_cancel = cancel

        def agreed_cancel() -> bool:
            return ranks.agree(local_cancel())  # every rank takes the same decision at the same point

        cancel = agreed_cancel
    writer = ranks is None or ranks.is_main
    began = time.perf_counter()
    if resume and not ckpt.is_file():
        finished = " (the run had finished: the model is there)" if out.is_file() else ""
        raise TrainingError(f"There is no checkpoint to resume at '{ckpt}'{finished}.")
    if not split.train:
        raise TrainingError("The split has no training images.")

    device = ranks.device if ranks is not None else select_device(config.device)
    yield Progress("prepare", 0, 1, "loading the model")
    if config.from_scratch:
        from resnet_gui.core.training.scratch import untrained_from_reference

        loaded = untrained_from_reference(model, seed=config.seed)
        network = loaded.model
    else:
        loaded, network = _load(model, allow_download)
    # A file is checked when loaded; an in-memory model (the wizard's) may have been damaged since.
    check_finite_weights(network.state_dict(), loaded.name)
    base_fingerprint = state_fingerprint(network)
    data_fingerprint, digests = _dataset_fingerprint(split)
    layout = loaded.layout
    try:
        old_head: nn.Module | None = network.get_submodule(layout.head)
    except AttributeError:
        old_head = None
    in_features = head_features(old_head) if old_head is not None else None
    if old_head is None or in_features is None:
        raise TrainingError(f"{loaded.name} has no '{layout.head}' classifier layer to replace.")
    conv_head = isinstance(old_head, nn.Conv2d)
    network.set_submodule(
        layout.head, _new_head(in_features, len(split.classes), config.seed, conv=conv_head)
    )
    parts = split_model(network, config.mode, layout)
    network.eval().requires_grad_(False)
    network.to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    split_json = split.to_json()
    training_settings = config.to_dict()
    identity = {
        "config": json.dumps(training_settings, sort_keys=True),
        "split": split_json,
        "base_model": loaded.name,
        "base_source": source or ("" if isinstance(model, LoadedModel) or model is None else str(model)),
        "base_fingerprint": base_fingerprint,
        "dataset_fingerprint": data_fingerprint,
    }
    state = RunState()
    resumed_state: dict[str, torch.Tensor] = {}
    if resume:
        state, resumed_state = restore_checkpoint(ckpt, identity, network)
        network.to(device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    yield Progress("prepare", 1, 1, "model ready")

    run = _Run(config, device, ranks)
    run.preprocessing = loaded.preprocessing
    stages = (["probe"] if config.probe_epochs else []) + ["train"]
    feature_seconds = 0.0
    history = [_epoch_from_dict(entry) for entry in state.history]
    status = "finished"
    test_accuracy = None
    calibration: Calibration | None = None
    cache_hits: list[str] = []
    try:
        # Frozen-part outputs: computed once (or taken from the cache) for the stages left to run.
        fused: list[nn.Module] = []

        def fused_frozen() -> nn.Module:
            """The fused copy of the frozen part, made only when something must run through it."""
            if not fused:
                fused.append(fast_frozen(parts.frozen).to(device))
            return fused[0]

        frozen = None if parts.frozen_is_identity else _Lazy(fused_frozen)
        store_dtype = torch.float16 if config.mode == "partial" else torch.float32
        key_base = {
            "base": base_fingerprint,
            "frozen": "pooled" if config.mode == "head" else "layer3",
            "preprocessing": loaded.preprocessing.to_dict(),
            "device": device.type,
            "autocast": run.autocast is not None,
        }

        def cached_outputs(
            samples: Sequence[Sample], views: int, dtype: torch.dtype, what: str
        ) -> Generator[Progress, None, torch.Tensor | None]:
            settings = {
                **key_base,
                "views": views,
                "aug": dataclasses.asdict(config.augmentation),
                "seed": config.seed,
                "dtype": str(dtype),
            }
            files = [digests[s.path] for s in samples]
            key = FeatureCache.key(**settings, files=files)
            cache = feature_cache if writer else None  # under DDP rank 0 reads and writes the cache
            hit = cache.get(key) if cache is not None else None
            if ranks is not None:
                hit = ranks.broadcast(hit)
            if hit is not None:
                cache_hits.append(key)
                return hit
            # The centre view of a photo does not depend on the others: rows cached by earlier runs
            # with the same settings are reused (a retrain with a few new photos extracts only those).
            # Random views depend on a photo's place in the list, so they are reused only as a whole.
            family = FeatureCache.key(**settings)
            known = cache.known_rows(family, files) if cache is not None and not views else {}
            if ranks is not None:
                known = ranks.broadcast(known)
            todo = [sample for sample, digest in zip(samples, files, strict=True) if digest not in known]
            extracted = None
            if todo:
                extracted = yield from _extract_all(
                    ranks,
                    frozen,  # type: ignore[arg-type]
                    todo,
                    preprocessing=loaded.preprocessing,
                    augmented_views=views,
                    aug=config.augmentation,
                    seed=config.seed,
                    device=device,
                    batch_size=config.batch_size,
                    workers=config.workers,
                    dtype=dtype,
                    autocast=run.autocast,
                    cancel=cancel,
                    phase=what,
                )
                if extracted is None or (ranks is not None and cancel()):
                    return None
            result: torch.Tensor | None
            if known:
                new_rows = iter(extracted if extracted is not None else ())
                result = torch.stack([known[d] if d in known else next(new_rows) for d in files])
                cache_hits.append(key)
            else:
                result = extracted
            if result is not None and cache is not None:
                cache.put(key, result, family=family, files=files)
            return result

        t0 = time.perf_counter()
        train_store = val_store = None
        if frozen is not None:
            if split.val:
                val_store = yield from cached_outputs(split.val, 0, torch.float32, "features (val)")
                if val_store is None:
                    raise _CancelledRun
            if config.cache_features:
                views = int(config.cached_views or 0)
                train_store = yield from cached_outputs(split.train, views, store_dtype, "features (train)")
                if train_store is None:
                    raise _CancelledRun
        feature_seconds = time.perf_counter() - t0

        train_source = _Source(split.train, cached=train_store, frozen=frozen, run=run, augment=True)
        val_source = _Source(split.val, cached=val_store, frozen=frozen, run=run, augment=False)

        for stage_index, stage in enumerate(stages):
            if stage_index < state.stage_index or (stage_index == state.stage_index and state.stage_done):
                continue  # done before the resume
            if stage_index > state.stage_index:
                state.stage_index, state.epoch, state.stage_done = stage_index, 0, False
                state.stage_best_loss, state.bad_epochs, state.optimizer_state = math.inf, 0, None
            if state.best_state is not None:
                network.load_state_dict(state.best_state, strict=False)  # a stage starts from the best
                # A best state saved while probing holds only the classifier: complete it with the
                # (still untouched) layers this stage is about to train.
                untouched = {
                    k: v.detach().to("cpu", copy=True) for k, v in parts.trained_state(network).items()
                }
                state.best_state = {**untouched, **state.best_state}
                if state.epoch > 0:  # resuming inside the stage: its current weights, not the best
                    network.load_state_dict(resumed_state, strict=False)
            if stage == "probe":
                t0 = time.perf_counter()
                probe = yield from _probe_sources(
                    parts, split, train_store, val_store, train_source, run, loaded, cancel
                )
                feature_seconds += time.perf_counter() - t0
                if probe is None:
                    raise _CancelledRun
                stage_train, stage_val, module = probe[0], probe[1], parts.classifier
                epochs = int(config.probe_epochs)  # type: ignore[arg-type]
            else:
                stage_train, stage_val, module = train_source, val_source, parts.trainable
                epochs = int(config.epochs)  # type: ignore[arg-type]
            outcome = yield from _run_stage(
                stage, stage_index, epochs, module, network, parts, stage_train, stage_val,
                run, split, state, history, identity, ckpt, cancel,
            )  # fmt: skip
            if outcome == "cancelled":
                raise _CancelledRun
            if outcome == "stopped_early" and stage == "train":
                status = "stopped_early"
        if state.best_state is not None:
            network.load_state_dict(state.best_state, strict=False)

        if split.val:
            # Confidence you can believe: fitted on the validation logits of the kept weights.
            yield Progress("calibrate", 0, len(split.val), "calibrating on the validation split")
            scored_val = _logits_of(parts.trainable, val_source, run, config.batch_size, cancel)
            if scored_val is None:
                raise _CancelledRun
            calibration = calibrate(*scored_val)
            yield Progress("calibrate", len(split.val), len(split.val), "calibrated")

        if split.test:
            yield Progress("test", 0, len(split.test), "scoring the test split")
            test_source = _Source(split.test, frozen=frozen, run=run, augment=False)  # sharded under DDP
            scored = _evaluate_source(parts.trainable, test_source, run, config.batch_size, cancel)
            if scored is None:
                raise _CancelledRun
            test_accuracy = scored[1]
    except _CancelledRun:
        status = "cancelled"
    except _Diverged as diverged:
        # Nothing of the run is saved. Features the cache gave may be the cause: never reuse them.
        if feature_cache is not None and writer:
            for key in cache_hits:
                feature_cache.discard(key)
        raise TrainingDivergedError(diverged.sentence(config.lr, from_cache=bool(cache_hits))) from None
    except SaveError as err:
        raise _checkpoint_failed(err, ckpt) from None
    finally:
        run.close()

    seconds = time.perf_counter() - began
    best = _best_epoch(history, state)
    metrics = _metrics(history, state, test_accuracy, seconds, feature_seconds, status)
    metrics.update(_calibration_metrics(calibration, split, status))
    bundle = None
    if not writer:
        pass  # rank 0 saves the bundle
    elif status != "cancelled" or (save_on_cancel and state.best_state is not None):
        if state.best_state is not None:
            network.load_state_dict(state.best_state, strict=False)
        try:
            _save(out, network, loaded, split, config, identity, metrics)
        except SaveError as err:
            kept = (
                f"the checkpoint '{ckpt}' is kept, so free some space and resume the run (--resume) to save"
                " it"
                if ckpt.is_file()
                else "free some space and run again"
            )
            raise SaveError(
                out,
                err.reason,
                f"The model cannot be saved to '{out}' ({err.reason}) and nothing was written; {kept}.",
            ) from None
        bundle = out
        if status != "cancelled":
            ckpt.unlink(missing_ok=True)
    yield TrainResult(
        status,
        bundle,
        ckpt if ckpt.is_file() else None,
        state.best_stage,
        state.best_epoch,
        best.val_accuracy if best else None,
        best.val_loss if best else None,
        test_accuracy,
        tuple(history),
        seconds,
        feature_seconds,
        metrics,
    )


class _Lazy(nn.Module):
    """Calls the module ``make()`` returns, made on first use (a cached run never needs it)."""

    def __init__(self, make: Callable[[], nn.Module]) -> None:
        super().__init__()
        self._make = make

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._make()(inputs)


class _CancelledRun(Exception):
    """Internal: unwinds a run whose ``cancel()`` became true."""


_STAGE_WORDS = {"probe": "linear probe (the classifier alone)", "train": "training stage"}


class _Diverged(Exception):
    """Internal: the loss or the weights stopped being finite; :func:`train` words the error.

    ``bad_inputs`` tells a damaged input (the features fed to the trained part) from a run that
    diverged on good inputs (a learning rate too high); ``None`` when it was not looked at.
    """

    def __init__(self, what: str, stage: str, epoch: int, step: int | None, bad_inputs: bool | None) -> None:
        super().__init__(what)
        self.what, self.stage, self.epoch, self.step, self.bad_inputs = what, stage, epoch, step, bad_inputs

    def sentence(self, lr: float | None, *, from_cache: bool) -> str:
        at = f"in epoch {self.epoch} of the {_STAGE_WORDS.get(self.stage, self.stage)}"
        if self.step is not None:
            at += f" (step {self.step})"
        head = f"Training stopped: {self.what} became NaN or infinite {at}, so nothing was saved"
        if self.bad_inputs and from_cache:
            return (
                f"{head}; the cached image features hold NaN or infinite values: the feature cache was "
                "damaged and has been removed, so run again to recompute it."
            )
        if self.bad_inputs:
            return (
                f"{head}; the base model turns the images into NaN or infinite values, "
                "so its weights are probably damaged: use another model file."
            )
        cache = (
            "; the features came from the feature cache, which was removed in case it is damaged"
            if from_cache
            else ""
        )
        rate = f" (now {lr:g}, e.g. {lr / 10:g})" if lr else ""
        return f"{head}; try a lower learning rate{rate}{cache}."


def _checkpoint_failed(err: SaveError, ckpt: Path) -> SaveError:
    """The sentence for a checkpoint that could not be written (the previous one, if any, is intact)."""
    kept = (
        "the previous checkpoint is kept, so free some space and resume the run (--resume)"
        if ckpt.is_file()
        else "no checkpoint was kept, so free some space and run again"
    )
    return SaveError(
        ckpt,
        err.reason,
        f"Training stopped: the checkpoint '{ckpt}' cannot be written ({err.reason}); {kept}.",
    )


def _epoch_from_dict(data: dict[str, Any]) -> EpochMetrics:
    return EpochMetrics(**data)


def _best_epoch(history: list[EpochMetrics], state: RunState) -> EpochMetrics | None:
    for entry in history:
        if entry.stage == state.best_stage and entry.epoch == state.best_epoch:
            return entry
    return history[-1] if history else None


def _probe_sources(
    parts: ModelParts,
    split: Split,
    train_store: torch.Tensor | None,
    val_store: torch.Tensor | None,
    train_source: _Source,
    run: _Run,
    loaded: LoadedModel,
    cancel: Callable[[], bool],
) -> Generator[Progress, None, tuple[_Source, _Source] | None]:
    """Pooled features for the linear-probe stage: from the layer3 cache, or by a backbone pass."""
    config = run.config
    pooled_fast = fast_frozen(parts.pooled).to(run.device)
    if train_store is not None:
        outputs = []
        for name, store in (("probe features (train)", train_store), ("probe features (val)", val_store)):
            if store is None:
                outputs.append(None)
                continue
            flat = store.reshape(-1, *store.shape[2:])
            rows = flat.shape[0]
            if run.ranks is not None:  # each rank pools its shard (no cancel midway: see _extract_all)
                flat = flat[run.ranks.rank :: run.ranks.world]
            progress = Progress(name, 0, rows)
            chunks = []
            for start in range(0, flat.shape[0], config.batch_size):
                if run.ranks is None and cancel():
                    return None
                batch = run.to_device(flat[start : start + config.batch_size].float())
                with torch.inference_mode(), run.context():
                    chunks.append(pooled_fast(batch).float().cpu())
                scale = 1 if run.ranks is None else run.ranks.world
                progress = progress.advanced(min(rows, (start + config.batch_size) * scale))
                yield progress
            pooled = torch.cat(chunks) if chunks else torch.empty(0)
            if run.ranks is not None:
                pooled = run.ranks.gather_rows(pooled if chunks else None, rows)
                if cancel():
                    return None
            outputs.append(pooled.reshape(store.shape[0], store.shape[1], -1))
        train_pooled, val_pooled = outputs
    else:
        frozen = train_source.frozen
        backbone = nn.Sequential(frozen, pooled_fast) if frozen is not None else pooled_fast
        results = []
        for samples, views, name in (
            (split.train, config.cached_views or 0, "probe features (train)"),
            (split.val, 0, "probe features (val)"),
        ):
            result = yield from _extract_all(
                run.ranks,
                backbone,
                samples,
                preprocessing=loaded.preprocessing,
                augmented_views=views,
                aug=config.augmentation,
                seed=config.seed,
                device=run.device,
                batch_size=config.batch_size,
                workers=config.workers,
                autocast=run.autocast,
                cancel=cancel,
                phase=name,
            )
            if (result is None and samples) or (run.ranks is not None and cancel()):
                return None
            results.append(result)
        train_pooled, val_pooled = results
    return (
        _Source(split.train, cached=train_pooled, run=run, augment=True),
        _Source(split.val, cached=val_pooled if split.val else None, run=run, augment=False),
    )


def _run_stage(
    stage: str,
    stage_index: int,
    epochs: int,
    module: nn.Module,
    network: nn.Module,
    parts: ModelParts,
    train_source: _Source,
    val_source: _Source,
    run: _Run,
    split: Split,
    state: RunState,
    history: list[EpochMetrics],
    identity: dict[str, str],
    ckpt: Path,
    cancel: Callable[[], bool],
) -> Generator[StepMetrics | EpochMetrics, None, str]:
    """Train ``module`` for the epochs of one stage left to run; returns how the stage ended."""
    config = run.config
    network.requires_grad_(False)
    module.requires_grad_(True)
    after_probe = stage == "train" and stage_index > 0
    optimizer = _optimizer(_param_groups(module, parts.classifier, config, after_probe=after_probe), config)
    if state.optimizer_state is not None:
        optimizer.load_state_dict(state.optimizer_state)
        state.optimizer_state = None
    weights = _class_weights(split, config.class_weights)
    criterion = nn.CrossEntropyLoss(
        weight=None if weights is None else weights.to(run.device), label_smoothing=config.label_smoothing
    )
    scaler = torch.amp.GradScaler("cuda") if run.scaled else None
    steps = train_source.steps(config.batch_size)
    total_steps = steps * epochs
    warmup = min(total_steps // 2, round(config.warmup_epochs * steps))
    stage_began = time.perf_counter()
    steps_this_session = 0
    has_val = len(val_source) > 0
    # From scratch, batch norm learns its statistics while training (see the module's docstring).
    batch_norm_trains = config.from_scratch and stage == "train"
    # Only the classifier changes while probing: save just it (the rest is the base model's).
    saved_prefixes = parts.head_prefixes if stage == "probe" else parts.trained_prefixes

    def trained_state() -> dict[str, torch.Tensor]:
        return {k: v for k, v in network.state_dict().items() if k.startswith(saved_prefixes)}

    ranks = run.ranks
    # Under DDP the steps run through the wrapper (gradients averaged over the ranks in backward).
    stepped = module if ranks is None else ranks.wrap(module)
    summed = (
        None
        if ranks is None
        else nn.CrossEntropyLoss(
            weight=criterion.weight, label_smoothing=config.label_smoothing, reduction="sum"
        )
    )

    while state.epoch < epochs:
        epoch = state.epoch
        epoch_began = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        lr = 0.0
        module.train(batch_norm_trains)
        for step, (inputs, labels) in enumerate(
            train_source.batches(config.batch_size, epoch=epoch, stage=stage, shuffle=True)
        ):
            denominator = 0.0
            if ranks is not None:
                # One small all-reduce per step: a cancel seen by any rank, and the global batch's
                # loss weight, so the averaged gradient is that of one process on the whole batch.
                local_weight = (
                    float(len(labels))
                    if summed is None or summed.weight is None
                    else float(summed.weight.cpu()[labels].sum())
                )
                stop_votes, denominator = ranks.sum([float(cancel()), local_weight])
                if stop_votes > 0:
                    module.eval()
                    return "cancelled"
            elif cancel():
                module.eval()
                return "cancelled"
            factor = _lr_factor(epoch * steps + step, total_steps, warmup)
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor
            lr = optimizer.param_groups[0]["lr"]
            labels = labels.to(run.device)
            with run.context():
                logits = stepped(inputs)
            if summed is not None and ranks is not None:
                loss = summed(logits.float(), labels) * (ranks.world / max(denominator, 1e-12))
            else:
                loss = criterion(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            loss_value = float(loss.detach())  # read after the step, where the device syncs anyway
            if ranks is not None:  # the loss of this rank's share, as a mean per image
                loss_value = (
                    loss_value * denominator / ranks.world / max(1, len(labels)) if len(labels) else 0.0
                )
            if not math.isfinite(loss_value):
                raise _Diverged("the training loss", stage, epoch + 1, step + 1, not all_finite(inputs))
            loss_sum += loss_value * len(labels)
            correct += int((logits.detach().argmax(1) == labels).sum())
            seen += len(labels)
            steps_this_session += 1
            elapsed = time.perf_counter() - stage_began
            remaining = total_steps - (epoch * steps + step + 1)
            yield StepMetrics(
                stage, epoch + 1, epochs, step + 1, steps, loss_sum / seen, correct / seen, lr,
                seen / max(1e-9, time.perf_counter() - epoch_began),
                elapsed / steps_this_session * remaining,
            )  # fmt: skip
        module.eval()  # validation, checkpoints and the saved weights use the running statistics
        train_seconds = time.perf_counter() - epoch_began
        if ranks is not None:  # the epoch's figures over every rank's share
            loss_sum, summed_correct, summed_seen = ranks.sum([loss_sum, correct, seen])
            correct, seen = int(summed_correct), int(summed_seen)
        val_loss = val_accuracy = None
        if has_val:
            scored = _evaluate_source(module, val_source, run, config.batch_size, cancel)
            if scored is None:
                return "cancelled"
            val_loss, val_accuracy, _ = scored
            if not math.isfinite(val_loss):
                bad_inputs = None if val_source.cached is None else not all_finite(val_source.cached)
                raise _Diverged("the validation loss", stage, epoch + 1, None, bad_inputs)
        if not all(all_finite(tensor) for tensor in trained_state().values()):
            raise _Diverged("the trained weights", stage, epoch + 1, None, False)
        state.epoch = epoch + 1
        loss_for_selection = val_loss if val_loss is not None else -float(state.epoch + 100 * stage_index)
        improved = loss_for_selection < state.best_loss
        if improved:
            state.best_loss = loss_for_selection
            state.best_stage, state.best_epoch = stage, epoch + 1
            state.best_state = {k: v.detach().to("cpu", copy=True) for k, v in trained_state().items()}
        if loss_for_selection < state.stage_best_loss - 1e-4:
            state.stage_best_loss = loss_for_selection
            state.bad_epochs = 0
        else:
            state.bad_epochs += 1
        patience = (
            max(config.patience, PROBE_PATIENCE) if stage == "probe" and config.patience else config.patience
        )
        stop = bool(has_val and patience and state.bad_epochs >= patience)
        state.stage_done = stop or state.epoch >= epochs
        seconds = time.perf_counter() - epoch_began
        elapsed = time.perf_counter() - stage_began
        eta = (
            0.0
            if state.stage_done
            else elapsed / max(1, steps_this_session) * (total_steps - state.epoch * steps)
        )
        metrics = EpochMetrics(
            stage, epoch + 1, epochs, loss_sum / max(1, seen), correct / max(1, seen), val_loss, val_accuracy,
            lr, seconds, seen / max(1e-9, train_seconds),
            eta, improved,
        )  # fmt: skip
        history.append(metrics)
        state.history = [entry.to_dict() for entry in history]
        if ranks is None or ranks.is_main:  # rank 0 alone writes (every rank holds the same state)
            write_checkpoint(ckpt, trained_state(), state, None if state.stage_done else optimizer, identity)
        yield metrics
        if stop:
            return "stopped_early"
    return "finished"


def _metrics(
    history: list[EpochMetrics],
    state: RunState,
    test_accuracy: float | None,
    seconds: float,
    feature_seconds: float,
    status: str,
) -> dict[str, Any]:
    best = _best_epoch(history, state)
    return {
        "status": status,
        "best_stage": state.best_stage,
        "best_epoch": state.best_epoch,
        "val_accuracy": best.val_accuracy if best else None,
        "val_loss": best.val_loss if best else None,
        "train_accuracy": best.train_accuracy if best else None,
        "train_loss": best.train_loss if best else None,
        "test_accuracy": test_accuracy,
        "epochs_run": len(history),
        "seconds": round(seconds, 2),
        "feature_seconds": round(feature_seconds, 2),
        "history": [entry.to_dict() for entry in history],
    }


def _calibration_metrics(calibration: Calibration | None, split: Split, status: str) -> dict[str, Any]:
    """The bundle's calibration entries; without a fit, why not (the readers then keep defaults)."""
    if calibration is not None:
        return calibration.to_metrics()
    if not split.val:
        reason = (
            "There is no validation split, so the confidence could not be calibrated: the probabilities "
            'are the model\'s own, with no "not sure" or "unlike the training photos" threshold.'
        )
    elif len(split.val) < MIN_VALIDATION_PHOTOS:
        reason = f"Too few validation photos ({len(split.val)}) to calibrate the confidence."
    elif status == "cancelled":
        reason = "The run was stopped before the confidence was calibrated."
    else:
        reason = "The validation photos gave no usable scores, so the confidence was not calibrated."
    return {"calibration": {"note": reason}}


def _save(
    out: Path,
    network: nn.Module,
    loaded: LoadedModel,
    split: Split,
    config: TrainConfig,
    identity: dict[str, str],
    metrics: dict[str, Any],
) -> None:
    training = {
        **config.to_dict(),
        "base_model": loaded.name,
        "base_weights": (
            f"trained from scratch on {os.path.abspath(split.root)}"
            if config.from_scratch
            else loaded.weights_description
        ),
        "base_fingerprint": identity["base_fingerprint"],
        # How to load the base model again (a registry name or a file): "Retrain" starts from it.
        "base_source": identity["base_source"],
        # Where the photos were: the export and correction features find them again from here.
        "data_root": os.path.abspath(split.root),
    }
    write_bundle(
        out,
        {k: v for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")},
        architecture=loaded.architecture,
        name=out.stem,
        categories=split.classes,
        preprocessing=loaded.preprocessing,
        training=training,
        split=split.to_dict(),
        metrics=metrics,
        dataset_fingerprint=identity["dataset_fingerprint"],
    )


def run_training(
    *args: Any, on_event: Callable[[TrainEvent], None] | None = None, **kwargs: Any
) -> TrainResult:
    """Run :func:`train` to the end (same arguments) and return its :class:`TrainResult`."""
    result = None
    for event in train(*args, **kwargs):
        if on_event is not None:
            on_event(event)
        if isinstance(event, TrainResult):
            result = event
    assert result is not None
    return result
