"""How well a CIFAR ResNet learns from scratch on this CPU, against the majority-class baseline.

Real photos: ``cifar10_train_500`` (500 CIFAR-10 training photos per class, 32x32 JPEG), split
stratified with a held-out validation share (seed 0). The baseline is the majority class of the
training split, always answered (10 % on these balanced classes: chance); an untrained network,
or head mode on one, is no meaningful baseline. Trains ``scratch`` mode with its defaults (the
README's numbers) unless told otherwise, and prints validation accuracy, wall time, epochs and
the ratio to the baseline. ``--compare`` trains other architectures on the same split too (e.g.
``cifar_plain20``, the paper's degradation experiment).

    .venv/bin/python benchmarks/train_from_scratch.py
    .venv/bin/python benchmarks/train_from_scratch.py --compare cifar_plain20
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import REPO  # noqa: F401  (puts the repository and tests/ on sys.path)
from shared_data import shared_data_dir

CIFAR10_TRAIN_500 = shared_data_dir() / "cifar10_train_500"


def _print_epoch(event: object) -> None:
    from resnet_gui.core.training import EpochMetrics

    if isinstance(event, EpochMetrics):
        print(
            f"  epoch {event.epoch}/{event.epochs}: train {event.train_accuracy:.3f}, "
            f"val {event.val_accuracy:.3f}, {event.seconds:.0f} s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cifar_resnet20")
    parser.add_argument("--compare", nargs="*", default=[], metavar="MODEL", help="also train these")
    parser.add_argument("--epochs", type=int, help="default: scratch mode's")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, help="default: scratch mode's (scaled to the batch)")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--per-class", type=int, help="use only the first N photos of each class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not CIFAR10_TRAIN_500.is_dir():
        raise SystemExit(f"{CIFAR10_TRAIN_500} is missing (see shared/data/README.md)")

    with tempfile.TemporaryDirectory() as temp:
        os.environ["RESNET_GUI_DATA_DIR"] = str(Path(temp) / "data")
        from resnet_gui.core.training import TrainConfig, make_split, run_training, scan_dataset

        dataset = scan_dataset(CIFAR10_TRAIN_500)
        exclude = set()
        if args.per_class:
            seen: Counter[int] = Counter()
            for sample in dataset.samples:
                seen[sample.label] += 1
                if seen[sample.label] > args.per_class:
                    exclude.add(sample.path)
        split = make_split(dataset, val_fraction=args.val_fraction, seed=args.seed, exclude=exclude)
        counts = Counter(sample.label for sample in split.train)
        majority = counts.most_common(1)[0][0]
        baseline = sum(sample.label == majority for sample in split.val) / len(split.val)
        print(
            f"{CIFAR10_TRAIN_500.name}: {len(split.train)} train, {len(split.val)} val photos, "
            f"{len(split.classes)} classes; {os.cpu_count()} CPU cores"
        )
        print(f"baseline (majority class of the training split): val accuracy {baseline:.3f}")
        config = TrainConfig(
            mode="scratch",
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=args.weight_decay,
            label_smoothing=args.label_smoothing,
            seed=args.seed,
            device="cpu",
        )
        resolved = config.resolved()
        print(
            f"scratch mode: {resolved.epochs} epochs, batch {resolved.batch_size}, lr {resolved.lr:g}, "
            f"weight decay {resolved.weight_decay:g}, label smoothing {resolved.label_smoothing:g}"
        )
        for model in [args.model, *args.compare]:
            began, cpu_began = time.perf_counter(), time.process_time()
            result = run_training(
                model, split, Path(temp) / f"{model}.safetensors", config, on_event=_print_epoch
            )
            seconds = time.perf_counter() - began
            cpu_seconds = time.process_time() - cpu_began
            accuracy = result.val_accuracy or 0.0
            last = result.history[-1]
            print(
                f"{model}: val accuracy {accuracy:.3f} (best epoch {result.best_epoch}; last epoch "
                f"{last.val_accuracy:.3f}, train {last.train_accuracy:.3f}), {len(result.history)} epochs "
                f"in {seconds:.0f} s ({seconds / len(result.history):.1f} s/epoch; {cpu_seconds:.0f} CPU-s, "
                f"load average {os.getloadavg()[0]:.1f}); "
                f"{accuracy / baseline:.1f}x the baseline"
            )


if __name__ == "__main__":
    main()
