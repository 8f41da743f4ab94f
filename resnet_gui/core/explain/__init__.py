"""Explanations: heat maps of why a ResNet scored a class on an image.

One call, :func:`explain`, covers every method of the registry :data:`METHODS` (Grad-CAM,
Grad-CAM++, saliency, integrated gradients, SmoothGrad, guided Grad-CAM, occlusion). It returns
:class:`Explanation` objects with raw non-negative maps at the model's input resolution;
normalising them for display and putting them on the photo is ``maps.py``'s job.

Importing the package costs no torch: :data:`CATALOG` (the methods' keys, names and descriptions)
and :data:`DEFAULT_METHOD` are torch-free, and the rest is imported on first use.

    >>> from resnet_gui.core.explain import explain
    >>> [best] = explain(classifier, image, method="gradcam")            # the top class
    >>> maps = explain(classifier, image, top_k=3, method="gradcam++")   # 3 classes, 1 forward pass
    >>> [cat] = explain(classifier, image, targets="tabby", method="occlusion", window=48)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from resnet_gui.core.explain.catalog import CATALOG, DEFAULT_METHOD, MethodEntry

if TYPE_CHECKING:
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
    "CATALOG",
    "DEFAULT_METHOD",
    "METHODS",
    "AmbiguousTargetError",
    "AttributionContext",
    "Explanation",
    "ExplanationCancelled",
    "ExplanationError",
    "ExplanationMethod",
    "InvalidParameterError",
    "MethodEntry",
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

_TORCH_MODULES = ("methods", "base", "targets")


def __getattr__(name: str) -> Any:
    """Import the torch-using modules on first use: the catalog alone (CLI parser, menus) needs no torch."""
    if name in __all__:
        for module_name in _TORCH_MODULES:
            module = importlib.import_module(f"{__name__}.{module_name}")
            if name in vars(module):
                value = globals()[name] = vars(module)[name]
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
