"""Batch throughput in images/s on real photos: the naive loop, ours, and the model alone.

* naive: what a tutorial loop does, one photo at a time: PIL full decode, torchvision
  ``Resize``/``CenterCrop``/``ToTensor``/``Normalize``, a batch-1 forward pass under ``no_grad``.
* ours: :func:`resnet_gui.core.batch.classify_folder` (draft-mode JPEG decoding in loader
  threads, overlapped with batched inference), every result row consumed.
* ours with 2 loader threads, and without overlap (``workers=0``: decode, then run the model, in
  turn), to show what the default number of loader threads is worth.
* compute bound: the same classifier on arrays prepared beforehand, in batches of the same size:
  what ours would reach if decoding were free.

Each figure is given as the median, min and max over the rounds in wall-clock images/s (what a
user waits for; the spread shows how much other jobs disturbed the run), and as images per
CPU-second of this process (all its threads), which other jobs on a shared machine move less: it
says how much work each way does per image, decoding included. Ratios use the medians.

Two folders, built from the hymenoptera photos (read from /work/shared, written to a temporary
folder, never into the repository): camera size (each photo upscaled to 4000x3000, JPEG q90) and
native size (the photos as they are, ~500x375). Every figure comes from this one run; the four
measurements of a round run back to back, so that a change of load moves them together.

    .venv/bin/python benchmarks/batch_throughput.py [--count 48] [--naive-count 12] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import HYMENOPTERA, REPO, load_benchmark_model
from PIL import Image
from torchvision import transforms

from resnet_gui.core.batch import BatchRow, classify_folder, default_workers
from resnet_gui.core.engine import Classifier
from resnet_gui.core.images import load_image

CAMERA_SIZE = (4000, 3000)
TARGET_VS_BOUND = 0.8
TARGET_VS_NAIVE = 3.0


def pick_photos(count: int) -> list[Path]:
    """``count`` photos spread over the whole data set (ants and bees, train and val)."""
    photos = sorted(HYMENOPTERA.glob("*/*/*.jpg"))
    if not photos:
        photos = sorted((REPO / "assets" / "samples").glob("*.jpg"))
        print(f"note: {HYMENOPTERA} is missing; using the {len(photos)} bundled samples")
    step = max(1, len(photos) // count)
    return photos[::step][:count]


def build_camera_folder(photos: list[Path], folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for index, photo in enumerate(photos):
        path = folder / f"camera{index:03d}.jpg"
        Image.open(photo).convert("RGB").resize(CAMERA_SIZE, Image.Resampling.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def naive_transform(preprocessing) -> Callable:
    flip = [transforms.Lambda(lambda t: t.flip(0))] if preprocessing.channel_order == "BGR" else []
    return transforms.Compose(
        [
            transforms.Resize(preprocessing.resize_size),
            transforms.CenterCrop(preprocessing.crop_size),
            transforms.ToTensor(),
            *flip,
            transforms.Normalize(preprocessing.mean, preprocessing.std),
        ]
    )


def run_naive(model: torch.nn.Module, transform: Callable, paths: list[Path]) -> list[int]:
    top1 = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        with torch.no_grad():
            probabilities = torch.softmax(model(transform(image).unsqueeze(0)), dim=1)
        top1.append(int(probabilities.topk(5).indices[0, 0]))
    return top1


def run_ours(classifier: Classifier, folder: Path, batch_size: int, workers: int) -> list[int]:
    rows = [
        item
        for item in classify_folder(classifier, folder, top_k=5, batch_size=batch_size, workers=workers)
        if isinstance(item, BatchRow)
    ]
    assert all(row.ok for row in rows), [row.error for row in rows if not row.ok]
    return [row.top1.index for row in rows]


def run_bound(classifier: Classifier, arrays: list[np.ndarray], batch_size: int) -> None:
    for start in range(0, len(arrays), batch_size):
        classifier.top_k(classifier.probabilities(np.stack(arrays[start : start + batch_size])), 5)


def rate(function: Callable[[], object], images: int) -> tuple[float, float, object]:
    """Images per wall-clock second, images per CPU-second of this process (all its threads), result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return images / (time.perf_counter() - wall), images / (time.process_time() - cpu), result


def measure_folder(
    title: str,
    paths: list[Path],
    classifier: Classifier,
    naive_model: torch.nn.Module,
    transform: Callable,
    args: argparse.Namespace,
) -> None:
    folder = paths[0].parent
    assert sorted(folder.glob("*.jpg")) == sorted(paths), "ours classifies the whole folder"
    naive_paths = paths[: args.naive_count]
    prep = classifier.preprocessing
    arrays = [prep.prepare(load_image(path, min_size=prep.resize_size)) for path in paths]
    run_bound(classifier, arrays[: args.batch_size], args.batch_size)  # warm-up
    run_naive(naive_model, transform, naive_paths[:1])
    runs: dict[str, Callable[[], object]] = {
        "bound": lambda: run_bound(classifier, arrays, args.batch_size),
        "ours": lambda: run_ours(classifier, folder, args.batch_size, args.workers),
        "ours_2_threads": lambda: run_ours(classifier, folder, args.batch_size, 2),
        "ours_no_overlap": lambda: run_ours(classifier, folder, args.batch_size, 0),
        "naive": lambda: run_naive(naive_model, transform, naive_paths),
    }
    if args.workers == 2:
        del runs["ours_2_threads"]
    sizes = {"naive": len(naive_paths)}
    wall: dict[str, list[float]] = {key: [] for key in runs}
    cpu: dict[str, list[float]] = {key: [] for key in runs}
    top1: dict[str, object] = {}
    for round_index in range(args.rounds):
        for key, function in runs.items():  # back to back, so one round sees one load
            w, c, top1[key] = rate(function, sizes.get(key, len(paths)))
            wall[key].append(w)
            cpu[key].append(c)
        print(
            f"  round {round_index + 1}: "
            + ", ".join(f"{key} {wall[key][-1]:.2f}" for key in runs)
            + " images/s",
            flush=True,
        )
    same = sum(a == b for a, b in zip(top1["ours"], top1["naive"], strict=False))
    labels = {
        "naive": f"naive loop (PIL full decode, torchvision transforms, batch 1; {len(naive_paths)} photos)",
        "ours": f"ours: classify_folder (batch {args.batch_size}, {args.workers} loader threads, default)",
        "ours_2_threads": "ours with 2 loader threads",
        "ours_no_overlap": "ours without overlap (workers=0: decode, then model, in turn)",
        "bound": f"model alone on preloaded arrays (compute bound, batch {args.batch_size})",
    }
    print(f"{title}, {len(paths)} photos, {args.rounds} rounds")
    print(f"  {'images/s':<86} {'median':>7} {'min':>6} {'max':>6} {'per CPU-s':>9}")
    summary = {}
    for key, label in labels.items():
        if key not in runs:
            continue
        summary[key] = (statistics.median(wall[key]), statistics.median(cpu[key]))
        print(
            f"  {label:<86} {summary[key][0]:7.2f} {min(wall[key]):6.2f} {max(wall[key]):6.2f} "
            f"{summary[key][1]:9.2f}"
        )
    for column, name in ((0, "median"), (1, "per CPU-second")):
        vs_bound = summary["ours"][column] / summary["bound"][column]
        vs_naive = summary["ours"][column] / summary["naive"][column]
        print(
            f"  {name:>14}: ours / compute bound = {vs_bound:.2f} (target >= {TARGET_VS_BOUND}: "
            f"{'met' if vs_bound >= TARGET_VS_BOUND else 'NOT met'}); ours / naive = {vs_naive:.1f}x "
            f"(target >= {TARGET_VS_NAIVE:.0f}x: {'met' if vs_naive >= TARGET_VS_NAIVE else 'NOT met'})"
        )
    print(f"  top-1 of ours = top-1 of naive on {same}/{len(naive_paths)} photos")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=48, help="photos per folder (default 48)")
    parser.add_argument("--naive-count", type=int, default=12, help="photos the slow naive loop runs on")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, help="loader threads (default: classify_folder's default)")
    args = parser.parse_args()

    loaded = load_benchmark_model()
    classifier = Classifier(loaded, device="cpu")
    if args.workers is None:
        args.workers = default_workers(classifier)
    naive_model = copy.deepcopy(loaded.model).eval()  # plain contiguous format, as a tutorial has it
    transform = naive_transform(loaded.preprocessing)
    photos = pick_photos(args.count)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print(
        f"model: {loaded.name}; {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}; "
        f"load average before: {load[0]}; {len(photos)} photos"
    )
    with tempfile.TemporaryDirectory(prefix="batch-throughput-") as temp:
        began = time.perf_counter()
        camera = build_camera_folder(photos, Path(temp) / "camera")
        print(f"built {len(camera)} camera-size JPEGs in {time.perf_counter() - began:.0f} s", flush=True)
        native = Path(temp) / "native"
        native.mkdir()
        native_paths = []
        for index, photo in enumerate(photos):
            link = native / f"native{index:03d}.jpg"
            os.symlink(photo, link)  # the photos as they are, without copying them
            native_paths.append(link)
        measure_folder(
            f"camera size ({CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} JPEG q90)",
            camera,
            classifier,
            naive_model,
            transform,
            args,
        )
        measure_folder("native size (~500x375)", native_paths, classifier, naive_model, transform, args)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print(f"load average after: {load[0]} (other jobs on this machine add noise to every figure)")


if __name__ == "__main__":
    main()
