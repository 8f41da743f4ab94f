"""Which CPU speed options pay off: channels_last and bf16 autocast, against plain fp32.

For each option: median time of a forward pass on a batch, and top-1 agreement with plain
fp32 over real photos (the 153 hymenoptera validation photos, else the bundled samples). An
option is worth enabling only if it is faster and keeps top-1 agreement >= 99 %.

    .venv/bin/python benchmarks/cpu_options.py [--batch-size 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from common import load_benchmark_model, median_seconds, real_photo_paths

from resnet_gui.core.engine import Classifier
from resnet_gui.core.images import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--photos", type=int, default=48, help="real photos for the agreement check")
    args = parser.parse_args()
    loaded = load_benchmark_model()
    all_paths = real_photo_paths()
    paths = all_paths[:: max(1, len(all_paths) // args.photos)][: args.photos]  # spread over both classes
    prep = loaded.preprocessing
    batch = prep.prepare_batch([load_image(p, min_size=prep.resize_size) for p in paths])
    options = {
        "fp32 (baseline)": dict(channels_last=False, bf16=False),
        "channels_last": dict(channels_last=True, bf16=False),
        "bf16 autocast": dict(channels_last=False, bf16=True),
        "channels_last + bf16": dict(channels_last=True, bf16=True),
    }
    print(
        f"model: {loaded.name}; {len(paths)} real photos; batch {args.batch_size}; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"{'option':<22} {'ms/batch':>9} {'vs fp32':>8} {'top-1 agree':>12}")
    baseline_time = None
    baseline_top1 = None
    for label, settings in options.items():
        classifier = Classifier(copy.deepcopy(loaded), device="cpu", **settings)
        top1 = np.concatenate(
            [
                classifier.probabilities(batch[i : i + args.batch_size]).argmax(1)
                for i in range(0, len(batch), args.batch_size)
            ]
        )
        seconds = median_seconds(
            lambda c=classifier: c.probabilities(batch[: args.batch_size]), args.repeats, warmup=1
        )
        if baseline_time is None:
            baseline_time, baseline_top1 = seconds, top1
        agreement = float((top1 == baseline_top1).mean()) * 100
        print(
            f"{label:<22} {seconds * 1000:9.1f} {baseline_time / seconds:7.2f}x {agreement:11.1f} %",
            flush=True,
        )


if __name__ == "__main__":
    main()
