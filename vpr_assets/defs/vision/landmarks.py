"""`landmark_clusters`: good, non-duplicate cards grouped into named landmarks."""


import dagster as dg
import pandas as pd
import pyarrow as pa

from vpr_assets.core.active_model import ModelRef
from vpr_assets.core.collection_reads import current_embeddings, kept_scan_ids
from vpr_assets.core.landmarks import CURATION_FILE, ClusterSettings, build_named_clusters, read_cluster_decisions
from vpr_assets.defs.metadata import catalog_views_metadata, data_version_of, table_metadata
from vpr_assets.defs.resources import CatalogResource, ModelRegistryResource
from vpr_assets.storage.schemas import LANDMARK_CLUSTERS_SCHEMA

LANDMARK_CLUSTERS_CODE_VERSION = "landmark-clusters-v1"


class ClusterConfig(dg.Config):
    """`core.landmarks.ClusterSettings`, settable from the launchpad."""

    threshold: float = ClusterSettings.threshold
    pretrained_threshold: float = ClusterSettings.pretrained_threshold
    center: bool = ClusterSettings.center
    min_size: int = ClusterSettings.min_size
    k: int = ClusterSettings.k
    method: str = ClusterSettings.method
    mutual: bool = ClusterSettings.mutual

    def settings(self) -> ClusterSettings:
        return ClusterSettings(**self.model_dump())


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
    geo = cat.read("geo_words") if cat.has("geo_words") else pd.DataFrame(columns=["scan_id", "words", "places"])
    geo = {r.scan_id: (r.places, r.words) for r in geo.drop_duplicates("scan_id").itertuples()}
    decisions, problems = read_cluster_decisions(catalog.root / CURATION_FILE)
    res = build_named_clusters(scan_ids, vecs, geo, decisions, version,
                               ModelRef.parse(version).is_pretrained, config.settings())
    for p in problems + res.problems:
        context.log.warning(f"curation: {p}")
    rows, summary = res.rows, res.summary
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
            "threshold": res.threshold,
            "min_size": config.min_size,
            "curation_decisions_applied": len(res.applied),
            "clusters": dg.MetadataValue.md(table_md if summary else "_no clusters_"),
        },
    )
