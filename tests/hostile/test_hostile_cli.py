"""The hostile-input corpus, command-line part: each case is one line of a table.

A case runs ``resnet-gui`` in this process on a command line whose ``{placeholders}`` name files of
the test's small world (see conftest.py), and checks the exit code, that stderr says the expected
words in one sentence (no traceback), and that the files it names in ``untouched`` still hold
exactly what they held before. Every case failed (a traceback, exit 0, a file destroyed, a hang)
on the code before the hostile-input review was fixed.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from checkpoint_makers import akamaster_checkpoint, pickle_with_code, unknown_architecture, without_block

from hostile.conftest import World, preprocessing_with, tampered_model, write_photo
from resnet_gui.cli import main


@dataclass(frozen=True)
class Case:
    """``argv`` with placeholders; ``code``: the exit code; ``says``: words stderr must hold."""

    name: str
    argv: str
    code: int
    says: str = ""
    untouched: tuple[str, ...] = ()
    prepare: Callable[[World], None] | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _user_text(world: World) -> None:
    (world.root / "notes.txt").write_text("my own notes, not results\n")


def _user_json(world: World) -> None:
    (world.root / "report").mkdir()
    (world.root / "report" / "report.json").write_text('{"mine": true}\n')


def _managed_weights(world: World) -> None:
    managed = world.data_dir / "weights" / "resnet50_v1-keras-imagenet.safetensors"
    managed.parent.mkdir(parents=True)
    shutil.copyfile(world.model, managed)


def _earlier_results(world: World) -> None:
    assert (
        main(["batch", str(world.photos), "--weights", str(world.model), "--out", str(world.root / "r.csv")])
        == 0
    )


def _earlier_report(world: World) -> None:
    assert main(["evaluate", str(world.dataset), "--weights", str(world.model), "--out-dir", str(world.root / "rep")]) == 0


def _earlier_bundle(world: World) -> None:
    argv = ["finetune", str(world.dataset), "--weights", str(world.model), "--epochs", "1", "--out", str(world.root / "m.safetensors")]
    assert main(argv) == 0


def _damaged_checkpoint(world: World) -> None:
    import torch
    from safetensors.torch import save_file

    header = {"format": "resnet-gui-checkpoint/1", "config": "{not json", "position": "[]", "split": "{}"}
    save_file({"x": torch.zeros(1)}, str(world.root / "m.checkpoint.safetensors"), metadata=header)


def _tamper(**metadata: str | None) -> Callable[[World], None]:
    def prepare(world: World) -> None:
        tampered_model(world.model, world.root / "bad.safetensors", **metadata)

    return prepare


def _nan_weights(world: World) -> None:
    def poison(state):
        state["fc.weight"] = state["fc.weight"].clone()
        state["fc.weight"][0, 0] = float("nan")
        return state

    tampered_model(world.model, world.root / "bad.safetensors", tensors=poison)


def _fifo(world: World) -> None:
    os.mkfifo(world.root / "weights.pth")


def _add_unknown_class(world: World) -> None:
    (world.root / "add.csv").write_text(f"path,class\n{world.photo},wasp\n")


def _add_not_utf8(world: World) -> None:
    (world.root / "add.csv").write_bytes(b"path,class\n\xff\xfe.png,ant\n")


def _folder_as_out(world: World) -> None:
    (world.root / "outdir").mkdir()


def _checkpoint(make: Callable[[Path], object]) -> Callable[[World], None]:
    """A checkpoint of other code at {tmp}/ckpt.th (checkpoint_makers), and a 3-name classes file."""

    def prepare(world: World) -> None:
        make(world.root / "ckpt.th")
        (world.root / "three.txt").write_text("a\nb\nc\n")

    return prepare


BAD = "--weights {tmp}/bad.safetensors"
IMPORT = "weights import {tmp}/ckpt.th --out {tmp}/imported.safetensors"
CLASSIFY_BAD = "classify {photo} " + BAD

# fmt: off
CASES = [
    # --- data loss: an output never replaces an input, a managed model or a file that is not ours ---
    Case("batch-out-is-its-own-photo", "batch {photos} --weights {model} --out {photo}", 5, "own inputs", ("photo",)),
    Case("batch-out-is-its-model", "batch {photos} --weights {model} --out {model}", 5, "own inputs", ("model",)),
    Case("batch-out-is-another-model", "batch {photos} --weights {model} --out {other_model}", 5, "is not a CSV results file", ("other_model",)),
    Case("batch-out-is-a-user-file", "batch {photos} --weights {model} --out {tmp}/notes.txt", 5, "add --overwrite", ("tmp/notes.txt",), _user_text),
    Case("batch-out-on-own-photo-even-with-overwrite", "batch {photos} --weights {model} --out {photo} --overwrite", 5, "own inputs", ("photo",)),
    Case("explain-out-is-its-photo", "explain {photo} --weights {model} --out {photo}", 5, "own inputs", ("photo",)),
    Case("explain-heatmap-on-a-model", "explain {photo} --weights {model} --save-heatmap {other_model}", 5, "not a heat map", ("other_model",)),
    Case("finetune-out-is-the-base-model", "finetune {dataset} --weights {model} --epochs 1 --out {model}", 5, "own inputs", ("model",)),
    Case("finetune-out-is-a-managed-model", "finetune {dataset} --weights {model} --epochs 1 --out {data_dir}/weights/resnet50_v1-keras-imagenet.safetensors", 5, "a model the app uses", ("data_dir/weights/resnet50_v1-keras-imagenet.safetensors",), _managed_weights),
    Case("evaluate-out-dir-holds-a-user-report", "evaluate {dataset} --weights {model} --out-dir {tmp}/report", 5, "is not a report", ("tmp/report/report.json",), _user_json),
    Case("evaluate-out-dir-is-a-file", "evaluate {dataset} --weights {model} --out-dir {photo}", 5, "is a file", ("photo",)),
    Case("evaluate-label-issues-on-a-dataset-photo", "evaluate {dataset} --weights {model} --label-issues {dataset}/ant/ant0.png --overwrite", 5, "own inputs", ("dataset/ant/ant0.png",)),
    Case("evaluate-label-issues-on-a-photo", "evaluate {dataset} --weights {model} --label-issues {photo}", 5, "is not a table", ("photo",)),
    Case("evaluate-label-issues-of-a-model-not-fine-tuned-here", "evaluate {dataset} --weights {model} --label-issues {tmp}/issues.csv", 2, "records no dataset folder"),
    Case("finetune-add-an-unknown-class", "finetune {dataset} --weights {model} --epochs 1 --add {tmp}/add.csv", 1, "is not one of the dataset's classes", ("photo",), _add_unknown_class),
    Case("finetune-add-not-utf8", "finetune {dataset} --weights {model} --epochs 1 --add {tmp}/add.csv", 1, "not UTF-8 text", prepare=_add_not_utf8),
    Case("finetune-add-a-fifo", "finetune {dataset} --weights {model} --epochs 1 --add {tmp}/weights.pth", 1, "not a regular file", prepare=_fifo),
    Case("explain-out-is-a-folder", "explain {photo} --weights {model} --out {tmp}/outdir", 5, "is a folder", prepare=_folder_as_out),
    Case("explain-out-under-a-file", "explain {photo} --weights {model} --out {photo}/x.png", 5, "is a file, not a folder", ("photo",)),
    # --- tampered model metadata: refused where it is read, naming the field ---
    Case("resize-100000", CLASSIFY_BAD, 4, "'resize_size' is 100000", prepare=_tamper(preprocessing=preprocessing_with(resize_size=100000))),
    Case("std-0", CLASSIFY_BAD, 4, "'std'", prepare=_tamper(preprocessing=preprocessing_with(std=[0, 0.2, 0.2]))),
    Case("crop-0", CLASSIFY_BAD, 4, "'crop_size' is 0", prepare=_tamper(preprocessing=preprocessing_with(crop_size=0))),
    Case("crop-minus-5", CLASSIFY_BAD, 4, "'crop_size' is -5", prepare=_tamper(preprocessing=preprocessing_with(crop_size=-5))),
    Case("two-value-mean", CLASSIFY_BAD, 4, "'mean'", prepare=_tamper(preprocessing=preprocessing_with(mean=[0.5, 0.5]))),
    Case("nan-mean", CLASSIFY_BAD, 4, "'mean'", prepare=_tamper(preprocessing=preprocessing_with(mean=[0.5, 0.5, 0.5]).replace("0.5]", "NaN]"))),
    Case("unknown-interpolation", CLASSIFY_BAD, 4, "'interpolation'", prepare=_tamper(preprocessing=preprocessing_with(interpolation="sinc"))),
    Case("unknown-channel-order", CLASSIFY_BAD, 4, "'channel_order'", prepare=_tamper(preprocessing=preprocessing_with(channel_order="GBR"))),
    Case("missing-crop", CLASSIFY_BAD, 4, "no 'crop_size'", prepare=_tamper(preprocessing=preprocessing_with(crop_size=...))),
    Case("non-json-preprocessing", CLASSIFY_BAD, 4, "not valid JSON", prepare=_tamper(preprocessing="{resize: big")),
    Case("preprocessing-a-list", CLASSIFY_BAD, 4, "is a list", prepare=_tamper(preprocessing="[256, 224]")),
    Case("two-names-three-outputs", CLASSIFY_BAD, 4, "names 2 classes", prepare=_tamper(categories='["a", "b"]')),
    Case("names-not-strings", CLASSIFY_BAD, 4, "not a text", prepare=_tamper(categories="[1, 2, 3]")),
    Case("names-not-a-list", CLASSIFY_BAD, 4, "not a list", prepare=_tamper(categories='"ant"')),
    Case("a-5000-character-name", CLASSIFY_BAD, 4, "5,000 characters", prepare=_tamper(categories=json.dumps(["a", "b", "c" * 5000]))),
    Case("a-repeated-name", CLASSIFY_BAD, 4, "appears twice", prepare=_tamper(categories='["a", "b", "a"]')),
    Case("nan-weights", CLASSIFY_BAD, 4, "NaN or infinite values", prepare=_nan_weights),
    Case("fifo-as-weights", "classify {photo} --weights {tmp}/weights.pth", 4, "not a regular file", prepare=_fifo),
    Case("damaged-checkpoint-header", "finetune {dataset} --weights {model} --resume --out {tmp}/m.safetensors", 1, "is damaged", prepare=_damaged_checkpoint),
    # --- checkpoints of other code (weights import): one sentence, nothing written ---
    Case("import-unknown-architecture", IMPORT, 4, "is not a ResNet this app recognises", ("tmp/ckpt.th",), _checkpoint(unknown_architecture)),
    Case("import-cifar-depth-26", IMPORT, 4, "CIFAR ResNet-26, which no model of this app has", ("tmp/ckpt.th",), _checkpoint(lambda p: akamaster_checkpoint(p, 26))),
    Case("import-cifar-unequal-stages", IMPORT, 4, "3, 2, 3 blocks in its 3 stages", prepare=_checkpoint(lambda p: akamaster_checkpoint(p, change=without_block(2, 2)))),
    Case("import-classes-do-not-match", IMPORT + " --classes {tmp}/three.txt", 4, "names 3 classes but the classifier", prepare=_checkpoint(akamaster_checkpoint)),
    Case("import-pickle-with-code", IMPORT, 4, "refused for safety", ("tmp/ckpt.th",), _checkpoint(pickle_with_code)),
    Case("model-file-pickle-with-code", "classify {photo} --model {tmp}/ckpt.th", 4, "refused for safety", prepare=_checkpoint(pickle_with_code)),
    Case("model-file-cifar-depth-26", "evaluate {dataset} --model {tmp}/ckpt.th", 4, "CIFAR ResNet-26", prepare=_checkpoint(lambda p: akamaster_checkpoint(p, 26))),
    # --- absurd numbers: refused by the parser (exit 2) with the range ---
    Case("classify-batch-size-0", "classify {photo} --weights {model} --batch-size 0", 2, "from 1 to 1024"),
    Case("classify-batch-size-minus-1", "classify {photo} --weights {model} --batch-size -1", 2, "from 1 to 1024"),
    Case("max-megapixels-nan", "classify {photo} --weights {model} --max-megapixels nan", 2, "from 0.01"),
    Case("max-megapixels-tiny", "classify {photo} --weights {model} --max-megapixels 1e-7", 2, "from 0.01"),
    Case("explain-top-k-1001", "explain {photo} --weights {model} --top-k 1001", 2, "from 1 to 20"),
    Case("explain-alpha-2", "explain {photo} --weights {model} --alpha 2", 2, "from 0 to 1"),
    Case("batch-workers-minus-1", "batch {photos} --weights {model} --workers -1", 2, "from 0 to 64"),
    Case("batch-min-confidence-nan", "batch {photos} --weights {model} --sort-into {tmp}/s --min-confidence nan", 2, "from 0 to 1"),
    Case("batch-min-confidence-minus-1", "batch {photos} --weights {model} --min-confidence -1", 2, "from 0 to 1"),
    Case("classify-min-confidence-2", "classify {photo} --weights {model} --min-confidence 2", 2, "from 0 to 1"),
    Case("finetune-epochs-0", "finetune {dataset} --weights {model} --epochs 0", 2, "from 1 to 10000"),
    Case("finetune-lr-nan", "finetune {dataset} --weights {model} --lr nan", 2, "more than 0"),
    Case("finetune-lr-inf", "finetune {dataset} --weights {model} --lr inf", 2, "more than 0"),
    Case("finetune-val-fraction-1", "finetune {dataset} --weights {model} --val-fraction 1", 2, "less than 1"),
    Case("evaluate-top-wrong-minus-1", "evaluate {dataset} --weights {model} --top-wrong -1", 2, "from 0 to 100000"),
    # --- what must keep working ---
    Case("device-cpu-0", "classify {photo} --weights {model} --device cpu:0", 0),
    Case("batch-out-replaces-its-earlier-results", "batch {photos} --weights {model} --out {tmp}/r.csv", 0, prepare=_earlier_results),
    Case("batch-min-confidence-without-sort-into", "batch {photos} --weights {model} --out {tmp}/r.csv --min-confidence 0.5", 0),
    Case("evaluate-out-dir-replaces-its-earlier-report", "evaluate {dataset} --weights {model} --out-dir {tmp}/rep", 0, prepare=_earlier_report),
    Case("finetune-out-replaces-its-earlier-bundle", "finetune {dataset} --weights {model} --epochs 1 --out {tmp}/m.safetensors", 0, prepare=_earlier_bundle),
    Case("batch-overwrite-replaces-a-user-file", "batch {photos} --weights {model} --out {tmp}/notes.txt --overwrite", 0, prepare=_user_text),
]
# fmt: on


def _argv(case: Case, world: World) -> list[str]:
    values = world.placeholders()
    return [part.format(**values) for part in case.argv.split()]


def _snapshot(world: World, names: tuple[str, ...]) -> dict[str, bytes]:
    values = world.placeholders()
    paths = {}
    for name in names:
        head, _, rest = name.partition("/")
        paths[name] = Path(values[head], rest) if rest else Path(values[head])
    return {name: path.read_bytes() for name, path in paths.items()}


def run_in_thread(argv: list[str], timeout: float = 120.0) -> int:
    """Run the CLI; a hang fails the test instead of stopping the suite."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["code"] = main(argv)
        except SystemExit as exit_:
            outcome["code"] = exit_.code
        except BaseException as error:  # reported below, with its type
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"resnet-gui {' '.join(argv)} still running after {timeout} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return int(outcome["code"])  # type: ignore[call-overload]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_command(case: Case, world: World, capsys: pytest.CaptureFixture[str]) -> None:
    if case.prepare is not None:
        case.prepare(world)
        capsys.readouterr()
    before = _snapshot(world, case.untouched)
    code = run_in_thread(_argv(case, world))
    err = capsys.readouterr().err
    assert code == case.code, err
    assert "Traceback" not in err
    assert case.says.lower() in err.lower()
    assert _snapshot(world, case.untouched) == before, "a file the run must not touch was changed"
    if case.code and case.argv.startswith("weights import"):
        assert not (world.root / "imported.safetensors").exists() and not world.data_dir.exists(), "written"


# --- cases that need more than one command line ------------------------------------------------


def test_a_second_run_on_the_same_output_is_refused_while_the_first_holds_it(world: World, capsys) -> None:
    from resnet_gui.core.outputs import OutputTarget, claim_outputs

    out = world.root / "results.csv"
    with claim_outputs([OutputTarget(out, "batch-csv")]):  # the first run, mid-way
        code = main(["batch", str(world.photos), "--weights", str(world.model), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 5 and "Another resnet-gui run" in err and f"process {os.getpid()}" in err
        assert not out.exists()
    # Once the first run is over, the lock is gone and its file with it.
    assert main(["batch", str(world.photos), "--weights", str(world.model), "--out", str(out)]) == 0
    assert not any(path.name.endswith(".lock") for path in world.root.iterdir())


def test_finetune_out_folder_writes_inside_it(world: World, capsys) -> None:
    folder = world.root / "models"
    folder.mkdir()
    code = main(
        ["finetune", str(world.dataset), "--weights", str(world.model), "--epochs", "1", "--out", str(folder)]
    )
    assert code == 0, capsys.readouterr().err
    assert sorted(p.suffix for p in folder.iterdir()) == [".json", ".safetensors"]
    assert not (world.root / "models.safetensors").exists()


def test_explain_file_names_from_long_or_odd_class_names_are_bounded(world: World, capsys) -> None:
    names = ["x" * 180, "../../etc/passwd", "\x1b[2Jcat"]
    bundle = tampered_model(world.model, world.root / "odd.safetensors", categories=json.dumps(names))
    out = world.root / "out" / "o.png"
    code = main(["explain", str(world.photo), "--weights", str(bundle), "--top-k", "3", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    written = sorted(p.name for p in out.parent.iterdir())
    assert len(written) == 3 and all(len(name) < 60 for name in written)
    assert "\x1b" not in captured.out and "\\x1b[2Jcat" in captured.out


def test_control_characters_in_names_are_shown_escaped_but_json_stays_exact(world: World, capsys) -> None:
    names = ["\x1b[31mred", "line\rover", "ok"]
    bundle = tampered_model(world.model, world.root / "ctl.safetensors", categories=json.dumps(names))
    photo = write_photo(world.root / "a\x1b[2Jb.png")
    assert main(["classify", str(photo), "--weights", str(bundle), "--top-k", "3"]) == 0
    shown = capsys.readouterr()
    assert "\x1b" not in shown.out + shown.err and "\r" not in shown.out
    assert "\\x1b[31mred" in shown.out and "a\\x1b[2Jb.png" in shown.out
    assert main(["classify", str(photo), "--weights", str(bundle), "--top-k", "3", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)["results"][0]
    assert record["path"] == str(photo) and {p["label"] for p in record["predictions"]} == set(names)
