"""What "Retrain with N new photos" costs, against the fine-tune it starts from, in one run.

A copy of hymenoptera (real photos) in a temporary folder, the app's data folder (and so its
feature cache) empty at the start:

* baseline: the first head-mode fine-tune, which extracts the frozen features of every photo;
* retrain: the same model with one corrected photo (a sample photo under a new class), planned
  from the bundle's own record (:func:`plan_retrain`) and trained with the same feature cache, as
  the app's banner does: only the new photo costs a pass of the network.

Prints both wall times, their ratio, and what the new model answers for the corrected photo.

    .venv/bin/python benchmarks/retrain.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from common import HYMENOPTERA, REPO


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        temp_dir = Path(temp)
        os.environ["RESNET_GUI_DATA_DIR"] = str(temp_dir / "data")
        weights = Path.home() / ".local/share/resnet-gui/weights"
        if weights.is_dir():  # the imported base model, without the rest of the real data folder
            shutil.copytree(weights, temp_dir / "data" / "weights")

        from resnet_gui.core import paths
        from resnet_gui.core.corrections import Corrections
        from resnet_gui.core.engine import Classifier
        from resnet_gui.core.models import load_model
        from resnet_gui.core.training import FeatureCache, TrainConfig, make_split, run_training, scan_dataset
        from resnet_gui.core.training.bundle import read_bundle_info
        from resnet_gui.core.training.retrain import plan_retrain

        root = temp_dir / "hymenoptera"
        shutil.copytree(HYMENOPTERA, root)
        cache = FeatureCache(paths.data_dir() / "cache" / "features")
        bundle = temp_dir / "models" / "hymenoptera-head.safetensors"

        began = time.perf_counter()
        first = run_training(
            "resnet50_v1",
            make_split(scan_dataset(root)),
            bundle,
            TrainConfig(mode="head"),
            feature_cache=cache,
        )
        first_seconds = time.perf_counter() - began

        photo = REPO / "assets" / "samples" / "coffee.jpg"
        Corrections(root).add(photo, "coffee", "bees")
        began = time.perf_counter()
        info = read_bundle_info(bundle)
        plan = plan_retrain(bundle, info.metadata, [(e.copy, e.label) for e in Corrections(root).entries()])
        second = run_training(
            plan.base, plan.split, plan.out, plan.config, feature_cache=cache, source=plan.base
        )
        retrain_seconds = time.perf_counter() - began

        classifier = Classifier(load_model(str(second.bundle)), device="cpu")
        [answer] = classifier.classify_images([classifier.load(photo)], top_k=1)
        print(
            f"first fine-tune (baseline, features extracted): {first_seconds:.1f} s, "
            f"val accuracy {first.val_accuracy:.3f}"
        )
        print(
            f"retrain with 1 new photo (cached features):     {retrain_seconds:.1f} s, "
            f"val accuracy {second.val_accuracy:.3f}"
        )
        print(f"retrain / first: {retrain_seconds / first_seconds:.2f}")
        print(f"the new model calls the corrected photo: {answer[0].label} ({answer[0].probability:.1%})")


if __name__ == "__main__":
    main()
