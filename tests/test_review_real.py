"""Label issues on real photos: the session's ants-vs-bees model (head mode, from the imported
ImageNet ResNet-50; conftest's ``hymenoptera_head_run``), reviewed with cleanlab.

The numbers are printed (README, "Fix mistakes where you see them"); the assertions are what must
hold whatever the machine: a clean, well-separated data set is not flagged wholesale, every flag
is a photo the out-of-sample probabilities really dispute, and a bee deliberately filed as an ant
(one training photo, cross-validated, and one validation photo, scored by the model) is flagged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from resnet_gui.core.models import load_model
from resnet_gui.core.training import FeatureCache
from resnet_gui.core.training.dataset import Sample
from resnet_gui.core.training.review import find_label_issues, recorded_split

# The session's head run (its one-off feature extraction) may fall to this test, then one more pass
# of the backbone for the review: more than the default 300 s on a busy 2-core machine.
pytestmark = [pytest.mark.real_model, pytest.mark.slow, pytest.mark.timeout(1200)]


def test_label_issues_of_ants_and_bees(hymenoptera_head_run, tmp_path: Path) -> None:
    result, _ = hymenoptera_head_run
    bundle = load_model(str(result.bundle))
    split = recorded_split(bundle)
    cache = FeatureCache(tmp_path / "cache")
    issues = find_label_issues(bundle, feature_cache=cache)
    reviewed = len(split.train) + len(split.val)
    print(
        f"\nants/bees: {len(issues)} possible label errors of {reviewed} photos "
        f"({sum(i.split == 'train' for i in issues)} train, {sum(i.split == 'val' for i in issues)} val)"
    )
    for issue in issues:
        print(
            f"  {issue.split:<5} {issue.given} -> {issue.suggested} "
            f"({issue.given_probability:.3f} vs {issue.suggested_probability:.3f}) {issue.path.name}"
        )
    assert len(issues) < reviewed // 10  # a clean set: a few disputed photos, not a tenth
    for issue in issues:
        assert issue.suggested_probability > issue.given_probability

    # One bee of each part filed as an ant (in the split only: the shared folder stays read-only,
    # and the same files keep the cached features).
    bees, ants = split.classes.index("bees"), split.classes.index("ants")
    flagged_before = {i.path for i in issues}
    chosen = {
        part: next(s for s in getattr(split, part) if s.label == bees and s.path not in flagged_before)
        for part in ("train", "val")
    }

    def relabelled(samples: tuple[Sample, ...]) -> tuple[Sample, ...]:
        return tuple(dataclasses.replace(s, label=ants) if s in chosen.values() else s for s in samples)

    wrong = dataclasses.replace(split, train=relabelled(split.train), val=relabelled(split.val))
    flagged = {i.path: i for i in find_label_issues(bundle, wrong, feature_cache=cache)}
    for part, sample in chosen.items():
        assert sample.path in flagged, part
        issue = flagged[sample.path]
        assert (issue.given, issue.suggested, issue.split) == ("ants", "bees", part)
