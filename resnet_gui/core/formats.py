"""The format tags the app writes into its own files' headers, in one torch-free place.

Readers that must stay light (the output guard, the model library) and the writers that need torch
(bundles, checkpoints) share these, so a file is recognised as ours by the same words it was written with.
"""

from __future__ import annotations

__all__ = ["BUNDLE_FORMAT", "CHECKPOINT_FORMAT", "EXPORT_FORMAT", "REPORT_FORMAT", "VIDEO_RESULTS_FORMAT"]

BUNDLE_FORMAT = "resnet-gui-weights/1"
CHECKPOINT_FORMAT = "resnet-gui-checkpoint/1"
REPORT_FORMAT = "resnet-gui-evaluation/1"
"""The ``format`` member of ``report.json`` (``resnet-gui evaluate``), written first so a prefix tells it."""
EXPORT_FORMAT = "resnet-gui-export/1"
"""The ``resnet_gui_format`` value of a file written by ``resnet-gui export`` (ONNX or TorchScript)."""
VIDEO_RESULTS_FORMAT = "resnet-gui-video-results/1"
"""The ``format`` member of a JSON results file of ``resnet-gui classify-video``, written first."""
