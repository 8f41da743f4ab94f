"""How fast are Grad-CAM maps, against one plain forward pass and against Captum used naively?

Times, on ResNet-50 (the real imported weights if present, else a random one of the same cost)
and one real photo, all in one run and interleaved round by round so a noisy machine moves every
figure together:

* baseline: one forward pass under ``torch.inference_mode`` (what classifying costs);
* ours, first map: ``explain(..., top_k=1)`` end to end (one forward pass, one backward pass
  through the head, upsampling, numpy copy);
* ours, each further class: ``(explain(top_k=5) - explain(top_k=1)) / 4`` (a difference of two
  medians: it can come out slightly negative when the true cost is below the timing noise);
* Captum naively: ``LayerGradCam.attribute`` + bilinear ``LayerAttribution.interpolate`` per
  class, each a full forward and backward pass, for the same top-3.

Targets: first map <= 1.5x one forward pass, each further class <= 0.5x. ``--all-fast`` adds the
other fast methods (saliency, guided Grad-CAM) for information.

    .venv/bin/python benchmarks/explain_speed.py [--repeats 9] [--all-fast] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from common import load_benchmark_model, real_photo

FIRST_TARGET = 1.5
FURTHER_TARGET = 0.5


def interleaved_medians(
    candidates: dict[str, Callable[[], object]], repeats: int, warmup: int = 2
) -> dict[str, float]:
    """Median seconds of each candidate, timed round-robin (one call of each per round)."""
    for _ in range(warmup):
        for function in candidates.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, function in candidates.items():
            began = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--all-fast", action="store_true", help="also time saliency and guided Grad-CAM")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from captum.attr import LayerAttribution, LayerGradCam

    from resnet_gui.core.engine import Classifier
    from resnet_gui.core.explain import explain

    loaded = load_benchmark_model()
    classifier = Classifier(loaded, device="cpu")
    batch = loaded.preprocessing.prepare_batch([real_photo()])
    tensor = classifier.to_tensor(batch)
    model = classifier.model
    layer = model.get_submodule(loaded.gradcam_layer)
    top3 = [e.target_index for e in explain(classifier, batch, top_k=3)]
    threads = torch.get_num_threads()
    print(f"model: {loaded.name}   device: cpu   threads: {threads}   input: {tuple(batch.shape)}")
    print(f"top-3: {', '.join(f'{loaded.categories[i]} ({i})' for i in top3)}\n")

    def forward() -> None:
        with torch.inference_mode():
            model(tensor)

    def captum_naive_top3() -> None:
        for target in top3:
            cam = LayerGradCam(model, layer).attribute(tensor, target=target, relu_attributions=True)
            LayerAttribution.interpolate(
                cam, tuple(batch.shape[2:]), interpolate_mode="bilinear"
            ).detach().numpy()

    candidates: dict[str, Callable[[], object]] = {"forward": forward, "captum top-3": captum_naive_top3}
    methods = ["gradcam", "gradcam++"] + (["saliency", "guided_gradcam"] if args.all_fast else [])
    for method in methods:
        candidates[f"{method} top-1"] = lambda m=method: explain(classifier, batch, top_k=1, method=m)
        candidates[f"{method} top-3"] = lambda m=method: explain(classifier, batch, top_k=3, method=m)
        candidates[f"{method} top-5"] = lambda m=method: explain(classifier, batch, top_k=5, method=m)
    medians = interleaved_medians(candidates, args.repeats)

    base = medians["forward"]
    print(f"{'measurement':44s} {'median':>10s} {'x forward':>10s}")

    def row(label: str, seconds: float, target: float | None = None) -> None:
        verdict = ""
        if target is not None:
            verdict = f"  target <= {target:.1f}x: {'PASS' if seconds / base <= target else 'FAIL'}"
        print(f"{label:44s} {seconds * 1e3:8.1f} ms {seconds / base:9.2f}x{verdict}")

    row("one forward pass (inference_mode)", base)
    for method in methods:
        first = medians[f"{method} top-1"]
        further = (medians[f"{method} top-5"] - first) / 4
        gated = method in ("gradcam", "gradcam++")
        row(f"{method}: first map", first, FIRST_TARGET if gated else None)
        row(f"{method}: each further class", further, FURTHER_TARGET if gated else None)
        row(f"{method}: top-3 in one call", medians[f"{method} top-3"])
    naive = medians["captum top-3"]
    row("Captum LayerGradCam naively: per class", naive / 3)
    row("Captum LayerGradCam naively: top-3", naive)
    speedup = naive / medians["gradcam top-3"]
    print(f"\nGrad-CAM top-3: ours is {speedup:.1f}x faster than Captum used naively.")


if __name__ == "__main__":
    main()
