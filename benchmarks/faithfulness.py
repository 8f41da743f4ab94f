"""Does the faithfulness score tell a real Grad-CAM map from a random one? ROAD vs the deletion test.

On the real ImageNet ResNet-50 and real photos (``assets/samples``, plus with ``--more`` the
photos of ``skimage.data`` that show ImageNet things), for each photo: the Grad-CAM map of the
top class, and ``--seeds`` random maps of Grad-CAM's own resolution (7 x 7 uniform noise,
upsampled bilinearly to the input: ``road.random_map``), each scored by ROAD (higher = more
faithful) and by the deletion test (area under the curve; lower = more faithful). A score
"beats random" on a photo when Grad-CAM's score is better than every random map's. The verdict
is the one the app shows, with the random maps' mean as the yardstick. Prints one line per
photo and the shares.

    .venv/bin/python benchmarks/faithfulness.py [--more] [--seeds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from resnet_gui.core.engine import Classifier
from resnet_gui.core.explain import explain
from resnet_gui.core.explain.maps import deletion_score, road_verdict
from resnet_gui.core.explain.road import random_map, road_score
from resnet_gui.core.models import KERAS_WEIGHTS_FILENAME, load_model
from resnet_gui.core.paths import imported_weights_dir

REPO = Path(__file__).resolve().parent.parent
#: skimage.data photos of things ImageNet has a class for (the rest are textures, cells, the moon).
SKIMAGE_PHOTOS = ("astronaut.png", "motorcycle_left.png", "camera.png", "clock_motion.png", "horse.png")


def photos(more: bool) -> list[Path]:
    found = sorted((REPO / "assets" / "samples").glob("*.jpg"))
    if more:
        import skimage

        data = Path(skimage.__file__).parent / "data"
        found += [data / name for name in SKIMAGE_PHOTOS if (data / name).is_file()]
    return found


def compare(classifier: Classifier, path: Path, seeds: int) -> dict[str, object]:
    """Grad-CAM's ROAD and deletion scores on one photo, and those of ``seeds`` random maps."""
    with Image.open(path) as image:
        prepared = classifier.preprocessing.prepare(image.convert("RGB"))
    [explanation] = explain(classifier, prepared[None], method="gradcam")
    target, heat = explanation.target_index, explanation.heatmap
    randoms = [random_map(heat.shape, seed) for seed in range(seeds)]
    road = road_score(classifier, prepared, heat, target, method="gradcam", random_maps=0)
    road_random = [road_score(classifier, prepared, m, target, random_maps=0).score for m in randoms]
    deletion = deletion_score(classifier, prepared, heat, target)
    deletion_random = [deletion_score(classifier, prepared, m, target).auc for m in randoms]
    return {
        "photo": path.name,
        "label": explanation.target_label,
        "road": road.score,
        "road_random": road_random,
        "road_beats": road.score > max(road_random),
        "road_verdict": road_verdict(road.score, float(np.mean(road_random))),
        "deletion": deletion.auc,
        "deletion_random": deletion_random,
        "deletion_beats": deletion.auc < min(deletion_random),
        "deletion_own_yardstick": deletion.better_than_random,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--more", action="store_true", help="add the skimage.data photos of ImageNet things")
    parser.add_argument("--seeds", type=int, default=3, help="random maps per photo (default 3)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = imported_weights_dir() / KERAS_WEIGHTS_FILENAME
    if not weights.is_file():
        raise SystemExit(f"{weights} is missing: run `make test` (it imports the Keras ResNet-50)")
    classifier = Classifier(load_model("resnet50_v1", weights_file=weights), device="cpu")
    rows = []
    began = time.perf_counter()
    for path in photos(args.more):
        row = compare(classifier, path, args.seeds)
        rows.append(row)
        print(
            f"{row['photo']:<22} {row['label'][:24]:<24} ROAD {row['road']:+.3f} vs random "
            f"{max(row['road_random']):+.3f} "
            f"({'beats' if row['road_beats'] else 'loses'}, {row['road_verdict']}); "
            f"deletion AUC {row['deletion']:.3f} vs random {min(row['deletion_random']):.3f} "
            f"({'beats' if row['deletion_beats'] else 'loses'}; own random order: "
            f"{'beats' if row['deletion_own_yardstick'] else 'loses'})"
        )
    count = len(rows)
    for key, what in (
        ("road_beats", "ROAD: Grad-CAM beats every random map"),
        ("deletion_beats", "deletion: Grad-CAM beats every random map"),
        ("deletion_own_yardstick", "deletion: Grad-CAM beats its own random-squares order"),
    ):
        wins = sum(bool(row[key]) for row in rows)
        print(f"{what} on {wins}/{count} photos")
    print(f"({time.perf_counter() - began:.0f} s, {args.seeds} random maps per photo)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
