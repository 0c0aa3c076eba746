"""The layering the README promises: the core imports without Dagster, and without import cycles."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_IMPORT_ALL = r"""
import importlib, pkgutil, sys
sys.modules["dagster"] = None  # any `import dagster` now raises ImportError
import vpr_assets.core as core
names = sorted(m.name for m in pkgutil.walk_packages(core.__path__, "vpr_assets.core."))
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_core_imports_without_dagster():
    out = subprocess.run([sys.executable, "-c", _IMPORT_ALL], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip().splitlines()[-1]) >= 30  # every core module was imported


def test_package_root_does_not_load_the_code_location():
    code = "import sys, vpr_assets, vpr_assets.core.metrics; print('dagster' in sys.modules, 'duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]
