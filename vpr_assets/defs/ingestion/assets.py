"""`raw_scans` and `scan_rejects`: one multi-asset, partitioned by scan batch.

The expensive part (reading, decoding, hashing every file) runs without any lock, so batches
ingest in parallel; the short claim step (which scan_ids other batches already hold) and the two
Parquet writes run under the catalog's writer lock, so two batches with the same file can never
both keep it.
"""


import os

import dagster as dg

from vpr_assets.core.images.decode import DEFAULT_MAX_PIXELS
from vpr_assets.core.ingest import (
    RAW_SCANS_SCHEMA,
    SCAN_REJECTS_SCHEMA,
    ingest_batch,
    list_batch_files,
    store_batch,
)
from vpr_assets.defs.metadata import catalog_views_metadata, column_schema, counts_markdown, data_version_of
from vpr_assets.defs.partitions import scan_batches
from vpr_assets.defs.resources import CatalogResource

INGEST_CODE_VERSION = "ingest-v2"  # v2: scan_rejects.description, stricter descriptions reader


class IngestConfig(dg.Config):
    max_pixels: int = DEFAULT_MAX_PIXELS  # refused from the header, before decoding
    workers: int = max(1, min(4, os.cpu_count() or 1))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "raw_scans",
            description="One row per accepted scan of a batch: content sha256 (scan_id), path under the "
            "data root, size, format, dimensions, colour mode, EXIF orientation, perceptual hashes and "
            "the human-written description. Originals are never modified.",
            group_name="ingestion",
            code_version=INGEST_CODE_VERSION,
            kinds={"parquet", "duckdb"},
        ),
        dg.AssetSpec(
            "scan_rejects",
            description="One row per file of a batch that is not a usable scan, with the reason "
            "(empty_file, not_an_image, truncated, too_many_pixels, duplicate_file, bad_description_row, ...).",
            group_name="ingestion",
            code_version=INGEST_CODE_VERSION,
            kinds={"parquet", "duckdb"},
        ),
    ],
    partitions_def=scan_batches,
    # Subsettable, so `--select '*scan_quality'` works; but both tables are always written: each file
    # of the batch lands in exactly one of them (the blocking check every_file_accounted_for), and
    # writing one without the other would leave files unaccounted for. Only selected ones are reported.
    can_subset=True,
)
def ingest_scans(context: dg.AssetExecutionContext, config: IngestConfig, catalog: CatalogResource):
    """Read every file of `inbox/<batch>/` into raw_scans or scan_rejects (none in neither)."""
    batch = context.partition_key
    batch_dir = catalog.inbox / batch
    if not batch_dir.is_dir():
        raise dg.Failure(
            description=f"batch folder {batch_dir} not found: put scans in $VPR_HOME/inbox/{batch}/ "
            f"or run `vpr ingest PATH --batch {batch}`",
        )
    n_files = len(list_batch_files(batch_dir))
    context.log.info(f"batch {batch!r}: {n_files} files in {batch_dir}")
    step = max(1, n_files // 10)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            context.log.info(f"ingest {batch}: {done}/{total} files")

    result = ingest_batch(batch_dir, batch, catalog.root, max_pixels=config.max_pixels, workers=config.workers,
                          progress=progress)
    cat = catalog.catalog
    result = store_batch(cat, batch, result)
    scans_df, rejects_df = result.scans_table().to_pandas(), result.rejects_table().to_pandas()
    context.log.info(f"batch {batch!r}: {len(scans_df)} scans, {len(rejects_df)} rejects")
    views_md = catalog_views_metadata(context, cat)
    selected = {k.to_user_string() for k in context.selected_asset_keys}
    if "raw_scans" in selected:
        yield _raw_scans_result(scans_df, n_files, len(rejects_df), views_md, cat.partition_path("raw_scans", batch))
    if "scan_rejects" in selected:
        yield _rejects_result(rejects_df, views_md, cat.partition_path("scan_rejects", batch))


def _raw_scans_result(scans_df, n_files: int, n_rejects: int, views_md: dict, parquet) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        asset_key="raw_scans",
        data_version=data_version_of(scans_df["scan_id"].astype(str) + "|" + scans_df["description"].fillna("")),
        metadata={
            **views_md,
            "dagster/row_count": len(scans_df),
            "dagster/column_schema": column_schema(RAW_SCANS_SCHEMA),
            "files_in_batch": n_files,
            "formats": counts_markdown(scans_df["format"], "format"),
            "colour_modes": counts_markdown(scans_df["mode"], "mode"),
            "with_description": int(scans_df["description"].notna().sum()),
            "rejects": n_rejects,
            "parquet": dg.MetadataValue.path(str(parquet)),
        },
    )


def _rejects_result(rejects_df, views_md: dict, parquet) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        asset_key="scan_rejects",
        data_version=data_version_of(rejects_df["path"].astype(str) + "|" + rejects_df["reason"].astype(str)),
        metadata={
            **views_md,
            "dagster/row_count": len(rejects_df),
            "dagster/column_schema": column_schema(SCAN_REJECTS_SCHEMA),
            "reasons": counts_markdown(rejects_df["reason"], "reason"),
            "parquet": dg.MetadataValue.path(str(parquet)),
        },
    )
