"""Cut a ResNet into a frozen part and a trained part, and compute the frozen part's outputs once.

On a CPU the backbone's forward pass is nearly all the cost of fine-tuning. When the backbone
(``head`` mode) or its first three stages (``partial`` mode) are frozen, their output for a
given view of an image never changes, so it is computed once, kept in memory (optionally on
disk, keyed by everything it depends on) and every epoch after that only runs the trained part.
Batch-norm statistics are frozen in every mode that starts from pretrained weights (the model
stays in ``eval()``): with a few hundred images and small batches, re-estimating them hurts more
than it helps, and it keeps cached outputs valid. ``scratch`` mode caches nothing and cuts
nothing off (it is cut as ``full``); its batch norm trains (see :mod:`.train`).

For the frozen part only, conv+batch-norm pairs are fused (``torch.fx``), about 20 % faster on
this project's CPU; the outputs agree with the unfused network to ~1e-5.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from resnet_gui.core.atomic import atomic_path
from resnet_gui.core.errors import OutputError
from resnet_gui.core.models import TORCHVISION_LAYOUT, ModelLayout
from resnet_gui.core.modes import MODE_KEYS
from resnet_gui.core.preprocessing import Preprocessing
from resnet_gui.core.training.augment import Augmentation, decode, random_view, view_rng
from resnet_gui.core.training.dataset import Sample
from resnet_gui.core.training.events import Progress, TrainingError

__all__ = [
    "MODES",
    "FeatureCache",
    "HeadInput",
    "ModelParts",
    "all_finite",
    "extract",
    "head_features",
    "split_model",
    "state_fingerprint",
]

log = logging.getLogger(__name__)

MODES = MODE_KEYS  # the one table: core.modes (torch-free, read by the CLI and the wizard)
"""head: only the classifier trains; partial: the last stage (layer4) too; full and scratch: every
layer (scratch from random weights)."""


CACHED_VIEWS_EPOCH = 2**31 - 1
"""The 'epoch' seeding cached augmented views, apart from the views drawn afresh each epoch."""


class HeadInput(nn.Module):
    """The classifier fed pooled features (N, C): a Linear as it is; a 1x1 convolution (timm's v2
    ``head.fc``) on (N, C, 1, 1), flattened back to logits. No parameters of its own: it trains the
    model's classifier."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head
        self.conv = isinstance(head, nn.Conv2d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.conv:
            return self.head(x)
        return torch.flatten(self.head(x[:, :, None, None]), 1)


def head_features(head: nn.Module) -> int | None:
    """The number of features a classifier takes (a Linear's, or a 1x1 convolution's), else None."""
    if isinstance(head, nn.Linear):
        return head.in_features
    if isinstance(head, nn.Conv2d) and tuple(head.kernel_size) == (1, 1) and head.groups == 1:
        return head.in_channels
    return None


@dataclass
class ModelParts:
    """A ResNet cut in two. The modules are the model's own: training ``trainable`` trains the model."""

    frozen: nn.Module
    trainable: nn.Module
    pooled: nn.Module
    """``trainable`` minus its classifier: the trained part's features, for the linear probe."""
    trained_prefixes: tuple[str, ...]
    """State-dict key prefixes of what trains (``("fc.",)``, ``("layer4.", "fc.")``, or all)."""
    frozen_is_identity: bool
    classifier: nn.Module
    """The model's classifier as a module of pooled features (N, C) -> logits (the linear probe's)."""
    head_prefixes: tuple[str, ...]
    """State-dict key prefixes of the classifier alone (``("fc.",)``)."""

    def trained_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The trained part's tensors, keyed as in ``model.state_dict()``."""
        return {k: v for k, v in model.state_dict().items() if k.startswith(self.trained_prefixes)}


def _module(model: nn.Module, name: str) -> nn.Module | None:
    try:
        return model.get_submodule(name)
    except AttributeError:
        return None


def split_model(model: nn.Module, mode: str, layout: ModelLayout = TORCHVISION_LAYOUT) -> ModelParts:
    """Cut a ResNet for ``mode`` where ``layout`` says its parts are (torchvision's by default:
    ``conv1 … layer4, avgpool, fc``): ``head`` trains ``layout.head``, ``partial`` the last stage,
    the neck and the head, ``full`` everything."""
    if mode not in MODES:
        raise TrainingError(f"Unknown training mode '{mode}'. Choose one of: {', '.join(MODES)}.")
    names = (*layout.stem, *layout.stages, *layout.neck, layout.pool, layout.head)
    found = {name: _module(model, name) for name in names}
    missing = [name for name, module in found.items() if module is None]
    if missing:
        raise TrainingError(f"The model is not a ResNet this app can fine-tune (no {', '.join(missing)}).")
    part = {name: module for name, module in found.items() if module is not None}
    early = [part[name] for name in layout.before_last_stage]
    late = [part[name] for name in (layout.last_stage, *layout.neck)]
    pool = [part[layout.pool], nn.Flatten(1)]
    head = part[layout.head]
    classifier = head if isinstance(head, nn.Linear) else HeadInput(head)
    if mode == "head":
        return ModelParts(
            frozen=nn.Sequential(*early, *late, *pool),
            trainable=classifier,
            pooled=nn.Identity(),
            trained_prefixes=layout.trained_prefixes(mode),
            frozen_is_identity=False,
            classifier=classifier,
            head_prefixes=layout.trained_prefixes("head"),
        )
    if mode == "partial":
        return ModelParts(
            frozen=nn.Sequential(*early),
            trainable=nn.Sequential(*late, *pool, classifier),
            pooled=nn.Sequential(*late, *pool),
            trained_prefixes=layout.trained_prefixes(mode),
            frozen_is_identity=False,
            classifier=classifier,
            head_prefixes=layout.trained_prefixes("head"),
        )
    return ModelParts(
        frozen=nn.Identity(),
        trainable=nn.Sequential(*early, *late, *pool, classifier),
        pooled=nn.Sequential(*early, *late, *pool),
        trained_prefixes=layout.trained_prefixes(mode),
        frozen_is_identity=True,
        classifier=classifier,
        head_prefixes=layout.trained_prefixes("head"),
    )


def fast_frozen(frozen: nn.Module, *, fuse: bool = True) -> nn.Module:
    """An inference-only copy of the frozen part with conv+BN fused (the original if fusing fails)."""
    if not fuse or isinstance(frozen, nn.Identity):
        return frozen
    try:
        from torch.fx.experimental.optimization import fuse as fx_fuse

        fused = fx_fuse(copy.deepcopy(frozen).eval())
        return fused.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    except Exception as err:  # an architecture fx cannot trace: unfused is only slower
        log.info("conv-bn fusion skipped: %s", err)
        return frozen


def state_fingerprint(model: nn.Module) -> str:
    """A hash of every tensor of a model: which base weights a run, a cache or a resume started from."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def all_finite(tensor: torch.Tensor) -> bool:
    """Whether a tensor holds no NaN or infinity, checked in slices so a large cache costs no copy."""
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return True
    flat = tensor.detach().reshape(-1)
    step = 1 << 22
    return all(
        bool(torch.isfinite(flat[start : start + step]).all()) for start in range(0, flat.numel(), step)
    )


T = TypeVar("T")
R = TypeVar("R")


def bounded_map(
    function: Callable[[T], R], items: Iterable[T], executor: ThreadPoolExecutor | None, ahead: int
) -> Iterator[R]:
    """``map`` over a thread pool with at most ``ahead`` items in flight, results in order.

    Image decoding (which releases the GIL) then overlaps the model, without decoding a whole
    dataset into memory ahead of it.
    """
    if executor is None:
        yield from map(function, items)
        return
    pending: deque[Future[R]] = deque()
    iterator = iter(items)
    try:
        for item in iterator:
            pending.append(executor.submit(function, item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def load_views(
    sample_index: int,
    sample: Sample,
    preprocessing: Preprocessing,
    *,
    center: bool,
    augmented: int,
    aug: Augmentation,
    seed: int,
    epoch: int,
) -> list[np.ndarray]:
    """The views of one image: the inference (centre) view if asked, then ``augmented`` random ones."""
    from resnet_gui.core.errors import ImageLoadError

    try:
        image = decode(sample.path, preprocessing)
    except ImageLoadError as err:
        raise TrainingError(
            f"Cannot read '{sample.path}' ({err.reason}). Run the health check and leave it out."
        ) from None
    views = [preprocessing.prepare(image)] if center else []
    views += [
        random_view(image, preprocessing, aug, view_rng(seed, epoch, sample_index, view))
        for view in range(augmented)
    ]
    return views


def extract(
    frozen: nn.Module,
    samples: Sequence[Sample],
    preprocessing: Preprocessing,
    *,
    augmented_views: int = 0,
    aug: Augmentation | None = None,
    seed: int = 0,
    device: torch.device,
    batch_size: int = 32,
    workers: int = 2,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = True,
    autocast: Callable[[], Any] | None = None,
    cancel: Callable[[], bool] | None = None,
    phase: str = "features",
    indices: Sequence[int] | None = None,
) -> Iterator[Progress | torch.Tensor]:
    """Run ``frozen`` on the centre view and ``augmented_views`` random views of every sample.

    ``indices``: each sample's place in the whole list, which seeds its random views (a shard
    of a several-process run then draws the views one process would).

    Yields :class:`Progress` after each batch, then one CPU tensor ``[N, 1 + views, ...]`` in
    ``dtype``. Returns early (without the tensor) when ``cancel()`` becomes true.
    """
    aug = aug or Augmentation()
    views = 1 + augmented_views
    progress = Progress(phase, 0, len(samples))
    store: torch.Tensor | None = None
    executor = ThreadPoolExecutor(max_workers=workers) if workers > 0 else None

    def job(item: tuple[int, Sample]) -> list[np.ndarray]:
        index, sample = item
        return load_views(
            index,
            sample,
            preprocessing,
            center=True,
            augmented=augmented_views,
            aug=aug,
            seed=seed,
            epoch=CACHED_VIEWS_EPOCH,
        )

    try:
        batch: list[np.ndarray] = []
        filled = 0
        places = range(len(samples)) if indices is None else indices
        loaded = bounded_map(
            job, zip(places, samples, strict=True), executor, ahead=max(2, batch_size // views)
        )
        for index, arrays in enumerate(loaded):
            batch.extend(arrays)
            last = index == len(samples) - 1
            if len(batch) < batch_size and not last:
                continue
            if cancel is not None and cancel():
                return
            out = run_frozen(frozen, np.stack(batch), device, channels_last, autocast)
            if store is None:
                store = torch.empty((len(samples), views, *out.shape[1:]), dtype=dtype)
            count = out.shape[0] // views
            store[filled : filled + count] = out.reshape(count, views, *out.shape[1:]).to(dtype)
            filled += count
            batch = []
            progress = progress.advanced(filled)
            yield progress
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    if store is None:
        store = torch.empty((0, views))
    yield store


def run_frozen(
    frozen: nn.Module,
    batch: np.ndarray,
    device: torch.device,
    channels_last: bool = True,
    autocast: Callable[[], Any] | None = None,
    *,
    to_cpu: bool = True,
) -> torch.Tensor:
    """The frozen part on a prepared NCHW batch, as a float32 tensor (on the CPU unless ``to_cpu=False``).

    ``no_grad`` rather than ``inference_mode``: the output may feed a trained part, and autograd
    refuses to save inference tensors for the backward pass.
    """
    tensor = torch.from_numpy(batch).to(device)
    if channels_last:
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        if autocast is not None:
            with autocast():
                out = frozen(tensor)
        else:
            out = frozen(tensor)
    out = out.float()
    return out.cpu() if to_cpu else out


MAX_ROW_SOURCES = 64
"""How many cache files, newest first, :meth:`FeatureCache.known_rows` looks into."""


class FeatureCache:
    """Frozen-part outputs kept between runs: in memory, and in ``directory`` when one is given.

    The key covers the base weights, the frozen part, the preprocessing, the views and the exact
    file contents, so a stale entry is never used. A wizard keeps one instance so that retraining
    with other settings skips the extraction. An entry holding NaN or infinite values (a damaged
    file, or a model that produced them) is never stored nor returned: it would train a NaN model.
    """

    def __init__(self, directory: str | Path | None = None, *, max_memory_entries: int = 4) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.max_memory_entries = max_memory_entries
        self._memory: dict[str, torch.Tensor] = {}
        self._rows_of: dict[str, tuple[str, list[str]]] = {}  # key -> (family, file digests)

    @staticmethod
    def key(**parts: Any) -> str:
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _file(self, key: str) -> Path | None:
        return self.directory / f"features-{key}.safetensors" if self.directory is not None else None

    def get(self, key: str) -> torch.Tensor | None:
        if key in self._memory:
            return self._memory[key]
        path = self._file(key)
        if path is None or not path.is_file():
            return None
        try:
            from safetensors.torch import load_file

            tensor = load_file(str(path))["features"]
        except Exception as err:  # a damaged cache file is recomputed, never trusted
            log.warning("ignoring unreadable feature cache %s: %s", path, err)
            return None
        if not all_finite(tensor):
            log.warning("removing damaged feature cache %s: it holds NaN or infinite values", path)
            self.discard(key)
            return None
        self._remember(key, tensor)
        return tensor

    def put(self, key: str, tensor: torch.Tensor, *, family: str = "", files: Sequence[str] = ()) -> None:
        """Keep ``tensor`` under ``key``; with ``family`` (the settings' key) and ``files`` (one
        digest per row), its rows can later be found one by one (:meth:`known_rows`)."""
        if not all_finite(tensor):
            log.warning("not caching features %s: they hold NaN or infinite values", key)
            return
        self._remember(key, tensor)
        rows = bool(family) and len(files) == tensor.shape[0]
        if rows:
            self._rows_of[key] = (family, list(files))
        path = self._file(key)
        if path is None:
            return
        metadata = {"family": family, "files": json.dumps(list(files))} if rows else None
        try:
            import safetensors
            from safetensors.torch import save_file

            with atomic_path(path) as tmp:
                save_file({"features": tensor.contiguous()}, str(tmp), metadata=metadata)
        except (OSError, OutputError, safetensors.SafetensorError) as err:  # costs time, not correctness
            log.warning("cannot write feature cache %s: %s", path, err)

    def known_rows(self, family: str, files: Sequence[str]) -> dict[str, torch.Tensor]:
        """The cached rows of ``files`` (digests) from earlier entries of the same ``family``.

        Entries in memory first, then on disk (newest first, at most :data:`MAX_ROW_SOURCES`
        files, read only when their header names the family and one of the files). An entry with
        NaN or infinite values gives nothing.
        """
        wanted = set(files)
        found: dict[str, torch.Tensor] = {}

        def take(names: Sequence[str], tensor: torch.Tensor) -> None:
            for index, name in enumerate(names):
                if name in wanted and name not in found:
                    found[name] = tensor[index].clone()

        for key, (entry_family, names) in list(self._rows_of.items()):
            if entry_family == family and key in self._memory and wanted & set(names):
                take(names, self._memory[key])
        if self.directory is None or len(found) == len(wanted) or not self.directory.is_dir():
            return found
        from safetensors import safe_open

        try:
            candidates = sorted(
                self.directory.glob("features-*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True
            )[:MAX_ROW_SOURCES]
        except OSError:
            return found
        for path in candidates:
            try:
                with safe_open(str(path), "pt") as handle:
                    header = handle.metadata() or {}
                    if header.get("family") != family:
                        continue
                    names = json.loads(header.get("files", "[]"))
                    if not isinstance(names, list) or not wanted.difference(found).intersection(names):
                        continue
                    tensor = handle.get_tensor("features")
            except Exception as err:  # a damaged cache file is recomputed, never trusted
                log.warning("ignoring unreadable feature cache %s: %s", path, err)
                continue
            if len(names) == tensor.shape[0] and all_finite(tensor):
                take(names, tensor)
            if len(found) == len(wanted):
                break
        return found

    def discard(self, key: str) -> None:
        """Forget an entry, in memory and on disk (it proved damaged)."""
        self._memory.pop(key, None)
        path = self._file(key)
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError as err:
                log.warning("cannot remove feature cache %s: %s", path, err)

    def _remember(self, key: str, tensor: torch.Tensor) -> None:
        self._memory[key] = tensor
        while len(self._memory) > self.max_memory_entries:
            self._memory.pop(next(iter(self._memory)))
