#!/usr/bin/env python3
"""Rebuild data/geo_testset/ (issue #14, item 1) from local git snapshots.

A geo test set of real, located images taken from public CollectionBuilder
sites: each site keeps a metadata CSV (title, description, location,
latitude, longitude, ...) in _data/ and the digital objects in the same
repository. This script reads those snapshots with ``git show`` (no network),
keeps only rows with numeric latitude/longitude and a source file present in
the snapshot, verifies every source file against the sha256 recorded in the
manifest, writes downsized JPEGs for the items whose rights allow
redistribution, and writes data/geo_testset/MANIFEST.tsv.

Needs only the standard library and Pillow. The snapshots are bare git
directories, by default /work/.mirror/<owner>+<name>/repo (``--mirror``).

    python scripts/build_geo_testset.py            # rebuild, verify sources
    python scripts/build_geo_testset.py --check    # rebuild in memory, compare
                                                   # with the committed files
    python scripts/build_geo_testset.py --all DIR  # also render the items that
                                                   # are not committed, into DIR
                                                   # (local evaluation only)

Output is byte-for-byte reproducible for a given Pillow/libjpeg build: rows
are sorted, JPEGs are encoded with fixed settings and no metadata, and files
are written atomically (temporary file + os.replace).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import html
import io
import os
import re
import struct
import subprocess
import sys
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, ImageStat

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from vpr_assets.storage.atomic import atomic_write_bytes  # noqa: E402  (stdlib only)

OUT_DIR = REPO_ROOT / "data" / "geo_testset"
MANIFEST = OUT_DIR / "MANIFEST.tsv"
LONG_SIDE = 640
QUALITY = 85
# Postcards whose metadata date is this year or earlier are treated as public
# domain by age (published before 1930: public domain in the United States).
# This is a judgement of this build, not a statement of the source; the
# manifest says so in commit_basis for every such item.
PD_BY_AGE_MAX_YEAR = 1929

# Many Campero scans store a landscape card turned on its side. Counter-
# clockwise turns (degrees) that make the committed images upright: proposed
# by tesseract's orientation detection, then checked by eye image by image.
# Items not listed (and all items that are not committed) keep the scan's
# orientation.
ROTATE = {
    "coleccion_mc-053": 90,
    "coleccion_mc-058": 90,
    "europosts-1": 270,
    "europosts-13": 90,
    "europosts-14": 90,
    "europosts-2": 90,
    "europosts-21": 90,
    "europosts-28": 90,
    "europosts-29": 90,
    "europosts-30": 90,
    "europosts-31": 90,
    "europosts-32": 90,
    "europosts-34": 90,
    "europosts-35": 90,
    "europosts-40": 90,
    "europosts-41": 90,
    "europosts-42": 90,
    "europosts-43": 90,
    "europosts-44": 90,
    "europosts-45": 90,
    "europosts-46": 90,
    "europosts-56": 90,
    "europosts-58": 90,
    "europosts-61": 90,
    "europosts-62": 90,
    "europosts-63": 90,
    "europosts-64": 90,
    "europosts-65": 90,
    "europosts-67": 90,
    "europosts-68": 90,
    "europosts-69": 270,
    "europosts-71": 90,
    "europosts-75": 90,
    "europosts-76": 90,
    "europosts-78": 90,
    "europosts-79": 90,
    "europosts-73": 90,
    "europosts-8": 90,
    "europosts-81": 90,
    "europosts-82": 90,
    "europosts-83": 90,
    "europosts-84": 90,
    "europosts-85": 90,
    "europosts-87": 90,
    "europosts-88": 90,
    "europosts-89": 90,
    "europosts-90": 90,
    "europosts-91": 90,
    "europosts-92": 90,
    "europosts-95": 90,
    "europosts-96": 90,
    "europosts-97": 90,
    "europosts-98": 90,
    "europosts-99": 90,
    "memorias_postaleras-057": 270,
    "memorias_postaleras-064": 270,
    "memorias_postaleras-089": 270,
}

# Discrepancies between a source's metadata and its image, seen while checking
# the images; the metadata is kept as the source gives it.
NOTES = {
    "europosts-13": "card reads 'PAU. L'HOTEL GASSION'; the metadata places it in Toulouse",
}

# Rows that pass the filters but, looked at, are not views of a place.
EXCLUDE = {
    "memorias_postaleras-068": "colour illustration of a uniformed figure, not a view",
    "memorias_postaleras-070": "colour illustration of a Swiss Guard officer, not a view",
}

# ---------------------------------------------------------------- collections


@dataclass(frozen=True)
class Collection:
    key: str
    repo: str
    commit: str
    metadata_path: str
    title: str
    licence: str  # what the repository says about the objects
    kind: str  # adapter name, see ROWS_FOR


COLLECTIONS = [
    Collection(
        key="europosts",
        repo="Grupo-Ninas/EuroPosts",
        commit="144dc686cfb57276986f7f357eb12700f1a53f40",
        metadata_path="_data/data-ninas.csv",
        title="EuroPosts (postcards of Manuel Campero: France, Austria, Belgium, Netherlands)",
        licence="no rights field; README: CollectionBuilder MIT/CC-BY-SA 'does NOT include any objects or images'",
        kind="campero",
    ),
    Collection(
        key="coleccion_mc",
        repo="Coleccion-de-Postales-de-Manuel-Campero/Coleccion-MC",
        commit="11182aac2a46dca1f56c2ee9bca9c4b9e61e74e4",
        metadata_path="_data/MCdatos.csv",
        title="Los viajes de Manuel Campero (postcards: Italy, France, Germany, UK, Mexico)",
        licence="no rights field; README: CollectionBuilder MIT/CC-BY-SA 'does NOT include any objects or images'",
        kind="campero",
    ),
    Collection(
        key="memorias_postaleras",
        repo="ARVEVS/sitiopostales",
        commit="ec3fdd3527d9ce88222aae48cdf9bd9eca7ead71",
        metadata_path="_data/datos.csv",
        title="Memorias Postaleras (postcards of Manuel Campero: Italy, Germany, Vatican, UK, Ireland)",
        licence="no rights field; README: CollectionBuilder MIT/CC-BY-SA 'does NOT include any objects or images'",
        kind="campero",
    ),
    Collection(
        key="ukr_heritage",
        repo="Leibniz-GWZO/ukrainian-destroyed-heritage",
        commit="834e7bd62fd92400a7cfa7a23f060a58423376fd",
        metadata_path="_data/destroyed_ukr_metadata.csv",
        title="Destroyed Ukrainian Heritage (GWZO exhibition; before/after photographs)",
        licence="README: 'Exhibition: All rights reserved. (c) Leibniz-GWZO'; per-image credits only",
        kind="ukr",
    ),
    Collection(
        key="philly",
        repo="digbmc/philly-global-city",
        commit="c7538df6cef8b5e5997f8b6e78c9a3a4230f21a3",
        metadata_path="_data/ptgc-metadata.csv",
        title="Philadelphia as a Global City (Bryn Mawr; places in Philadelphia)",
        licence="per-item rights field (CC licences, copyright notices)",
        kind="plain",
    ),
    Collection(
        key="harmsway",
        repo="Long-Island-Traditions/harmsway",
        commit="2d258dd7da02f799e70511e4b8ba9cc84bde0fa1",
        metadata_path="_data/HarmsWay_METADATA.csv",
        title="In Harm's Way (Long Island Traditions; south-shore storms 1938-2015)",
        licence="per-item 'rights' field holds the lender/credit",
        kind="plain",
    ),
]

# ------------------------------------------------------------------- helpers

COUNTRY_WORDS = [
    # (regex on the location text, country); first match wins, so the more
    # specific names come first.
    (r"ciudad del vaticano|vaticano|vatican", "Vatican City"),
    (r"pa[ií]ses bajos|netherlands|holanda", "Netherlands"),
    (r"b[eé]lgica|belgium", "Belgium"),
    (r"francia|france", "France"),
    (r"austria|aistria", "Austria"),
    (r"italia|italy", "Italy"),
    (r"alemania|germany", "Germany"),
    (r"reino unido|inglaterra|escocia|united kingdom|england", "United Kingdom"),
    (r"irlanda|ireland", "Ireland"),
    (r"m[eé]xico", "Mexico"),
    (r"espa[ñn]a|spain", "Spain"),
    (r"portugal", "Portugal"),
    (r"suiza|switzerland", "Switzerland"),
    (r"noruega|norway", "Norway"),
    (r"suecia|sweden", "Sweden"),
    (r"dinamarca|denmark", "Denmark"),
    (r"argentina", "Argentina"),
    (r"colombia", "Colombia"),
    (r"filipinas|philippines", "Philippines"),
    (r"jap[oó]n|japan", "Japan"),
    (r"puerto rico", "Puerto Rico"),
    (r"cuba", "Cuba"),
    (r"surinam", "Suriname"),
    (r"indonesia", "Indonesia"),
    (r"israel", "Israel"),
    (r"venezuela", "Venezuela"),
    (r"per[uú]\b", "Peru"),
    (r"bahamas", "Bahamas"),
    (r"grecia|greece", "Greece"),
    (r"estados unidos|ee\. ?uu\.|usa\b|united states", "United States"),
    (r"\b(new york|nueva york|massachusetts|pensilvania|pennsylvania|tennessee|alaska|iowa|ohio|texas|california|michigan|illinois|nebraska|kansas|wyoming|florida|washington d\.?c\.?)\b", "United States"),
]
CITY_WORDS = [
    # bare city names seen in the location fields (country from the city)
    (r"\bberl[ií]n\b", "Germany"),
    (r"\b(roma|florencia|firenze|padua|padova|venecia|venezia|mil[aá]n)\b", "Italy"),
    (r"\b(par[ií]s|versalles)\b", "France"),
    (r"\bviena\b", "Austria"),
    (r"\bmadrid\b", "Spain"),
]


def country_of(location: str) -> tuple[str, str]:
    low = location.lower()
    for pat, country in COUNTRY_WORDS:
        if re.search(pat, low):
            return country, "location_text"
    for pat, country in CITY_WORDS:
        if re.search(pat, low):
            return country, "location_text_city"
    return "", "unresolved"


NUM = re.compile(r"^-?\d{1,3}(\.\d+)?$")


def coords(row: dict) -> tuple[str, str] | None:
    lat, lon = row.get("latitude", "").strip(), row.get("longitude", "").strip()
    if not (NUM.match(lat) and NUM.match(lon)):
        return None
    la, lo = float(lat), float(lon)
    if not (-90 <= la <= 90 and -180 <= lo <= 180) or (la == 0 and lo == 0):
        return None
    return lat, lon


def clean(s: str) -> str:
    s = html.unescape(s or "")
    return re.sub(r"\s+", " ", s).strip()


def year_of(date: str) -> int | None:
    m = re.search(r"\b(1[6-9]\d\d|20\d\d)\b", date or "")
    return int(m.group(1)) if m else None


class Git:
    def __init__(self, mirror: Path, coll: Collection):
        owner, name = coll.repo.split("/")
        self.gd = mirror / f"{owner}+{name}" / "repo"
        self.commit = coll.commit
        if not self.gd.is_dir():
            raise SystemExit(f"missing snapshot {self.gd} (fetch {coll.repo})")
        names = subprocess.run(
            ["git", "--git-dir", str(self.gd), "ls-tree", "-r", "-z", "--name-only", self.commit],
            check=True, capture_output=True).stdout.decode("utf-8").split("\0")
        self.names = {n for n in names if n}

    def show(self, path: str) -> bytes:
        return subprocess.run(["git", "--git-dir", str(self.gd), "cat-file", "blob",
                               f"{self.commit}:{path}"], check=True, capture_output=True).stdout

    def present(self, path: str) -> bool:
        if path not in self.names:
            return False
        # files of 4 MiB and more are listed in the tree but absent from the
        # snapshot
        r = subprocess.run(["git", "--git-dir", str(self.gd), "cat-file", "-e",
                            f"{self.commit}:{path}"], capture_output=True)
        return r.returncode == 0


# ------------------------------------------------------------ PDF extraction
# The Campero postcards are stored as two-page PDFs (recto and verso, in
# either order), each page one image XObject: DCTDecode (a JPEG) or
# FlateDecode RGB with PNG predictors (re-wrapped as a PNG for Pillow).

_OBJ = re.compile(rb"(\d+)\s+0\s+obj\b")


def _dict_at(d: bytes, pos: int) -> tuple[bytes, int]:
    i = d.index(b"<<", pos)
    depth, j = 0, i
    while j < len(d):
        two = d[j:j + 2]
        if two == b"<<":
            depth += 1
            j += 2
        elif two == b">>":
            depth -= 1
            j += 2
            if depth == 0:
                return d[i:j], j
        else:
            j += 1
    raise ValueError("unterminated PDF dictionary")


def _int(dct: bytes, key: bytes, d: bytes, objs: dict) -> int:
    m = re.search(rb"/" + key + rb"\s+(\d+)(\s+0\s+R)?", dct)
    if not m:
        raise ValueError(f"no /{key.decode()}")
    if m.group(2):
        return int(re.match(rb"\s*(\d+)", d[objs[int(m.group(1))]:]).group(1))
    return int(m.group(1))


def _png(w: int, h: int, idat: bytes) -> bytes:
    def chunk(t: bytes, b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def pdf_pages(d: bytes) -> list[bytes]:
    """Encoded image (JPEG or PNG bytes) of each page, in page order."""
    objs = {int(m.group(1)): m.end() for m in _OBJ.finditer(d)}
    cat = next(n for n, p in objs.items() if re.match(rb"\s*<<[^>]*/Type\s*/Catalog", d[p:p + 400]))
    pages = int(re.search(rb"/Pages\s+(\d+)\s+0\s+R", _dict_at(d, objs[cat])[0]).group(1))
    kids = re.search(rb"/Kids\s*\[([^\]]*)\]", _dict_at(d, objs[pages])[0]).group(1)
    out = []
    for k in (int(x) for x in re.findall(rb"(\d+)\s+0\s+R", kids)):
        im = int(re.search(rb"/XObject\s*<<\s*/\w+\s+(\d+)\s+0\s+R", _dict_at(d, objs[k])[0]).group(1))
        dct, end = _dict_at(d, objs[im])
        start = re.compile(rb"\s*stream\r?\n").match(d, end).end()
        data = d[start:start + _int(dct, b"Length", d, objs)]
        if b"/DCTDecode" in dct:
            out.append(data)
        elif b"/FlateDecode" in dct and b"/DeviceRGB" in dct and b"/Predictor 15" in dct:
            out.append(_png(_int(dct, b"Width", d, objs), _int(dct, b"Height", d, objs), data))
        else:
            raise ValueError("unsupported PDF image: %r" % dct[:160])
    return out


def front_page(pages: list[bytes]) -> int:
    """Index of the recto: the page with the most grey-level variation.

    A postcard verso is mostly blank card with a few printed rules; the
    picture side has far more contrast. Ties go to the first page.
    """
    best, best_sd = 0, -1.0
    for i, b in enumerate(pages):
        im = Image.open(io.BytesIO(b))
        im.draft("L", (256, 256))
        g = im.convert("L").resize((128, 128), Image.BILINEAR)
        sd = ImageStat.Stat(g).stddev[0]
        if sd > best_sd + 1e-9:
            best, best_sd = i, sd
    return best


# ------------------------------------------------------------------- adapters


@dataclass
class Item:
    id: str
    collection: str
    source_id: str
    title: str
    description: str
    location: str
    latitude: str
    longitude: str
    coord_source: str
    country: str
    country_source: str
    date: str
    source_repo: str
    source_commit: str
    source_path: str
    metadata_path: str
    rights: str
    licence: str
    commit_basis: str
    committed: str
    source_page: str = ""
    rotation: str = ""
    note: str = ""
    source_sha256: str = ""
    file: str = ""
    file_sha256: str = ""
    width: str = ""
    height: str = ""
    _image: bytes = field(default=b"", repr=False)


def _rows(git: Git, coll: Collection) -> list[dict]:
    text = git.show(coll.metadata_path).decode("utf-8-sig")
    return [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(io.StringIO(text))]


def _path_for(git: Git, row: dict) -> str | None:
    for cand in (row.get("object_location", "").lstrip("/"), row.get("filename", ""),
                 "objects/" + row.get("filename", "")):
        if cand and cand in git.names:
            return cand
    return None


def _located(git: Git, row: dict, located_by: dict | None = None) -> tuple[tuple[str, str], str] | None:
    """(coordinates, image path in the snapshot) of a row whose coordinates (from `located_by`, else
    the row) and image are both there; None otherwise."""
    c = coords(located_by or row)
    path = _path_for(git, row)
    if not c or not path or not git.present(path):
        return None
    return c, path


def _item(coll: Collection, row: dict, oid: str, path: str, lat: str, lon: str, *,
          title: str, description: str, location: str, date: str, rights: str,
          country: str, country_source: str, coord_source: str, basis: str) -> Item:
    return Item(
        id=f"{coll.key}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', oid)}", collection=coll.key,
        source_id=oid, title=clean(title), description=clean(description),
        location=clean(location), latitude=lat, longitude=lon, coord_source=coord_source,
        country=country, country_source=country_source, date=clean(date),
        source_repo=coll.repo, source_commit=coll.commit, source_path=path,
        metadata_path=coll.metadata_path, rights=clean(rights), licence=coll.licence,
        commit_basis=basis, committed="yes" if basis.startswith("yes") else "no")


# Campero postcards that are not views of a place: reproductions of
# paintings and lithographs, portraits, letters and documents.
NOT_A_VIEW = re.compile(r"retrat|pintura|pintad|litograf|grabado|cuadro|\b[oó]leo\b|dibujo|carta de|"
                        r"testament|lettre|painting|portrait|familia|famiglia|naci[oó] en|\bcena\b|"
                        r"uniforme|teckel|caballero de rojo", re.I)
BARE_COUNTRY = re.compile(r"^(francia|italia|alemania|austria|b[eé]lgica|reino unido|inglaterra|"
                          r"irlanda|espa[ñn]a|m[eé]xico|europa)?[.;, ]*$", re.I)


def rows_campero(git: Git, coll: Collection):
    for row in _rows(git, coll):
        if (found := _located(git, row)) is None:
            continue
        c, path = found
        loc = row.get("location", "")
        # coordinates of a whole country (or none given) do not locate a view
        if BARE_COUNTRY.match(loc):
            continue
        # the kind of picture is named in the title or at the start of the
        # description ("Pintura de ...", "Retrato de ...")
        desc = row.get("description") or row.get("descripction", "")
        if NOT_A_VIEW.search(row.get("title", "") + " " + desc[:80]):
            continue
        country, csrc = country_of(loc)
        y = year_of(row.get("date", ""))
        # years before 1890 name the depicted event, not the card
        if y is not None and 1890 <= y <= PD_BY_AGE_MAX_YEAR:
            basis = f"yes: public domain by age (dated {y}, published before 1930; judgement of this build, no rights field in source)"
        else:
            basis = "no: no rights statement and no usable date"
        yield _item(coll, row, row["objectid"], path, *c, title=row.get("title", ""),
                    description=desc, location=loc, date=row.get("date", ""), rights=row.get("rights", ""),
                    country=country, country_source=csrc, coord_source="row", basis=basis)


def rows_ukr(git: Git, coll: Collection):
    rows = _rows(git, coll)
    parents = {r["objectid"]: r for r in rows if not r.get("parentid")}
    for row in rows:
        p = parents.get(row.get("parentid", ""))
        if p is None:
            continue
        if (found := _located(git, row, located_by=p)) is None:
            continue
        c, path = found
        desc = "; ".join(x for x in (row.get("caption", ""), p.get("description", "")) if x)
        credit = row.get("credits", "")
        yield _item(coll, row, row["objectid"], path, *c,
                    title=f"{p.get('title', '')} ({p.get('location', '')})", description=desc,
                    location=f"{p.get('location', '')}; {p.get('region', '')}",
                    date=row.get("date_construction", "") if "before" in row.get("caption", "").lower() else "",
                    rights=f"credit: {credit}" if credit else "",
                    country="Ukraine", country_source="collection_scope (site: Ukraine's built heritage)",
                    coord_source=f"parent record {p['objectid']}",
                    basis="no: exhibition 'All rights reserved'; third-party photographs")


OPEN_RIGHTS = re.compile(r"^(cc[- ]by(-sa)? ?4\.0|cc[- ]by(-nc)?(-sa)?( ?4\.0)?|public domain|cc0.*)$", re.I)
US_FEDERAL = re.compile(r"^(national archives and records administration|fema)$", re.I)


def rows_plain(git: Git, coll: Collection):
    for row in _rows(git, coll):
        if (found := _located(git, row)) is None:
            continue
        c, path = found
        rights = row.get("rights", "")
        loc = row.get("location", "")
        if coll.key == "philly":
            country, csrc = "United States", "collection_scope (Philadelphia sites)"
        else:
            country, csrc = country_of(loc)
        if re.search(r"\bmural\b", row.get("title", ""), re.I):
            basis = "no: photograph of a mural; the mural's own copyright is not covered by the photo's rights"
        elif OPEN_RIGHTS.match(rights) and "nd" not in rights.lower():
            basis = f"yes: rights field '{rights}'"
        elif US_FEDERAL.match(rights):
            basis = f"yes: credited to {rights}, a US federal source (public domain as a federal work; judgement from the credit)"
        else:
            basis = "no: rights field does not grant redistribution" if rights else "no: no rights statement"
        yield _item(coll, row, row["objectid"], path, *c, title=row.get("title", ""),
                    description=row.get("description", ""), location=loc, date=row.get("date", ""),
                    rights=rights, country=country, country_source=csrc, coord_source="row", basis=basis)


ROWS_FOR = {"campero": rows_campero, "ukr": rows_ukr, "plain": rows_plain}

# -------------------------------------------------------------------- images


def source_image(git: Git, item: Item) -> tuple[bytes, bytes, str]:
    """(original file bytes, encoded image bytes, page index or '')."""
    raw = git.show(item.source_path)
    if item.source_path.lower().endswith(".pdf"):
        pages = pdf_pages(raw)
        i = front_page(pages)
        return raw, pages[i], f"{i + 1}/{len(pages)}"
    return raw, raw, ""


def downsize(encoded: bytes, rotate: int = 0, long_side: int = LONG_SIDE) -> tuple[bytes, int, int]:
    """Upright (EXIF), optionally rotated, RGB, longest side at most `long_side`, JPEG `QUALITY`
    with fixed encoder settings (byte-for-byte reproducible); also the card and backs sets' copies."""
    im = Image.open(io.BytesIO(encoded))
    im = ImageOps.exif_transpose(im)
    if rotate:
        im = im.rotate(rotate, expand=True)
    if im.mode != "RGB":
        im = im.convert("RGB")
    w, h = im.size
    scale = min(1.0, long_side / max(w, h))
    if scale < 1.0:
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=QUALITY, optimize=False, progressive=False, subsampling=2)
    return buf.getvalue(), im.size[0], im.size[1]


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (the project's own stdlib-only helper)."""
    atomic_write_bytes(path, data)


COLUMNS = ["id", "collection", "source_id", "title", "description", "location", "latitude",
           "longitude", "coord_source", "country", "country_source", "date", "source_repo",
           "source_commit", "source_path", "source_page", "metadata_path", "rights", "licence",
           "commit_basis", "committed", "source_sha256", "rotation", "note", "file", "file_sha256", "width",
           "height"]


def manifest_bytes(items: list[Item]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(COLUMNS)
    for it in items:
        w.writerow([getattr(it, c).replace("\t", " ") for c in COLUMNS])
    return buf.getvalue().encode("utf-8")


def expected_sources() -> dict[str, str]:
    if not MANIFEST.exists():
        return {}
    with MANIFEST.open(encoding="utf-8", newline="") as f:
        return {r["id"]: r["source_sha256"] for r in csv.DictReader(f, delimiter="\t")}


def build(mirror: Path, render_all: Path | None) -> tuple[list[Item], dict[Path, bytes], list[str]]:
    expected = expected_sources()
    items: list[Item] = []
    files: dict[Path, bytes] = {}
    problems: list[str] = []
    seen: dict[str, str] = {}
    for coll in COLLECTIONS:
        git = Git(mirror, coll)
        for it in ROWS_FOR[coll.kind](git, coll):
            if it.id in EXCLUDE:
                continue
            raw, encoded, page = source_image(git, it)
            it.source_sha256, it.source_page = sha(raw), page
            want = expected.get(it.id)
            if want and want != it.source_sha256:
                problems.append(f"{it.id}: source sha256 {it.source_sha256} != manifest {want}")
                continue
            it.note = NOTES.get(it.id, "")
            img_key = sha(encoded)
            if img_key in seen:
                problems.append(f"{it.id}: same image as {seen[img_key]}; skipped")
                continue
            seen[img_key] = it.id
            if it.committed == "yes" or render_all is not None:
                it.rotation = str(ROTATE.get(it.id, 0)) if it.id in ROTATE else ""
                jpg, w, h = downsize(encoded, ROTATE.get(it.id, 0))
                it.width, it.height = str(w), str(h)
                if it.committed == "yes":
                    rel = Path("images") / it.collection / f"{it.id}.jpg"
                    it.file, it.file_sha256 = rel.as_posix(), sha(jpg)
                    files[OUT_DIR / rel] = jpg
                else:
                    files[render_all / it.collection / f"{it.id}.jpg"] = jpg
            items.append(it)
    items.sort(key=lambda i: i.id)
    return items, files, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirror", type=Path, default=Path(os.environ.get("GEO_MIRROR", "/work/.mirror")))
    ap.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    ap.add_argument("--all", type=Path, metavar="DIR", help="also render non-committed items into DIR")
    a = ap.parse_args(argv)
    # some camera JPEGs carry a broken MPO index; Pillow reads the base image
    warnings.filterwarnings("ignore", message="Image appears to be a malformed MPO file")
    items, files, problems = build(a.mirror, a.all)
    for p in problems:
        print("note:", p, file=sys.stderr)
    if any("!= manifest" in p for p in problems):
        print("source verification failed", file=sys.stderr)
        return 1
    man = manifest_bytes(items)
    if a.check:
        bad = [str(p) for p, b in files.items() if p.is_relative_to(OUT_DIR) and (not p.exists() or p.read_bytes() != b)]
        if not MANIFEST.exists() or MANIFEST.read_bytes() != man:
            bad.append(str(MANIFEST))
        on_disk = {p for p in (OUT_DIR / "images").rglob("*.jpg")} if (OUT_DIR / "images").exists() else set()
        extra = on_disk - {p for p in files if p.is_relative_to(OUT_DIR)}
        bad += [f"{p} (not in build)" for p in sorted(extra)]
        for b in bad:
            print("differs:", b, file=sys.stderr)
        print(f"{len(items)} items, {len(files)} files: {'OK' if not bad else 'DIFFERENT'}")
        return 1 if bad else 0
    for p, b in sorted(files.items()):
        if not p.exists() or p.read_bytes() != b:
            write_atomic(p, b)
    stale = {p for p in (OUT_DIR / "images").rglob("*.jpg")} - set(files) if (OUT_DIR / "images").exists() else set()
    for p in stale:
        p.unlink()
    write_atomic(MANIFEST, man)
    n_c = sum(i.committed == "yes" for i in items)
    print(f"{len(items)} items ({n_c} committed) from {len(COLLECTIONS)} collections -> {MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
