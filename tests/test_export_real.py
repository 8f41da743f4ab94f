"""Export of a real fine-tuned model (ants vs bees, from the imported ImageNet ResNet-50): the parity
check on its own 153 validation photos, INT8 calibrated on its training photos, and the standalone
example (``examples/onnx_classify.py``) run in a virtualenv without torch, which must name the same
class as the app for every validation photo.

The measured numbers (sizes, speeds, agreement, accuracy) are printed, not asserted: the machine
may be shared. One fine-tuning run (head mode) and two exports: about 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_gui.core.export.onnx_graph import read_onnx_metadata
from resnet_gui.core.export.parity import INT8_MIN_TOP1_AGREEMENT
from resnet_gui.core.export.pipeline import ExportResult, export_model

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "onnx_classify.py"
#: What the example may import, with what those need at run time (never torch).
EXAMPLE_DISTRIBUTIONS = ("onnxruntime", "numpy", "pillow")


def _say(request: pytest.FixtureRequest, text: str) -> None:
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\n[export] {text}")
    else:
        print(f"\n[export] {text}")


@pytest.fixture(scope="module")
def ants_bees(hymenoptera_head_run):
    """The session's bundle fine-tuned on hymenoptera in head mode, loaded as the app loads it."""
    from resnet_gui.core.models import load_model

    result, _seconds = hymenoptera_head_run
    return load_model(weights_file=result.bundle)


@pytest.fixture(scope="module")
def fp32_export(ants_bees, hymenoptera: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export_model(ants_bees, tmp_path_factory.mktemp("onnx") / "ants-bees.onnx", data_root=hymenoptera)


def test_fp32_export_agrees_on_the_bundles_validation_photos(
    fp32_export: ExportResult, ants_bees, request: pytest.FixtureRequest
) -> None:
    _say(request, fp32_export.parity.sentence())
    assert fp32_export.photos == "153 of the model's own validation photos"
    assert fp32_export.parity.images == 153 and fp32_export.parity.passed
    assert fp32_export.parity.top1_agreement == 1.0 and fp32_export.parity.max_probability_delta <= 1e-3
    info = read_onnx_metadata(fp32_export.path)
    assert info.categories == ("ants", "bees") and info.preprocessing == ants_bees.preprocessing
    assert (
        fp32_export.metadata["channel_order"] == "BGR" and fp32_export.metadata["value_range"] == "[0, 255]"
    )


def test_int8_export_is_smaller_and_keeps_the_answers(
    ants_bees, hymenoptera: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    result = export_model(ants_bees, tmp_path / "ants-bees-int8.onnx", quantize="int8", data_root=hymenoptera)
    assert result.int8 is not None
    for line in result.sentences():
        _say(request, line)
    assert result.parity.passed and result.parity.top1_agreement >= INT8_MIN_TOP1_AGREEMENT
    assert result.int8.int8_bytes < result.int8.fp32_bytes / 3
    assert result.int8.fp32_accuracy is not None and result.int8.int8_accuracy is not None
    assert result.int8.int8_accuracy >= result.int8.fp32_accuracy - 0.03
    assert read_onnx_metadata(result.path).categories == ("ants", "bees")


def _top_level_entries(name: str) -> set[str]:
    """The top-level files and folders of an installed distribution (its packages, .libs, dist-info)."""
    files = importlib.metadata.distribution(name).files or []
    return {Path(str(item)).parts[0] for item in files if not str(item).startswith("..")}


def _requirements(name: str) -> set[str]:
    found: set[str] = set()
    for requirement in importlib.metadata.requires(name) or []:
        if "extra ==" in requirement:
            continue
        found.add(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])
    return found


@pytest.fixture(scope="module")
def torch_free_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with only onnxruntime, numpy and Pillow (and what they need) importable, no torch.

    Nothing is downloaded: a ``.pth`` file points at a folder of links to those distributions in the
    test's own environment.
    """
    root = tmp_path_factory.mktemp("torch-free")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(root / "venv")], check=True, timeout=120)
    python = root / "venv" / "bin" / "python"
    site = Path(importlib.metadata.distribution("numpy").locate_file(""))
    links = root / "links"
    links.mkdir()
    pending, seen = list(EXAMPLE_DISTRIBUTIONS), set()
    while pending:
        name = pending.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        assert name.lower() not in ("torch", "torchvision")
        for entry in _top_level_entries(name):
            if not (links / entry).exists():
                (links / entry).symlink_to(site / entry)
        pending.extend(_requirements(name))
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    Path(purelib, "example-deps.pth").write_text(f"{links}\n")
    probe = (
        "import onnxruntime, numpy, PIL\ntry:\n    import torch\nexcept ImportError:\n    print('no torch')\n"
    )
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "no torch", result.stderr
    return python


def test_standalone_example_without_torch_names_the_apps_classes(
    fp32_export: ExportResult, ants_bees, hymenoptera: Path, torch_free_python: Path
) -> None:
    from resnet_gui.core.engine import Classifier, ImageResult

    photos = sorted((hymenoptera / "val").glob("*/*"))
    assert len(photos) == 153
    app = {}
    for row in Classifier(ants_bees, "cpu").classify_paths(photos, top_k=1):
        assert isinstance(row, ImageResult)
        app[row.source] = row.predictions[0].label
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    result = subprocess.run(
        [str(torch_free_python), str(EXAMPLE), str(fp32_export.path), *map(str, photos), "--top-k", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=fp32_export.path.parent,
    )
    assert result.returncode == 0, result.stderr
    example: dict[str, str] = {}
    current = None
    for line in result.stdout.splitlines():
        if line.startswith("== "):
            current = line[3:]
        else:
            assert current is not None, line
            example[current] = line.split(None, 1)[1]
    assert example == app
    assert set(app.values()) == {"ants", "bees"}
