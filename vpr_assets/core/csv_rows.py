"""Hand-edited CSV/TSV files (curator decisions, labels, cluster actions, manifests): one reading
policy, and one pydantic row model per file format.

Why one policy: these files come from spreadsheets and text editors, so each reader used to guess
on its own (BOM or not, header case, stray spaces). Here: UTF-8 with or without a BOM, header names
matched without case or surrounding spaces, every cell stripped, and a bad row becomes a problem
naming its line while the rest of the file is read. An unreadable file or a header without the
required columns is one problem, never an exception, so one typo never blocks a batch.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Iterable, Mapping, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

Row = TypeVar("Row", bound=BaseModel)


class CsvRow(BaseModel):
    """Base of the row models: unknown columns are ignored, cells arrive stripped."""

    model_config = ConfigDict(extra="ignore", frozen=True)


@dataclass
class CsvRows(Generic[Row]):
    rows: list[tuple[int, Row]] = field(default_factory=list)  # (line number, row), file order
    problems: list[str] = field(default_factory=list)
    header: list[str] | None = None  # None: no such file, or unreadable, or empty
    header_ok: bool = False

    def __iter__(self):
        return iter(self.rows)


def _reason(exc: ValidationError) -> str:
    """The first error of a row, as a curator would read it (without pydantic's URL and prefix)."""
    err = exc.errors()[0]
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {msg}" if loc and loc not in msg else msg


def read_rows(path: str | Path, model: type[Row], required: Iterable[str] | Iterable[Iterable[str]] = (),
              delimiter: str = ",") -> CsvRows[Row]:
    """Rows of `path` validated by `model`. `required`: column names that must all be in the
    header, or a list of alternatives (each a set of names; one must be fully present).

    A missing file gives no rows and no problem (curator files are optional)."""
    path = Path(path)
    out: CsvRows[Row] = CsvRows()
    if not path.exists():
        return out
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(f"{path.name}: unreadable ({type(exc).__name__}: {exc})")
        return out
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    out.header = [(f or "").strip().lower() for f in (reader.fieldnames or [])]
    alternatives = _alternatives(required)
    if alternatives and not any(alt <= set(out.header) for alt in alternatives):
        wanted = " or ".join("`" + ",".join(sorted(a)) + "`" for a in alternatives)
        out.problems.append(f"{path.name}: header must have {wanted}, got {reader.fieldnames}")
        return out
    out.header_ok = True
    for raw in reader:
        line_no = reader.line_num  # blank lines are skipped by the reader but still counted here
        cells = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()
                 if k is not None and isinstance(v, (str, type(None)))}
        if not any(cells.values()):
            continue  # a row of empty cells
        try:
            out.rows.append((line_no, model.model_validate(cells)))
        except ValidationError as exc:
            out.problems.append(f"line {line_no}: {_reason(exc)}")
    return out


def _alternatives(required) -> list[set[str]]:
    required = list(required)
    if not required:
        return []
    if all(isinstance(r, str) for r in required):
        return [{r.lower() for r in required}]
    return [{c.lower() for c in alt} for alt in required]


def append_row(path: str | Path, header: Sequence[str], row: Mapping[str, str], lock_timeout_s: float = 30) -> None:
    """Append one row to an append-only CSV log under a cross-process file lock, writing the header
    first when the file is new or empty; the file is never rewritten."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=lock_timeout_s):
        new = not path.exists() or path.stat().st_size == 0
        with open(path, "a", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(header))
            if new:
                w.writeheader()
            w.writerow(dict(row))
            fh.flush()


def curator_name(who) -> str:
    """A curator's name as the logs record it: one line, at most 80 characters, "unknown" when empty."""
    return " ".join(str(who or "").split())[:80] or "unknown"


def log_time() -> str:
    """Now, as the logs record it (UTC, to the second, ISO 8601)."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")
