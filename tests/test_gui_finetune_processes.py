"""The wizard's 'Processes' setting (DDP): shown only with several GPUs, and it reaches the run.

No GPU is needed: the device list the wizard is given is what decides (core's
``processes_choice_count``), and the run's launcher is replaced by a stand-in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSpinBox
from screenshots import screenshot_folder
from test_training import make_shapes

from resnet_gui.core.training import TrainResult
from resnet_gui.gui.controller import Controller
from resnet_gui.gui.finetune import BaseModelOption, FinetuneWizard, tasks
from resnet_gui.gui.settings import AppSettings

WAIT_MS = 120_000  # the health check and the base model's timing run as jobs; the machine may be busy


def go_to_settings(qtbot, wizard: FinetuneWizard, folder: Path) -> None:
    wizard.folder_page.path_edit.setText(str(folder))
    wizard.next()
    qtbot.waitUntil(lambda: wizard.health_page.isComplete(), timeout=WAIT_MS)
    wizard.next()
    session = wizard.session
    qtbot.waitUntil(
        lambda: wizard.settings_page.base is not None or bool(session.base_error), timeout=WAIT_MS
    )
    assert not session.base_error, session.base_error


def _wizard(qtbot, tmp_path: Path, weights: Path, devices: tuple[str, ...]) -> Iterator[FinetuneWizard]:
    controller = Controller()
    wizard = FinetuneWizard(
        controller,
        AppSettings(tmp_path / "settings.ini"),
        base_models=[BaseModelOption(str(weights), "Tiny ResNet-18")],
        devices=devices,
    )
    qtbot.addWidget(wizard)
    wizard.show()
    yield wizard
    controller.shutdown()


@pytest.fixture()
def two_gpus(qtbot, tmp_path: Path, isolated_dirs, tiny_weights_file: Path) -> Iterator[FinetuneWizard]:
    yield from _wizard(qtbot, tmp_path, tiny_weights_file, ("cuda:0", "cuda:1", "cpu"))


@pytest.fixture()
def cpu_only(qtbot, tmp_path: Path, isolated_dirs, tiny_weights_file: Path) -> Iterator[FinetuneWizard]:
    yield from _wizard(qtbot, tmp_path, tiny_weights_file, ("cpu",))


def test_processes_are_offered_with_two_gpus_and_reach_the_run(
    qtbot, two_gpus: FinetuneWizard, tmp_path: Path, monkeypatch
) -> None:
    captured: dict[str, object] = {}

    def fake_finetune(context, base, source, split, out, config, stop, resume=False, processes=1):
        captured.update(processes=processes, source=source)
        return None
        yield  # a generator, like the real task

    monkeypatch.setattr(tasks, "finetune", fake_finetune)
    go_to_settings(qtbot, two_gpus, make_shapes(tmp_path / "shapes", {"circle": 8, "square": 8}))
    page = two_gpus.settings_page
    qtbot.mouseClick(page.advanced_toggle, Qt.MouseButton.LeftButton)
    spin = page.processes
    assert isinstance(spin, QSpinBox) and spin.isVisible() and spin.maximum() == 2
    assert page.advanced.layout().labelForField(spin).text() == "Processes"
    spin.setFocus()
    qtbot.keyClick(spin, Qt.Key.Key_Up)
    assert spin.value() == 2
    folder = screenshot_folder()
    folder.mkdir(parents=True, exist_ok=True)
    two_gpus.grab().save(str(folder / "finetune-processes.png"))
    page.out_edit.setText(str(tmp_path / "out" / "shapes.safetensors"))
    page.epochs.setValue(1)
    two_gpus.next()
    qtbot.waitUntil(lambda: "processes" in captured, timeout=60_000)
    assert captured["processes"] == 2


def test_processes_are_not_offered_on_one_device(cpu_only: FinetuneWizard) -> None:
    page = cpu_only.settings_page
    assert page.processes is None
    labels = [page.advanced.layout().itemAt(i).widget() for i in range(page.advanced.layout().count())]
    assert all(getattr(label, "text", lambda: "")() != "Processes" for label in labels)


def test_the_job_runs_on_the_chosen_processes(monkeypatch, tmp_path: Path) -> None:
    from resnet_gui.core.training import distributed

    seen = {}

    def fake_launcher(job, nproc, *, cancel=None):
        seen.update(job=job, nproc=nproc)
        yield TrainResult("finished", None, None, None, None, None, None, None, (), 0.0, 0.0)

    monkeypatch.setattr(distributed, "train_in_processes", fake_launcher)

    class Context:
        def check(self) -> None: ...

    from resnet_gui.core.training import TrainConfig

    config = TrainConfig(mode="full")
    run = tasks.finetune(
        Context(),
        object(),
        "resnet18",
        object(),
        tmp_path / "m.safetensors",
        config,
        threading.Event(),
        False,
        2,
    )
    events = list(run)
    assert seen["nproc"] == 2 and seen["job"].model == "resnet18" and isinstance(events[-1], TrainResult)
