"""Where data lives: one data root (VPR_HOME) and one Dagster instance (DAGSTER_HOME).

Both honour the environment so that several isolated stores can live side by side (tests use
temporary ones); without it they fall back to the project's own `vpr_data/` and `dagster_home/`.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def vpr_home() -> Path:
    """The data root: catalog, partition files, models, indexes, MLflow store, thumbnails."""
    home = Path(os.environ.get("VPR_HOME") or PROJECT_ROOT / "vpr_data").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def dagster_home() -> Path:
    """The Dagster instance folder (holds dagster.yaml); Dagster wants it absolute."""
    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / "dagster_home").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def ensure_dagster_home_env() -> Path:
    """Set DAGSTER_HOME (absolute) for this process and its children; returns it."""
    home = dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def inbox_dir(home: Path | None = None) -> Path:
    """Batches of scans arrive here, one folder per batch; files are never modified."""
    d = (home or vpr_home()) / "inbox"
    d.mkdir(parents=True, exist_ok=True)
    return d
