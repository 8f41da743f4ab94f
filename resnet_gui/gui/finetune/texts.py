"""What the fine-tuning wizard says, in one place: read (and reworded) without reading the layout code.

The training modes' titles, explanations and stage lines are not here: they come from the torch-free table
:data:`resnet_gui.core.modes.TRAINING_MODES`, which the CLI's help reads too.
"""

from __future__ import annotations

from resnet_gui.core.modes import TRAINING_MODES

GROUP_TEXT = {
    "unreadable": "Cannot be read (always left out)",
    "leaked": "Also in the validation split (a copy would flatter the score)",
    "conflict": "The same photo in two classes",
    "copy": "Exact copies within a class",
    "tiny": "Very small images",
}
"""The health page's heading of each flag group (keys: core's ``FLAG_GROUP_KEYS``)."""

PHASE_TEXT = {
    "prepare": "Preparing the model…",
    "features (val)": "Reading the validation photos through the network",
    "features (train)": (
        "Reading the training photos through the network (once; the epochs then take little time)"
    ),
    "test": "Scoring the test photos",
    "calibrate": "Checking how sure the model should be, on the validation photos",
}
"""The training page's line for each phase of core's Progress events."""

STAGE_TEXT = {"probe": TRAINING_MODES["head"].stage_text} | {
    key: mode.stage_text for key, mode in TRAINING_MODES.items()
}
"""What learns in a stage: ``probe`` (the first stage of Balanced/Thorough: the last layer alone, as
in Quick), else the run's mode (core's mode table says it)."""

STATUS_TEXT = {
    "finished": "Training finished",
    "stopped_early": "Training stopped early: the validation loss stopped improving",
    "cancelled": "Training stopped",
}

STOPPED_WITHOUT_MODEL = {
    True: "Stopped before the first epoch finished: there is no model yet. Resume goes on from where "
    "it stopped, or go Back to change the settings.",
    False: "Stopped before the first epoch finished: there is no model yet. Go Back to change the "
    "settings and start again.",
}
"""Keyed by whether a checkpoint was kept, i.e. whether the Resume button is shown."""

BEST_STAGE_NOTE = (
    " <i>Training the deeper layers did not lower the validation loss, so the model kept is the "
    "one from the first stage (the last layer alone): Quick mode would have done as well.</i>"
)

ADVANCED_TIPS = {
    "batch_size": (
        "How many photos the model looks at before each small correction. Larger batches are a little "
        "faster on a GPU but need more memory: lower this if training runs out of memory."
    ),
    "learning_rate": (
        "How big each correction is. Leave it empty for the mode's tested value. Try a smaller number "
        "(e.g. 0.001) if the validation curve jumps around, a larger one if it barely moves."
    ),
    "optimizer": (
        "The rule that turns mistakes into corrections. Automatic uses SGD with momentum, which did "
        "best in our tests; AdamW can learn faster when deeper layers train, at some risk of overfitting."
    ),
    "label_smoothing": (
        "Keeps the model from being 100 % sure of any answer, which usually helps it on new photos. "
        "Set it to 0 if some labels must be trusted absolutely; raise it a little if labels are noisy."
    ),
    "color_jitter": (
        "Randomly changes brightness, contrast and colour of the training photos, so the model does not "
        "rely on lighting. Raise it when your photos come from different cameras or light; keep 0 when "
        "colour is what tells the classes apart."
    ),
    "patience": (
        "Stop when the validation loss has not improved for this many epochs (the best model is kept). "
        "Raise it if training stops too soon; 0 always runs every epoch."
    ),
    "seed": (
        "The number behind every random choice (the split, the order of the photos). The same seed with "
        "the same photos gives the same model; change it to check that a result is not luck."
    ),
    "device": (
        "Where the model trains. Automatic uses a GPU when there is one, else the CPU. Pick the CPU if "
        "the GPU is busy or short of memory."
    ),
    "processes": (
        "How many GPUs train together (one process each, with PyTorch DDP): the photos of every step are "
        "shared out and the result is the same as on one. Only offered when this computer has several GPUs."
    ),
}
"""A tooltip for each control under *Advanced settings*: what it does, when to change it."""

CLOSE_WHILE_TRAINING = (
    "Training is still running. Stop it and close the wizard? The last finished epoch is kept, and the "
    "best model so far is saved."
)

RESUME_QUESTION = (
    "A run into “{name}” was interrupted after {epochs} epochs. Resume it, with the settings it was "
    "started with? (No starts over with the settings on this page.)"
)

RESUME_MISSING = "{count} photos of the interrupted run are gone (e.g. “{name}”). Start over instead."
