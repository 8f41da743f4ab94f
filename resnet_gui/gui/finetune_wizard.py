"""The fine-tuning wizard's old import path: it now lives in the :mod:`resnet_gui.gui.finetune` package."""

from resnet_gui.gui.finetune import (
    PAGE_FOLDER,
    PAGE_HEALTH,
    PAGE_RESULTS,
    PAGE_SAVE,
    PAGE_SETTINGS,
    PAGE_TRAINING,
    BaseModelOption,
    FinetuneSession,
    FinetuneWizard,
    TrainingPlan,
    base_model_options,
    save_copy,
)

__all__ = [
    "PAGE_FOLDER",
    "PAGE_HEALTH",
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
