"""`landmark_clusters`: good, non-duplicate cards grouped into named landmarks."""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from vpr_assets.core.active_model import ModelRef
from vpr_assets.core.collection_reads import current_embeddings, kept_scan_ids
from vpr_assets.core.landmarks import CURATION_FILE, apply_decisions, name_cluster, read_cluster_decisions
from vpr_assets.defs.metadata import catalog_views_metadata, data_version_of, table_metadata
from vpr_assets.defs.resources import CatalogResource, ModelRegistryResource
from vpr_assets.storage.schemas import LANDMARK_CLUSTERS_SCHEMA

LANDMARK_CLUSTERS_CODE_VERSION = "landmark-clusters-v1"


class ClusterConfig(dg.Config):
    threshold: float = 0.72  # cosine for an edge with trained (ArcFace) embeddings: 0.66-0.8 is the useful range
    pretrained_threshold: float = 0.45  # pretrained GeM vectors, centred: measured on the demo collection
    center: bool = True  # subtract the collection mean first (GeM features are all positive)
    min_size: int = 7
    k: int = 20
    method: str = "components"  # or "louvain"
    mutual: bool = True


@dg.asset(
    metadata=table_metadata('landmark_clusters'),
    deps=["image_embeddings", "scan_quality", "geo_words"],
    group_name="vision",
    code_version=LANDMARK_CLUSTERS_CODE_VERSION,
    kinds={"faiss", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
    description="Landmarks: clusters of good, non-duplicate cards by cosine similarity (mutual k-NN graph, "
    "guarded against chaining), named from their members' geo-words, with curators' decisions applied.",
)
def landmark_clusters(context: dg.AssetExecutionContext, config: ClusterConfig, catalog: CatalogResource,
                      model_registry: ModelRegistryResource):
    from vpr_assets.core.vision.clustering import cluster_embeddings

    cat = catalog.catalog
    version = model_registry.label()
    ids_df, vecs, stale = current_embeddings(cat, version)
    if stale:
        context.log.warning(f"{stale} embedding rows from other model versions ignored (re-embedding pending)")
    keep = kept_scan_ids(cat)
    if keep is not None:
        mask = ids_df.scan_id.isin(keep).to_numpy()
        ids_df, vecs = ids_df[mask].reset_index(drop=True), vecs[mask]
    scan_ids = list(ids_df.scan_id)
    context.log.info(f"clustering {len(scan_ids)} cards (model {version})")
    threshold = config.pretrained_threshold if ModelRef.parse(version).is_pretrained else config.threshold
    x = vecs
    if config.center and len(vecs) > 1:
        x = vecs - vecs.mean(0, keepdims=True)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    result = cluster_embeddings(x, k=config.k, threshold=threshold, min_size=config.min_size,
                                mutual=config.mutual, method=config.method) if len(scan_ids) else None
    labels = [int(x) for x in result.labels] if result is not None else []

    geo = cat.read("geo_words") if cat.has("geo_words") else pd.DataFrame(columns=["scan_id", "words", "places"])
    geo = geo.drop_duplicates("scan_id").set_index("scan_id")
    decisions, problems = read_cluster_decisions(catalog.root / CURATION_FILE)
    labels, names, rejected, report = apply_decisions(scan_ids, labels, {}, decisions)
    for p in problems + report.problems:
        context.log.warning(f"curation: {p}")

    rows = []
    clusters = sorted({l for l in labels if l >= 0})
    summary = []
    for c in clusters:
        members = [s for s, l in zip(scan_ids, labels) if l == c]
        places = [list(geo.at[s, "places"]) if s in geo.index and geo.at[s, "places"] is not None else [] for s in members]
        words = [list(geo.at[s, "words"]) if s in geo.index and geo.at[s, "words"] is not None else [] for s in members]
        auto_name, top_places = name_cluster(places, words)
        name = names.get(c) or auto_name or f"landmark {c}"
        member_vecs = vecs[[scan_ids.index(m) for m in members]]
        centroid = member_vecs.mean(0)
        medoid = members[int(np.argmax(member_vecs @ centroid))]
        status = "rejected" if c in rejected else "landmark"
        summary.append({"cluster_id": c, "name": name, "size": len(members), "status": status,
                        "representative": medoid[:12], "places": ", ".join(p.get("name", "") for p in top_places[:3])})
        for s in members:
            rows.append({"scan_id": s, "cluster_id": c, "cluster_name": name, "cluster_size": len(members),
                         "status": status, "representative_scan_id": medoid, "model_version": version,
                         "places_json": json.dumps(top_places, ensure_ascii=False)})
    schema = LANDMARK_CLUSTERS_SCHEMA
    cat.write_table("landmark_clusters", pa.Table.from_pylist(rows, schema=schema))
    n_land = sum(1 for s in summary if s["status"] == "landmark")
    table_md = "\n".join(["| id | name | size | status | places |", "|---|---|---|---|---|"] +
                         [f"| {s['cluster_id']} | {s['name']} | {s['size']} | {s['status']} | {s['places']} |" for s in summary[:50]])
    return dg.MaterializeResult(
        data_version=data_version_of([version] + [f"{r['scan_id']}:{r['cluster_id']}:{r['cluster_name']}:{r['status']}" for r in rows]),
        metadata={**catalog_views_metadata(context, cat),
            "dagster/row_count": len(rows),
            "landmarks": n_land,
            "rejected_clusters": len(summary) - n_land,
            "cards_clustered": len(scan_ids),
            "noise_cards": len(scan_ids) - len(rows),
            "model_version": version,
            "threshold": threshold,
            "min_size": config.min_size,
            "curation_decisions_applied": len(report.applied),
            "clusters": dg.MetadataValue.md(table_md if summary else "_no clusters_"),
        },
    )
