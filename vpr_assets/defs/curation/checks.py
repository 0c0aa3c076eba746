"""Curation checks: a sane share of rejects, kept scans are not duplicates, every reject says why.

The last two are blocking: downstream assets (clusters, indexes) must never see a contradictory
or unexplained curation.
"""

import os

import dagster as dg
import pandas as pd

from vpr_assets.defs.resources import CatalogResource

MAX_REJECT_SHARE_ENV = "VPR_MAX_REJECT_SHARE"


def _default_max_reject_share() -> float:
    try:
        return float(os.environ.get(MAX_REJECT_SHARE_ENV, "0.5"))
    except ValueError:
        return 0.5


class RejectShareConfig(dg.Config):
    max_reject_share: float = -1.0  # < 0: $VPR_MAX_REJECT_SHARE, else 0.5


def _rows(context, catalog: CatalogResource, columns: list[str]) -> pd.DataFrame:
    """The checked partition's rows (all partitions when the check runs without one)."""
    cat = catalog.catalog
    batch = context.partition_key if context.has_partition_key else None
    if not cat.has("scan_quality", batch):
        return pd.DataFrame(columns=columns)
    return cat.read("scan_quality", batch, columns=columns)


@dg.asset_check(asset="scan_quality", description="Share of rejected scans (label bad) per batch is within a bound "
                "(config max_reject_share, else $VPR_MAX_REJECT_SHARE, else 0.5): a higher share means a broken "
                "scanner, a wrong batch or a threshold to revisit.")
def reject_share_within_bound(context: dg.AssetCheckExecutionContext, config: RejectShareConfig,
                              catalog: CatalogResource) -> dg.AssetCheckResult:
    bound = config.max_reject_share if config.max_reject_share >= 0 else _default_max_reject_share()
    df = _rows(context, catalog, ["batch", "label"])
    shares = df.assign(bad=df["label"].eq("bad")).groupby("batch")["bad"].mean() if len(df) else pd.Series(dtype=float)
    over = shares[shares > bound]
    return dg.AssetCheckResult(
        passed=over.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"max_reject_share": bound,
                  "worst_share": round(float(shares.max()), 4) if len(shares) else 0.0,
                  "batches_over": dg.MetadataValue.json({str(k): round(float(v), 4) for k, v in over.items()})},
    )


@dg.asset_check(asset="scan_quality", blocking=True, description="No scan is both kept (label good, no duplicate_of) "
                "and marked duplicate; no scan points to itself; a scan_id has one row across all batches.")
def kept_scans_are_not_duplicates(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
    df = _rows(context, catalog, ["scan_id", "label", "status", "duplicate_of"])
    kept = df["label"].eq("good") & df["duplicate_of"].isna()
    bad = df[(kept & df["status"].ne("keep"))
             | (df["status"].eq("keep") & ~kept)
             | (df["status"].eq("duplicate") & df["duplicate_of"].isna())
             | df["duplicate_of"].eq(df["scan_id"])]
    cat = catalog.catalog
    twice = cat.query("SELECT scan_id, count(*) AS n FROM scan_quality GROUP BY 1 HAVING n > 1") \
        if cat.has("scan_quality") else pd.DataFrame(columns=["scan_id", "n"])
    return dg.AssetCheckResult(
        passed=bad.empty and twice.empty,
        metadata={"contradictions": len(bad), "scan_ids_with_several_rows": len(twice),
                  "examples": dg.MetadataValue.json(bad.head(10).astype(str).to_dict("records")
                                                    + twice.head(10).astype(str).to_dict("records"))},
    )


@dg.asset_check(asset="scan_quality", blocking=True, description="Every rejected scan (label bad) has at least one reason.")
def every_reject_has_a_reason(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> dg.AssetCheckResult:
    df = _rows(context, catalog, ["scan_id", "label", "reasons"])
    no_reason = df[df["label"].eq("bad") & df["reasons"].map(lambda r: r is None or len(r) == 0)]
    return dg.AssetCheckResult(
        passed=no_reason.empty,
        metadata={"rejects": int(df["label"].eq("bad").sum()), "rejects_without_reason": len(no_reason),
                  "examples": dg.MetadataValue.json(no_reason["scan_id"].head(10).tolist())},
    )


curation_checks = [reject_share_within_bound, kept_scans_are_not_duplicates, every_reject_has_a_reason]
