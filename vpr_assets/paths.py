"""Where data and tools live: one data root (VPR_HOME), one Dagster instance (DAGSTER_HOME), the
OCR's outside tools (VPR_TESSERACT, VPR_OCR_CACHE), its re-read policy (VPR_OCR_KEEP_OLDER_READS), the embedder's ONNX exports (VPR_EMBEDDER_CACHE)
and the gazetteer cache (VPR_CACHE_DIR).

This module and `definitions.py` are the only places the environment is read; core takes these as
arguments. The data roots honour it so that several isolated stores can live side by side (tests
use temporary ones); without it they fall back to the project's own `vpr_data/` and `dagster_home/`.
"""

from __future__ import annotations

import os
from pathlib import Path

from vpr_assets.core import PROJECT_ROOT


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


def _export_cache(env_var: str, name: str, home: Path | None) -> Path:
    env = os.environ.get(env_var)
    return Path(env).expanduser() if env else (home or vpr_home()) / "cache" / name


def ocr_export_cache(home: Path | None = None) -> Path:
    """Folder of the OCR's ONNX exports: `$VPR_OCR_CACHE`, else `<data root>/cache/ocr`."""
    return _export_cache("VPR_OCR_CACHE", "ocr", home)


def embedder_export_cache(home: Path | None = None) -> Path:
    """Folder of the image embedder's ONNX exports (one file per model weights): `$VPR_EMBEDDER_CACHE`,
    else `<data root>/cache/embedder`."""
    return _export_cache("VPR_EMBEDDER_CACHE", "embedder", home)


def tesseract_command() -> str:
    """The second OCR engine's command: `$VPR_TESSERACT` (a path or a name on PATH), else core's default."""
    from vpr_assets.core.text.ocr import OcrTools

    return os.environ.get("VPR_TESSERACT") or OcrTools.tesseract


def ocr_keep_older_reads() -> bool:
    """`$VPR_OCR_KEEP_OLDER_READS` (1/true/yes): re-running a batch keeps cards read by older OCR settings."""
    value = os.environ.get("VPR_OCR_KEEP_OLDER_READS", "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"VPR_OCR_KEEP_OLDER_READS={value!r}: use 1/true/yes or 0/false/no")


def ocr_tools(home: Path | None = None):
    """The OCR's outside tools for this process (core.text.ocr.OcrTools)."""
    from vpr_assets.core.text.ocr import OcrTools

    return OcrTools(tesseract_command(), ocr_export_cache(home))


def gazetteer_cache() -> Path | None:
    """`$VPR_CACHE_DIR` when set (None: the gazetteer's default, this user's cache)."""
    env = os.environ.get("VPR_CACHE_DIR")
    return Path(env).expanduser() if env else None


def inbox_dir(home: Path | None = None) -> Path:
    """Batches of scans arrive here, one folder per batch; files are never modified."""
    d = (home or vpr_home()) / "inbox"
    d.mkdir(parents=True, exist_ok=True)
    return d
