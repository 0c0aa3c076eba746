"""Shared fixtures: isolated data roots and Dagster instances, and the real sample photos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REALSAMPLE = Path(os.environ.get("VPR_REALSAMPLE", PROJECT_ROOT.parent / "shared" / "data" / "realsample"))


@pytest.fixture(scope="session")
def realsample_dir() -> Path:
    """../shared/data/realsample (real landmark photos, distractors, postcards); skip when absent."""
    if not (REALSAMPLE / "MANIFEST.tsv").exists():
        pytest.skip(f"real sample photos not found at {REALSAMPLE}")
    return REALSAMPLE


@pytest.fixture(scope="session")
def realsample_manifest(realsample_dir):
    import pandas as pd

    return pd.read_csv(realsample_dir / "MANIFEST.tsv", sep="\t")


@pytest.fixture
def vpr_home(tmp_path, monkeypatch) -> Path:
    """A fresh, isolated data root (VPR_HOME) for one test."""
    home = tmp_path / "vpr_home"
    home.mkdir()
    monkeypatch.setenv("VPR_HOME", str(home))
    return home


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    """A fresh Dagster instance folder (DAGSTER_HOME) with the project's dagster.yaml."""
    import shutil

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def pytest_terminal_summary(terminalreporter):
    """Say at the end whether the real sample was there: without it, its tests skip and a run is green
    without the project's real-data checks."""
    if (REALSAMPLE / "MANIFEST.tsv").exists():
        terminalreporter.write_line(f"real sample: {REALSAMPLE}")
    else:
        terminalreporter.write_line(f"WARNING: real sample not found at {REALSAMPLE}: the tests that read real "
                                    "photos and postcards were skipped (set VPR_REALSAMPLE or provide ../shared)",
                                    yellow=True, bold=True)


@pytest.fixture(autouse=True, scope="session")
def nothing_logs_into_a_default_mlflow_store():
    """Every MLflow call must name its data root's store (core.tracking.active_store / client). A call
    that does not lands in MLflow's default store in the current folder (./mlflow.db, ./mlruns):
    the session fails if one appears."""
    strays = [Path.cwd() / "mlflow.db", Path.cwd() / "mlruns"]
    before = {p for p in strays if p.exists()}
    yield
    made = [str(p) for p in strays if p.exists() and p not in before]
    assert not made, f"an MLflow call used the default store, not its data root's: {made}"
