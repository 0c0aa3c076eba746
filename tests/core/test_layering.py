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
                reads.append(f"{path.relative_to(ROOT)}:{node.lineno}: from vpr_assets.paths import ...")
    assert not reads, reads


def _module_graph() -> dict[str, set[str]]:
    """Which vpr_assets module imports which, counting imports inside functions too (they run
    as soon as the function does), not those under `if TYPE_CHECKING:` (they never run)."""
    import ast

    files = {}
    for path in (ROOT / "vpr_assets").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def targets(module: str, node) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names if a.name in files]
        base = node.module or ""
        if node.level:  # relative: from the module's package, one level up per extra dot
            pkg = module.split(".") if files[module].name == "__init__.py" else module.split(".")[:-1]
            base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names
                if f"{base}.{a.name}" in files or base in files]

    def is_type_checking(node) -> bool:
        return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)

    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        todo = [ast.parse(path.read_text(), filename=str(path))]
        while todo:
            node = todo.pop()
            if is_type_checking(node):
                todo.extend(node.orelse)
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[module].update(t for t in targets(module, node) if t != module)
            todo.extend(ast.iter_child_nodes(node))
    return graph


def test_no_import_cycles():
    """A cycle hidden by an import inside a function still ties two modules together: neither can be
    understood, tested or moved alone. A module is in a cycle when it can reach itself."""
    graph = _module_graph()
    assert len(graph) > 100 and "vpr_assets.core.text.geowords" in graph["vpr_assets.core.text.landmarks"]

    def reachable(start: str) -> set[str]:
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(graph[m])
        return seen

    reach = {m: reachable(m) for m in graph}
    cycles = sorted({tuple(sorted(m2 for m2 in reach[m] if m in reach[m2])) for m in graph if m in reach[m]})
    assert not cycles, cycles


MAX_ASSET_BODY_LINES = 35  # the README's "about 30": read inputs, call core, return MaterializeResult


def test_asset_check_and_sensor_bodies_stay_thin():
    """Business logic lives in core: every decorated asset, multi-asset, check and sensor body in
    vpr_assets/defs is short (docstring not counted). A long body is logic that belongs in core."""
    import ast

    long = []
    for path in sorted((ROOT / "vpr_assets" / "defs").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef):
                continue
            names = {ast.unparse(d.func if isinstance(d, ast.Call) else d).split(".")[-1] for d in node.decorator_list}
            if not names & {"asset", "multi_asset", "asset_check", "multi_asset_check", "sensor", "asset_sensor"}:
                continue
            body = node.body
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]
            lines = body[-1].end_lineno - body[0].lineno + 1
            if lines > MAX_ASSET_BODY_LINES:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, long
