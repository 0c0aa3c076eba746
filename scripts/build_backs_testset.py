#!/usr/bin/env python3
"""Extract every page of the Manuel Campero postcard PDFs for the card-back test set.

data/backs_testset/MANIFEST.tsv lists one row per page image of every card
PDF in three public CollectionBuilder sites (the same snapshots as
data/geo_testset/): the picture side (front), the address/message side
(back), or neither (other), labelled by eye. This script rebuilds the page
images from the git snapshots (no network) and, with ``--manifest``, the
manifest's source columns. The images are for local measurement only and are
not committed (see data/backs_testset/SOURCES.md).

    python scripts/build_backs_testset.py [--out /tmp/backs_all]
    python scripts/build_backs_testset.py --manifest        # also rewrite MANIFEST.tsv
    python scripts/build_backs_testset.py --sheets /tmp/s   # contact sheets (PNG) for checking labels

Every source PDF is checked against the pdf_sha256 recorded in the manifest,
and every extracted page against its page_sha256; a mismatch stops the build
(the labels would no longer describe the image). The hand-entered columns
(label, label_basis, notes) are kept from the existing manifest.

Page images: the image XObject of each PDF page as stored (no EXIF rotation:
a PDF viewer ignores it too), converted to RGB, longest side at most 1024 px
(Lanczos), baseline JPEG quality 85, 4:2:0, no metadata, written atomically
to <out>/<collection>/<id>.jpg. Output is byte-for-byte reproducible for a
given Pillow/libjpeg build. Needs the standard library, Pillow and git
(numpy is not needed).
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_geo_testset import COLLECTIONS, Git, downsize, pdf_pages, sha, write_atomic  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "data" / "backs_testset"
MANIFEST = OUT_DIR / "MANIFEST.tsv"
DEFAULT_OUT = Path("/tmp/backs_all")
LONG_SIDE = 1024

# Settings are chosen on dev and reported on test, fixed per collection.
SPLIT = {"europosts": "dev", "coleccion_mc": "test", "memorias_postaleras": "test"}
# Object file stem -> the card number used in the page id.
STEM = re.compile(r"^(?:C2-G2-)?(\d+)$")
# CollectionBuilder's template sample objects (objects/demo_*), not cards.
TEMPLATE_DEMO = re.compile(r"(^|/)demo_[^/]*$")

LABELS = {"back", "front", "other"}
COLUMNS = ["id", "collection", "source_repo", "source_path", "source_page", "pdf_sha256",
           "page_sha256", "label", "label_basis", "split", "notes"]
HAND = ("label", "label_basis", "notes")


@dataclass
class Page:
    id: str
    collection: str
    source_repo: str  # owner/name@commit
    source_path: str
    source_page: str  # k/n
    pdf_sha256: str
    page_sha256: str
    split: str
    label: str = ""
    label_basis: str = ""
    notes: str = ""


def card_pdfs(git: Git) -> list[str]:
    return sorted(n for n in git.names if n.lower().endswith(".pdf") and not TEMPLATE_DEMO.search(n))


def read_manifest() -> dict[str, dict]:
    if not MANIFEST.exists():
        return {}
    with MANIFEST.open(encoding="utf-8", newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f, delimiter="\t")}


def build(mirror: Path, out: Path | None) -> tuple[list[Page], list[str], list[str]]:
    """(pages, notes, problems). Writes page images under `out` unless None."""
    known = read_manifest()
    # every row of a PDF records its sha256; all of them must match
    known_pdf: dict[str, set[str]] = {}
    for r in known.values():
        known_pdf.setdefault(r["source_repo"] + ":" + r["source_path"], set()).add(r["pdf_sha256"])
    pages: list[Page] = []
    notes: list[str] = []
    problems: list[str] = []
    seen_pdf: dict[str, str] = {}
    seen_page: dict[str, str] = {}
    for coll in (c for c in COLLECTIONS if c.key in SPLIT):
        git = Git(mirror, coll)
        repo_at = f"{coll.repo}@{coll.commit}"
        for path in card_pdfs(git):
            if not git.present(path):
                notes.append(f"{coll.key}: {path} listed in the tree but absent from the snapshot")
                continue
            raw = git.show(path)
            pdf_sha = sha(raw)
            want = known_pdf.get(f"{repo_at}:{path}", set())
            if want - {pdf_sha}:
                problems.append(f"{coll.key}: {path}: pdf sha256 {pdf_sha} != manifest {' '.join(sorted(want))}")
                continue
            if pdf_sha in seen_pdf:
                notes.append(f"{coll.key}: {path} is byte-identical to {seen_pdf[pdf_sha]}; skipped")
                continue
            seen_pdf[pdf_sha] = path
            m = STEM.match(Path(path).stem)
            if not m:
                problems.append(f"{coll.key}: {path}: unexpected file name")
                continue
            images = pdf_pages(raw)
            for k, enc in enumerate(images, 1):
                p = Page(id=f"{coll.key}-{m.group(1)}-p{k}", collection=coll.key, source_repo=repo_at,
                         source_path=path, source_page=f"{k}/{len(images)}", pdf_sha256=pdf_sha,
                         page_sha256=sha(enc), split=SPLIT[coll.key])
                if p.page_sha256 in seen_page:
                    notes.append(f"{p.id}: same page image as {seen_page[p.page_sha256]}; skipped")
                    continue
                seen_page[p.page_sha256] = p.id
                old = known.get(p.id)
                if old:
                    if old["page_sha256"] != p.page_sha256:
                        problems.append(f"{p.id}: page sha256 {p.page_sha256} != manifest {old['page_sha256']}")
                        continue
                    for c in HAND:
                        setattr(p, c, old.get(c, ""))
                if out is not None:
                    dest = out / p.collection / f"{p.id}.jpg"
                    jpg = downsize(enc, long_side=LONG_SIDE)[0]
                    if not dest.exists() or dest.read_bytes() != jpg:
                        write_atomic(dest, jpg)
                pages.append(p)
    pages.sort(key=lambda p: p.id)
    for gone in sorted(set(known) - {p.id for p in pages}):
        notes.append(f"{gone}: in the manifest but not produced by this build; dropped from a rewritten manifest")
    return pages, notes, problems


def manifest_bytes(pages: list[Page]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(COLUMNS)
    for p in pages:
        w.writerow([getattr(p, c).replace("\t", " ") for c in COLUMNS])
    return buf.getvalue().encode("utf-8")


def contact_sheets(pages: list[Page], images: Path, dest: Path, cols: int = 6, rows: int = 5,
                   cell: int = 250) -> int:
    """6x5 grids of thumbnails (id and label under each) as PNG, for checking labels by eye."""
    per = cols * rows
    n = 0
    for start in range(0, len(pages), per):
        chunk = pages[start:start + per]
        sheet = Image.new("RGB", (cols * cell, rows * (cell + 24)), "white")
        draw = ImageDraw.Draw(sheet)
        for i, p in enumerate(chunk):
            x, y = (i % cols) * cell, (i // cols) * (cell + 24)
            im = Image.open(images / p.collection / f"{p.id}.jpg")
            im.thumbnail((cell - 8, cell - 8))
            sheet.paste(im, (x + (cell - im.width) // 2, y + (cell - im.height) // 2))
            draw.text((x + 4, y + cell + 4), f"{p.id} {p.label}", fill="black")
        write_atomic(dest / f"sheet_{start // per + 1:03d}.png", _png(sheet))
        n += 1
    return n


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirror", type=Path, default=Path(os.environ.get("GEO_MIRROR", "/work/.mirror")))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the page images")
    ap.add_argument("--manifest", action="store_true", help=f"(re)write {MANIFEST.relative_to(REPO_ROOT)}")
    ap.add_argument("--sheets", type=Path, metavar="DIR", help="also write contact sheets into DIR")
    a = ap.parse_args(argv)
    # the phone photos carry a broken MPO index; Pillow reads the base image
    warnings.filterwarnings("ignore", message="Image appears to be a malformed MPO file")
    pages, notes, problems = build(a.mirror, a.out)
    for n in notes:
        print("note:", n, file=sys.stderr)
    for p in problems:
        print("error:", p, file=sys.stderr)
    if problems:
        print("source verification failed; nothing else written", file=sys.stderr)
        return 1
    bad = [p.id for p in pages if p.label not in LABELS]
    if bad:
        print(f"note: {len(bad)} pages without a label (first: {bad[0]})", file=sys.stderr)
    if a.manifest:
        write_atomic(MANIFEST, manifest_bytes(pages))
    if a.sheets:
        contact_sheets(pages, a.out, a.sheets)
    counts: dict[tuple[str, str], int] = {}
    for p in pages:
        counts[(p.split, p.label or "-")] = counts.get((p.split, p.label or "-"), 0) + 1
    summary = ", ".join(f"{s}/{lab} {n}" for (s, lab), n in sorted(counts.items()))
    print(f"{len(pages)} page images -> {a.out}" + (f"; manifest {MANIFEST}" if a.manifest else "") + f" ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
