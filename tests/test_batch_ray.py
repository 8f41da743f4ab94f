"""``resnet-gui batch --ray``: the same rows, order, summary and failures as the local run, on a
local Ray cluster (loopback, 2 CPUs, started once for the module); a worker killed mid-run, a run
cancelled part way then resumed, the ADDRESS form against a `ray start --head` of the test's own,
and the one sentence when Ray is missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'resnet-gui[distributed]')")

from test_batch import make_corpus

from resnet_gui.cli import main
from resnet_gui.core.batch import BatchRow, classify_folder, path_key, ray_runner, read_rows, scan_inputs
from resnet_gui.core.training.distributed import free_port

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """One local Ray for the module: 2 CPUs, no dashboard; its GCS address (for the ADDRESS form)."""
    import logging

    import ray

    context = ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        _node_ip_address="127.0.0.1",
    )
    yield context.address_info["gcs_address"]
    ray.shutdown()


def batch(*args: str | Path, weights: Path) -> int:
    return main(["batch", *map(str, args), "--weights", str(weights), "--batch-size", "4", "--top-k", "2"])


def summary_lines(text: str) -> list[str]:
    """The end-of-run lines that do not depend on timing (the first line holds the speed)."""
    lines = [line for line in text.splitlines() if line and not line.startswith("Results:")]
    return [line.split(" in ")[0] if line.startswith("Classified") else line for line in lines]


@pytest.fixture()
def corpus(tmp_path: Path) -> Iterator[Path]:
    """Good and bad files of every kind (tests/test_batch.py), a decompression bomb at this limit."""
    from resnet_gui.core.images import get_max_image_pixels, set_max_image_pixels

    folder = tmp_path / "corpus"
    _, unreadable = make_corpus(folder)
    previous = get_max_image_pixels()
    set_max_image_pixels(20_000)  # bomb.png is refused: the limit must reach the decoding tasks
    yield folder
    set_max_image_pixels(previous)
    unreadable.chmod(0o644)


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """18 small JPEGs (several batches of 4) and one truncated file among them."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for index in range(18):
        array = rng.integers(0, 255, (40 + index, 60, 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / f"p{index:02d}.jpg", quality=90)
    whole = (folder / "p03.jpg").read_bytes()
    (folder / "p07.jpg").write_bytes(whole[: len(whole) // 2])
    return folder


def test_rows_summary_and_sort_plan_equal_the_local_run(
    ray_cluster: str, corpus: Path, tiny_weights_file: Path, tmp_path: Path, capsys
) -> None:
    local, distributed = tmp_path / "local.csv", tmp_path / "ray.csv"
    sort = ("--sort-into", tmp_path / "sorted", "--dry-run")
    assert batch(corpus, "-r", "--out", local, *sort, weights=tiny_weights_file) == 0
    local_out = capsys.readouterr()
    ray = ("--ray", "--actors", "2")  # two models: blocks may come back out of order
    assert batch(corpus, "-r", "--out", distributed, *sort, *ray, weights=tiny_weights_file) == 0
    ray_out = capsys.readouterr()
    assert "local Ray" in ray_out.err and "Traceback" not in ray_out.err
    rows = read_rows(distributed)
    assert rows == read_rows(local)
    assert any(not row.ok for row in rows) and any(row.ok for row in rows)
    assert any(row.kind is not None and "decompression bomb" in (row.error or "") for row in rows)
    assert distributed.read_bytes() == local.read_bytes()  # same order, same bytes
    assert summary_lines(ray_out.out) == summary_lines(local_out.out)  # summary and sort plan
    failures = [line for line in ray_out.err.splitlines() if "cannot classify" in line]
    assert failures == [line for line in local_out.err.splitlines() if "cannot classify" in line]


def _local_rows(classifier, paths: list[Path]) -> list[BatchRow]:
    return [
        row for row in classify_folder(classifier, paths, top_k=2, batch_size=4) if isinstance(row, BatchRow)
    ]


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(
    ray_cluster: str, photos: Path, tiny_weights_file: Path, tmp_path: Path
) -> None:
    from resnet_gui.core.runtime import load_classifier

    marker = str(tmp_path / "killed-once")

    class DiesOnce(ray_runner.ClassifyActor):
        """Kills its own process on its 2nd batch, once (the marker file says it happened)."""

        calls = 0

        def __call__(self, batch):  # type: ignore[no-untyped-def]
            DiesOnce.calls += 1
            if DiesOnce.calls == 2 and not os.path.exists(marker):
                Path(marker).touch()
                os._exit(1)
            return ray_runner.ClassifyActor.__call__(self, batch)

    paths = scan_inputs([photos])
    classifier = load_classifier(None, weights_file=tiny_weights_file, backend="auto")
    source = ray_runner.ModelSource.resolved(None, tiny_weights_file)
    with ray_runner.connect("local") as cluster:
        items = list(
            ray_runner.classify_on_ray(
                cluster, source, classifier, paths, top_k=2, batch_size=4, actors=1, actor_class=DiesOnce
            )
        )
    assert Path(marker).exists(), "the actor was never killed: the test proved nothing"
    rows = [item for item in items if isinstance(item, BatchRow)]
    assert rows == _local_rows(classifier, paths)  # none lost, none doubled, the local order
    assert items[-1].done == len(paths) and not items[-1].cancelled  # type: ignore[union-attr]


def test_cancelled_then_torn_run_resumes_without_loss_or_double(
    ray_cluster: str, photos: Path, tiny_weights_file: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """Ctrl+C after the first block came back (130, rows kept), a crash's torn last line, then --resume."""
    out, reference = tmp_path / "results.jsonl", tmp_path / "local.jsonl"
    assert batch(photos, "--out", reference, weights=tiny_weights_file) == 0
    real = ray_runner.rows_from_columns
    blocks = []

    def interrupted_on_second_block(*args, **kwargs):  # type: ignore[no-untyped-def]
        blocks.append(1)
        if len(blocks) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ray_runner, "rows_from_columns", interrupted_on_second_block)
    assert batch(photos, "--out", out, "--ray", weights=tiny_weights_file) == 130
    monkeypatch.setattr(ray_runner, "rows_from_columns", real)
    kept = read_rows(out)
    assert 0 < len(kept) < len(read_rows(reference))
    with open(out, "ab") as handle:  # what a kill during a write leaves
        handle.write(b'{"path": "' + os.fsencode(photos / "p17.jpg")[:10])
    capsys.readouterr()
    assert batch(photos, "--out", out, "--resume", "--ray", weights=tiny_weights_file) == 0
    captured = capsys.readouterr()
    assert f"Skipped {len(kept)} files already" in captured.out
    rows = read_rows(out)
    assert len({path_key(row.path) for row in rows}) == len(rows)  # nothing doubled
    assert rows == read_rows(reference)  # nothing lost, same order (resume keeps the scan order)


def _stop_session(process: subprocess.Popen[bytes]) -> None:
    """Stop the `ray start` of this test and everything of its session (never another's Ray)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_address_form_against_ray_start_head(
    photos: Path, tiny_weights_file: Path, tmp_path: Path, test_data_folder: Path
) -> None:
    """A cluster started with `ray start --head` on 127.0.0.1, joined with --ray 127.0.0.1:PORT; then a
    driver SIGKILLed mid-run against it, and --resume."""
    ray_exe = Path(sys.executable).with_name("ray")
    if not ray_exe.exists():
        pytest.skip(f"no `ray` command next to {sys.executable}")
    port = free_port()
    temp = tempfile.mkdtemp(prefix="rg-ray-")  # short: Ray's socket paths must stay under ~107 bytes
    # Ray's token authentication is off for this loopback-only cluster (the client would need the
    # head's token otherwise); no RAY_ADDRESS of the module's cluster either.
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env["RAY_AUTH_MODE"] = "disabled"
    head = subprocess.Popen(
        [str(ray_exe), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        out, local = tmp_path / "ray.csv", tmp_path / "local.csv"
        command = [
            sys.executable, "-m", "resnet_gui", "batch", str(photos),
            "--weights", str(tiny_weights_file), "--batch-size", "4", "--top-k", "2",
        ]  # fmt: skip
        child_env = {**env, "OMP_NUM_THREADS": "1"}
        assert main([*command[3:], "--out", str(local)]) == 0  # the local run, in this process
        deadline = time.monotonic() + 60
        while True:  # the head takes a few seconds to listen
            result = subprocess.run(
                [*command, "--out", str(out), "--overwrite", "--ray", f"127.0.0.1:{port}"],
                env=child_env, capture_output=True, text=True,
            )  # fmt: skip
            if result.returncode == 0 or time.monotonic() > deadline or head.poll() is not None:
                break
            time.sleep(2)
        assert result.returncode == 0, result.stderr
        assert f"the Ray cluster at 127.0.0.1:{port} (1 CPUs)" in result.stderr
        assert read_rows(out) == read_rows(local)
        assert out.read_bytes() == local.read_bytes()

        # The driver SIGKILLed (no handler runs, no file is closed) as its second block comes back,
        # then --resume: nothing lost, nothing doubled. The kill is in the driver's own code, so it
        # always falls after the first block's rows were written.
        killed_out = tmp_path / "killed.csv"
        arguments = [*command[3:], "--out", str(killed_out), "--ray", f"127.0.0.1:{port}"]
        killer = (
            "import os, signal, sys\n"
            "from resnet_gui.core.batch import ray_runner\n"
            "real, seen = ray_runner.rows_from_columns, []\n"
            "def rows(*a, **k):\n"
            "    seen.append(1)\n"
            "    if len(seen) == 2: os.kill(os.getpid(), signal.SIGKILL)\n"
            "    return real(*a, **k)\n"
            "ray_runner.rows_from_columns = rows\n"
            "from resnet_gui.cli import main\n"
            f"sys.exit(main({arguments!r}))\n"
        )
        killed = subprocess.run(
            [sys.executable, "-c", killer], env=child_env, capture_output=True, text=True, timeout=240
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        kept = read_rows(killed_out)
        assert 0 < len(kept) < len(read_rows(local))
        resumed = subprocess.run(
            [*command, "--out", str(killed_out), "--resume", "--ray", f"127.0.0.1:{port}"],
            env=child_env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        assert f"Skipped {len(kept)} files already" in resumed.stdout + resumed.stderr
        assert read_rows(killed_out) == read_rows(local)
    finally:
        _stop_session(head)
        shutil.rmtree(temp, ignore_errors=True)


def test_missing_ray_is_one_sentence(photos: Path, tiny_weights_file: Path, monkeypatch, capsys) -> None:
    for name in ("ray", "ray.data"):
        monkeypatch.setitem(sys.modules, name, None)  # `import ray` now raises ImportError
    code = batch(photos, "--ray", weights=tiny_weights_file)
    err = capsys.readouterr().err
    assert code == ray_runner.RayUnavailableError.exit_code != 0
    assert err.count("\n") == 1 and "pip install 'resnet-gui[distributed]'" in err and "Traceback" not in err


def test_without_ray_flag_ray_is_never_imported(
    photos: Path, tiny_weights_file: Path, tmp_path: Path
) -> None:
    script = (
        "import sys\n"
        "from resnet_gui.cli import main\n"
        f"code = main(['batch', {str(photos)!r}, '--weights', {str(tiny_weights_file)!r}, "
        f"'--out', {str(tmp_path / 'out.csv')!r}])\n"
        "assert code == 0, code\n"
        "print(sorted(name for name in sys.modules if name == 'ray' or name.startswith('ray.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert len(read_rows(tmp_path / "out.csv")) == 18


@pytest.mark.parametrize(
    ("extra", "words"),
    [(["--actors", "2"], "--actors goes with --ray"), (["--ray"], "read as the cluster's address")],
)
def test_misplaced_options_are_refused(
    photos: Path, tiny_weights_file: Path, capsys, extra: list[str], words: str
) -> None:
    # `batch --ray FOLDER`: argparse gives FOLDER to --ray; the folder given after it is then the input.
    args = ["batch", *extra, str(photos), str(photos), "--weights", str(tiny_weights_file)]
    assert main(args) != 0
    assert words in capsys.readouterr().err


@pytest.mark.parametrize(
    ("cpus", "gpus", "actors"),
    [(2, 0, 1), (1, 0, 1), (16, 0, 14), (64, 0, 56), (32, 4, 4)],
)
def test_default_actors_one_per_gpu_else_most_cpus(cpus: int, gpus: int, actors: int) -> None:
    cluster = ray_runner.RayCluster("auto", cpus, gpus, started_here=False)
    chosen = ray_runner.default_actors(cluster)
    assert chosen == actors
    # The actors never take every CPU: a decoding task can always run.
    assert chosen * ray_runner.actor_cpus(cluster, chosen) + ray_runner.DECODE_TASK_CPUS <= cpus or gpus


def test_an_address_nothing_listens_on_fails_in_seconds() -> None:
    """Ray would retry it for minutes; the run says why at once."""
    port = free_port()
    with pytest.raises(
        ray_runner.RayBatchError, match=f"Cannot connect to the Ray cluster at '127.0.0.1:{port}'"
    ):
        ray_runner._check_reachable(f"127.0.0.1:{port}")
