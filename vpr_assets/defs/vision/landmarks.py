"""`landmark_clusters`: good, non-duplicate cards grouped into named landmarks."""


import dagster as dg
import pyarrow as pa

from vpr_assets.core.active_model import ModelRef
from vpr_assets.core.collection_reads import clustering_inputs
from vpr_assets.core.landmarks import CURATION_FILE, ClusterSettings, build_named_clusters, read_cluster_decisions
from vpr_assets.defs.metadata import catalog_views_metadata, data_version_of, md_cell, table_metadata
from vpr_assets.defs.resources import CatalogResource, ModelRegistryResource
from vpr_assets.storage.schemas import LANDMARK_CLUSTERS_SCHEMA

LANDMARK_CLUSTERS_CODE_VERSION = "landmark-clusters-v2"  # v2: where each landmark stands (lat, lon, source)


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
    "guarded against chaining), named from their members' geo-words, with curators' decisions (clusters.csv and the browser's "
    "clusters_log.csv) applied; each landmark carries where it stands and who said so.",
)
def landmark_clusters(context: dg.AssetExecutionContext, config: ClusterConfig, catalog: CatalogResource,
                      model_registry: ModelRegistryResource):
    cat = catalog.catalog
    version = model_registry.label()
    scan_ids, vecs, geo, stale = clustering_inputs(cat, version)
    if stale:
        context.log.warning(f"{stale} embedding rows from other model versions ignored (re-embedding pending)")
    context.log.info(f"clustering {len(scan_ids)} cards (model {version})")
    decisions, problems = read_cluster_decisions(catalog.root / CURATION_FILE)
    res = build_named_clusters(scan_ids, vecs, geo, decisions, version,
                               ModelRef.parse(version).is_pretrained, config.settings())
    for p in problems + res.problems:
        context.log.warning(f"curation: {p}")
    cat.write_table("landmark_clusters", pa.Table.from_pylist(res.rows, schema=LANDMARK_CLUSTERS_SCHEMA))
    n_land = sum(1 for s in res.summary if s["status"] == "landmark")
    return dg.MaterializeResult(
        data_version=data_version_of([version] + [_row_key(r) for r in res.rows]),
        metadata={**catalog_views_metadata(context, cat),
            "dagster/row_count": len(res.rows),
            "landmarks": n_land,
            "rejected_clusters": len(res.summary) - n_land,
            "located_by_curator": sum(1 for s in res.summary if s["location"] == "curator"),
            "cards_clustered": len(scan_ids),
            "noise_cards": len(scan_ids) - len(res.rows),
            "model_version": version,
            "threshold": res.threshold,
            "min_size": config.min_size,
            "curation_decisions_applied": len(res.applied),
            "curation_problems": len(problems) + len(res.problems),
            "clusters": _clusters_markdown(res.summary),
        },
    )


def _row_key(r: dict) -> str:
    """What a downstream reader sees of one row: a change of any of it is a new data version."""
    return f"{r['scan_id']}:{r['cluster_id']}:{r['cluster_name']}:{r['status']}:{r['lat']}:{r['lon']}"


def _clusters_markdown(summary: list[dict], limit: int = 50) -> dg.MetadataValue:
    if not summary:
        return dg.MetadataValue.md("_no clusters_")
    lines = ["| id | name | size | status | places | located by |", "|---|---|---|---|---|---|"]
    lines += [f"| {s['cluster_id']} | {md_cell(s['name'])} | {s['size']} | {s['status']} | {md_cell(s['places'])} "
              f"| {s['location'] or '–'} |" for s in summary[:limit]]
    return dg.MetadataValue.md("\n".join(lines))
