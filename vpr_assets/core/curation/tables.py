"""The curation tables: `scan_quality` and `derived_scans` rows made into Arrow tables (schemas in storage.schemas).

`finalise_rows` is where a scan's label is decided (measures, landmark score, curator labels and
decisions); `apply_duplicates` then adds its duplicate group and status.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from vpr_assets.core.curation.curator_files import Decisions
from vpr_assets.storage.schemas import DERIVED_SCANS_SCHEMA, FEATURE_COLUMNS, SCAN_QUALITY_SCHEMA  # noqa: F401

if TYPE_CHECKING:  # assessment.py builds on these schemas; only the type is needed here
    from vpr_assets.core.curation.assessment import Assessed





def finalise_rows(
    assessed: list[Assessed],
    scores: np.ndarray,
    scorer: str,
    curator_labels: dict[str, str],
    decisions: Decisions,
    no_landmark_below: float,
) -> list[dict]:
    """Add landmark scores, curator labels and decisions, and the label (before duplicates)."""
    rows = []
    for a, score in zip(assessed, scores):
        r = dict(a.row)
        r["reasons"] = list(r["reasons"])
        sid = r["scan_id"]
        r["landmark_score"] = float(score) if score == score else None
        r["landmark_scorer"] = scorer if score == score else None
        lab = curator_labels.get(sid)
        r["curator_label"] = lab
        if lab == "non_landmark":
            r["reasons"].append("no_landmark")
        elif lab == "low_interest":
            r["reasons"].append("low_interest")
        elif lab is None and scorer == "classifier" and score == score and score < no_landmark_below \
                and not r["is_postcard_back"] and not r["multiple_cards"]:
            r["reasons"].append("no_landmark")
        decision = decisions.decision_of(sid)
        r["curator_decision"] = decision
        if decision == "reject":
            r["reasons"].append("curator_reject")
        r["label"] = "good" if decision == "keep" or not r["reasons"] else "bad"
        rows.append(r)
    return rows


def apply_duplicates(rows: list[dict], dups: pd.DataFrame) -> list[dict]:
    by_id = dups.set_index("scan_id").to_dict("index") if len(dups) else {}
    out = []
    for r in rows:
        d = by_id.get(r["scan_id"], {})
        r = {**r, "duplicate_of": _str_or_none(d.get("duplicate_of")), "group_id": _str_or_none(d.get("group_id")) or r["scan_id"],
             "group_size": int(d.get("group_size", 1) or 1), "is_representative": bool(d.get("is_representative", False)),
             "duplicate_evidence": _str_or_none(d.get("duplicate_evidence")),
             "duplicate_hash_distance": _int_or_none(d.get("duplicate_hash_distance")),
             "duplicate_cosine": _float_or_none(d.get("duplicate_cosine"))}
        r["status"] = "rejected" if r["label"] == "bad" else "duplicate" if r["duplicate_of"] else "keep"
        r["is_representative"] = r["is_representative"] and r["status"] == "keep"  # a group of rejects has none
        out.append(r)
    return out


def _timestamp_or_none(v):
    return None if v is None or pd.isna(v) else pd.Timestamp(v).to_pydatetime()


def _str_or_none(v):
    return v if isinstance(v, str) else None


def _int_or_none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


def _float_or_none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def quality_table(rows: list[dict]) -> pa.Table:
    clean = []
    for r in rows:
        c = {k: r.get(k) for k in SCAN_QUALITY_SCHEMA.names}
        for k in ("back_score", "quality_score", *FEATURE_COLUMNS):
            c[k] = _float_or_none(c[k])
        clean.append(c)
    return pa.Table.from_pylist(clean, schema=SCAN_QUALITY_SCHEMA)
