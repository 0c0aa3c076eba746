"""The code location's graph says what the code does: declared deps and run limits that apply."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_heavy_work_carries_a_run_tag_the_queue_limits():
    from vpr_assets.definitions import defs

    job = defs.resolve_job_def("train_models")
    assert job.tags.get("vpr/heavy") == "true"
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {"vpr_model", "champion_model"}
    limits = yaml.safe_load((ROOT / "dagster_home" / "dagster.yaml").read_text())["concurrency"]["runs"]
    assert {"key": "vpr/heavy", "limit": 1} in limits["tag_concurrency_limits"]
    # the asset itself is bounded by a pool, which applies however the run was launched
    from vpr_assets.defs.training.assets import vpr_model

    assert vpr_model.op.pool == "torch"
    assert "vpr/heavy" not in vpr_model.op.tags  # an op tag never reaches the run queue


def test_text_embeddings_depends_on_what_it_reads():
    from vpr_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    key = next(k for k in graph.get_all_asset_keys() if k.to_user_string() == "text_embeddings")
    assert {p.to_user_string() for p in graph.get(key).parent_keys} == {"ocr_text", "raw_scans"}


def test_steps_fork_from_a_preloaded_server_by_default():
    """A per-batch chain from the CLI or a sensor must not pay a Python start and imports per step."""
    from vpr_assets.defs.executor import PRELOAD, step_executor

    resolved = step_executor.config_schema.resolve_config({}).value["config"]
    assert resolved["multiprocess"]["start_method"] == {"forkserver": {"preload_modules": PRELOAD}}
    assert "in_process" in step_executor.config_schema.resolve_config({"config": {"mode": "in_process"}}).value["config"]
    from vpr_assets.definitions import defs

    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "step_executor"


def test_run_stages_keep_each_op_whole_and_parents_first():
    """`asset_stages` (how `vpr demo` and scripts run the graph): every asset once, one partitioning
    per stage, every parent in an earlier stage or earlier in the same one, and the assets one op
    writes (scan_quality + derived_scans) in the same stage, so the op runs once per batch."""
    import dagster as dg

    from vpr_assets.definitions import defs
    from vpr_assets.demo import asset_stages

    graph = defs.resolve_asset_graph()
    stages = asset_stages(include_models=True)
    order = [dg.AssetKey.from_user_string(k) for _, keys in stages for k in keys]
    assert len(order) == len(set(order))
    stage_of = {dg.AssetKey.from_user_string(k): i for i, (_, keys) in enumerate(stages) for k in keys}
    for key in order:
        node = graph.get(key)
        assert {stage_of[k] for k in node.assets_def.keys if k in stage_of} == {stage_of[key]}
        for parent in node.parent_keys:
            if parent in stage_of:
                assert order.index(parent) < order.index(key), (parent, key)
    assert stage_of[dg.AssetKey("scan_quality")] == stage_of[dg.AssetKey("derived_scans")]
    assert stage_of[dg.AssetKey("landmark_classifier")] < stage_of[dg.AssetKey("scan_quality")]


def _readme_graph_edges() -> tuple[set[tuple[str, str]], set[str]]:
    """(parent, child) pairs of the README's mermaid asset graph (dotted arrows and the inbox folder
    are not dependencies), and every node it names."""
    import re

    readme = (ROOT / "README.md").read_text()
    block = readme.split("```mermaid", 1)[1].split("```", 1)[0]
    edges, nodes = set(), set()
    for line in block.splitlines()[2:]:
        line = re.sub(r'--\s*"[^"]*"\s*-->', "-->", line)
        line = re.sub(r'-\.\s*"[^"]*"\s*\.->', "-.->", line)
        line = re.sub(r"[\[(]+[^\])]*[\])]+", "", line)  # node shapes and captions: name[(caption)]
        parts = re.split(r"\s*(-->|-\.->)\s*", line.strip())
        groups = [[re.match(r"\s*(\w+)", n).group(1) for n in seg.split("&")] for seg in parts[::2]]
        nodes.update(n for g in groups for n in g)
        for (left, arrow, right) in zip(groups, parts[1::2], groups[1:]):
            if arrow == "-->":
                edges.update((a, b) for a in left for b in right if a != "inbox")
    return edges, nodes - {"inbox"}


def test_the_readme_asset_graph_is_the_code_locations():
    """The diagram a newcomer reads first draws exactly the dependencies Dagster has."""
    from vpr_assets.definitions import defs

    g = defs.resolve_asset_graph()
    real = {(p.to_user_string(), k.to_user_string()) for k in g.get_all_asset_keys() for p in g.get(k).parent_keys}
    drawn, nodes = _readme_graph_edges()
    assert drawn == real, {"drawn, not in the code": sorted(drawn - real), "in the code, not drawn": sorted(real - drawn)}
    assert nodes == {k.to_user_string() for k in g.get_all_asset_keys()}
