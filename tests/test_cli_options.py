"""The parser is cheap: building it, ``--help`` and ``--version`` never import torch, and the
torch-free copies the parser reads (explain catalog, colormaps, fine-tuning modes) match the real ones."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_gui import cli_training
from resnet_gui.cli import build_parser
from resnet_gui.core.explain import catalog

REPO = Path(__file__).resolve().parent.parent


def _run_python(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DISPLAY": "", "WAYLAND_DISPLAY": ""}  # never the app
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )


def test_building_the_parser_does_not_import_torch() -> None:
    done = _run_python(
        "-c",
        "import sys; from resnet_gui.cli import build_parser; build_parser(); print('torch' in sys.modules)",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["explain", "--help"], ["finetune", "--help"]])
def test_help_and_version_do_not_import_torch(argv: list[str]) -> None:
    """Through the real entry point; ``-X importtime`` lists every module imported, on stderr."""
    done = _run_python("-X", "importtime", "-m", "resnet_gui", *argv)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("resnet-gui " if argv == ["--version"] else "usage: resnet-gui")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "resnet_gui.cli" in imported  # the probe works
    heavy = sorted(name for name in imported if re.match(r"(torch|torchvision|captum)(\.|$)", name))
    assert heavy == []


def test_the_explain_package_imports_torch_only_on_first_use() -> None:
    code = (
        "import sys; import resnet_gui.core.explain as e; before = 'torch' in sys.modules; "
        "e.METHODS; print(before, 'torch' in sys.modules, callable(e.explain))"
    )
    done = _run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "True"]


def test_the_explain_package_still_refuses_unknown_names() -> None:
    import resnet_gui.core.explain as explain_package

    with pytest.raises(AttributeError):
        _ = explain_package.no_such_name


def test_the_catalog_and_the_registry_agree_key_for_key() -> None:
    """The registry takes its rows from the catalog: same keys, same order, same texts."""
    from resnet_gui.core.explain import DEFAULT_METHOD, METHODS

    assert list(METHODS) == list(catalog.CATALOG)
    assert DEFAULT_METHOD == catalog.DEFAULT_METHOD and DEFAULT_METHOD in METHODS
    for key, entry in catalog.CATALOG.items():
        info = METHODS[key]
        assert entry.key == info.key == info.cls.key == key
        texts = (entry.display_name, entry.description, entry.cost)
        assert (info.display_name, info.description, info.cost) == texts
        assert (info.cls.display_name, info.cls.description, info.cls.cost) == texts


def test_the_parser_and_the_engine_read_one_table_of_modes() -> None:
    from resnet_gui.core.explain.maps import COLORMAPS
    from resnet_gui.core.modes import MODE_KEYS, TRAINING_MODES
    from resnet_gui.core.training import MODES, TrainConfig

    assert COLORMAPS is catalog.COLORMAPS  # one table
    assert cli_training.MODES is MODES is MODE_KEYS  # one table
    finetune = build_parser()._subparsers._group_actions[0].choices["finetune"]  # type: ignore[union-attr]
    shown = " ".join(finetune.format_help().split())
    for key, mode in TRAINING_MODES.items():
        assert TrainConfig(mode=key).resolved().mode == key  # every mode of the table trains
        assert mode.cli_help in shown


@pytest.mark.parametrize("command", ["classify", "explain", "batch", "finetune", "evaluate"])
def test_every_model_command_takes_the_same_model_options(command: str) -> None:
    positional = {"classify": ["a.jpg"], "explain": ["a.jpg"]}.get(command, ["folder"])
    argv = [command, *positional, "--model", "my.safetensors", "--device", "cpu", "--no-download"]
    args = build_parser().parse_args(argv)
    assert (args.model, args.weights, args.device, args.no_download) == ("my.safetensors", None, "cpu", True)
