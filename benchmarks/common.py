"""Shared pieces of the benchmarks: real photos, the real model, a timer.

Benchmarks print ratios against a baseline measured in the same run, so a noisy machine
moves both sides together.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
from shared_data import HYMENOPTERA  # noqa: E402  (the tests' lookup of the shared data sets)


def real_photo() -> Image.Image:
    """A real camera photo: the first hymenoptera val image, else the bundled coffee sample."""
    candidates = sorted((HYMENOPTERA / "val" / "bees").glob("*.jpg"))
    path = candidates[0] if candidates else REPO / "assets" / "samples" / "coffee.jpg"
    return Image.open(path).convert("RGB")


def real_photo_paths(limit: int | None = None) -> list[Path]:
    """Real photos for agreement checks: hymenoptera val (153), else the bundled samples."""
    paths = sorted(HYMENOPTERA.glob("val/*/*.jpg"))
    if not paths:
        paths = sorted((REPO / "assets" / "samples").glob("*.jpg"))
    return paths[:limit] if limit else paths


def write_jpeg(image: Image.Image, size: tuple[int, int], path: Path, quality: int = 90) -> Path:
    image.resize(size, Image.Resampling.BICUBIC).save(path, quality=quality)
    return path


def load_benchmark_model():
    """The real imported ResNet-50 if present, else a random ResNet-50 (same cost, says so)."""
    from resnet_gui.core.errors import WeightsNotAvailableError
    from resnet_gui.core.models import default_model_choice, get_model_spec, load_model

    try:
        default_model_choice()
        return load_model()
    except WeightsNotAvailableError:
        print("note: no real weights on this machine; timing a randomly initialised ResNet-50")
        from resnet_gui.core.models import LoadedModel

        spec = get_model_spec("resnet50")
        return LoadedModel(
            model=spec.build().eval(),
            name="resnet50 (random)",
            architecture="resnet50",
            preprocessing=spec.get_weights().preprocessing,
            categories=tuple(map(str, range(1000))),
            weights_description="random",
        )


def median_seconds(function: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return statistics.median(times)
