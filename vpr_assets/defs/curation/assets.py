"""`scan_quality` and `derived_scans`: one multi-asset, partitioned by scan batch.

What a `scan_quality` row says about a scan (one row per raw scan of the batch, plus one per crop
split out of a multi-card scan, linked by `source_scan_id`):

- `label` good/bad and `reasons` (every reason found): the quality defects of
  vpr_assets/core/curation/quality.py (blurry, too_dark, too_bright, low_contrast, blank,
  too_small, extreme_aspect, large_border), `postcard_back` (the address side of a card: label bad,
  it shows no place), `multiple_cards` (the scan holds several cards: label bad, its crops carry
  on as scans of their own), `no_landmark` / `low_interest` (a curator's label in labels.csv, or
  the trained classifier scoring below `no_landmark_below`; the shipped probe alone never
  rejects: it was not fitted on this collection), `curator_reject`, `decode_failed`.
  A curator's `keep` makes the label good whatever the measures say; the reasons stay listed.
- `duplicate_of`: the representative of the scan's near-duplicate group, or null.
  Candidates are perceptual-hash pairs between this batch and every scan of every other batch
  (raw and derived); a pair whose two scans have image embeddings (the `image_embeddings` table,
  the collection's most common model version) is confirmed only if their cosine reaches
  `min_cosine`, a pair without them is confirmed by the hashes. Blank cards, card backs and
  multi-card scans take no part. Representative rule: if a scan of another batch is already kept
  as the representative of the group (its own row says status keep) it stays so, and this
  batch's copies point to it even when they are better (earlier partitions are never rewritten,
  so each group keeps one kept scan); otherwise the best scan of this batch is the representative
  (curator keep, not curator reject, label good, higher quality_score, then scan_id). Only the
  current partition's rows are written, computed from the other partitions as they are: re-running
  a partition gives the same rows while the rest is unchanged. To prefer a better later copy, a
  curator writes `keep` for it and `reject` for the old one and re-materialises both batches.
- `status`: keep (label good, no duplicate_of) | duplicate (label good, points to its
  representative) | rejected (label bad). Downstream assets use label good and duplicate_of null.
- `landmark_score` (0-1) and `landmark_scorer`: `landmark_probe` (core/curation/landmark_probe.py:
  the ImageNet prior, a probe fitted on real photos and postcards, P(front)) until the `landmark_classifier`
  asset has fitted a classifier on curators' landmark and non-landmark labels, then `classifier`
  (EfficientNet-Lite0 ImageNet features, cross-validated, saved under
  `$VPR_HOME/models/landmark_classifier/`, see defs/curation/classifier.py). A batch only reads it;
  `landmark_classifier_version` in the metadata says which one scored the batch.
  The features come from the ImageNet backbone, not from `image_embeddings`, so a new champion
  embedding model never silently invalidates the classifier.
- The measured features and `quality_score`, the card-back score and cues, `n_cards`. Card backs
  are decided by the learned model of core/curation/card_back_model.py on the same backbone pass
  (`back_score` is its probability, cue `learned_back_model`); the OpenCV heuristic's cues stay
  listed to explain it. `learned_backs: false` returns to the heuristic alone for the back
  decision (the landmark score keeps its P(front) from the learned model).

`derived_scans`: one row per crop (columns of raw_scans + crop_index, box), the crop saved as
`$VPR_HOME/derived/<batch>/<source_scan_id>_crop<k>.jpg` (atomic write; the original untouched);
`scan_id` is the sha256 of the crop file.

Curator files, read by every materialisation and never written (full format and parsing rules in
vpr_assets/core/curation/curator_files.py); a change takes effect when a partition is next materialised:

- `$VPR_HOME/curation/decisions.csv`: `scan_id,decision` with decision `keep` (label good, never a
  duplicate), `reject` (label bad, reason curator_reject, never a representative) or
  `not_duplicate:<other_scan_id>` (the two are never grouped). Problems are logged and counted in
  the metadata (`decision_problems`), never fatal.
- `$VPR_HOME/curation/labels.csv` (and `inbox/<batch>/labels.csv`): `scan_id` or `file`, `label`
  in landmark / non_landmark / low_interest.
"""

import os
from typing import Dict

import dagster as dg
import pandas as pd
from PIL import Image

from vpr_assets.core.curation.batch import CurationResult, CurationSettings, curate_batch
from vpr_assets.core.curation.contact_sheet import contact_sheet_markdown
from vpr_assets.core.curation.duplicates import NearDupConfig
from vpr_assets.core.curation.quality import thresholds_with
from vpr_assets.core.curation.tables import DERIVED_SCANS_SCHEMA, SCAN_QUALITY_SCHEMA
from vpr_assets.defs.curation.classifier import classifier_metadata
from vpr_assets.defs.metadata import catalog_views_metadata, column_schema, counts_markdown, data_version_of
from vpr_assets.defs.partitions import scan_batches
from vpr_assets.defs.resources import CatalogResource
from vpr_assets.paths import embedder_export_cache

SCAN_QUALITY_CODE_VERSION = "scan-quality-v3"  # v2: card backs decided by the learned model; v3: landmark_score by the probe
CONTACT_SHEET_MAX = 24


class ScanQualityConfig(dg.Config):
    quality_thresholds: Dict[str, float] = {}  # overrides of QualityThresholds fields, e.g. {"min_sharpness": 120}
    hash_radius: int = 12  # Hamming bits for near-duplicate candidates
    min_cosine: float = 0.82  # embedding cosine confirming a candidate (measured: copies >= 0.90, distinct <= 0.71)
    no_landmark_below: float = 0.5  # trained classifier only: a lower score adds reason no_landmark
    workers: int = max(1, min(4, os.cpu_count() or 1))
    learned_backs: bool = True  # card backs by the shipped learned model; False: the OpenCV heuristic alone
    backbone_runtime: str = "onnx"  # on a CPU: "onnx" (ONNX Runtime, the same features, ~3x cheaper) or "torch"

    def settings(self) -> CurationSettings:
        try:
            thresholds = thresholds_with(self.quality_thresholds)
        except ValueError as exc:
            raise dg.Failure(description=str(exc)) from exc
        return CurationSettings(thresholds, NearDupConfig(radius=self.hash_radius, min_cosine=self.min_cosine),
                                self.no_landmark_below, self.workers, self.learned_backs, self.backbone_runtime)


def _contact_sheet(root, rows: list[dict], thumbs: dict[str, str]) -> str:
    picked = [r for r in rows if r["label"] == "bad"] + [r for r in rows if r["status"] == "duplicate"]
    images, captions = [], []
    for r in picked:
        rel = thumbs.get(r["scan_id"])
        if not rel or not (root / rel).exists():
            continue
        with Image.open(root / rel) as im:
            images.append(im.convert("RGB"))
        captions.append(",".join(r["reasons"]) if r["label"] == "bad" else f"dup of {r['duplicate_of'][:8]}")
        if len(images) >= CONTACT_SHEET_MAX:
            break
    if not images:
        return "_nothing rejected or set aside in this batch_"
    return contact_sheet_markdown(images, captions, title="rejected and duplicate scans", cell=112, max_items=CONTACT_SHEET_MAX)


def _quality_metadata(res: CurationResult, root, parquet) -> dict:
    df = pd.DataFrame(res.rows, columns=SCAN_QUALITY_SCHEMA.names)
    clf = res.classifier
    metadata = {
        "dagster/row_count": len(df),
        "dagster/column_schema": column_schema(SCAN_QUALITY_SCHEMA),
        "labels": counts_markdown(df["label"], "label"),
        "reasons": counts_markdown(pd.Series([r for row in res.rows for r in row["reasons"]], dtype=object), "reason"),
        "status": counts_markdown(df["status"], "status"),
        "reject_share": round(float((df["label"] == "bad").mean()), 4) if len(df) else 0.0,
        "landmark_scorer": res.scorer,
        "card_back_model": res.back_model,
        "landmark_scorer_note": clf.note,
        "landmark_classifier_version": clf.fingerprint or "none",
        "curator_labels": len(res.labels),
        "label_problems": len(res.label_problems),
        "curator_decisions": res.decisions.rows,
        "decision_problems": len(res.decisions.problems),
        "near_duplicate_pairs_confirmed": res.confirmed_pairs,
        "confirmed_by_embedding": res.confirmed_by_embedding,
        "embedding_model_version": res.embedding_version or "none (hash only)",
        "kept_earlier_representatives": res.duplicates.incumbents_used,
        "crops": len(res.derived),
        "rejected_contact_sheet": dg.MetadataValue.md(_contact_sheet(root, res.rows, res.thumbnails)),
        "parquet": dg.MetadataValue.path(str(parquet)),
    }
    return {**metadata, **classifier_metadata(clf, prefix="landmark_classifier_")}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "scan_quality",
            deps=["raw_scans", "image_embeddings", "landmark_classifier"],
            description="One row per scan of a batch (and per crop of a multi-card scan): label good/bad with "
            "every reason, near duplicate of which representative across all batches, landmark score and "
            "scorer, card-back and multi-card flags, measured features. Curators' decisions.csv always wins.",
            group_name="curation",
            code_version=SCAN_QUALITY_CODE_VERSION,
            kinds={"pytorch", "parquet", "duckdb"},
            # a new classifier marks every batch stale but re-curates none by itself (a full decode of the
            # collection); a backfill of the stale partitions brings them up to date
            automation_condition=dg.AutomationCondition.eager().ignore(dg.AssetSelection.assets("landmark_classifier")),
        ),
        dg.AssetSpec(
            "derived_scans",
            deps=["raw_scans"],
            description="Crops split out of multi-card scans, saved as new files under derived/<batch>/ "
            "(originals untouched): raw_scans columns + source_scan_id, crop_index, box.",
            group_name="curation",
            code_version=SCAN_QUALITY_CODE_VERSION,
            kinds={"parquet", "duckdb"},
            automation_condition=dg.AutomationCondition.eager(),
        ),
    ],
    partitions_def=scan_batches,
    can_subset=True,  # `--select scan_quality` works and writes scan_quality alone
    pool="torch",
)
def curate_scans(context: dg.AssetExecutionContext, config: ScanQualityConfig, catalog: CatalogResource):
    """Assess every scan of the batch, split multi-card scans, score landmarks, group duplicates."""
    batch = context.partition_key
    cat = catalog.catalog
    selected = {k.to_user_string() for k in context.selected_asset_keys}
    try:
        res = curate_batch(cat, batch, config.settings(), info=context.log.info, warn=context.log.warning,
                           tables=tuple(t for t in ("scan_quality", "derived_scans") if t in selected),
                           onnx_cache=embedder_export_cache(cat.home))
    except LookupError as exc:
        raise dg.Failure(description=str(exc)) from exc
    if "scan_quality" in selected:
        yield dg.MaterializeResult(
            asset_key="scan_quality",
            data_version=data_version_of(
                f"{r['scan_id']}|{r['label']}|{','.join(r['reasons'])}|{r['duplicate_of']}|{r['status']}|"
                f"{r['landmark_scorer']}|{(r['landmark_score'] or 0.0):.4f}" for r in res.rows),
            metadata={**_quality_metadata(res, cat.home, cat.partition_path("scan_quality", batch)),
                      **catalog_views_metadata(context, cat)},
        )
    if "derived_scans" in selected:
        derived = res.derived
        yield dg.MaterializeResult(
            asset_key="derived_scans",
            data_version=data_version_of(derived["scan_id"].astype(str) + "|" + derived["source_scan_id"].astype(str)),
            metadata={**catalog_views_metadata(context, cat),
                "dagster/row_count": len(derived),
                "dagster/column_schema": column_schema(DERIVED_SCANS_SCHEMA),
                "multi_card_scans": int(derived["source_scan_id"].nunique()) if len(derived) else 0,
                "parquet": dg.MetadataValue.path(str(cat.partition_path("derived_scans", batch))),
            },
        )
