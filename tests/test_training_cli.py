"""``resnet-gui finetune`` and ``resnet-gui evaluate`` on tiny synthetic data and the tiny ResNet-18.

The sub-commands are built from :mod:`resnet_gui.cli_training` alone (``add_parsers`` +
``HANDLERS``), the way ``resnet_gui.cli`` wires them, with the CLI's error convention: a
ResNetGuiError becomes one line on stderr and its exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from test_training import _constant_bundle, make_shapes

from resnet_gui import cli_training
from resnet_gui.core.errors import ResNetGuiError
from resnet_gui.core.training import checkpoint_path, read_bundle_info


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="resnet-gui")
    commands = parser.add_subparsers(dest="command")
    cli_training.add_parsers(commands)
    args = parser.parse_args(argv)
    try:
        return cli_training.HANDLERS[args.command](args)
    except ResNetGuiError as error:
        print(f"resnet-gui: error: {error}", file=sys.stderr)
        return error.exit_code


@pytest.fixture()
def data(tmp_path: Path, isolated_dirs: Path) -> Path:
    root = tmp_path / "pets"
    make_shapes(root, {"circle": 10, "square": 10}, split="train")
    make_shapes(root, {"circle": 4, "square": 4}, seed=5, split="val")
    return root


FAST = ["--batch-size", "8", "--epochs", "3"]


def test_finetune_prints_a_table_and_saves_a_bundle(
    tiny_weights_file: Path, data: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "models" / "pets"
    code = run_cli(["finetune", str(data), "--model", str(tiny_weights_file), "--out", str(out), *FAST])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert "circle" in captured.out and "Split (the train/val folders): 20 train, 8 val" in captured.out
    header = next(i for i, line in enumerate(lines) if line.startswith("stage"))
    assert "val acc" in lines[header] and len([x for x in lines[header + 1 :] if x.startswith("train ")]) == 3
    assert "Best: train epoch" in captured.out and "Saved:" in captured.out
    bundle = out.with_suffix(".safetensors")
    assert bundle.is_file() and bundle.with_suffix(".json").is_file()
    assert read_bundle_info(bundle).categories == ["circle", "square"]
    assert "Traceback" not in captured.err


def test_finetune_default_output_in_the_data_folder(
    tiny_weights_file: Path, data: Path, isolated_dirs: Path, capsys
) -> None:
    code = run_cli(["finetune", str(data), "--model", str(tiny_weights_file), *FAST, "--epochs", "1"])
    assert code == 0
    assert (isolated_dirs / "data" / "models" / "pets-resnet18-head.safetensors").is_file()
    # Head-mode features are kept on disk for next time.
    assert list((isolated_dirs / "data" / "cache" / "features").glob("features-*.safetensors"))


def test_finetune_check_only_reports(tiny_weights_file: Path, data: Path, capsys) -> None:
    (data / "train" / "circle" / "broken.png").write_bytes(b"garbage")
    (data / "train" / "square" / "copy.png").write_bytes(
        (data / "train" / "square" / "square000.png").read_bytes()
    )
    model = ["--model", str(tiny_weights_file)]
    assert run_cli(["finetune", str(data), "--check", *model]) == 0
    out = capsys.readouterr().out
    assert "1 file cannot be read" in out and "1 file is an exact copy" in out
    assert "--clean would also leave out 1 files" in out
    assert "Estimated on this cpu for head mode: one-off" in out and "for all 40 epochs at most" in out
    assert run_cli(["finetune", str(data), "--check", "--clean", "--mode", "full", *model]) == 0
    out = capsys.readouterr().out
    assert "2 left out" in out and "for full mode" in out
    # Without a model the data check still stands, and says why there is no estimate.
    missing = str(tiny_weights_file.parent / "missing.safetensors")
    assert run_cli(["finetune", str(data), "--check", "--model", missing]) == 0
    assert "(No time estimate:" in capsys.readouterr().out


def test_finetune_interrupted_then_resumed(
    tiny_weights_file: Path, data: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run.safetensors"
    from resnet_gui.core import training  # run_finetune imports train at call time: patch it there

    original = training.train

    def interrupted(*args, **kwargs):
        steps = 0

        def cancel() -> bool:
            return steps >= 4

        kwargs["cancel"] = cancel
        for event in original(*args, **kwargs):
            steps += isinstance(event, training.StepMetrics)
            yield event

    monkeypatch.setattr(training, "train", interrupted)
    argv = ["finetune", str(data), "--model", str(tiny_weights_file), "--out", str(out), *FAST]
    assert run_cli(argv) == cli_training.EXIT_CANCELLED
    err = capsys.readouterr().err
    assert "--resume to continue" in err and checkpoint_path(out).is_file()
    monkeypatch.setattr(training, "train", original)
    # Resumed with its own settings: the command line need not repeat them.
    assert run_cli(["finetune", str(data), "--out", str(out), "--resume"]) == 0
    assert out.is_file() and not checkpoint_path(out).exists()
    assert run_cli(["finetune", str(data), "--out", str(out), "--resume"]) == 1
    assert "no interrupted run to resume" in capsys.readouterr().err
    # Another setting given on the command line is refused, with the difference named.
    monkeypatch.setattr(training, "train", interrupted)
    assert run_cli(argv) == cli_training.EXIT_CANCELLED
    monkeypatch.setattr(training, "train", original)
    assert run_cli(["finetune", str(data), "--out", str(out), "--resume", "--mode", "partial"]) == 1
    assert "mode: 'head' in the checkpoint, now 'partial'" in capsys.readouterr().err


def test_finetune_resumes_a_run_with_the_default_output(
    tiny_weights_file: Path, data: Path, isolated_dirs: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resnet_gui.core import training

    original = training.train

    def interrupted_after(steps: int):
        def run(*args, **kwargs):
            done = [0]
            kwargs["cancel"] = lambda: done[0] >= steps
            for event in original(*args, **kwargs):
                done[0] += isinstance(event, training.StepMetrics)
                yield event

        return run

    argv = ["finetune", str(data), "--model", str(tiny_weights_file), *FAST, "--no-disk-cache"]
    monkeypatch.setattr(training, "train", interrupted_after(0))
    assert run_cli(argv) == cli_training.EXIT_CANCELLED  # cancelled before an epoch: nothing kept
    assert "nothing to resume" in capsys.readouterr().err
    monkeypatch.setattr(training, "train", original)
    assert run_cli([*argv, "--resume"]) == 1
    assert "pets-resnet18-head.safetensors" in capsys.readouterr().err

    monkeypatch.setattr(training, "train", interrupted_after(4))
    assert run_cli(argv) == cli_training.EXIT_CANCELLED
    monkeypatch.setattr(training, "train", original)
    assert run_cli(["finetune", str(data), "--resume", "--model", str(tiny_weights_file)]) == 0
    assert (isolated_dirs / "data" / "models" / "pets-resnet18-head.safetensors").is_file()


def test_finetune_errors_are_one_line(tiny_weights_file: Path, tmp_path: Path, capsys) -> None:
    assert run_cli(["finetune", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    make_shapes(tmp_path / "one", {"circle": 3})
    assert run_cli(["finetune", str(tmp_path / "one")]) == 2
    err = capsys.readouterr().err
    assert "at least two classes" in err and "Traceback" not in err


def test_evaluate_prints_metrics_and_writes_files(tiny_weights_file: Path, tmp_path: Path, capsys) -> None:
    folder = make_shapes(tmp_path / "eval", {"ant": 3, "bee": 2})
    bundle = _constant_bundle(tiny_weights_file, tmp_path / "always-ant.safetensors", "ant")
    out_dir = tmp_path / "report"
    code = run_cli(["evaluate", str(folder), "--model", str(bundle), "--out-dir", str(out_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert "Accuracy: 60.00 %" in out and "Most confidently wrong" in out and "(is bee)" in out
    assert {p.name for p in out_dir.iterdir()} == {
        "report.json", "confusion_matrix.csv", "confusion_matrix.png", "reliability_diagram.png",
        "predictions.csv",
    }  # fmt: skip
    assert run_cli(["evaluate", str(folder), "--model", str(bundle), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["confusion_matrix"] == [[3, 0, 0], [2, 0, 0]]
