"""Fine-tuning on 1 vs 2 DDP processes (torch.distributed, gloo on this CPU): what a second process buys.

Two runs of each kind, on the real photos of hymenoptera with the default model (the imported
ResNet-50; a random one of the same cost where it is missing):

* ``head``: the whole data set, where the one-off extraction of frozen features dominates; each
  process extracts its half of the photos (then a linear head trains in milliseconds);
* ``full``: one epoch of every layer on a subset, the DDP case proper (gradients all-reduced
  after each step).

The baseline is 1 process (a plain run, every core of the machine). Rows: images/s of the phase
(extraction or training epoch), the ratio to the baseline, the extra wall time per image, and the
start-up of the processes (spawn, import, model load). On a machine of 2 shared cores two
processes share the same cores, so no speed-up can show here: the figures measure DDP's overhead.

    .venv/bin/python benchmarks/scale_out_ddp.py [--head-images 0] [--full-images 32]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from common import HYMENOPTERA

from resnet_gui.core.training import EpochMetrics, Split, TrainConfig, make_split, scan_dataset, train
from resnet_gui.core.training.distributed import TrainJob, train_in_processes
from resnet_gui.core.training.train import TrainResult


def _subset(split: Split, images: int) -> Split:
    per_class = max(1, images // len(split.classes))

    def take(samples: tuple) -> tuple:
        return tuple(
            s
            for label in range(len(split.classes))
            for s in [x for x in samples if x.label == label][:per_class]
        )

    return dataclasses.replace(split, train=take(split.train), val=take(split.val)[: max(2, images // 2)])


def _run(split: Split, config: TrainConfig, nproc: int, out: Path) -> dict[str, Any]:
    """One run: its wall time, result and first epoch (from rank 0's events)."""
    began = time.perf_counter()
    if nproc == 1:
        events = train(None, split, out, config)
    else:
        events = train_in_processes(TrainJob(None, split, out, config), nproc)
    result, epoch = None, None
    for event in events:
        if isinstance(event, EpochMetrics) and epoch is None:
            epoch = event
        if isinstance(event, TrainResult):
            result = event
    assert result is not None and epoch is not None
    wall = time.perf_counter() - began
    return {"wall": wall, "result": result, "epoch": epoch, "startup": wall - result.seconds}


def ddp_rows(head_images: int = 0, full_images: int = 32) -> list[dict[str, Any]]:
    """1 vs 2 processes for head (extraction) and full (one training epoch) on hymenoptera.

    ``head_images``: train photos of the head run (0: the whole data set, 245 + 153).
    """
    split = make_split(scan_dataset(HYMENOPTERA))
    head_split = _subset(split, head_images) if head_images else split
    kinds = [
        ("head: feature extraction", head_split, TrainConfig(mode="head", epochs=5, cache_features=True)),
        (
            "full: one training epoch",
            _subset(split, full_images),
            TrainConfig(mode="full", epochs=1, probe_epochs=0, batch_size=16),
        ),
    ]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for what, data, config in kinds:
            images = len(data.train) + len(data.val) if config.mode == "head" else len(data.train)
            baseline = None
            for nproc in (1, 2):
                measured = _run(data, config, nproc, Path(tmp) / f"{config.mode}-{nproc}.safetensors")
                result: TrainResult = measured["result"]
                seconds = result.feature_seconds if config.mode == "head" else measured["epoch"].seconds
                per_image = seconds / images
                if baseline is None:
                    baseline = per_image
                val = result.val_accuracy
                rows.append(
                    {
                        "phase": what,
                        "processes": nproc,
                        "images": images,
                        "seconds": round(seconds, 2),
                        "images_per_second": round(images / seconds, 2),
                        "vs_1_process": round(baseline / per_image, 2),
                        "overhead_ms_per_image": round((per_image - baseline) * 1000, 1),
                        "startup_seconds": round(measured["startup"], 1),
                        "val_accuracy": None if val is None else round(val, 4),
                        "cpu_cores": os.cpu_count(),
                        "torch_threads_per_process": max(1, (os.cpu_count() or 1) // nproc),
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head-images", type=int, default=0, help="train photos of the head run (0: all)")
    parser.add_argument("--full-images", type=int, default=32, help="training photos of the full-mode epoch")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, gloo")
    header = f"{'phase':<26} {'procs':>5} {'images':>6} {'s':>7} {'img/s':>7} {'vs 1':>5} "
    header += f"{'+ms/img':>8} {'start s':>8}"
    print(header)
    for row in ddp_rows(args.head_images, args.full_images):
        print(
            f"{row['phase']:<26} {row['processes']:>5} {row['images']:>6} {row['seconds']:>7.1f} "
            f"{row['images_per_second']:>7.2f} {row['vs_1_process']:>5.2f} "
            f"{row['overhead_ms_per_image']:>8.1f} "
            f"{row['startup_seconds']:>8.1f}"
            + (f"  val acc {row['val_accuracy'] * 100:.1f} %" if row["val_accuracy"] is not None else "")
        )


if __name__ == "__main__":
    main()
