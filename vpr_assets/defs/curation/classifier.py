"""`landmark_classifier` (unpartitioned): the curators' landmark / non-landmark labels of the whole
collection -> the classifier `scan_quality` scores every batch with.

Labels come from `$VPR_HOME/curation/labels.csv`, `inbox/<batch>/labels.csv` and the browser's
`curation/labels_log.csv`. The classifier (EfficientNet-Lite0 ImageNet features + logistic
regression, cross-validated) is saved under `$VPR_HOME/models/landmark_classifier/` and logged to
MLflow experiment `vpr_curation`. It learns from labelled raw scans; a label on a crop of a
multi-card scan still decides that crop's row in `scan_quality`, but crops are not training
examples (they are written in the same step as `scan_quality`, which reads this asset: reading
them here would be a cycle). It is refitted only when the resolved labels change (the data
version is their fingerprint): with unchanged labels a run reuses it and records the same data
version, so nothing downstream goes stale (it always materialises: a step that yields nothing
would skip `scan_quality` in the same run). When the labels no longer allow a classifier (one
class left), the saved one is removed and batches fall back to the shipped landmark probe.

Automation: eager on new batches (a batch's own labels.csv arrives with it); the curator-actions
sensor runs it ahead of `scan_quality` in each batch run that new browser labels touch (the torch
pool runs one at a time: the first run fits, the others reuse). A new classifier does not re-curate every
batch by itself (that is a full decode of the collection): Dagster marks `scan_quality` partitions
scored with an older classifier as stale, and a backfill of those partitions brings them up to date.
"""

import dagster as dg

from vpr_assets.core.curation.batch import fit_landmark_classifier
from vpr_assets.core.curation.landmark_probe import shipped_landmark_probe
from vpr_assets.core.curation.landmark_scoring import PRE_LABEL_SCORER, ClassifierInfo
from vpr_assets.defs.resources import CatalogResource

LANDMARK_CLASSIFIER_CODE_VERSION = "landmark-classifier-v1"

PRE_LABEL_VERSION = "landmark-probe"  # data version when no classifier is possible


@dg.asset(
    deps=[dg.AssetDep("raw_scans", partition_mapping=dg.AllPartitionMapping())],
    group_name="curation",
    code_version=LANDMARK_CLASSIFIER_CODE_VERSION,
    kinds={"scikit-learn", "pytorch", "mlflow"},
    automation_condition=dg.AutomationCondition.eager(),
    pool="torch",
    description="Landmark / non-landmark classifier fitted on the curators' labels of the whole collection "
    "(models/landmark_classifier/, MLflow experiment vpr_curation); scan_quality scores each batch with it. "
    "Refitted only when the labels change; removed (shipped landmark probe) when they no longer allow one.",
)
def landmark_classifier(context: dg.AssetExecutionContext, catalog: CatalogResource):
    cat = catalog.catalog
    stage = fit_landmark_classifier(cat, info=context.log.info, warn=context.log.warning)
    clf = stage.classifier
    version = clf.fingerprint if clf.classifier is not None else f"{PRE_LABEL_VERSION}-{shipped_landmark_probe().version}"
    metadata = {
        "scorer": "classifier" if clf.classifier is not None else PRE_LABEL_SCORER,
        "note": clf.note,
        "trained_now": clf.trained_now,
        "curator_labels": len(stage.labels),
        "label_problems": len(stage.label_problems),
        "removed_stale_classifier": stage.removed_stale,
    }
    return dg.MaterializeResult(data_version=dg.DataVersion(version), metadata={**metadata, **classifier_metadata(clf)})


def classifier_metadata(clf: ClassifierInfo, prefix: str = "") -> dict:
    """What describes a fitted classifier (none: {}): training size, class counts, cross-validated
    accuracy, and its MLflow run (`mlflow_run_id`, unprefixed: the key the UI links are made from)."""
    if clf.classifier is None:
        return {}
    out = {f"{prefix}n_train": int(clf.n_train), f"{prefix}cv_folds": int(clf.cv_folds),
           f"{prefix}class_counts": dg.MetadataValue.json({str(k): int(v) for k, v in clf.class_counts.items()})}
    if clf.cv_accuracy is not None and clf.cv_accuracy == clf.cv_accuracy:
        out[f"{prefix}cv_accuracy"] = float(clf.cv_accuracy)
    if clf.mlflow_run_id:
        out["mlflow_run_id"] = clf.mlflow_run_id
    return out
