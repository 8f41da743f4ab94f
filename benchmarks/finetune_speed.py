"""Fine-tuning speed per mode, and what feature caching buys head mode, measured in one run.

On a subset of hymenoptera (real photos; the imported ResNet-50 when present):

* images/s of each mode's training (head with cached features, head recomputing the backbone
  on fresh augmented views every epoch, partial on cached layer3 outputs, full), and of the
  one-off extraction of frozen features;
* the per-epoch time of head mode with and without feature caching, and their ratio: the
  cached run pays a one-off extraction before its first epoch, then each epoch costs almost nothing;
* how good the wizard's time estimate is: :func:`estimate_run` from :func:`measure_costs` (timed
  once, before the runs) against each run's measured epoch time and wall time.

    .venv/bin/python benchmarks/finetune_speed.py [--train-images 64] [--val-images 32] [--epochs 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import HYMENOPTERA, load_benchmark_model

from resnet_gui.core.training import (
    EpochMetrics,
    Progress,
    Split,
    TrainConfig,
    make_split,
    scan_dataset,
    train,
)
from resnet_gui.core.training.estimate import estimate_run, measure_costs


def subset(split: Split, train_images: int, val_images: int) -> Split:
    """The first images of each class (both classes equally), so the run stays short."""

    def take(samples, count):
        per_class = max(1, count // len(split.classes))
        return tuple(
            s
            for label in range(len(split.classes))
            for s in [x for x in samples if x.label == label][:per_class]
        )

    return Split(
        split.root,
        split.classes,
        take(split.train, train_images),
        take(split.val, val_images),
        method="folders",
    )


def measure(loaded, split: Split, config: TrainConfig, out_dir: Path) -> dict[str, float]:
    """Wall time of the run, extraction rate, and the epochs' times and training images/s."""
    began = time.perf_counter()
    extraction: dict[str, Progress] = {}
    epochs: list[EpochMetrics] = []
    for event in train(loaded, split, out_dir / f"{config.mode}.safetensors", config):
        if isinstance(event, Progress) and event.phase.startswith(("features", "probe features")):
            extraction[event.phase] = event
        elif isinstance(event, EpochMetrics) and event.stage == "train":
            epochs.append(event)
    images = sum(p.total for p in extraction.values())
    seconds = sum(p.elapsed for p in extraction.values())
    later = epochs[1:] or epochs
    return {
        "wall": time.perf_counter() - began,
        "extract_images_per_s": images / seconds if seconds else float("nan"),
        "extract_seconds": seconds,
        "later_epoch": statistics.median(e.seconds for e in later),
        "train_images_per_s": statistics.median(e.images_per_second for e in later),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=64)
    parser.add_argument("--val-images", type=int, default=32)
    parser.add_argument(
        "--epochs", type=int, default=4, help="epochs of the head runs (partial/full: 2 and 1)"
    )
    parser.add_argument("--skip-full", action="store_true", help="leave out full mode (the slowest)")
    args = parser.parse_args()
    if not (HYMENOPTERA / "train").is_dir():
        raise SystemExit(f"the hymenoptera data set is missing at {HYMENOPTERA}")
    loaded = load_benchmark_model()
    split = subset(make_split(scan_dataset(HYMENOPTERA)), args.train_images, args.val_images)
    base = {"patience": 0, "batch_size": 32, "device": "cpu"}
    runs = {
        "head, cached features": TrainConfig(mode="head", epochs=args.epochs, **base),
        "head, no cache (fresh views)": TrainConfig(
            mode="head", epochs=args.epochs, cache_features=False, **base
        ),
        "partial, cached layer3": TrainConfig(
            mode="partial", epochs=2, probe_epochs=0, cached_views=0, **base
        ),
    }
    if not args.skip_full:
        runs["full"] = TrainConfig(mode="full", epochs=1, probe_epochs=0, **base)
    print(
        f"model: {loaded.name}; {len(split.train)} train / {len(split.val)} val hymenoptera photos; "
        f"batch 32; torch threads {torch.get_num_threads()}"
    )
    began = time.perf_counter()
    costs = measure_costs(loaded, [s.path for s in split.train[:: max(1, len(split.train) // 4)]][:4])
    print(f"time estimate: costs measured in {time.perf_counter() - began:.1f} s: {costs}")
    columns = ("wall", "extraction", "extract img/s", "epoch", "train img/s", "est. epoch", "est./wall")
    widths = (7, 11, 14, 9, 12, 11, 10)
    print(f"{'run':<30} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, config in runs.items():
            r = results[label] = measure(loaded, split, config, Path(tmp))
            estimate = estimate_run(costs, config, len(split.train), len(split.val))
            has_extraction = r["extract_seconds"] > 0
            extract_rate = f"{r['extract_images_per_s']:.1f}" if has_extraction else "-"
            print(
                f"{label:<30} {r['wall']:>6.1f}s {r['extract_seconds']:>10.1f}s {extract_rate:>14} "
                f"{r['later_epoch']:>8.3f}s {r['train_images_per_s']:>12.1f} "
                f"{estimate.epoch_seconds:>10.3f}s {estimate.total_seconds / r['wall']:>9.2f}x",
                flush=True,
            )
    cached, fresh = results["head, cached features"], results["head, no cache (fresh views)"]
    ratio = fresh["later_epoch"] / cached["later_epoch"]
    print(
        f"head mode: {cached['later_epoch']:.3f} s per epoch on cached features, after a one-off extraction "
        f"of {cached['extract_seconds']:.1f} s, vs {fresh['later_epoch']:.1f} s per epoch recomputing the "
        f"backbone on fresh views ({ratio:.0f}x)"
    )
    print(
        "(epoch: median over the epochs after the first, validation included; extraction: the frozen "
        "part's outputs, computed before epoch 1; the no-cache run still caches the validation images; "
        "est./wall: the wizard's estimate of the whole run over its measured wall time, which also "
        "includes loading the model)"
    )


if __name__ == "__main__":
    main()
