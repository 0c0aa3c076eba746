"""The framework-free core: plain functions and small classes, each testable without Dagster."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent  # the checkout: committed data sets live under data/


def user_cache_dir() -> Path:
    """This user's cache folder for the project (platformdirs: XDG on Linux): where core caches go
    when the caller names no folder (the pipeline passes its data root's, `vpr_assets.paths`)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("vpr_assets"))
