"""Plain data passed between the tasks, the controller and the widgets: numpy arrays and dataclasses.

Nothing here imports Qt or torch, so the widgets can be fed (and tested) with hand-made values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

# The views of the image area.
View = Literal["overlay", "side_by_side", "image"]
VIEW_OVERLAY: View = "overlay"
VIEW_SIDE_BY_SIDE: View = "side_by_side"
VIEW_IMAGE: View = "image"
VIEWS: tuple[View, ...] = get_args(View)

# The states of the panels and the levels of messages: the type checker refuses a misspelt one.
PredictionsState = Literal["empty", "loading", "classifying", "ready", "failed"]
ExplanationState = Literal["idle", "running", "ready", "failed", "cancelled"]
MessageLevel = Literal["error", "warning", "info"]
# The picker's statuses: core's for registry weights (cached, downloadable, imported, missing), and
# "mine" for the user's fine-tuned models.
ChoiceStatus = Literal["cached", "downloadable", "imported", "missing", "mine"]
ModelKind = Literal["imagenet", "small", "mine"]  # "small": the CIFAR nets, for 32x32 photos


@dataclass(frozen=True)
class ImageSource:
    """Where an image comes from: a file, or bytes (a paste) kept so it can be decoded again."""

    name: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_path(cls, path: str | Path) -> ImageSource:
        path = Path(path)
        return cls(name=path.name, path=path)

    @property
    def label(self) -> str:
        """What to call it in messages: the full path of a file, the name of a paste."""
        return str(self.path) if self.path is not None else self.name


@dataclass(frozen=True)
class DecodedImage:
    """An image decoded for display: RGB uint8 (H, W, 3) capped in size, and a small thumbnail."""

    source: ImageSource
    display: np.ndarray = field(repr=False)
    thumbnail: np.ndarray = field(repr=False)
    original_size: tuple[int, int]
    seconds: float


@dataclass(frozen=True)
class DecodeFailure:
    """A source that could not be decoded, with the user-facing reason."""

    source: ImageSource
    message: str
    too_large: bool = False  # over the decompression-bomb limit: the user may allow it


@dataclass(frozen=True)
class Classification:
    """The class probabilities of one image under one model (top-k is cut from them in the UI)."""

    probabilities: np.ndarray = field(repr=False)  # (classes,) float32, calibrated
    decode_seconds: float
    inference_seconds: float
    unusual: bool = False  # it looks unlike the photos the model was trained on (fine-tuned models)


@dataclass(frozen=True)
class PredictionRow:
    """One line of the predictions panel."""

    rank: int
    label: str
    index: int
    probability: float


@dataclass
class ExplanationMap:
    """One class explained on one image, at display resolution, and its faithfulness once checked."""

    method: str
    method_name: str
    target: int
    label: str
    probability: float
    map_on_image: np.ndarray = field(repr=False)  # (H, W) 0..1, NaN = not seen by the model
    heatmap: np.ndarray = field(repr=False)  # raw map at the model's input resolution
    fit: str
    seconds: float
    deletion: object | None = None  # core DeletionResult, once scored


@dataclass(frozen=True)
class MethodChoice:
    """An explanation method as the method picker shows it (from core's METHODS registry)."""

    key: str
    display_name: str
    description: str
    slow: bool


@dataclass(frozen=True)
class ModelChoice:
    """A (model, weights) entry of the model picker, with the weights' status on this machine."""

    ref: str  # "resnet50:IMAGENET1K_V2", or "file:PATH" for one of the user's models
    display_name: str  # plain words: "ResNet-50 (ImageNet, 81 % correct)", or a model's name
    weights: str
    status: ChoiceStatus
    is_default: bool = False
    text: str = ""  # the picker's line, with what it needs before use
    explanation: str = ""  # the picker's tooltip: what it needs, in plain words
    kind: ModelKind = "imagenet"  # "mine": a fine-tuned bundle of the library

    @property
    def label(self) -> str:
        return self.display_name

    @property
    def usable(self) -> bool:
        """Can be used now, with no download or import."""
        return self.status in ("cached", "imported", "mine")


@dataclass(frozen=True)
class EngineInfo:
    """What becomes known once torch is imported: the registries that feed the menus."""

    models: tuple[ModelChoice, ...]
    methods: tuple[MethodChoice, ...]
    colormaps: tuple[str, ...]
    devices: tuple[str, ...]
    versions: dict[str, str]


@dataclass(frozen=True)
class ModelInfo:
    """The model in use."""

    ref: str  # registry ref, or "file:<path>" for a weights file
    name: str
    device: str
    weights_description: str  # technical: where the weights come from (the tooltip)
    num_classes: int
    knows: str = ""  # plain words: what the model was taught ("Knows 2 classes: ants, bees")
    backend: str = "torch"  # what runs the classification (a key of core's BACKENDS)
    backend_note: str = ""  # why "auto" did not take the faster runtime, when it did not


@dataclass(frozen=True)
class Picture:
    """What the image area shows: one panel (photo or overlay) or two (photo, overlay), with captions."""

    panels: tuple[np.ndarray, ...] = field(repr=False)
    captions: tuple[str, ...]
    source_name: str = ""
    generation: int = 0  # increases with every new picture


@dataclass(frozen=True)
class PredictionsView:
    """The predictions panel's state."""

    state: PredictionsState
    rows: tuple[PredictionRow, ...] = ()
    selected: int | None = None  # class index of the explained prediction
    message: str = ""
    known: tuple[str, ...] = ()  # every class of the model, when it knows few (else empty)
    unsure: bool = False  # the top probability is below ``threshold``
    unusual: bool = False  # the photo looks unlike the model's training photos
    threshold: float = 0.5  # under this top probability the prediction is marked "not sure"


@dataclass(frozen=True)
class ExplanationView:
    """The explanation panel's state."""

    state: ExplanationState
    method: str = ""
    label: str = ""
    progress: float | None = None
    text: str = ""
    scoring: bool = False
    deletion: object | None = None  # core DeletionResult
    slow: bool = False


@dataclass(frozen=True)
class UserMessage:
    """A message for the message bar: a level, the text (a core error's str) and action buttons."""

    text: str
    level: MessageLevel = "error"
    actions: tuple[tuple[str, str], ...] = ()  # (action key, button text)
    title: str = ""


ACTION_CHOOSE_WEIGHTS = "choose-weights"
ACTION_IMPORT_KERAS = "import-keras"
ACTION_ALLOW_LARGE = "allow-large-images"
