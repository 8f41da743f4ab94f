"""The wizard's jobs under their old import path; they live in :mod:`resnet_gui.gui.finetune.tasks`."""

from resnet_gui.gui.finetune.tasks import (
    BaseModelReady,
    CellExplanation,
    Evaluated,
    FolderChecked,
    check_folder,
    copy_bundle,
    evaluate_bundle,
    explain_cell_image,
    finetune,
    prepare_base,
    write_report,
)

__all__ = [
    "BaseModelReady",
    "CellExplanation",
    "Evaluated",
    "FolderChecked",
    "check_folder",
    "copy_bundle",
    "evaluate_bundle",
    "explain_cell_image",
    "finetune",
    "prepare_base",
    "write_report",
]
