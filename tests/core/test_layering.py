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


def test_model_labels_parse_one_way():
    import pytest

    from vpr_assets.core.active_model import ModelRef

    pre = ModelRef.parse("pretrained:lite0_gem512")
    assert pre.is_pretrained and pre.name == "lite0_gem512" and str(pre) == "pretrained:lite0_gem512"
    reg = ModelRef.parse("vpr_landmark_recognizer/12")
    assert not reg.is_pretrained and reg.version == "12" and str(reg) == "vpr_landmark_recognizer/12"
    assert ModelRef.parse("7").label == "vpr_landmark_recognizer/7"  # a bare registry version
    for bad in ("", "pretrained", "vpr_landmark_recognizer/latest", "champion"):
        with pytest.raises(ValueError):
            ModelRef.parse(bad)


def test_core_reads_no_environment_variables():
    """Settings reach core as arguments; the environment is read at the edges (vpr_assets.paths,
    definitions.py, the CLI). Writing a variable a library needs (setdefault) and handing the
    environment on to a subprocess are allowed."""
    import ast

    reads = []
    for path in sorted((ROOT / "vpr_assets" / "core").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            text = ast.unparse(node) if isinstance(node, (ast.Call, ast.Subscript)) else ""
            if isinstance(node, ast.Call) and text.startswith(("os.environ.get(", "os.getenv(", "environ.get(", "getenv(")):
                reads.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:60]}")
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and text.startswith("os.environ["):
                reads.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:60]}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "vpr_assets.paths":
                names = {a.name for a in node.names}
                if names - {"PROJECT_ROOT"}:  # the project folder is a constant, not the environment
                    reads.append(f"{path.relative_to(ROOT)}:{node.lineno}: from vpr_assets.paths import {names}")
    assert not reads, reads
