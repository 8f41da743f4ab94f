"""Time from a file path to its top-5, ours against the naive torchvision pipeline.

The naive pipeline is what a tutorial does: PIL full decode, ``Resize(256)``, ``CenterCrop(224)``,
``ToTensor``, ``Normalize``, a forward pass under ``no_grad``. Ours: draft-mode JPEG decoding to
the size the model needs, the shared preprocessing, ``inference_mode`` and channels_last.
Both use the same model and the same photo (a real photo resized to 12 MP and to 640x480).

    .venv/bin/python benchmarks/classify_latency.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import torch
from common import load_benchmark_model, median_seconds, real_photo, write_jpeg
from PIL import Image
from torchvision import transforms

from resnet_gui.core.engine import Classifier


def naive_top5(model: torch.nn.Module, path: Path, transform) -> list[int]:
    image = Image.open(path).convert("RGB")
    batch = transform(image).unsqueeze(0)
    with torch.no_grad():
        probabilities = torch.softmax(model(batch), dim=1)
    return probabilities.topk(5).indices[0].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    loaded = load_benchmark_model()
    prep = loaded.preprocessing
    naive_model = copy.deepcopy(loaded.model)  # the Classifier converts its own to channels_last
    if prep.channel_order == "BGR":
        print("note: the model takes BGR input; the naive pipeline flips channels in its transform")
    transform = transforms.Compose(
        [
            transforms.Resize(prep.resize_size),
            transforms.CenterCrop(prep.crop_size),
            transforms.ToTensor(),
            *([transforms.Lambda(lambda t: t.flip(0))] if prep.channel_order == "BGR" else []),
            transforms.Normalize(prep.mean, prep.std),
        ]
    )
    classifier = Classifier(loaded, device="cpu")
    photo = real_photo()
    print(f"model: {loaded.name}; torch threads: {torch.get_num_threads()}; repeats: {args.repeats} (median)")
    print(f"{'image':<22} {'naive ms':>9} {'ours ms':>9} {'speed-up':>9}  same top-5")
    with tempfile.TemporaryDirectory() as folder:
        for label, size in [("12 MP (4000x3000)", (4000, 3000)), ("640x480", (640, 480))]:
            path = write_jpeg(photo, size, Path(folder) / f"{size[0]}.jpg")
            naive = median_seconds(lambda p=path: naive_top5(naive_model, p, transform), args.repeats)
            ours = median_seconds(lambda p=path: list(classifier.classify_paths([p], top_k=5)), args.repeats)
            same = naive_top5(naive_model, path, transform) == [
                p.index for p in next(iter(classifier.classify_paths([path], top_k=5))).predictions
            ]
            print(f"{label:<22} {naive * 1000:9.1f} {ours * 1000:9.1f} {naive / ours:8.2f}x  {same}")


if __name__ == "__main__":
    main()
