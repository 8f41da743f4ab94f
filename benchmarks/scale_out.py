"""Scale-out figures on this machine: the plain batch run against Ray with 1 and 2 model actors.

The same photos (hymenoptera val, 153 real photos, read from /work/shared), the real default model
(the imported Keras ResNet-50), the default backend, batch 16. Each way is timed as a user waits
for it: from the call that starts the run (for Ray: building the dataset, starting the actors,
each loading the model) to the last row. The local run's time includes loading the model too, so
both sides pay the same start. Ray's own start (``ray.init`` of a private local Ray, what
``--ray local`` adds once per run; nothing on a running cluster) is measured apart.

Per way: images/s end to end, images/s after the first rows came back (the steady rate, without
the start-up), the ratio to the local run, and the overhead per image against the local run.
Every Ray run's rows are checked against the local run's (same files, order, top-1).

If ``benchmarks/scale_out_ddp.py`` exists (another part of the project), its ``ddp_rows()`` are
printed too: 1 against 2 DDP processes for fine-tuning.

    .venv/bin/python benchmarks/scale_out.py [--count 153] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from common import HYMENOPTERA, REPO

from resnet_gui.core.batch import BatchRow, classify_folder, scan_inputs


@dataclass
class Timing:
    name: str
    seconds: float  # start of the run to the last row
    steady_seconds: float  # first row to the last row
    first_rows: int  # rows that came with the first row (not in the steady rate)
    rows: list[BatchRow]

    def images_per_second(self) -> float:
        return len(self.rows) / self.seconds

    def steady_images_per_second(self) -> float:
        left = len(self.rows) - self.first_rows
        return left / self.steady_seconds if self.steady_seconds > 0 and left > 0 else float("nan")


def timed(name: str, items) -> Timing:  # type: ignore[no-untyped-def]
    """Consume a stream of rows, timing it from now."""
    began = time.perf_counter()
    rows: list[BatchRow] = []
    first_at = None
    first_rows = 0
    for item in items:
        if isinstance(item, BatchRow):
            rows.append(item)
            if first_at is None:
                first_at = time.perf_counter()
        elif first_at is not None and not first_rows:
            first_rows = len(rows)  # the rows of the first block
    end = time.perf_counter()
    return Timing(name, end - began, end - (first_at or end), first_rows, rows)


def local_run(paths: list[Path], batch_size: int) -> Timing:
    from resnet_gui.core.runtime import load_classifier

    def stream():  # type: ignore[no-untyped-def]
        # Loaded inside the timing: the same start as the Ray actors'.
        classifier = load_classifier(None, backend="auto")
        yield from classify_folder(classifier, paths, top_k=5, batch_size=batch_size)

    return timed("local (plain batch)", stream())


def ray_run(cluster, classifier, paths: list[Path], batch_size: int, actors: int) -> Timing:  # type: ignore[no-untyped-def]
    from resnet_gui.core.batch.ray_runner import ModelSource, classify_on_ray

    source = ModelSource.resolved(None, None, backend="auto")
    stream = classify_on_ray(
        cluster, source, classifier, paths, top_k=5, batch_size=batch_size, actors=actors
    )
    return timed(f"Ray, {actors} actor{'s' if actors > 1 else ''}", stream)


def print_ddp_rows() -> None:
    path = REPO / "benchmarks" / "scale_out_ddp.py"
    if not path.exists():
        print("\n(benchmarks/scale_out_ddp.py is not there: no DDP rows)")
        return
    spec = importlib.util.spec_from_file_location("scale_out_ddp", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print("\nDDP fine-tuning (benchmarks/scale_out_ddp.py, ddp_rows()):")
    for row in module.ddp_rows():
        print(f"  {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=153, help="photos (default: all 153 of hymenoptera val)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-ddp", action="store_true", help="skip the DDP rows")
    args = parser.parse_args()

    paths = scan_inputs([HYMENOPTERA / "val"], recursive=True)[: args.count]
    cpus = len(os.sched_getaffinity(0))
    print(f"{len(paths)} photos of {HYMENOPTERA / 'val'}, batch {args.batch_size}, {cpus} usable cores")
    local = local_run(paths, args.batch_size)

    import ray

    from resnet_gui.core.batch.ray_runner import connect
    from resnet_gui.core.runtime import load_classifier

    began = time.perf_counter()
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ray_start = time.perf_counter() - began
    timings = [local]
    try:
        with connect("local") as cluster:  # the running Ray above, as `--ray` uses it
            classifier = load_classifier(None, backend="auto")  # the driver's copy: labels, preprocessing
            print(f"model: {classifier.name} on {classifier.backend}; Ray: {cluster.describe()}")
            for actors in (1, 2):
                timing = ray_run(cluster, classifier, paths, args.batch_size, actors)
                same = [row.path for row in timing.rows] == [row.path for row in local.rows]
                top1 = sum(
                    (a.top1.label if a.top1 else a.error) == (b.top1.label if b.top1 else b.error)
                    for a, b in zip(timing.rows, local.rows, strict=True)
                )
                assert same, "the Ray run's rows are not the local run's files in the local order"
                print(f"  {timing.name}: rows in the local order; top-1 equal for {top1}/{len(local.rows)}")
                timings.append(timing)
    finally:
        ray.shutdown()

    print(f"\nray.init of a private local Ray (what --ray local adds once per run): {ray_start:.1f} s")
    print(f"\n{'way':<22}{'total s':>9}{'img/s':>8}{'x local':>9}{'steady img/s':>14}{'overhead ms/img':>17}")
    base = local.images_per_second()
    for timing in timings:
        overhead = (timing.seconds - local.seconds) / len(timing.rows) * 1000
        print(
            f"{timing.name:<22}{timing.seconds:>9.1f}{timing.images_per_second():>8.2f}"
            f"{timing.images_per_second() / base:>9.2f}{timing.steady_images_per_second():>14.2f}"
            f"{overhead:>17.0f}"
        )
    if not args.no_ddp:
        print_ddp_rows()


if __name__ == "__main__":
    main()
