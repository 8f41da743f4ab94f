"""Run a batch on Ray Data: the same rows as :func:`~resnet_gui.core.batch.classify_folder`, on a cluster.

Imported only for ``resnet-gui batch --ray``; everything here is Ray's own machinery (no scheduler,
queue or RPC of ours):

* the file list becomes a Ray Dataset (``ray.data.from_items``: row index and path bytes);
* decoding and preprocessing run as Ray tasks (``map_batches`` of a function), with the same
  :func:`~resnet_gui.core.batch.pipeline.prepare_file` as the local run;
* the model runs in a pool of actors (``map_batches`` of a callable class, ``concurrency=N``),
  each loading the model once from its reference (name or weights path, as the CLI resolved it)
  with :func:`~resnet_gui.core.runtime.load_classifier`, a GPU each where the cluster has them, and
  turning a batch into rows with the local run's own ``_run_batch``;
* the classified blocks stream back to the driver (``iter_batches``), which yields the rows in
  input order, the local run's order, so the writers, resume, sort and summary are unchanged.

Ray retries the work of a worker that dies (Ray Data restarts actors and retries their tasks); a
task's output is used once, and the driver also keeps only the first row of each file.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from resnet_gui.core.batch.pipeline import _Prepared, _run_batch, prepare_file
from resnet_gui.core.batch.ray_targets import DEFAULT_RAY_TARGET, RAY_TARGETS
from resnet_gui.core.batch.rows import BatchProgress, BatchRow
from resnet_gui.core.engine import Prediction
from resnet_gui.core.errors import CancelCheck, ResNetGuiError, as_cancel_check

if TYPE_CHECKING:
    from resnet_gui.core.engine import ImageClassifier
    from resnet_gui.core.preprocessing import Preprocessing

__all__ = [
    "DEFAULT_RAY_TARGET",
    "RAY_EXTRA_HINT",
    "RAY_TARGETS",
    "ClassifyActor",
    "ModelSource",
    "RayBatchError",
    "RayCluster",
    "RayUnavailableError",
    "classify_on_ray",
    "connect",
    "default_actors",
    "require_ray",
]

RAY_EXTRA_HINT = "pip install 'resnet-gui[distributed]'"

#: CPUs a decoding task asks for. Fractional, so that on a small machine the model actors never
#: take every CPU and leave the decoding tasks none (which would stall the run).
DECODE_TASK_CPUS = 0.5

_ENCODING_ERRORS = "surrogateescape"  # non-UTF-8 file names and reasons survive the trip through Arrow


class RayUnavailableError(ResNetGuiError):
    """``--ray`` was asked for, and Ray is not installed."""

    exit_code = 2


class RayBatchError(ResNetGuiError):
    """The Ray cluster cannot be reached, or did not return a row for every file."""

    exit_code = 1


def require_ray() -> ModuleType:
    """The ``ray`` module with Ray Data, or one sentence saying how to install it."""
    try:
        import ray
        import ray.data  # Ray Data is a separate extra of Ray
    except ImportError:
        raise RayUnavailableError(
            f"Running on Ray needs Ray Data, which is not installed: {RAY_EXTRA_HINT}."
        ) from None
    return ray


# --- the cluster -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RayCluster:
    """The cluster a run uses: its address as given, and the CPUs and GPUs it has in all."""

    target: str
    cpus: float
    gpus: float
    started_here: bool  # a private Ray started for this run (``local``), stopped at the end

    def describe(self) -> str:
        where = "a local Ray" if self.target == "local" else f"the Ray cluster at {self.target}"
        gpus = f", {self.gpus:g} GPUs" if self.gpus else ""
        return f"{where} ({self.cpus:g} CPUs{gpus})"


def _runtime_env() -> dict[str, Any]:
    """What the workers need of this process's environment: its data folder, when one was chosen
    (where the imported weights and the exported ONNX graphs are)."""
    names = ("RESNET_GUI_DATA_DIR",)
    env_vars = {name: os.environ[name] for name in names if name in os.environ}
    return {"env_vars": env_vars} if env_vars else {}


class connect:  # lower case: used like a function, ``with connect(target) as cluster``
    """Connect to Ray for one run (``with connect("local") as cluster:``).

    ``local`` starts a private Ray on this machine (``ray.init(address="local")``, never joining a
    cluster by accident); ``auto`` joins the cluster of this machine (``ray.init(address="auto")``:
    an error when there is none); anything else is a cluster's address (``HOST:PORT`` of the head's
    GCS, or ``ray://HOST:10001``). A process that already called ``ray.init`` (a notebook, a test)
    keeps its connection, and it is left open.
    """

    def __init__(self, target: str) -> None:
        self.target = target or DEFAULT_RAY_TARGET
        self._started = False

    def __enter__(self) -> RayCluster:
        ray = require_ray()
        if not ray.is_initialized():
            _check_reachable(self.target)
            try:
                ray.init(
                    address=self.target,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                    runtime_env=_runtime_env() or None,
                )
            except Exception as error:  # ConnectionError, ValueError for a malformed address, …
                raise RayBatchError(_connect_reason(self.target, error)) from None
            self._started = True
        _quiet_ray_data()
        resources = ray.cluster_resources()
        return RayCluster(
            self.target, float(resources.get("CPU", 0)), float(resources.get("GPU", 0)), self._started
        )

    def __exit__(self, *exc_info: object) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def _check_reachable(target: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with the reason, for a ``HOST:PORT`` nothing listens on (Ray itself
    retries such an address for minutes before it gives up)."""
    host, _, port = target.rpartition(":")
    if target in RAY_TARGETS or "://" in target or not host or not port.isdigit():
        return  # a named value, a ray:// client address, or something for Ray to judge
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as error:
        reason = (error.strerror or str(error) or type(error).__name__).lower()
        raise RayBatchError(
            f"Cannot connect to the Ray cluster at '{target}': {reason} (is `ray start --head "
            f"--port={port}` running there, and is the port open?)."
        ) from None


def _connect_reason(target: str, error: Exception) -> str:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if target == "auto":
        return (
            "Cannot find a Ray cluster on this machine (--ray auto): start one with `ray start --head`, "
            f"or give its address with --ray HOST:PORT ({detail})."
        )
    if target == "local":
        return f"Cannot start Ray on this machine ({detail})."
    return f"Cannot connect to the Ray cluster at '{target}' ({detail})."


def _quiet_ray_data() -> None:
    """Ray Data's progress bars and plan logs would interleave with the CLI's own progress line."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = True  # the local run's order, as far as Ray keeps it
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def default_actors(cluster: RayCluster) -> int:
    """How many model actors a run starts when ``--actors`` is not given.

    One per GPU where the cluster has GPUs (the GPU is the bottleneck, and each actor holds its own
    model on its own GPU). On CPUs only, one per CPU less about an eighth of the CPUs kept for the
    decoding tasks (a decode costs ~10 % of a ResNet-50 forward on a CPU, and one single-threaded
    model per core is the most images per core); at least 1. On a 2-CPU machine: 1.
    """
    if cluster.gpus >= 1:
        return int(cluster.gpus)
    cpus = int(cluster.cpus)
    return max(1, cpus - max(1, cpus // 8))


def actor_cpus(cluster: RayCluster, actors: int) -> float:
    """CPUs each CPU actor asks for: one, less where the actors would leave no CPU to decode with.

    Never exactly a decoding task's share: Ray Data fuses two stages whose resource requests are
    equal, which would move the decoding into the actors (and off the other cores).
    """
    if cluster.cpus <= 0:
        return 0.0
    share = max(0.0, min(1.0, (cluster.cpus - DECODE_TASK_CPUS) / actors))
    return share - 0.01 if math.isclose(share, DECODE_TASK_CPUS) else share


# --- what the workers run ----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSource:
    """How an actor gets the model: the reference the CLI resolved, loaded in the actor with the
    same :func:`~resnet_gui.core.runtime.load_classifier` as here. The files it names must be
    readable where the actors run (a shared folder on a real cluster)."""

    model: str | None
    weights_file: str | None = None
    backend: str = "auto"
    device: str = "auto"
    allow_download: bool = True

    @classmethod
    def resolved(
        cls,
        model: str | None,
        weights_file: str | os.PathLike[str] | None,
        *,
        backend: str = "auto",
        device: str = "auto",
        allow_download: bool = True,
    ) -> ModelSource:
        """The default model spelled out here (``name:WEIGHTS``), so that every actor loads the one
        this machine chose, and paths made absolute (an actor's working folder is not ours)."""
        if model is None and weights_file is None:
            from resnet_gui.core.models import default_model_choice

            name, weights_name = default_model_choice()
            model = f"{name}:{weights_name}"

        def absolute(value: str | os.PathLike[str] | None) -> str | None:
            if value is None:
                return None
            return os.path.abspath(value) if os.path.exists(value) else os.fspath(value)

        return cls(absolute(model), absolute(weights_file), backend, device, allow_download)

    def load(self) -> ImageClassifier:
        from resnet_gui.core.runtime import load_classifier

        return load_classifier(
            self.model,
            weights_file=self.weights_file,
            backend=self.backend,
            device=self.device,
            allow_download=self.allow_download,
        )


def _to_bytes(text: str | os.PathLike[str]) -> bytes:
    return os.fspath(text).encode("utf-8", _ENCODING_ERRORS)


def _from_bytes(data: bytes) -> str:
    return bytes(data).decode("utf-8", _ENCODING_ERRORS)


def decode_batch(
    batch: dict[str, np.ndarray], preprocessing: Preprocessing, max_image_pixels: int | None
) -> dict[str, np.ndarray]:
    """A Ray task: decode and prepare a batch of files, failures kept as reasons (a row each)."""
    from resnet_gui.core.images import set_max_image_pixels

    set_max_image_pixels(max_image_pixels)  # the driver's limit (--max-megapixels), not the worker's
    items = [prepare_file(Path(_from_bytes(raw)), preprocessing) for raw in batch["path"]]
    side = preprocessing.crop_size
    blank = np.zeros((3, side, side), dtype=np.float32)  # keeps one array shape for every row
    return {
        "index": np.asarray(batch["index"], dtype=np.int64),
        "path": batch["path"],
        "array": np.stack([item.array if item.array is not None else blank for item in items]),
        "failed": np.array([item.error is not None for item in items], dtype=bool),
        "error": np.array([_to_bytes(item.error or "") for item in items], dtype=object),
        "kind": np.array([item.kind if item.error is not None else "" for item in items], dtype=object),
    }


class ClassifyActor:
    """A Ray actor: loads the model once, then classifies batches with the local run's code.

    Ray Data builds it without arguments: the run's model and top-k are attributes of a subclass
    made for the run (:func:`bound_actor`), shipped with the class itself. Constructor arguments
    would go through the object store, where a restarted actor may no longer find them.
    """

    source: ModelSource
    top_k: int

    def __init__(self) -> None:
        self.classifier = self.source.load()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = []
        for path, array, failed, error, kind in zip(
            batch["path"], batch["array"], batch["failed"], batch["error"], batch["kind"], strict=True
        ):
            if failed:
                items.append(_Prepared(Path(_from_bytes(path)), error=_from_bytes(error), kind=kind))
            else:
                items.append(_Prepared(Path(_from_bytes(path)), array=np.asarray(array)))
        rows = _run_batch(self.classifier, items, self.top_k)
        return rows_to_columns(np.asarray(batch["index"], dtype=np.int64), rows, self.top_k)


def bound_actor(actor_class: type[ClassifyActor], source: ModelSource, top_k: int) -> type[ClassifyActor]:
    """``actor_class`` for one run: a subclass holding the run's model source and top-k."""
    return type(actor_class.__name__, (actor_class,), {"source": source, "top_k": top_k})


def rows_to_columns(indices: np.ndarray, rows: Sequence[BatchRow], top_k: int) -> dict[str, np.ndarray]:
    """Rows as the columns of a Ray block (class indices, not labels: the driver has the labels)."""
    classes = np.full((len(rows), top_k), -1, dtype=np.int64)
    probabilities = np.zeros((len(rows), top_k), dtype=np.float64)
    for number, row in enumerate(rows):
        for rank, prediction in enumerate(row.predictions):
            classes[number, rank] = prediction.index
            probabilities[number, rank] = prediction.probability
    return {
        "index": indices,
        "failed": np.array([not row.ok for row in rows], dtype=bool),
        "error": np.array([_to_bytes(row.error or "") for row in rows], dtype=object),
        "kind": np.array([row.kind or "" for row in rows], dtype=object),
        "classes": classes,
        "probabilities": probabilities,
        "unusual": np.array([-1 if row.unusual is None else int(row.unusual) for row in rows], dtype=np.int8),
    }


def rows_from_columns(
    block: dict[str, np.ndarray], paths: Sequence[Path], categories: Sequence[str]
) -> Iterator[tuple[int, BatchRow]]:
    """``(index, row)`` for each row of a block, the path and labels taken from the driver's lists."""
    for number, index in enumerate(block["index"]):
        path = paths[int(index)]
        if block["failed"][number]:
            error = _from_bytes(block["error"][number])
            yield int(index), BatchRow(path, error=error, kind=str(block["kind"][number]))  # type: ignore[arg-type]
            continue
        predictions = tuple(
            Prediction(categories[int(cls)], int(cls), float(probability))
            for cls, probability in zip(block["classes"][number], block["probabilities"][number], strict=True)
            if cls >= 0
        )
        unusual = int(block["unusual"][number])
        yield int(index), BatchRow(path, predictions, unusual=None if unusual < 0 else bool(unusual))


# --- the driver --------------------------------------------------------------------------------


def classify_on_ray(
    cluster: RayCluster,
    source: ModelSource,
    classifier: ImageClassifier,
    paths: Sequence[str | os.PathLike[str]],
    *,
    top_k: int = 5,
    batch_size: int = 16,
    actors: int | None = None,
    cancel: CancelCheck | None = None,
    actor_class: type[ClassifyActor] = ClassifyActor,
) -> Iterator[BatchProgress | BatchRow]:
    """The rows of ``paths`` classified on ``cluster``, as :func:`classify_folder` yields them.

    ``classifier`` is this process's copy of the model: its categories and preprocessing (the
    actors load their own from ``source``). Yields a :class:`BatchProgress` first, then the rows in
    input order, a progress after each block that came back. ``actors``: the model actors
    (default :func:`default_actors`). ``actor_class`` is for tests (an actor that dies once).
    """
    from resnet_gui.core.images import get_max_image_pixels

    if batch_size < 1 or top_k < 1 or (actors is not None and actors < 1):
        raise ValueError("batch_size, top_k and actors must be >= 1")
    ray = require_ray()
    if not ray.is_initialized():
        raise RayBatchError("Ray is not connected: run inside `with connect(target) as cluster:`.")
    files = [Path(path) for path in paths]
    pool = actors if actors is not None else default_actors(cluster)
    gpus = 1 if cluster.gpus >= 1 else 0
    return _stream(
        ray,
        files,
        classifier,
        source,
        top_k=min(top_k, len(classifier.categories)),
        batch_size=batch_size,
        actors=pool,
        gpus=gpus,
        cpus=actor_cpus(cluster, pool),
        max_image_pixels=get_max_image_pixels(),
        cancelled=as_cancel_check(cancel),
        actor_class=actor_class,
    )


def _stream(
    ray: ModuleType,
    files: list[Path],
    classifier: ImageClassifier,
    source: ModelSource,
    *,
    top_k: int,
    batch_size: int,
    actors: int,
    gpus: int,
    cpus: float,
    max_image_pixels: int | None,
    cancelled: Callable[[], bool],
    actor_class: type[ClassifyActor],
) -> Iterator[BatchProgress | BatchRow]:
    total = len(files)
    started = time.perf_counter()
    yield BatchProgress(0, total, 0, 0.0)
    if not total:
        return
    items = [{"index": index, "path": _to_bytes(path)} for index, path in enumerate(files)]
    dataset = ray.data.from_items(
        items, override_num_blocks=max(1, min(math.ceil(total / batch_size), 10_000))
    )
    decoded = dataset.map_batches(
        decode_batch,
        batch_size=batch_size,
        batch_format="numpy",
        fn_kwargs={"preprocessing": classifier.preprocessing, "max_image_pixels": max_image_pixels},
        num_cpus=DECODE_TASK_CPUS,
    )
    classified = decoded.map_batches(
        bound_actor(actor_class, source, top_k),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus,
        num_gpus=gpus,
    )
    categories = classifier.categories
    waiting: dict[int, BatchRow] = {}
    done = failed = 0
    blocks = classified.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1)
    try:
        for block in blocks:
            for index, row in rows_from_columns(block, files, categories):
                if index >= done and index not in waiting:  # a row already given is never given again
                    waiting[index] = row
            while done in waiting:  # the local run's order: rows go out by input index
                row = waiting.pop(done)
                failed += not row.ok
                done += 1
                yield row
            yield BatchProgress(done, total, failed, time.perf_counter() - started)
            if cancelled() and done < total:
                yield BatchProgress(done, total, failed, time.perf_counter() - started, cancelled=True)
                return
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
    if done < total:
        raise RayBatchError(
            f"The Ray cluster returned rows for {done} of {total} files; run the same command with "
            "--resume to classify the others."
        )
