"""The time estimate of the wizard's settings page: measured costs, and the arithmetic on them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from resnet_gui.core.training import Cancelled, TrainConfig
from resnet_gui.core.training.estimate import CostModel, describe_seconds, estimate_run, measure_costs

COSTS = CostModel(
    device="cpu", decode=0.02, stem_forward=0.03, layer4_forward=0.01, layer4_step=0.03, full_step=0.12
)


def test_modes_cost_what_they_compute() -> None:
    head = estimate_run(COSTS, TrainConfig(mode="head"), 200, 50)
    partial = estimate_run(COSTS, TrainConfig(mode="partial"), 200, 50)
    full = estimate_run(COSTS, TrainConfig(mode="full"), 200, 50)
    # Head: the backbone once per image, then epochs on cached features (free).
    assert head.epoch_seconds == 0
    assert head.setup_seconds == pytest.approx(250 * COSTS.backbone_forward)
    assert head.total_seconds == head.setup_seconds
    # Partial: layer4 trains each epoch; full: the whole network does.
    assert 0 < partial.epoch_seconds < full.epoch_seconds
    assert partial.epoch_seconds == pytest.approx(200 * COSTS.layer4_step + 50 * COSTS.layer4_forward)
    assert full.total_seconds == pytest.approx(full.setup_seconds + full.epochs * full.epoch_seconds)
    assert (head.epochs, partial.epochs, full.epochs) == (40, 4, 6)  # each mode's default


def test_estimate_scales_with_the_data_and_the_settings() -> None:
    small = estimate_run(COSTS, TrainConfig(mode="full"), 100, 25)
    large = estimate_run(COSTS, TrainConfig(mode="full"), 200, 50)
    assert large.epoch_seconds == pytest.approx(2 * small.epoch_seconds)
    more = estimate_run(COSTS, TrainConfig(mode="full", epochs=12), 100, 25)
    assert more.total_seconds - more.setup_seconds == pytest.approx(
        2 * (small.total_seconds - small.setup_seconds)
    )
    views = estimate_run(COSTS, TrainConfig(mode="head", cached_views=2), 100, 0)
    assert views.setup_seconds == pytest.approx(
        3 * estimate_run(COSTS, TrainConfig(mode="head"), 100, 0).setup_seconds
    )
    uncached = estimate_run(COSTS, TrainConfig(mode="head", cache_features=False), 100, 0)
    assert uncached.epoch_seconds > 0


def test_slow_decoding_bounds_the_phases_that_decode() -> None:
    """Big photos: decoding (in worker threads) becomes the bottleneck of reading them once."""
    slow = dataclasses.replace(COSTS, decode=1.0)
    head = estimate_run(slow, TrainConfig(mode="head", workers=2), 100, 0)
    assert head.setup_seconds == pytest.approx(100 * 1.0 / 2)
    # Epochs of partial mode run on cached layer-3 outputs: decoding does not matter to them.
    fast_partial = estimate_run(COSTS, TrainConfig(mode="partial"), 100, 20)
    slow_partial = estimate_run(slow, TrainConfig(mode="partial"), 100, 20)
    assert slow_partial.epoch_seconds == pytest.approx(fast_partial.epoch_seconds)
    assert slow_partial.setup_seconds > fast_partial.setup_seconds


def test_measure_costs_on_a_real_network(tiny_model, sample_images: list[Path]) -> None:
    before = {k: v.clone() for k, v in tiny_model.model.state_dict().items()}
    flags = [p.requires_grad for p in tiny_model.model.parameters()]
    costs = measure_costs(tiny_model, sample_images, device="cpu")
    assert costs.device == "cpu"
    for value in (costs.decode, costs.stem_forward, costs.layer4_forward, costs.layer4_step, costs.full_step):
        assert 0 < value < 5
    # The caller's model is untouched (the timing runs on a private copy).
    after = tiny_model.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [p.requires_grad for p in tiny_model.model.parameters()] == flags
    assert all(p.grad is None for p in tiny_model.model.parameters())
    # Without photos, decoding counts as free; unreadable photos are skipped.
    assert measure_costs(tiny_model, [], device="cpu").decode == 0


def test_measure_costs_can_be_cancelled(tiny_model) -> None:
    with pytest.raises(Cancelled):
        measure_costs(tiny_model, [], device="cpu", cancel=lambda: True)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "under a second"),
        (42.4, "about 42 s"),
        (150, "about 2 min"),
        (3600 + 20 * 60, "about 1 h 20 min"),
    ],
)
def test_describe_seconds(seconds: float, text: str) -> None:
    assert describe_seconds(seconds) == text
