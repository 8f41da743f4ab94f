"""CPU runtimes for the real ResNet-50: images/s at batch 1 and 16, and top-1 agreement, in one run.

Part 1, the model alone, on photos prepared beforehand (hymenoptera val, spread over ants and bees):

* eager torch fp32, contiguous memory (the baseline), and with channels_last (what ``--backend
  torch`` runs);
* onnxruntime fp32 on the graph ``--backend onnxruntime`` runs (exported by the app, session options
  of :func:`resnet_gui.core.runtime_ort.session_options`), with one intra-op thread per core, and
  with one thread (to show what the threads are worth);
* onnxruntime INT8 (the app's static quantization, :func:`resnet_gui.core.export.quantize.quantize_int8`,
  calibrated on hymenoptera *train* photos, so never on the photos it is scored on);
* ``torch.compile`` (inductor), where it works here; else the row says why it was skipped.

Each row: images/s at batch 1 (median over single photos), at batch 16 (median over rounds of the
whole set), both as a ratio to the baseline, and the share of photos whose top-1 is the baseline's.

Part 2, the whole command: ``resnet-gui batch`` over the hymenoptera val folder (153 photos,
decoding included), ``--backend torch`` against ``--backend auto`` (onnxruntime here), run in turn
A B A B …, wall-clock seconds of each process, median; the first start of ``auto`` (which exports
the graph into the cache) is timed on its own. The two results files must give the same top-1.

The app's data folder is a temporary one (the imported weights linked in, read-only), so the first
start really exports and nothing is left in the user's cache.

    .venv/bin/python benchmarks/runtime.py [--count 48] [--single 8] [--rounds 3] [--cli-rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from common import HYMENOPTERA, REPO, load_benchmark_model

from resnet_gui.core import paths
from resnet_gui.core.images import load_image

BATCH = 16
TARGET_CLI_SPEEDUP = 1.5
TARGET_INT8_SPEEDUP = 2.0
TARGET_INT8_AGREEMENT = 0.99

Run = Callable[[np.ndarray], np.ndarray]  # a prepared NCHW batch -> logits or probabilities


@dataclass
class Row:
    name: str
    single: float | None = None  # images/s at batch 1
    batched: float | None = None  # images/s at batch 16
    agreement: float | None = None  # share of photos with the baseline's top-1
    note: str = ""


def spread(photos: list[Path], count: int) -> list[Path]:
    step = max(1, len(photos) // count)
    return photos[::step][:count]


def prepare(loaded, photos: list[Path]) -> np.ndarray:
    prep = loaded.preprocessing
    return np.stack([prep.prepare(load_image(path, min_size=prep.resize_size)) for path in photos])


def top1(run: Run, arrays: np.ndarray) -> np.ndarray:
    return np.concatenate([run(arrays[i : i + BATCH]).argmax(axis=1) for i in range(0, len(arrays), BATCH)])


def measure(runs: dict[str, Run], arrays: np.ndarray, args) -> list[Row]:
    """Every runtime in turn, round after round (a change of load moves them together): per round,
    ``args.single`` photos one by one (batch 1) and one pass over all photos at batch 16. The first
    of ``runs`` is the baseline; top-1 agreement is taken from the first round."""
    for run in runs.values():  # warm-up: first calls allocate and pick kernels
        run(arrays[:BATCH])
        run(arrays[:1])
    singles: dict[str, list[float]] = {name: [] for name in runs}
    passes: dict[str, list[float]] = {name: [] for name in runs}
    predicted: dict[str, np.ndarray] = {}
    for round_index in range(args.rounds):
        for name, run in runs.items():
            for offset in range(args.single):
                index = (round_index * args.single + offset) % len(arrays)
                began = time.perf_counter()
                run(arrays[index : index + 1])
                singles[name].append(time.perf_counter() - began)
            began = time.perf_counter()
            predicted.setdefault(name, top1(run, arrays))
            if round_index:  # the first round's pass also gives the top-1; time it the same way
                top1(run, arrays)
            passes[name].append(time.perf_counter() - began)
        print(f"  round {round_index + 1}/{args.rounds} done", flush=True)
    baseline = next(iter(predicted.values()))
    return [
        Row(
            name,
            1 / statistics.median(singles[name]),
            len(arrays) / statistics.median(passes[name]),
            float(np.mean(predicted[name] == baseline)),
        )
        for name in runs
    ]


def torch_run(model: torch.nn.Module, channels_last: bool) -> Run:
    def run(batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(batch)
        if channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return model(tensor).numpy()

    return run


def ort_run(path: Path, threads: int) -> Run:
    from resnet_gui.core.runtime_ort import OrtSession

    session = OrtSession(path, threads)
    return session.probabilities


def compiled_run(model: torch.nn.Module, arrays: np.ndarray) -> tuple[Run | None, str]:
    """``torch.compile`` of the channels_last model, or None and why it cannot run here."""
    try:
        compiled = torch.compile(model)
        run = torch_run(compiled, channels_last=True)  # type: ignore[arg-type]
        began = time.perf_counter()
        run(arrays[:BATCH])  # compiles for batch 16
        run(arrays[:1])  # and for batch 1
        return run, f"compiled in {time.perf_counter() - began:.0f} s"
    except Exception as error:  # inductor needs a C++ compiler and more; any failure skips the row
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
        return None, f"skipped: {type(error).__name__}: {first}"


def model_rows(args) -> tuple[list[Row], str, int]:
    from resnet_gui.core.export.onnx_graph import export_onnx_graph, metadata_of
    from resnet_gui.core.export.quantize import quantize_int8
    from resnet_gui.core.runtime_ort import _usable_cpus

    loaded = load_benchmark_model()
    photos = spread(sorted(HYMENOPTERA.glob("val/*/*.jpg")), args.count)
    if not photos:
        raise SystemExit(f"the hymenoptera photos are missing from {HYMENOPTERA}")
    arrays = prepare(loaded, photos)
    cores = _usable_cpus()
    threads = torch.get_num_threads()
    print(f"model: {loaded.name}; {len(photos)} val photos; {cores} cores; torch threads {threads}")
    runs: dict[str, Run] = {}
    notes: dict[str, str] = {}
    eager = copy.deepcopy(loaded.model).eval()
    runs["eager torch fp32 (baseline)"] = torch_run(eager, False)
    last = copy.deepcopy(loaded.model).eval().to(memory_format=torch.channels_last)
    runs["torch channels_last (--backend torch)"] = torch_run(last, True)
    skipped: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="resnet-gui-bench-") as work:
        fp32 = Path(work) / "fp32.onnx"
        began = time.perf_counter()
        export_onnx_graph(loaded, fp32)
        name = f"onnxruntime fp32, {cores} threads (--backend onnxruntime)"
        runs[name] = ort_run(fp32, cores)
        notes[name] = f"export {time.perf_counter() - began:.0f} s, once"
        if cores > 1:
            runs["onnxruntime fp32, 1 thread"] = ort_run(fp32, 1)
        calibration = prepare(loaded, spread(sorted(HYMENOPTERA.glob("train/*/*.jpg")), args.calibrate))
        int8 = Path(work) / "int8.onnx"
        began = time.perf_counter()
        quantize_int8(fp32, int8, list(calibration), metadata_of(loaded))
        quantized = time.perf_counter() - began
        name = f"onnxruntime INT8, {cores} threads"
        runs[name] = ort_run(int8, cores)
        notes[name] = (
            f"{fp32.stat().st_size / 1e6:.0f} MB -> {int8.stat().st_size / 1e6:.0f} MB; quantized in "
            f"{quantized:.0f} s on {len(calibration)} train photos"
        )
        if args.no_compile:
            skipped.append(Row("torch.compile", note="skipped: --no-compile"))
        else:
            compiled, note = compiled_run(copy.deepcopy(last), arrays)
            if compiled is None:
                skipped.append(Row("torch.compile", note=note))
            else:
                runs["torch.compile (inductor, channels_last)"] = compiled
                notes["torch.compile (inductor, channels_last)"] = note
        rows = measure(runs, arrays, args)
    for row in rows:
        row.note = notes.get(row.name, "")
    rows += skipped
    return rows, loaded.name, len(photos)


def print_model_table(rows: list[Row], count: int) -> None:
    base = rows[0]
    assert base.single and base.batched
    agreement = f"top-1 = baseline ({count} photos)"
    print(f"\n| runtime | batch 1 img/s | × | batch {BATCH} img/s | × | {agreement} | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        if row.single is None or row.batched is None or row.agreement is None:
            print(f"| {row.name} | – | – | – | – | – | {row.note} |")
            continue
        print(
            f"| {row.name} | {row.single:.1f} | {row.single / base.single:.2f} | {row.batched:.1f} | "
            f"{row.batched / base.batched:.2f} | {row.agreement * 100:.1f} % | {row.note} |"
        )
    int8 = next((row for row in rows if "INT8" in row.name and row.batched), None)
    if int8 is not None and int8.batched and int8.agreement is not None:
        speedup = int8.batched / base.batched
        print(
            f"\nINT8 vs eager fp32 at batch {BATCH}: {speedup:.2f}× (target ≥ {TARGET_INT8_SPEEDUP}×: "
            f"{'met' if speedup >= TARGET_INT8_SPEEDUP else 'NOT met'}), top-1 agreement "
            f"{int8.agreement * 100:.1f} % (target ≥ {TARGET_INT8_AGREEMENT * 100:.0f} %: "
            f"{'met' if int8.agreement >= TARGET_INT8_AGREEMENT else 'NOT met'})"
        )


# --- part 2: the whole command ---


def temporary_data_dir(root: Path) -> Path:
    """An empty app data folder with the real imported weights linked in (never written)."""
    folder = root / "appdata"
    folder.mkdir()
    for name in ("weights",):
        if (paths.data_dir() / name).is_dir():
            (folder / name).symlink_to(paths.data_dir() / name, target_is_directory=True)
    return folder


def run_cli(backend: str, out: Path, env: dict[str, str]) -> float:
    folder = HYMENOPTERA / "val"
    command = [sys.executable, "-m", "resnet_gui", "batch", str(folder), "--recursive", "--no-download"]
    command += ["--backend", backend, "--out", str(out), "--overwrite"]
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"resnet-gui batch --backend {backend} failed:\n{done.stderr[-2000:]}")
    return seconds


def top1_of_results(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as stream:
        return {row["path"]: row["label_1"] for row in csv.DictReader(stream)}


def cli_rows(args) -> None:
    count = len(list(HYMENOPTERA.glob("val/*/*.jpg")))
    with tempfile.TemporaryDirectory(prefix="resnet-gui-bench-cli-") as work:
        root = Path(work)
        env = {**os.environ, "RESNET_GUI_DATA_DIR": str(temporary_data_dir(root))}
        first_auto = run_cli("auto", root / "auto.csv", env)  # exports the graph into the cache
        run_cli("torch", root / "torch.csv", env)  # warm-up (file cache), not counted
        times: dict[str, list[float]] = {"torch": [], "auto": []}
        for _ in range(args.cli_rounds):
            for backend in times:
                times[backend].append(run_cli(backend, root / f"{backend}.csv", env))
        torch_top1, auto_top1 = top1_of_results(root / "torch.csv"), top1_of_results(root / "auto.csv")
    same = sum(torch_top1[path] == label for path, label in auto_top1.items())
    torch_s, auto_s = statistics.median(times["torch"]), statistics.median(times["auto"])
    speedup = torch_s / auto_s
    print(
        f"\n`resnet-gui batch {HYMENOPTERA / 'val'} --recursive`, {count} photos, whole process, "
        f"median of {args.cli_rounds} runs each, in turn:\n"
    )
    print("| backend | seconds | images/s | × |")
    print("|---|---:|---:|---:|")
    print(f"| `--backend torch` | {torch_s:.1f} | {count / torch_s:.1f} | 1.00 |")
    print(f"| `--backend auto` (onnxruntime) | {auto_s:.1f} | {count / auto_s:.1f} | {speedup:.2f} |")
    print(f"| `--backend auto`, first start (exports the graph once) | {first_auto:.1f} | – | – |")
    print(
        f"\nSame top-1 on {same}/{len(auto_top1)} photos. Speed-up {speedup:.2f}× "
        f"(target ≥ {TARGET_CLI_SPEEDUP}×: {'met' if speedup >= TARGET_CLI_SPEEDUP else 'NOT met'})."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=48, help="val photos timed and compared (default 48)")
    parser.add_argument("--single", type=int, default=8, help="photos timed one by one (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes at batch 16 (default 3)")
    parser.add_argument(
        "--calibrate", type=int, default=32, help="train photos to calibrate INT8 (default 32)"
    )
    parser.add_argument("--cli-rounds", type=int, default=3, help="runs of each resnet-gui batch (default 3)")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    parser.add_argument("--no-cli", action="store_true", help="leave part 2 (resnet-gui batch) out")
    args = parser.parse_args()
    rows, _, count = model_rows(args)
    print_model_table(rows, count)
    if not args.no_cli:
        cli_rows(args)


if __name__ == "__main__":
    main()
