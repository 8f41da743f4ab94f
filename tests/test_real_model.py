"""The app end to end with the real ImageNet ResNet-50 (imported from Keras), as a user runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from resnet_gui.cli import main
from resnet_gui.core.models import RESNET50_V1, default_model_choice

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assets" / "samples"
CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.mark.real_model
def test_default_model_classifies_the_samples(real_keras_weights_path: Path, capsys) -> None:
    """`resnet-gui classify` with no model option picks a real model and gets the photos right."""
    model, _ = default_model_choice()
    paths = [SAMPLES / "coffee.jpg", SAMPLES / "chelsea.jpg"]
    assert main(["classify", *map(str, paths), "--json", "--no-download"]) == 0
    data = json.loads(capsys.readouterr().out)
    if model == RESNET50_V1:
        assert data["model"] == "resnet50_v1:KERAS_IMAGENET"
    coffee, chelsea = data["results"]
    assert coffee["predictions"][0]["label"] == "espresso"
    assert coffee["predictions"][0]["probability"] > 0.9
    assert chelsea["predictions"][0]["label"] in CAT_CLASSES
    assert chelsea["predictions"][0]["probability"] > 0.5


@pytest.mark.real_model
def test_run_command_without_display_classifies_the_samples(real_keras_weights_path: Path) -> None:
    """The README's run path without a display: the sample photos and their top-5."""
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "resnet-gui"), "--no-gui"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    blocks = done.stdout.split("\n/")
    assert len(blocks) == len(list(SAMPLES.glob("*.jpg")))
    coffee_block = next(block for block in blocks if "coffee.jpg" in block)
    assert coffee_block.splitlines()[1].split()[1] == "espresso"
    assert all(block.count(" %") == 5 for block in blocks)


def test_setup_script_is_idempotent() -> None:
    """A second run of the set-up finds everything done and installs nothing."""
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "installing" not in done.stdout and "importing" not in done.stdout
