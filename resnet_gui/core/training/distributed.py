"""Fine-tuning on several processes with ``torch.distributed`` (DDP): the ranks and the launcher.

Every rank computes the same stratified split (it is deterministic from the seed) and walks the
same global batches in the same order; each takes its share of every batch (rows ``rank::world``),
so a step of ``N`` processes sees exactly the images of a step of one process, and the gradient
(all-reduced by :class:`~torch.nn.parallel.DistributedDataParallel`) is the same up to the order
of float sums. Frozen features (head/partial modes) are extracted by shards and gathered, so every
rank holds the full set; validation and test scores are computed by shards and summed. Rank 0
alone writes the feature cache, the checkpoints and the bundle, and reports progress.

Two ways to start ranks, one code path:

* :func:`train_in_processes`: ``resnet-gui finetune … --nproc N`` spawns ``N`` local processes
  (a free port on 127.0.0.1) and forwards rank 0's events; when a process dies the others are
  terminated (``torch.multiprocessing``'s monitoring) and :class:`RankFailedError` says so.
* ``torchrun --nproc-per-node N [--nnodes M --rdzv-endpoint HOST:PORT] -m resnet_gui finetune …``:
  :func:`from_environment` reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; torchrun's agent does the
  monitoring. Either way a process group has a timeout, so a rank never waits forever.

gloo on the CPU, NCCL when every local rank has its own GPU.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.training.events import TrainingError

__all__ = [
    "RANK_TIMEOUT_SECONDS",
    "RankFailedError",
    "Ranks",
    "TrainJob",
    "backend_for",
    "check_process_count",
    "free_port",
    "from_environment",
    "max_processes",
    "processes_choice_count",
    "processes_choice_visible",
    "train_in_processes",
]

RANK_TIMEOUT_SECONDS = float(os.environ.get("RESNET_GUI_DDP_TIMEOUT", "600"))
"""How long a rank waits in a collective for the others before the run fails (not forever).
Rank 0 alone writes checkpoints and the bundle while the others wait: this is far above that."""


class RankFailedError(TrainingError):
    """A process of a several-process run ended (killed, out of memory…) and the run stopped."""


def processes_choice_count(devices: Sequence[str]) -> int:
    """The most processes the wizard offers for ``devices`` (a device list as the engine gives it).

    One per CUDA GPU. On one device (a CPU, however many cores, or one GPU) several processes
    share the same hardware: measured on this project's 2-core CPU they were slower than one
    (benchmarks/scale_out_ddp.py), so the choice would only invite a slower run.
    """
    return sum(1 for name in devices if name.startswith("cuda"))


def processes_choice_visible(devices: Sequence[str]) -> bool:
    """Whether the wizard shows 'Processes': only with more than one CUDA GPU."""
    return processes_choice_count(devices) > 1


def max_processes(device: str = "auto") -> int:
    """The most local processes that make sense: one per GPU on CUDA, one per CPU core otherwise."""
    if device != "cpu" and torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return torch.cuda.device_count()
    return max(1, os.cpu_count() or 1)


def check_process_count(nproc: int, device: str = "auto") -> None:
    """Refuse a process count that cannot work here, in one sentence."""
    if nproc < 1:
        raise TrainingError(f"--nproc must be at least 1 (got {nproc}).")
    most = max_processes(device)
    if nproc > most:
        what = "GPUs" if most and device != "cpu" and torch.cuda.is_available() else "CPU cores"
        raise TrainingError(
            f"--nproc {nproc} is more than the {most} {what} here; each process needs its own, "
            f"so use at most {most}."
        )
    if not dist.is_available():
        raise TrainingError("This PyTorch build has no torch.distributed, so --nproc must be 1.")


def backend_for(device: str, local_world: int) -> str:
    """NCCL when each local rank gets its own GPU, gloo otherwise (the CPU)."""
    if device != "cpu" and torch.cuda.is_available() and torch.cuda.device_count() >= local_world:
        return "nccl"
    return "gloo"


@dataclass
class Ranks:
    """This process's place in a process group, and the few collectives training needs."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _comm(self, tensor: torch.Tensor) -> torch.Tensor:
        """Where collectives run: the GPU under NCCL, the CPU under gloo."""
        return tensor.to(self.device) if dist.get_backend() == "nccl" else tensor

    def shard(self, count: int) -> list[int]:
        """This rank's positions among ``count`` items (every ``world``-th, from ``rank``)."""
        return list(range(self.rank, count, self.world))

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over ranks (float64)."""
        tensor = self._comm(torch.tensor(list(values), dtype=torch.float64))
        dist.all_reduce(tensor)
        return [float(v) for v in tensor.cpu()]

    def agree(self, flag: bool) -> bool:
        """True on every rank when any rank says true (a cancel seen by one stops all)."""
        return self.sum([1.0 if flag else 0.0])[0] > 0

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device if dist.get_backend() == "nccl" else None)
        return box[0]

    def gather_objects(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order."""
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def gather_rows(self, local: torch.Tensor | None, count: int) -> torch.Tensor:
        """Reassemble rows sharded by :meth:`shard` into the full ``[count, ...]`` tensor, on every rank.

        ``local`` holds this rank's rows in order (``None`` or empty when it had none).
        """
        sizes = [len(range(r, count, self.world)) for r in range(self.world)]
        shapes = self.gather_objects(
            None if local is None or local.shape[0] == 0 else (tuple(local.shape[1:]), local.dtype)
        )
        known = next(item for item in shapes if item is not None)
        row_shape, dtype = known
        most = max(sizes)
        padded = torch.zeros((most, *row_shape), dtype=dtype)
        if local is not None and local.shape[0]:
            padded[: local.shape[0]] = local
        gathered = [self._comm(torch.empty_like(padded)) for _ in range(self.world)]
        dist.all_gather(gathered, self._comm(padded))
        full = torch.empty((count, *row_shape), dtype=dtype)
        for r, part in enumerate(gathered):
            full[r :: self.world] = part[: sizes[r]].cpu()
        return full

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` under DDP (its gradients are averaged over the ranks in ``backward``)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)


def _threads_per_rank(local_world: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, local_world))


def _join_group(
    rank: int, world: int, local_rank: int, local_world: int, device: str, init_method: str | None
) -> Ranks:
    backend = backend_for(device, local_world)
    torch.set_num_threads(_threads_per_rank(local_world))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        where = torch.device("cuda", local_rank)
    elif device in ("auto", "cpu", "", None):
        where = torch.device("cpu")
    else:
        where = torch.device(device)
    dist.init_process_group(
        backend,
        init_method=init_method or "env://",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=RANK_TIMEOUT_SECONDS),
    )
    return Ranks(rank, world, local_rank, where)


def from_environment(device: str = "auto") -> Ranks | None:
    """Join the process group torchrun set up (``RANK``/``WORLD_SIZE``…); ``None`` when not under it."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1 or "RANK" not in os.environ:
        return None
    if dist.is_initialized():
        return Ranks(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), _device(device)
        )
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    return _join_group(
        int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", 0)), local_world, device, None
    )


def _device(device: str) -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu" if device in ("auto", "", None) else device)


def leave_group() -> None:
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


# --- the local launcher -------------------------------------------------------------------------


@dataclass
class TrainJob:
    """What every spawned rank needs to run :func:`~resnet_gui.core.training.train.train` (picklable)."""

    model: str | None
    split: Any
    out: Path
    config: Any
    resume: bool = False
    cache_dir: str | None = None
    save_on_cancel: bool = False
    allow_download: bool = True
    source: str = ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a rendezvous on this machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _portable_error(error: BaseException, rank: int, world: int) -> ResNetGuiError:
    """The error to hand the parent: a user-facing one as it is, anything else in one sentence."""
    if isinstance(error, ResNetGuiError):
        try:
            pickle.loads(pickle.dumps(error))
            return error
        except Exception:  # an error class with extra constructor arguments
            return TrainingError(str(error))
    return TrainingError(
        f"Training stopped: process {rank + 1} of {world} failed ({type(error).__name__}: {error})."
    )


def _rank_main(rank: int, world: int, port: int, job: TrainJob, events: Any, stop: Any) -> None:
    """One spawned rank: join the group, train, send rank 0's events to the parent."""
    from resnet_gui.core.training.features import FeatureCache
    from resnet_gui.core.training.train import train

    cancelled = [False]

    def on_interrupt(signum: int, frame: Any) -> None:
        cancelled[0] = True

    signal.signal(signal.SIGINT, on_interrupt)  # Ctrl-C reaches every rank: each stops after its step
    ranks = None
    try:
        ranks = _join_group(rank, world, rank, world, job.config.device, f"tcp://127.0.0.1:{port}")
        cache = FeatureCache(job.cache_dir) if job.cache_dir else None
        for event in train(
            job.model,
            job.split,
            job.out,
            job.config,
            resume=job.resume,
            cancel=lambda: cancelled[0] or stop.is_set(),
            feature_cache=cache,
            save_on_cancel=job.save_on_cancel,
            allow_download=job.allow_download,
            source=job.source,
            distributed=ranks,
        ):
            if rank == 0:
                events.put(("event", event))
    except BaseException as error:
        if isinstance(error, dist.DistError):  # another rank is gone: the parent says which
            events.put(("lost", rank))
        else:
            events.put(("error", _portable_error(error, rank, world)))
        leave_group()
        sys.exit(1)
    events.put(("done", rank))
    leave_group()


def _stopped_sentence(index: int, world: int, how: str, out: Path) -> str:
    from resnet_gui.core.training.bundle import checkpoint_path

    ckpt = checkpoint_path(out)
    resume = (
        f"the last finished epoch is kept in '{ckpt}': run the same command with --resume to continue"
        if ckpt.is_file()
        else "no epoch had finished, so nothing can be resumed: run it again"
    )
    return f"Training stopped: process {index + 1} of {world} ended unexpectedly ({how}); {resume}."


def _first_death(processes: Sequence[Any], exited: Any) -> tuple[int, str]:
    """Which process ended first and how: one killed by a signal (not our SIGTERM) is the cause."""
    for index, process in enumerate(processes):
        code = process.exitcode
        if code is not None and code < 0 and -code != signal.SIGTERM:
            return index, f"killed by {signal.Signals(-code).name}"
    if exited.signal_name:
        return exited.error_index, f"killed by {exited.signal_name}"
    return exited.error_index, f"exit code {exited.exit_code}"


def train_in_processes(
    job: TrainJob, nproc: int, *, cancel: Callable[[], bool] | None = None, poll_seconds: float = 0.1
) -> Iterator[Any]:
    """Run ``job`` on ``nproc`` local processes; yields rank 0's events (the last a ``TrainResult``).

    When a process dies, the others are terminated at once and :class:`RankFailedError` is raised;
    an error a rank raised (bad image, diverged run…) is raised here as it was.
    """
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    events = context.Queue()
    stop = context.Event()
    port = free_port()
    processes = mp.start_processes(
        _rank_main, args=(nproc, port, job, events, stop), nprocs=nproc, join=False, start_method="spawn"
    )
    error: ResNetGuiError | None = None
    done = False
    try:
        while True:
            if cancel is not None and cancel():
                stop.set()
            try:
                kind, payload = events.get(timeout=poll_seconds)
            except queue.Empty:
                kind, payload = "", None
            if kind == "event":
                yield payload
                continue
            if kind == "error" and error is None:
                error = payload
            if done:
                break
            try:
                done = processes.join(timeout=0)
            except mp.ProcessExitedException as exited:
                if error is None:
                    # a rank that raised told us why; give its message a moment to arrive
                    with contextlib.suppress(queue.Empty):
                        while True:
                            kind, payload = events.get(timeout=1.0)
                            if kind == "event":
                                yield payload
                            elif kind == "error":
                                error = payload
                                break
                index, how = _first_death(processes.processes, exited)
                if error is not None and how.startswith("exit"):
                    raise error from None
                raise RankFailedError(_stopped_sentence(index, nproc, how, job.out)) from None
            except mp.ProcessRaisedException as raised:
                raise error or TrainingError(
                    f"Training stopped: process {raised.error_index + 1} failed."
                ) from None
            if done:
                # drain what rank 0 sent last
                continue
        if error is not None:
            raise error
    finally:
        for process in processes.processes:
            if process.is_alive():
                process.terminate()
        for process in processes.processes:
            process.join(timeout=10)
