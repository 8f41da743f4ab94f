"""The lookup of the real data sets, for a clone beside shared/ or anywhere else."""

from __future__ import annotations

import subprocess
from pathlib import Path

import shared_data


def git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


def test_a_clone_elsewhere_finds_the_data_beside_its_origin(tmp_path: Path, monkeypatch) -> None:
    origin = tmp_path / "work" / "main"
    (tmp_path / "work" / "shared" / "data").mkdir(parents=True)
    origin.mkdir()
    git("-C", str(origin), "init", "-q")
    clone = tmp_path / "elsewhere" / "fresh"
    git("clone", "-q", str(origin), str(clone))
    monkeypatch.delenv(shared_data.SHARED_DATA_ENV, raising=False)
    monkeypatch.setattr(shared_data, "REPO", clone)
    assert shared_data.shared_data_dir() == (tmp_path / "work" / "shared" / "data").resolve()
    # Beside the checkout itself comes first; the variable overrides both.
    (tmp_path / "elsewhere" / "shared" / "data").mkdir(parents=True)
    assert shared_data.shared_data_dir() == tmp_path / "elsewhere" / "shared" / "data"
    monkeypatch.setenv(shared_data.SHARED_DATA_ENV, str(tmp_path / "mine"))
    assert shared_data.shared_data_dir() == tmp_path / "mine"


def test_without_any_the_expected_place_is_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(shared_data.SHARED_DATA_ENV, raising=False)
    monkeypatch.setattr(shared_data, "REPO", tmp_path / "lonely")
    (tmp_path / "lonely").mkdir()
    assert shared_data.shared_data_dir() == tmp_path / "shared" / "data"
