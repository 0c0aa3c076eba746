"""One reading policy for hand-edited CSV files (core/csv_rows.py)."""

from __future__ import annotations

from pydantic import Field

from vpr_assets.core.csv_rows import CsvRow, read_rows
from vpr_assets.core.curation.curator_files import read_decisions
from vpr_assets.core.landmarks import read_cluster_decisions


class Pair(CsvRow):
    scan_id: str = Field(min_length=1)
    value: int


def test_spreadsheet_habits_are_read_and_bad_rows_named(tmp_path):
    p = tmp_path / "pairs.csv"
    # a BOM (Excel), header case and spaces, padded cells, a blank line, an extra column, a bad row
    p.write_bytes("\ufeff Scan_ID ,VALUE,comment\n a , 1 ,x\n\n,2,\nb,two,\nc,3,,extra\n".encode("utf-8"))
    out = read_rows(p, Pair, required=("scan_id", "value"))
    assert out.header_ok and out.header == ["scan_id", "value", "comment"]
    assert [(line, r.scan_id, r.value) for line, r in out] == [(2, "a", 1), (6, "c", 3)]
    assert len(out.problems) == 2
    assert out.problems[0].startswith("line 4:") and "scan_id" in out.problems[0]
    assert out.problems[1].startswith("line 5:") and "value" in out.problems[1]


def test_missing_unreadable_and_wrong_header_files_are_problems_not_errors(tmp_path):
    assert read_rows(tmp_path / "absent.csv", Pair).rows == [] and not read_rows(tmp_path / "absent.csv", Pair).problems
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("scan_id,value\nZ\xfcrich,1\n".encode("latin-1"))
    out = read_rows(latin1, Pair, required=("scan_id", "value"))
    assert out.rows == [] and "unreadable" in out.problems[0]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,what\nx,1\n", encoding="utf-8")
    out = read_rows(wrong, Pair, required=[("scan_id", "value"), ("file", "value")])
    assert not out.header_ok and out.rows == [] and "header must have" in out.problems[0]


def test_every_curator_file_shares_the_policy(tmp_path):
    """The same BOM + header case that used to work in one reader and not another now works in each."""
    bom = "\ufeff"
    (tmp_path / "decisions.csv").write_text(f"{bom}Scan_ID,Decision\nabc,Keep\nabd,not-duplicate:abc\n", encoding="utf-8")
    d = read_decisions(tmp_path / "decisions.csv")
    assert d.keep == {"abc"} and d.not_duplicates == [("abc", "abd")] and not d.problems
    (tmp_path / "clusters.csv").write_text(f"{bom}Action,Scan_ID,Name\nRename,abcdefgh,Tower Bridge\n", encoding="utf-8")
    decisions, problems = read_cluster_decisions(tmp_path / "clusters.csv")
    assert [(x.action, x.scan_id, x.name) for x in decisions] == [("rename", "abcdefgh", "Tower Bridge")] and not problems
