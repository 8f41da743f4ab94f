"""Explanations: heat maps of why a ResNet scored a class on an image.

One call, :func:`explain`, covers every method of the registry :data:`METHODS` (Grad-CAM,
Grad-CAM++, saliency, integrated gradients, SmoothGrad, guided Grad-CAM, occlusion). It returns
:class:`Explanation` objects with raw non-negative maps at the model's input resolution;
normalising them for display and putting them on the photo is ``maps.py``'s job.

    >>> from resnet_gui.core.explain import explain
    >>> [best] = explain(classifier, image, method="gradcam")            # the top class
    >>> maps = explain(classifier, image, top_k=3, method="gradcam++")   # 3 classes, 1 forward pass
    >>> [cat] = explain(classifier, image, targets="tabby", method="occlusion", window=48)
"""

from resnet_gui.core.explain.base import (
    AttributionContext,
    Explanation,
    ExplanationCancelled,
    ExplanationError,
    ExplanationMethod,
    InvalidParameterError,
    Parameter,
    UnknownMethodError,
)
from resnet_gui.core.explain.methods import (
    DEFAULT_METHOD,
    METHODS,
    MethodInfo,
    explain,
    get_method,
    get_method_info,
    method_names,
)
from resnet_gui.core.explain.targets import (
    AmbiguousTargetError,
    TargetError,
    TargetSpec,
    UnknownTargetError,
    parse_targets,
    resolve_target,
    top_k_indices,
)

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "AmbiguousTargetError",
    "AttributionContext",
    "Explanation",
    "ExplanationCancelled",
    "ExplanationError",
    "ExplanationMethod",
    "InvalidParameterError",
    "MethodInfo",
    "Parameter",
    "TargetError",
    "TargetSpec",
    "UnknownMethodError",
    "UnknownTargetError",
    "explain",
    "get_method",
    "get_method_info",
    "method_names",
    "parse_targets",
    "resolve_target",
    "top_k_indices",
]
