"""The training modes, as one torch-free table: the CLI's ``--mode`` choices and help, the wizard's
titles and explanations, and the parametrised tests all read :data:`TRAINING_MODES`.

Importing :mod:`resnet_gui.core.training` loads torch (seconds); this module does not, so
``resnet-gui --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MODE_KEYS", "TRAINING_MODES", "ModeKey", "TrainingMode"]

ModeKey = Literal["head", "partial", "full", "scratch"]


@dataclass(frozen=True)
class TrainingMode:
    """How much of the network learns; ``title`` and ``description`` are for people who do not
    know what a layer is, ``cli_help`` for the command line."""

    key: ModeKey
    title: str
    description: str
    cli_help: str
    stage_text: str
    """What the progress page says while this mode's layers learn ("Training the last block")."""
    recommended: bool = False
    """The choice suggested to a newcomer: its :attr:`choice_text` says so."""
    from_scratch: bool = False
    """The network starts from random weights (no pretrained model), so every layer learns at one
    rate and batch norm re-estimates its statistics while training (frozen in the other modes)."""

    @property
    def choice_text(self) -> str:
        """The title as the settings page offers it: "Quick (recommended)"."""
        return f"{self.title} (recommended)" if self.recommended else self.title


TRAINING_MODES: dict[str, TrainingMode] = {
    mode.key: mode
    for mode in (
        TrainingMode(
            "head",
            "Quick",
            "Only the last layer learns; the rest of the network keeps what it learned from millions of "
            "photos. Best for a few hundred photos per class: fast, and hard to overfit.",
            "train only a new classifier on cached features (fast, default)",
            "Training the last layer",
            recommended=True,
        ),
        TrainingMode(
            "partial",
            "Balanced",
            "The last block of layers learns too. Can help when your photos look unlike everyday photos "
            "(microscopy, drawings, X-rays). Several times slower.",
            "also the last stage",
            "Training the last block",
        ),
        TrainingMode(
            "full",
            "Thorough",
            "Every layer learns, the pretrained ones slowly. Needs many photos per class, and a GPU to be "
            "done in reasonable time.",
            "every layer (slow on a CPU)",
            "Training every layer",
        ),
        TrainingMode(
            "scratch",
            "From scratch (small photos)",
            "A new network, made for small photos, learns everything from your photos alone. Fits small "
            "photos (32x32 icons, thumbnails, CIFAR-like pictures) that no pretrained model knows, with "
            "many photos per class (thousands are best).",
            "a new network made for small photos, trained from random weights (see --from-scratch)",
            "Training a new network from scratch",
            from_scratch=True,
        ),
    )
}

MODE_KEYS: tuple[str, ...] = tuple(TRAINING_MODES)
