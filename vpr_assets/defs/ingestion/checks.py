"""Ingestion checks: nothing lost, nothing twice."""


import dagster as dg

from vpr_assets.core.ingest import canonical_relpath, list_batch_files
from vpr_assets.defs.resources import CatalogResource


@dg.asset_check(asset="raw_scans", blocking=True, description="Every file of the batch is in raw_scans or scan_rejects.",
                additional_deps=["scan_rejects"])
def every_file_accounted_for(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
    batch = context.partition_key if context.has_partition_key else None
    cat = catalog.catalog
    batches = [batch] if batch else cat.partitions("raw_scans")
    missing: list[str] = []
    for b in batches:
        batch_dir = catalog.inbox / b
        expected = {canonical_relpath(p, catalog.root) for p in list_batch_files(batch_dir)} if batch_dir.exists() else set()
        seen = set(cat.read("raw_scans", b, columns=["path"])["path"]) if cat.has("raw_scans", b) else set()
        seen |= set(cat.read("scan_rejects", b, columns=["path"])["path"]) if cat.has("scan_rejects", b) else set()
        missing += sorted(expected - seen)
    return dg.AssetCheckResult(passed=not missing, metadata={"missing_files": len(missing),
                                                             "examples": dg.MetadataValue.json(missing[:20])})


@dg.asset_check(asset="raw_scans", blocking=True, description="scan_id is unique across all batches.")
def scan_id_unique(catalog: CatalogResource) -> dg.AssetCheckResult:
    cat = catalog.catalog
    if not cat.has("raw_scans"):
        return dg.AssetCheckResult(passed=True, metadata={"duplicates": 0})
    dup = cat.query("SELECT scan_id, count(*) AS n FROM raw_scans GROUP BY scan_id HAVING n > 1")
    return dg.AssetCheckResult(passed=dup.empty, metadata={"duplicates": len(dup),
                                                           "examples": dg.MetadataValue.json(dup.head(10).to_dict("records"))})


ingestion_checks = [every_file_accounted_for, scan_id_unique]
