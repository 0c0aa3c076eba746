"""Curator actions from the collection browser reach the graph: new rows in the append-only
decision and label logs re-materialise `scan_quality` of the batches whose cards they name (new
labels also refit `landmark_classifier` first, in the same run); a change to the landmark decisions
(clusters.csv or the browser's clusters_log.csv) re-materialises `landmark_clusters`."""

import dagster as dg

from vpr_assets.defs.automation import default_sensor_status
from vpr_assets.defs.resources import CatalogResource


@dg.sensor(
    name="curator_actions_sensor",
    description="Watches curation/decisions_log.csv and labels_log.csv (written by `vpr serve`); new rows "
    "request a scan_quality run for each batch they touch (clusters and the index follow by automation); "
    "new labels put landmark_classifier ahead of scan_quality in those runs.",
    asset_selection=dg.AssetSelection.assets("landmark_classifier", "scan_quality", "derived_scans"),
    default_status=default_sensor_status(),
    minimum_interval_seconds=30,
)
def curator_actions_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource):
    import json

    from vpr_assets.core.curation.curator_files import DECISIONS_LOG, LABELS_LOG, read_log

    home = catalog.root
    seen = json.loads(context.cursor) if context.cursor else {}
    new_rows, counts, labelled = [], {}, set()
    for log in (DECISIONS_LOG, LABELS_LOG):
        rows = read_log(home / log)
        counts[log] = len(rows)
        fresh = rows[int(seen.get(log, 0)):]
        new_rows += fresh
        if log == LABELS_LOG:
            labelled = {r["scan_id"] for r in fresh}
    if not new_rows:
        return dg.SkipReason("no new curator actions")
    cat = catalog.catalog
    ids = sorted({r["scan_id"] for r in new_rows})
    batches: dict[str, bool] = {}  # batch -> touched by a new label
    if cat.has("raw_scans"):
        placeholders = ",".join("?" * len(ids))
        found = cat.query(f"SELECT DISTINCT scan_id, batch FROM raw_scans WHERE scan_id IN ({placeholders})", ids)
        for sid, b in zip(found.scan_id, found.batch):
            batches[b] = batches.get(b, False) or sid in labelled
    tag = f"{counts[DECISIONS_LOG]}-{counts[LABELS_LOG]}"
    curation = [dg.AssetKey("scan_quality"), dg.AssetKey("derived_scans")]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=b, run_key=f"curator-{tag}-{b}",
                                    asset_selection=([dg.AssetKey("landmark_classifier")] if by_label else []) + curation,
                                    tags={"vpr/curator_actions": str(len(new_rows))})
                      for b, by_label in sorted(batches.items())],
        cursor=json.dumps(counts),
    )


@dg.sensor(
    name="landmark_decisions_sensor",
    description="Watches curation/clusters.csv and clusters_log.csv (rename, merge, reject, restore, split, move, "
    "locate a landmark; the log is written by `vpr serve`); any change requests one landmark_clusters run, "
    "and what reads the clusters follows by automation.",
    asset_selection=dg.AssetSelection.assets("landmark_clusters"),
    default_status=default_sensor_status(),
    minimum_interval_seconds=30,
)
def landmark_decisions_sensor(context: dg.SensorEvaluationContext, catalog: CatalogResource):
    import hashlib

    from vpr_assets.core.landmarks import CURATION_FILE, CURATION_LOG

    digest = hashlib.sha256()
    for rel in (CURATION_FILE, CURATION_LOG):
        path = catalog.root / rel
        digest.update(rel.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    state = digest.hexdigest()[:16]
    files = [catalog.root / rel for rel in (CURATION_FILE, CURATION_LOG) if (catalog.root / rel).is_file()]
    if state == context.cursor:
        return dg.SkipReason("landmark decisions unchanged")
    if context.cursor is None:  # first tick: run only for decisions newer than the clusters
        latest = context.instance.get_latest_materialization_event(dg.AssetKey("landmark_clusters"))
        if not files or (latest is not None and latest.timestamp >= max(f.stat().st_mtime for f in files)):
            return dg.SensorResult(skip_reason="no landmark decisions newer than landmark_clusters", cursor=state)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"landmark-decisions-{state}",
                                                       tags={"vpr/landmark_decisions": state})],
                           cursor=state)
