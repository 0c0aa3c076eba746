#!/usr/bin/env python3
"""Rebuild data/landmark_corpus/images/ and MANIFEST.tsv from local git snapshots.

The list of source images lives in data/landmark_corpus/sources.tsv (one row per
image: repo@commit, path, label, kind, licence). ``kind`` is ``landmark``,
``distractor`` or ``excluded`` (kept as a record, checked, never built). Every image is read with
``git --git-dir=<mirror> show <commit>:<path>``, checked against the recorded
sha256 of the original bytes (when sources.tsv has one), downsized (EXIF
orientation applied, RGB, longest side 640 px, JPEG quality 85, no EXIF) and
written atomically. Near-duplicates inside one label (difference hash within
``--dup-threshold`` bits) are dropped. The train/dev split is per label and
deterministic. Running the script twice gives byte-identical output.

Only the Python standard library and Pillow are used; no network access.

    python scripts/build_landmark_corpus.py --mirrors /work/.mirror
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import subprocess
import sys
from collections import OrderedDict, defaultdict
from pathlib import Path

from PIL import Image, ImageOps

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
from vpr_assets.storage.atomic import atomic_write_bytes  # noqa: E402  (stdlib only)

CORPUS = REPO_ROOT / "data" / "landmark_corpus"
MAX_SIDE = 640
QUALITY = 85
MANIFEST_HEADER = ["file", "label", "kind", "split", "source_repo", "source_path",
                   "license", "source_sha256", "sha256"]
SOURCES_HEADER = ["source_repo", "source_path", "label", "kind", "license", "source_sha256"]


def find_git_dir(mirrors: Path, repo: str) -> Path:
    """Locate the bare git dir of owner/name below the mirrors directory."""
    base = mirrors / repo.replace("/", "+")
    for cand in (base / "repo", base, base.with_suffix(".git")):
        if (cand / "HEAD").exists() and (cand / "objects").exists():
            return cand
    if base.is_dir():
        for head in sorted(base.rglob("HEAD")):
            d = head.parent
            if (d / "objects").is_dir():
                return d
    raise FileNotFoundError(f"no git snapshot of {repo} under {mirrors}")


def git_show(git_dir: Path, commit: str, path: str) -> bytes:
    res = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"git show {commit}:{path} failed: {res.stderr.decode(errors='replace')}")
    return res.stdout


def to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.convert("I").point(lambda v: v / 256).convert("L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB")


def downsize(data: bytes) -> bytes:
    img = Image.open(io.BytesIO(data))
    img.load()
    img = ImageOps.exif_transpose(img)
    img = to_rgb(img)
    w, h = img.size
    scale = MAX_SIDE / max(w, h)
    if scale < 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=QUALITY, optimize=False, progressive=False)
    return out.getvalue()


def dhash(jpeg: bytes, size: int = 8) -> int:
    img = Image.open(io.BytesIO(jpeg)).convert("L").resize((size + 1, size), Image.BILINEAR)
    px = img.tobytes()
    bits = 0
    for r in range(size):
        row = px[r * (size + 1):(r + 1) * (size + 1)]
        for c in range(size):
            bits = (bits << 1) | (1 if row[c] > row[c + 1] else 0)
    return bits


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, leaving an identical file untouched (reproducible builds)."""
    if path.exists() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data)


def slug(text: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in text.lower())
    while "__" in out:
        out = out.replace("__", "_")
    return out.strip("_")


def assign_split(items: list[dict]) -> None:
    """Per-label split: round(n/3) (at least 2) in dev, chosen by sha256 order,
    keeping at least one train image of every source repository when possible."""
    n = len(items)
    n_dev = max(2, int(n / 3 + 0.5)) if n >= 4 else max(1, n // 3)
    order = sorted(items, key=lambda it: it["sha256"])
    train_left = defaultdict(int)
    for it in items:
        train_left[it["repo_name"]] += 1
    dev = []
    for it in order:  # first pass: never take a source's last train image
        if len(dev) == n_dev:
            break
        if train_left[it["repo_name"]] > 1:
            dev.append(it)
            train_left[it["repo_name"]] -= 1
    for it in order:  # second pass (single-image sources only)
        if len(dev) == n_dev:
            break
        if it not in dev:
            dev.append(it)
    dev_ids = {id(it) for it in dev}
    for it in items:
        it["split"] = "dev" if id(it) in dev_ids else "train"


def read_sources(path: Path) -> list[dict]:
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t")
        missing = set(SOURCES_HEADER) - set(reader.fieldnames or [])
        if missing:
            raise SystemExit(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            if not row["source_repo"].strip():
                continue
            rows.append({k: (row.get(k) or "").strip() for k in SOURCES_HEADER})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirrors", default="/work/.mirror", type=Path,
                    help="directory holding the git snapshots (owner+name/repo)")
    ap.add_argument("--sources", default=CORPUS / "sources.tsv", type=Path)
    ap.add_argument("--out", default=CORPUS, type=Path)
    ap.add_argument("--dup-threshold", default=6, type=int,
                    help="max dHash Hamming distance treated as near-duplicate within a label")
    ap.add_argument("--min-per-landmark", default=6, type=int,
                    help="landmarks with fewer (deduplicated) images are left out")
    ap.add_argument("--update-source-sha", action="store_true",
                    help="fill empty source_sha256 cells of sources.tsv instead of failing")
    args = ap.parse_args(argv)

    rows = read_sources(args.sources)
    git_dirs: dict[str, Path] = {}
    items_by_label: "OrderedDict[str, list[dict]]" = OrderedDict()
    seen_src: dict[str, str] = {}
    changed_sources = False
    errors = 0
    for row in rows:
        repo, _, commit = row["source_repo"].partition("@")
        if len(commit) != 40:
            raise SystemExit(f"source_repo must be owner/name@<40-hex commit>: {row['source_repo']}")
        if repo not in git_dirs:
            git_dirs[repo] = find_git_dir(args.mirrors, repo)
        data = git_show(git_dirs[repo], commit, row["source_path"])
        src_sha = hashlib.sha256(data).hexdigest()
        if row["source_sha256"]:
            if row["source_sha256"] != src_sha:
                print(f"ERROR sha256 mismatch for {row['source_repo']}:{row['source_path']}", file=sys.stderr)
                errors += 1
                continue
        elif args.update_source_sha:
            row["source_sha256"] = src_sha
            changed_sources = True
        else:
            raise SystemExit(f"no source_sha256 for {row['source_path']} (use --update-source-sha once)")
        if row["kind"] == "excluded":
            # kept in sources.tsv as a record (e.g. a copy of an image from a repository
            # reserved for independent evaluation), never built into the corpus
            print(f"skip excluded row {row['source_repo'].partition('@')[0]}:{row['source_path']}", file=sys.stderr)
            continue
        if row["kind"] not in ("landmark", "distractor"):
            raise SystemExit(f"unknown kind {row['kind']!r} for {row['source_path']}")
        if src_sha in seen_src:
            print(f"skip exact duplicate {row['source_path']} (= {seen_src[src_sha]})", file=sys.stderr)
            continue
        seen_src[src_sha] = row["source_path"]
        jpeg = downsize(data)
        item = dict(row, source_sha256=src_sha, jpeg=jpeg, sha256=hashlib.sha256(jpeg).hexdigest(),
                    dhash=dhash(jpeg), repo_name=repo)
        label = row["label"] if row["kind"] != "distractor" else "none"
        group = label if label != "none" else "none__" + slug(repo.split("/")[1])
        items_by_label.setdefault(group, []).append(item)
    if errors:
        return 1
    if changed_sources:
        with args.sources.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter="\t", lineterminator="\n")
            w.writerow(SOURCES_HEADER)
            for row in rows:
                w.writerow([row[k] for k in SOURCES_HEADER])

    # near-duplicate removal within a group (keeps the earlier row)
    for group, items in items_by_label.items():
        kept = []
        for it in items:
            dup = next((k for k in kept if bin(k["dhash"] ^ it["dhash"]).count("1") <= args.dup_threshold), None)
            if dup is not None:
                print(f"skip near-duplicate {it['source_path']} ~ {dup['source_path']} ({group})", file=sys.stderr)
                continue
            kept.append(it)
        items_by_label[group] = kept
    for group in [g for g, its in items_by_label.items()
                  if not g.startswith("none__") and len(its) < args.min_per_landmark]:
        print(f"leave out {group}: only {len(items_by_label[group])} images", file=sys.stderr)
        del items_by_label[group]

    # file names and split
    manifest = []
    distractors = []
    for group, items in items_by_label.items():
        for i, it in enumerate(items, 1):
            it["file"] = f"images/{group}__{i:02d}.jpg" if not group.startswith("none__") \
                else f"images/{group}_{i:02d}.jpg"
            it["label"] = "none" if group.startswith("none__") else group
        if group.startswith("none__"):
            distractors.extend(items)
        else:
            assign_split(items)
            manifest.extend(items)
    # distractors: about one third dev, by sha256, over all distractor sources
    for i, it in enumerate(sorted(distractors, key=lambda x: x["sha256"])):
        it["split"] = "dev" if i % 3 == 2 else "train"
    manifest.extend(distractors)

    img_dir = args.out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for it in manifest:
        atomic_write(args.out / it["file"], it["jpeg"])
        wanted.add((args.out / it["file"]).name)
    for p in sorted(img_dir.iterdir()):
        if p.is_file() and p.name not in wanted:
            p.unlink()

    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(MANIFEST_HEADER)
    for it in sorted(manifest, key=lambda x: x["file"]):
        w.writerow([it["file"], it["label"], it["kind"], it["split"], it["source_repo"],
                    it["source_path"], it["license"], it["source_sha256"], it["sha256"]])
    atomic_write(args.out / "MANIFEST.tsv", buf.getvalue().encode("utf-8"))

    n_lm = len({it["label"] for it in manifest if it["label"] != "none"})
    n_d = len(distractors)
    print(f"wrote {len(manifest)} images ({n_lm} landmarks, {n_d} distractors) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
