"""The curators' own files: decisions (keep / reject / not a duplicate) and labels (landmark /
non_landmark / low_interest). Read on every curation, never written by the pipeline.

Curator files (read, never written, by the pipeline; both optional):

`$VPR_HOME/curation/decisions.csv`, header `scan_id,decision`, one decision per row (a scan may
have several rows, e.g. `keep` and a `not_duplicate:`)::

    scan_id,decision
    3f2a...,keep                    # keep it whatever the measures say (label good, never a duplicate)
    9b41...,reject                  # reject it (label bad, reason curator_reject, never a representative)
    3f2a...,not_duplicate:77c0...   # these two are different cards: never grouped, even through a third

A `keep` and a `reject` of the same scan: the first row wins and the clash is reported. Unknown
decisions and malformed rows are reported, never fatal.

`$VPR_HOME/curation/labels.csv` (and `inbox/<batch>/labels.csv`, whose `file` column names files
of that batch), header `scan_id` or `file`, and `label` in landmark / non_landmark / low_interest.
A global `file` is a path under the data root (`inbox/b1/x.jpg`), `<batch>/<file>`, or a bare file
name when only one scan has it. Labels train the landmark classifier; a curator's non_landmark /
low_interest label also becomes a reject reason for that scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pydantic import Field, field_validator, model_validator

from vpr_assets.core.csv_rows import CsvRow, append_row, curator_name, log_time, read_rows
from vpr_assets.core.curation.landmark_classifier import parse_labels_csv

DECISIONS_FILE = "curation/decisions.csv"

LABELS_FILE = "curation/labels.csv"

# Written by the collection browser (`vpr serve`), append-only, one row per action with who and
# when; read after the hand-edited files, and a later row overrides an earlier decision or label
# (a curator may change their mind; the log keeps every step).
DECISIONS_LOG = "curation/decisions_log.csv"
LABELS_LOG = "curation/labels_log.csv"
LOG_HEADER = {"decisions_log.csv": ("scan_id", "decision", "who", "when"),
              "labels_log.csv": ("scan_id", "label", "who", "when")}
DECISIONS = ("keep", "reject")
LABELS = ("landmark", "non_landmark", "low_interest")


def append_curator_action(home: Path, log: str, scan_id: str, value: str, who: str) -> dict:
    """Append one curator action to `log` (DECISIONS_LOG or LABELS_LOG) under a file lock; the file
    is only ever appended to. Returns the row written."""
    path = Path(home) / log
    header = LOG_HEADER[path.name]
    if not scan_id or any(c in scan_id for c in ",\n\r\"") or len(scan_id) > 128:
        raise ValueError(f"not a scan id: {scan_id[:40]!r}")
    allowed = DECISIONS if header[1] == "decision" else LABELS
    if value not in allowed and not (header[1] == "decision" and value.startswith("not_duplicate:")):
        raise ValueError(f"unknown {header[1]} {value!r}; one of {', '.join(allowed)}")
    row = dict(zip(header, (scan_id, value, curator_name(who), log_time())))
    append_row(path, header, row)
    return row


class LogRow(CsvRow):
    """One row of a browser log (`decisions_log.csv` or `labels_log.csv`)."""

    scan_id: str = Field(min_length=1)
    decision: str = ""
    label: str = ""
    who: str = ""
    when: str = ""


def read_log(path: Path) -> list[dict]:
    """Rows of a curator log, oldest first (malformed rows skipped)."""
    return [row.model_dump() for _, row in read_rows(path, LogRow)]


@dataclass
class Decisions:
    keep: set[str] = field(default_factory=set)
    reject: set[str] = field(default_factory=set)
    not_duplicates: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rows: int = 0
    _pairs: set[tuple[str, str]] = field(default_factory=set, repr=False)  # not_duplicates, for lookups

    def add_not_duplicate(self, a: str, b: str) -> None:
        """Record that a and b are different cards (once, in a canonical order)."""
        pair = (a, b) if a <= b else (b, a)
        if pair not in self._pairs:
            self._pairs.add(pair)
            self.not_duplicates.append(pair)

    def decision_of(self, scan_id: str) -> str | None:
        return "keep" if scan_id in self.keep else "reject" if scan_id in self.reject else None


def read_decisions(path: str | Path) -> Decisions:
    """Parse `decisions.csv` (format in the module docstring), then the browser's decision log beside
    it; bad rows are problems, not errors, and a bad hand-edited file never hides the log."""
    path = Path(path)
    d = Decisions()
    _read_decisions_file(path, d)
    _apply_decision_log(d, path.with_name(Path(DECISIONS_LOG).name))
    return d


class DecisionRow(CsvRow):
    """One row of `decisions.csv`: keep, reject, or not_duplicate:<other scan_id>."""

    scan_id: str = Field(min_length=1)
    decision: str

    @field_validator("decision")
    @classmethod
    def _known(cls, value: str) -> str:
        kind, sep, other = value.partition(":")
        kind = kind.strip().lower().replace("-", "_")
        if kind in DECISIONS and not sep:
            return kind
        if kind == "not_duplicate" and other.strip():
            return f"not_duplicate:{other.strip()}"
        raise ValueError(f"unknown decision {value!r} (expected keep, reject or not_duplicate:<scan_id>)")

    @model_validator(mode="after")
    def _not_itself(self) -> "DecisionRow":
        if self.other == self.scan_id:
            raise ValueError(f"{self.scan_id[:12]} marked not_duplicate of itself")
        return self

    @property
    def kind(self) -> str:
        return self.decision.partition(":")[0]

    @property
    def other(self) -> str:
        return self.decision.partition(":")[2]


def _read_decisions_file(path: Path, d: Decisions) -> None:
    read = read_rows(path, DecisionRow, required=("scan_id", "decision"))
    d.problems += read.problems
    d.rows += len(read.rows)
    for line_no, row in read:
        if row.kind in DECISIONS:
            clash = d.reject if row.kind == "keep" else d.keep
            if row.scan_id in clash:
                d.problems.append(f"line {line_no}: {row.scan_id[:12]} is both keep and reject; kept the first decision")
                continue
            (d.keep if row.kind == "keep" else d.reject).add(row.scan_id)
        else:
            d.add_not_duplicate(row.scan_id, row.other)


def _apply_decision_log(d: Decisions, log: Path) -> None:
    """Browser decisions, in order: the latest keep/reject of a scan wins over earlier ones. Rows are
    read as `decisions.csv`'s (`DecisionRow`); a bad one is a problem naming the log and its line."""
    read = read_rows(log, DecisionRow, required=("scan_id", "decision"))
    d.problems += [f"{log.name}: {p}" for p in read.problems]
    for _, row in read:
        d.rows += 1
        if row.kind in DECISIONS:
            d.keep.discard(row.scan_id)
            d.reject.discard(row.scan_id)
            (d.keep if row.kind == "keep" else d.reject).add(row.scan_id)
        else:
            d.add_not_duplicate(row.scan_id, row.other)


def read_curator_labels(home: Path, scans: pd.DataFrame) -> tuple[dict[str, str], list[str]]:
    """{scan_id: label} from the global and per-batch labels.csv files, and the problems found.

    `scans`: every known scan (scan_id, batch, path, file_name). The global file wins over a
    batch's own file when both label the same scan.
    """
    known = set(scans["scan_id"]) if len(scans) else set()
    by_path = dict(zip(scans["path"], scans["scan_id"])) if len(scans) else {}
    by_batch_file = {(b, f): s for b, f, s in zip(scans["batch"], scans["file_name"], scans["scan_id"])} if len(scans) else {}
    names = scans.groupby("file_name")["scan_id"].agg(list).to_dict() if len(scans) else {}
    labels: dict[str, str] = {}
    problems: list[str] = []

    def resolve(key: str, kind: str, batch: str | None) -> str | None:
        if kind == "scan_id":
            return key if key in known else None
        key = key.replace("\\", "/").lstrip("./")
        if batch is not None:
            return by_batch_file.get((batch, key))
        if key in by_path:
            return by_path[key]
        if "/" in key:
            b, _, f = key.rpartition("/")
            return by_batch_file.get((b.rpartition("/")[2], f))
        hits = names.get(key, [])
        if len(hits) > 1:
            problems.append(f"labels: file {key!r} is ambiguous ({len(hits)} scans have that name); use scan_id")
        return hits[0] if len(hits) == 1 else None

    sources = [(home / LABELS_FILE, None)]
    inbox = home / "inbox"
    if inbox.is_dir():
        sources += [(p / "labels.csv", p.name) for p in sorted(inbox.iterdir()) if (p / "labels.csv").is_file()]
    for path, batch in sources:
        if not path.exists():
            continue
        rows, probs = parse_labels_csv(path)
        where = f"{batch}/labels.csv" if batch else LABELS_FILE
        problems += [f"{where}: {p}" for p in probs]
        for r in rows:
            sid = resolve(r["key"], r["key_kind"], batch)
            if sid is None:
                problems.append(f"{where}: no scan for {r['key_kind']} {r['key'][:40]!r} (not ingested yet?)")
                continue
            if batch is not None and sid in labels:
                continue  # the global file already labels it
            labels[sid] = r["label"]
    for r in read_log(home / LABELS_LOG):  # browser labels: the latest wins
        if r.get("scan_id") in known and r.get("label") in LABELS:
            labels[r["scan_id"]] = r["label"]
    return labels, problems
