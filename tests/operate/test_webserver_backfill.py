"""The real webserver and daemon on a temporary DAGSTER_HOME: a partition backfill over two batches
launched through the GraphQL API, then the materialisations and lineage the API reports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests

from tests.badinput import jpeg_bytes, photo
from vpr_assets.defs.ingestion.assets import INGEST_CODE_VERSION
from vpr_assets.storage import Catalog

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
LAUNCH_BACKFILL = """
mutation($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on RunConflict { message }
  }
}"""
BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions runs(limit: 20) { runId status tags { key value } } }
    ... on PythonError { message }
  }
}"""
ASSET = """
query($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      opNames
      dependencyKeys { path }
      dependedByKeys { path }
      partitionKeysByDimension { partitionKeys }
      assetMaterializations(limit: 10) { partition runId tags { key value } }
    }
  }
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gql(url: str, query: str, variables: dict) -> dict:
    r = requests.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=60)
    r.raise_for_status()
    body = r.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_backfill_over_two_batches_through_graphql(vpr_home, dagster_home, tmp_path):
    for b, seeds in (("week-01", range(0, 4)), ("week-02", range(10, 14))):
        d = vpr_home / "inbox" / b
        d.mkdir(parents=True)
        for s in seeds:
            (d / f"card_{s}.jpg").write_bytes(jpeg_bytes(photo(s)))
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", ["week-01", "week-02"])

    port = _free_port()
    env = {**os.environ, "VPR_HOME": str(vpr_home), "DAGSTER_HOME": str(dagster_home), "VPR_AUTOMATION": "off"}
    log = open(tmp_path / "dagster_dev.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("dagster")), "dev", "-w", "workspace.yaml",
                             "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            try:
                if requests.get(f"{url}/server_info", timeout=5).ok:
                    data = _gql(url, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }", {})
                    if data["repositoriesOrError"].get("nodes"):
                        break
            except requests.RequestException:
                pass
            assert proc.poll() is None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
            time.sleep(2)
        else:
            pytest.fail("dagster dev did not come up: " + (tmp_path / "dagster_dev.log").read_text()[-3000:])

        launched = _gql(url, LAUNCH_BACKFILL, {"backfillParams": {
            "partitionNames": ["week-01", "week-02"],
            "assetSelection": [{"path": ["raw_scans"]}, {"path": ["scan_rejects"]}],
        }})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        bid = launched["backfillId"]

        deadline = time.time() + 420
        status = None
        while time.time() < deadline:
            status = _gql(url, BACKFILL_STATUS, {"id": bid})["partitionBackfillOrError"]
            runs = status.get("runs") or []
            done = status["status"] not in ("REQUESTED", "CANCELING", "FAILING")
            if done and runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
                break
            time.sleep(3)
        assert status and status["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), status
        runs = status["runs"]
        assert len(runs) == 2 and all(r["status"] == "SUCCESS" for r in runs), runs
        assert {t["value"] for r in runs for t in r["tags"] if t["key"] == "dagster/partition"} == {"week-01", "week-02"}

        node = _gql(url, ASSET, {"key": {"path": ["raw_scans"]}})["assetNodeOrError"]
        mats = node["assetMaterializations"]
        assert {m["partition"] for m in mats} == {"week-01", "week-02"}
        for m in mats:
            tags = {t["key"]: t["value"] for t in m["tags"]}
            assert tags["dagster/code_version"] == INGEST_CODE_VERSION and tags.get("dagster/data_version")
        downstream = {tuple(k["path"]) for k in node["dependedByKeys"]}
        assert {("image_embeddings",), ("ocr_text",), ("scan_quality",)} <= downstream
        emb = _gql(url, ASSET, {"key": {"path": ["image_embeddings"]}})["assetNodeOrError"]
        assert ("raw_scans",) in {tuple(k["path"]) for k in emb["dependencyKeys"]}

        scans = Catalog(vpr_home).read("raw_scans")
        assert len(scans) == 8 and scans.scan_id.is_unique
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
