"""The fine-tuning wizard, as a package: a session (state and jobs), one module per page, the texts.

Importing it loads no torch; the pages import core's training code when they first need it.
"""

from pathlib import Path

from resnet_gui.gui.finetune.session import BaseModelOption, FinetuneSession, TrainingPlan, base_model_options
from resnet_gui.gui.finetune.wizard import (
    PAGE_FOLDER,
    PAGE_HEALTH,
    PAGE_PROJECT,
    PAGE_RESULTS,
    PAGE_SAVE,
    PAGE_SETTINGS,
    PAGE_TRAINING,
    FinetuneWizard,
)


def save_copy(bundle: Path, target: Path) -> Path:
    """Core's :func:`~resnet_gui.core.training.planning.save_copy`, imported when called (it loads torch)."""
    from resnet_gui.core.training.planning import save_copy as copy

    return copy(bundle, target)


__all__ = [
    "PAGE_FOLDER",
    "PAGE_HEALTH",
    "PAGE_PROJECT",
    "PAGE_RESULTS",
    "PAGE_SAVE",
    "PAGE_SETTINGS",
    "PAGE_TRAINING",
    "BaseModelOption",
    "FinetuneSession",
    "FinetuneWizard",
    "TrainingPlan",
    "base_model_options",
    "save_copy",
]
