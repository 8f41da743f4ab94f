"""The explanation methods' cost rules: one per row of the torch-free catalog, read by the estimate.

The time measurement itself (a real model's passes) is tested in ``test_gui_newcomer.py``.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_gui.core.explain import catalog
from resnet_gui.core.explain.catalog import CATALOG, FORWARD_SHARE, MethodEntry, PassCost, fixed_passes
from resnet_gui.core.explain.estimate import PassTimes, estimate_seconds, method_passes

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("key", list(CATALOG))
def test_every_method_of_the_catalog_has_a_cost_rule(key: str) -> None:
    from resnet_gui.core.explain import METHODS

    rule = CATALOG[key].passes
    assert isinstance(rule, PassCost)
    parameters = {parameter.name for parameter in METHODS[key].parameters}
    assert set(rule.reads) <= parameters, f"{key} reads parameters it does not have"
    passes, batched = method_passes(key)
    assert math.isfinite(passes) and passes > 0 and batched is rule.batched
    assert estimate_seconds(key, PassTimes(single=0.5, per_batched_image=0.25)) == passes * (
        0.25 if batched else 0.5
    )


# The counts the if-chain in estimate.py gave before the rules moved into the catalog.
DEFAULT_PASSES = {
    "gradcam": (1.0, False),
    "gradcam++": (1.0, False),
    "saliency": (1.0, False),
    "guided_gradcam": (2.0, False),
    "integrated_gradients": (32.0, True),
    "smoothgrad": (24.0, True),
    "occlusion": ((1 + 13**2) * FORWARD_SHARE, True),  # 32-px squares every 16 px over 224 px
}


@pytest.mark.parametrize(("key", "expected"), DEFAULT_PASSES.items())
def test_the_cost_with_default_parameters_is_unchanged(key: str, expected: tuple[float, bool]) -> None:
    assert method_passes(key) == expected


@pytest.mark.parametrize(
    ("key", "params", "input_size", "expected"),
    [
        ("integrated_gradients", {"n_steps": 64}, 224, 64.0),
        ("smoothgrad", {"nt_samples": 5}, 224, 5.0),
        ("occlusion", {"window": 32, "stride": 32}, 224, (1 + 7**2) * FORWARD_SHARE),
        ("occlusion", {"window": 32, "stride": 64}, 224, (1 + 7**2) * FORWARD_SHARE),  # stride <= window
        ("occlusion", {"window": 500}, 224, 2 * FORWARD_SHARE),  # one square: the whole input
        ("occlusion", {}, 64, (1 + 3**2) * FORWARD_SHARE),
        ("gradcam", {"n_steps": 999}, 512, 1.0),  # a fixed rule ignores what it does not read
    ],
)
def test_the_cost_follows_the_parameters_the_rule_reads(
    key: str, params: dict[str, int], input_size: int, expected: float
) -> None:
    assert method_passes(key, params, input_size)[0] == expected


def test_a_new_method_needs_only_its_catalog_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        CATALOG, "triple", MethodEntry("triple", "Triple", "Three passes.", "medium", fixed_passes(3))
    )
    assert method_passes("triple") == (3.0, False)
    assert estimate_seconds("triple", PassTimes(single=0.5, per_batched_image=0.25)) == 1.5
    with pytest.raises(KeyError):
        method_passes("nope")
    assert catalog.CATALOG is CATALOG


def test_a_fixed_cost_is_known_without_torch() -> None:
    """Only a rule that reads parameters needs their defaults (from the torch-using registry)."""
    code = (
        "import sys; from resnet_gui.core.explain.estimate import method_passes; "
        "print(method_passes('guided_gradcam'), 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(2.0,", "False)", "False"]
