"""Fine-tuning: scan a labelled folder, check it, split it, train, save a bundle, evaluate.

Each step is a plain function or a generator of progress events, with no Qt and no printing, so
the CLI (``resnet-gui finetune``/``evaluate``) and a GUI wizard drive the same code:

1. :func:`scan_dataset` -> :class:`Dataset` (class folders, or train/val/test folders)
2. :func:`check_health` / :func:`iter_health` -> :class:`HealthReport` (corrupt, tiny, duplicate,
   leaked, imbalanced); the user picks what to leave out (``report.suggested_exclude()``)
3. :func:`make_split` -> :class:`Split` (stratified, seeded, stored in the bundle)
4. :func:`train` (generator) / :func:`run_training` -> a bundle ``.safetensors`` + ``.json``
5. :func:`evaluate` / :func:`iter_evaluate` -> :class:`EvaluationReport` (CSV, PNG, JSON)
"""

from resnet_gui.core.training.bundle import (
    BundleInfo,
    checkpoint_path,
    normalise_bundle_path,
    read_bundle_info,
    sidecar_path,
)
from resnet_gui.core.training.checkpoint import CheckpointInfo, read_checkpoint_info
from resnet_gui.core.training.config import TrainConfig
from resnet_gui.core.training.dataset import Dataset, DatasetError, Sample, scan_dataset
from resnet_gui.core.training.evaluate import EvaluationReport, evaluate, iter_evaluate
from resnet_gui.core.training.events import Cancelled, Progress, TrainingError
from resnet_gui.core.training.features import MODES, FeatureCache
from resnet_gui.core.training.health import HealthReport, check_health, iter_health
from resnet_gui.core.training.split import Split, make_split
from resnet_gui.core.training.train import EpochMetrics, StepMetrics, TrainResult, run_training, train

__all__ = [
    "MODES",
    "BundleInfo",
    "Cancelled",
    "CheckpointInfo",
    "Dataset",
    "DatasetError",
    "EpochMetrics",
    "EvaluationReport",
    "FeatureCache",
    "HealthReport",
    "Progress",
    "Sample",
    "Split",
    "StepMetrics",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "check_health",
    "checkpoint_path",
    "evaluate",
    "iter_evaluate",
    "iter_health",
    "make_split",
    "normalise_bundle_path",
    "read_bundle_info",
    "read_checkpoint_info",
    "run_training",
    "scan_dataset",
    "sidecar_path",
    "train",
]
