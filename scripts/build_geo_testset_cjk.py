#!/usr/bin/env python3
"""Build data/geo_testset_cjk/MANIFEST.tsv: a text-only place-resolution test set
of East Asian (Japanese, Chinese) titles with locations from the sources' own
metadata.

Reads two public GitHub repositories from bare git snapshots at pinned commits
(`git show COMMIT:PATH`, no network):

  frogcat/bura-hiroshige        docs/data.txt (Japan Search print list, 日本橋 / 品川)
  hui5/shanghai-heritage-map    public/data/virtual_shanghai_photos_min_zh.json
                                public/data/645_release/virtual_shanghai_buildings.geojson
                                public/data/645_release/table_Place_1928.geojson

See data/geo_testset_cjk/SOURCES.md for what each source is and how it is read.

    python scripts/build_geo_testset_cjk.py            # write the manifest
    python scripts/build_geo_testset_cjk.py --check    # rebuild in memory, compare
    python scripts/build_geo_testset_cjk.py --mirror DIR

Standard library only.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from vpr_assets.storage.atomic import atomic_write_bytes  # noqa: E402  (stdlib only)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_geo_testset import Git  # noqa: E402  (one git reader for every test set)

OUT_DIR = os.path.join(ROOT, "data", "geo_testset_cjk")
MANIFEST = os.path.join(OUT_DIR, "MANIFEST.tsv")

BURA = ("frogcat/bura-hiroshige", "5e1885b7813b2975dd8151568fab2fa6bc09cc96")
SHHM = ("hui5/shanghai-heritage-map", "dbcbbb5cde2abd923b3836aff861bc9f444dab3e")

BURA_DATA = "docs/data.txt"
VS_PHOTOS = "public/data/virtual_shanghai_photos_min_zh.json"
VS_BUILDINGS = "public/data/645_release/virtual_shanghai_buildings.geojson"
PLACE_1928 = "public/data/645_release/table_Place_1928.geojson"

BURA_LICENCE = ("none stated: no LICENSE file, README gives none; titles are the print titles "
                "of Japan Search records (ARC nishikie DB, ColBase), images stay with their holders")
SHHM_LICENCE = ("none stated: no LICENSE file, README gives none; README credits Virtual Shanghai "
                "(virtualshanghai.net) for photos and buildings and the ditushu.com atlas "
                "(上海历史建筑数字地图集, book 645) for the 1928 places")

# Split by collection, fixed before any result was looked at (SOURCES.md, "Split").
SPLIT = {
    "bura_nihonbashi": "dev",
    "sh_vs_photos": "dev",
    "bura_shinagawa": "test",
    "sh_map1928": "test",
}
BURA_PLACE_COLLECTION = {"日本橋": "bura_nihonbashi", "品川": "bura_shinagawa"}

COLUMNS = ["id", "split", "collection", "lang", "source_repo", "source_commit", "metadata_path",
           "source_record", "title", "description", "location", "latitude", "longitude",
           "coord_source", "country", "date", "licence", "notes"]

CJK = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
                 r"\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
YEAR = re.compile(r"(?<!\d)(1[6-9]\d\d|20\d\d)(?!\d)")
MAX_YEAR = 1959


def ws(s) -> str:
    """Collapse whitespace (ASCII and full-width spaces) to one space; None -> ''."""
    if s is None:
        return ""
    return re.sub(r"\s+", " ", str(s).replace("\u3000", " ")).strip()


def mostly_cjk(title: str) -> bool:
    """More Han/kana/Hangul characters than Latin letters."""
    return len(CJK.findall(title)) > len(LATIN.findall(title))


@lru_cache(maxsize=None)
def _snapshot(mirror: str, repo: str, commit: str) -> Git:
    return Git(Path(mirror), SimpleNamespace(repo=repo, commit=commit))


def git_show(mirror: str, repo: str, commit: str, path: str) -> bytes:
    try:
        return _snapshot(mirror, repo, commit).show(path)
    except subprocess.CalledProcessError as e:
        sys.exit(f"git show {repo}@{commit}:{path} failed: {e.stderr.decode(errors='replace')}")


def row(**kw) -> dict:
    r = {c: "" for c in COLUMNS}
    for k, v in kw.items():
        assert k in r, k
        r[k] = ws(v)
    return r


# --------------------------------------------------------------------------- sources

def bura_rows(mirror: str) -> list[dict]:
    """The second table of docs/data.txt ("以下、日本橋、品川画像　JSから"): one row per
    print found on Japan Search, columns 場所, 時代, タイトル, ジャパンサーチ上のURL,
    オリジナルURL, 緯度, 経度, 画像URL. Coordinates are per place (the sheet gives one
    point for 日本橋 and one for 品川)."""
    repo, commit = BURA
    lines = git_show(mirror, repo, commit, BURA_DATA).decode("utf-8").split("\n")
    start = next(i for i, l in enumerate(lines) if "JSから" in l)
    out = []
    for n, line in enumerate(lines[start + 1:], start=start + 2):  # n: 1-based line number
        f = line.rstrip("\r").split("\t")
        if len(f) < 13 or f[1] == "場所":
            continue
        place, era, title, js_url, orig_url, lat, lon = f[1], f[2], f[3], f[8], f[10], f[11], f[12]
        try:
            float(lat), float(lon)
        except ValueError:
            continue
        title = ws(title)
        if not title or not mostly_cjk(title):
            continue
        coll = BURA_PLACE_COLLECTION[place]
        rec = ws(js_url).rstrip("/").rsplit("/", 1)[-1]
        out.append(row(
            id=f"{coll}-L{n:03d}", split=SPLIT[coll], collection=coll, lang="ja",
            source_repo=repo, source_commit=commit, metadata_path=BURA_DATA,
            source_record=f"line {n}; jpsearch {rec}", title=title, description="",
            location=place, latitude=lat, longitude=lon,
            coord_source="緯度/経度 columns of the row (one point per 場所)",
            country="JP", date=era, licence=BURA_LICENCE,
            notes=f"country from the coordinates (Tokyo); print record {ws(orig_url)}"))
    return out


def first_year(s: str):
    m = YEAR.search(s or "")
    return int(m.group(1)) if m else None


def vs_photo_rows(mirror: str) -> list[dict]:
    """Virtual Shanghai photographs with the repository's Chinese titles; coordinates
    from the building whose `images` list names the photo id. Kept: linked to exactly
    one building with a point, a year <= 1959 in `date`, a mostly-CJK title."""
    repo, commit = SHHM
    photos = json.loads(git_show(mirror, repo, commit, VS_PHOTOS))
    buildings = json.loads(git_show(mirror, repo, commit, VS_BUILDINGS))
    links: dict[str, list[dict]] = {}
    for feat in buildings["features"]:
        if not feat.get("geometry"):
            continue  # three placeholder features without name or point
        for img in feat["properties"].get("images") or []:
            links.setdefault(str(img), []).append(feat)
    out = []
    for ph in photos:
        feats = links.get(str(ph["id"]), [])
        if len(feats) != 1:
            continue
        title = ws(ph.get("title_zh"))
        year = first_year(ph.get("date"))
        if not title or not mostly_cjk(title) or year is None or year > MAX_YEAR:
            continue
        b = feats[0]["properties"]
        lon, lat = feats[0]["geometry"]["coordinates"][:2]
        loc = " / ".join(x for x in (ws(b.get("name_zh")), ws(b.get("name_en"))) if x)
        street = ws(ph.get("street_zh"))
        out.append(row(
            id=f"sh_vs_photos-{ph['id']}", split=SPLIT["sh_vs_photos"], collection="sh_vs_photos",
            lang="zh", source_repo=repo, source_commit=commit,
            metadata_path=f"{VS_PHOTOS}; {VS_BUILDINGS}", source_record=f"photo {ph['id']}",
            title=title, description=ph.get("note_zh"), location=loc,
            latitude=repr(float(lat)), longitude=repr(float(lon)),
            coord_source=f"building_id {b.get('building_id')} (its images list names this photo)",
            country="CN", date=ph.get("date"), licence=SHHM_LICENCE,
            notes=("country from the coordinates (Shanghai); title is the repository's Chinese "
                   "rendering of the Virtual Shanghai caption"
                   + (f"; street_zh: {street}" if street else ""))))
    return out


def map1928_rows(mirror: str) -> list[dict]:
    """Places labelled on the 1928 Shanghai map layer of the ditushu atlas: NAME_CN with
    a point."""
    repo, commit = SHHM
    gj = json.loads(git_show(mirror, repo, commit, PLACE_1928))
    out = []
    for feat in gj["features"]:
        p = feat["properties"]
        title = ws(p.get("NAME_CN"))
        if not title or not mostly_cjk(title) or not feat.get("geometry"):
            continue
        lon, lat = feat["geometry"]["coordinates"][:2]
        out.append(row(
            id=f"sh_map1928-{p['_id']}", split=SPLIT["sh_map1928"], collection="sh_map1928",
            lang="zh", source_repo=repo, source_commit=commit, metadata_path=PLACE_1928,
            source_record=f"_id {p['_id']}", title=title, description="", location="",
            latitude=repr(float(lat)), longitude=repr(float(lon)),
            coord_source="feature geometry (Point)", country="CN", date="1928 (map layer)",
            licence=SHHM_LICENCE,
            notes=f"country from the coordinates (Shanghai); NAME_EN: {ws(p.get('NAME_EN'))}"))
    return out


# --------------------------------------------------------------------------- output

def build(mirror: str) -> str:
    rows = bura_rows(mirror) + vs_photo_rows(mirror) + map1928_rows(mirror)
    order = ["bura_nihonbashi", "bura_shinagawa", "sh_vs_photos", "sh_map1928"]
    rows.sort(key=lambda r: order.index(r["collection"]))  # stable: source order within
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate ids"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n",
                       quoting=csv.QUOTE_MINIMAL)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mirror", default="/work/.mirror")
    ap.add_argument("--check", action="store_true", help="compare with the committed manifest")
    a = ap.parse_args()
    text = build(a.mirror)
    n = text.count("\n") - 1
    if a.check:
        try:
            with open(MANIFEST, encoding="utf-8", newline="") as f:
                old = f.read()
        except FileNotFoundError:
            sys.exit(f"{MANIFEST} missing")
        if old != text:
            a_lines, b_lines = old.splitlines(), text.splitlines()
            diff = [i for i in range(max(len(a_lines), len(b_lines)))
                    if (a_lines[i:i + 1] or [None]) != (b_lines[i:i + 1] or [None])]
            sys.exit(f"MANIFEST.tsv differs from the rebuild ({len(diff)} lines, first at line "
                     f"{diff[0] + 1})")
        print(f"ok: {n} rows reproduce {os.path.relpath(MANIFEST, ROOT)}")
        return
    os.makedirs(OUT_DIR, exist_ok=True)
    atomic_write_bytes(MANIFEST, text.encode("utf-8"))
    print(f"wrote {n} rows to {os.path.relpath(MANIFEST, ROOT)}")


if __name__ == "__main__":
    main()
