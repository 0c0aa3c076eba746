"""End to end per 1,000 scans: one batch of scans through the whole per-batch graph and the
collection assets via a real Dagster instance, against the same core work called directly without
Dagster (the orchestration overhead), in the same run.

    .venv/bin/python bench/bench_end_to_end.py --n 40
    .venv/bin/python bench/bench_end_to_end.py --n 150 --images ../shared/data/realsample data/geo_testset/images --before

Without `--images` the batch is generated postcards; with it, `n` real pictures spread evenly over
the sorted image files of those folders (copied, never modified).

`--before NAME` also runs the direct work and the graph as the pipeline ran before a change, each
before its now-run, in the same process (models and readers loaded first, so neither pays the loads):
- `previous` (the default of a bare `--before`): until the second change of 2026-12-01: the middle of
  every card without a caption read at full size (no probe), the image embedder's and the curation
  backbone's forward passes in torch, two decode workers for the embedder on a 2-core CPU;
- `ocr-series`: until the first change of 2026-12-01, as `previous` and the OCR one card at a time
  with Tesseract run as a command (the baseline of the rows of that day in docs/benchmarks.md).

`--fixed` also runs the graph on a batch of 4 of the same pictures in a fresh data root, and splits
the graph's time into a fixed cost per run and a marginal cost per scan: per 1,000 scans in batches
of 1,000 is fixed + 1,000 x marginal. Like `--before`, it loads the models on two pictures first, so
the direct column is the work alone (before 2026-12-02 it included the loads without `--before`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, make_scans, peak_rss_mb

STAGES = ["raw_scans", "scan_rejects", "image_embeddings", "ocr_text", "geo_words", "text_embeddings", "scan_quality"]


def direct(batch_dir: Path, home: Path, before: str | None = None) -> dict[str, float]:
    """The same work without Dagster: ingest, embed, OCR, geo-words, text embeddings, quality.
    `before`: as the pipeline ran before a change (BEFORE)."""
    from dataclasses import replace

    import pandas as pd

    from vpr_assets.core.active_model import active_model
    from vpr_assets.core.curation.assessment import assess_scans
    from vpr_assets.core.curation.landmark_scoring import embed as backbone_embed
    from vpr_assets.core.ingest import ingest_batch
    from vpr_assets.core.onnx_sessions import available_cpus
    from vpr_assets.core.text.batch import read_batch_captions
    from vpr_assets.core.text.geowords import extract_geowords
    from vpr_assets.core.text.ocr import CaptionOCR, OcrSettings
    from vpr_assets.core.text.text_embeddings import card_text, embed_texts
    from vpr_assets.core.vision.embedder import embed_paths
    from vpr_assets.paths import embedder_export_cache, ocr_tools

    t = {}
    t0 = time.perf_counter()
    res = ingest_batch(batch_dir, "b", home, workers=2)
    t["ingest"] = time.perf_counter() - t0
    paths = [home / r["path"] for r in res.scans]
    t0 = time.perf_counter()
    # as `image_embeddings` embeds on a CPU (before: the torch forward, as until 2026-12-01)
    embed_paths(active_model(home, "pretrained:lite0_gem512").embedder, paths, num_workers=2 if before else None,
                runtime="torch" if before else "onnx", onnx_cache=embedder_export_cache(home))
    t["image_embeddings"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tools = ocr_tools()  # $VPR_TESSERACT, $VPR_OCR_CACHE as the pipeline reads them
    streams = available_cpus()  # as CaptionOcrResource opens it on a CPU
    if before == "ocr-series":
        tools, streams = replace(tools, tesseract_in_process=False), 1
    settings = OcrSettings(middle_probe_side=0) if before else OcrSettings()
    scans = pd.DataFrame({"scan_id": [str(i) for i in range(len(paths))], "path": [str(p) for p in paths]})
    batch = read_batch_captions(scans, Path("/"), "b", settings, [],
                                lambda: CaptionOCR(settings, tools=tools, streams=streams), gpu=False, tools=tools)
    texts = [r["text"] for r in batch.rows]
    t["ocr"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for tx in texts:
        extract_geowords(tx, None)
    embed_texts([card_text(tx, None) for tx in texts])
    t["text"] = time.perf_counter() - t0
    t0 = time.perf_counter()  # what curate_scans computes (duplicate grouping and writes aside)
    assessed = assess_scans(home, pd.DataFrame(res.scans), workers=2)
    backbone_embed([a.model_input for a in assessed if a.model_input is not None], "torch" if before else "onnx",
                   embedder_export_cache(home))
    t["quality"] = time.perf_counter() - t0
    return t


_PREVIOUS = {"ops": {"ocr_text": {"config": {"middle_probe_side": 0}},
                     "image_embeddings": {"config": {"runtime": "torch", "num_workers": 2}},
                     "curate_scans": {"config": {"backbone_runtime": "torch"}}}}
BEFORE = {  # run config of the graph as it ran before a change
    "previous": _PREVIOUS,
    "ocr-series": {**_PREVIOUS, "resources": {"caption_ocr": {"config": {"streams": 1, "tesseract_in_process": False}}}},
}


def cpu_seconds() -> float:
    """User + system time of this process (all its threads) and its finished child processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def through_dagster(batch_dir: Path, home: Path, dhome: Path, run_config: dict | None = None
                    ) -> tuple[dict[str, float], float]:
    """Wall seconds per stage of the graph, and the CPU-seconds of the whole (wall time can wait on the disk)."""
    import dagster as dg

    os.environ["VPR_HOME"], os.environ["DAGSTER_HOME"] = str(home), str(dhome)
    from vpr_assets.runner import materialize_partitions

    shutil.copytree(batch_dir, home / "inbox" / "b")
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", ["b"])
    t = {}
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    materialize_partitions(STAGES, ["b"], run_config=run_config)
    t["per_batch_assets"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    materialize_partitions(["landmark_clusters", "faiss_index"], [None])
    t["collection_assets"] = time.perf_counter() - t0
    return t, cpu_seconds() - c0


def real_scans(folder: Path, sources: list[Path], n: int) -> str:
    """`n` real images spread evenly over the sorted files of `sources`, copied into `folder`."""
    files = sorted(p for src in sources for p in src.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise SystemExit(f"no images under {', '.join(map(str, sources))}")
    picked = [files[round(i * (len(files) - 1) / max(1, n - 1))] for i in range(min(n, len(files)))]
    folder.mkdir(parents=True)
    for i, p in enumerate(dict.fromkeys(picked)):
        shutil.copy(p, folder / f"{i:04d}_{p.name}")
    return f"{len(set(picked))} real images from {', '.join(str(s) for s in sources)}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--images", type=Path, nargs="*", default=None, help="folders of real images instead of generated scans")
    ap.add_argument("--before", nargs="?", const="previous", choices=sorted(BEFORE),
                    help="also run the direct work and the graph as the pipeline ran before a change (see above)")
    ap.add_argument("--fixed", action="store_true", help="also run the graph on 4 scans: fixed cost per run, "
                    "marginal cost per scan")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_e2e_"))
    try:
        scans = tmp / "scans"
        if args.images:
            what = real_scans(scans, args.images, args.n)
            args.n = len(list(scans.iterdir()))
        else:
            make_scans(scans, args.n, size=(1200, 780))
            what = f"{args.n} generated postcards, 1200x780 JPEG"
        dhome = tmp / "dagster_home"
        dhome.mkdir()
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", dhome / "dagster.yaml")
        b = None
        if args.before or args.fixed:  # models and readers loaded first, so no timed run pays the loads
            warm = tmp / "warm"
            warm.mkdir()
            for p in sorted(scans.iterdir())[:2]:
                shutil.copy(p, warm / p.name)
            if args.before:
                direct(warm, tmp / "home_warm_before", before=args.before)
            direct(warm, tmp / "home_warm")
        if args.before:
            b = direct(scans, tmp / "home_before", before=args.before)
        d = direct(scans, tmp / "home_direct")
        gb = None
        if args.before:
            dhome_b = tmp / "dagster_home_before"
            dhome_b.mkdir()
            shutil.copy(ROOT / "dagster_home" / "dagster.yaml", dhome_b / "dagster.yaml")
            gb, _ = through_dagster(scans, tmp / "home_dagster_before", dhome_b, BEFORE[args.before])
        g, cpu_g = through_dagster(scans, tmp / "home_dagster", dhome)
        small = None
        if args.fixed:
            few = tmp / "few"
            few.mkdir()
            for p in sorted(scans.iterdir())[:: max(1, args.n // 4)][:4]:
                shutil.copy(p, few / p.name)
            dhome_s = tmp / "dagster_home_few"
            dhome_s.mkdir()
            shutil.copy(ROOT / "dagster_home" / "dagster.yaml", dhome_s / "dagster.yaml")
            small = (len(list(few.iterdir())), through_dagster(few, tmp / "home_dagster_few", dhome_s)[0])
        total_d, total_g = sum(d.values()), sum(g.values())
        print(f"machine: {machine()}")
        print(f"scans: {what}")
        for k, v in (b or {}).items():
            print(f"  before {k:<18} {v:7.1f} s  ({1000 * v / args.n:7.0f} s per 1,000)")
        for k, v in d.items():
            print(f"  direct {k:<18} {v:7.1f} s  ({1000 * v / args.n:7.0f} s per 1,000)")
        for k, v in (gb or {}).items():
            print(f"  dagster, before {k:<17} {v:7.1f} s  ({1000 * v / args.n:7.0f} s per 1,000)")
        for k, v in g.items():
            print(f"  dagster {k:<17} {v:7.1f} s  ({1000 * v / args.n:7.0f} s per 1,000)")
        if b:
            print(f"direct, before ({args.before}): {1000 * sum(b.values()) / args.n / 60:.1f} min per 1,000 scans")
        print(f"direct core work:        {1000 * total_d / args.n / 60:.1f} min per 1,000 scans")
        if gb:
            print(f"through Dagster, before ({args.before}): {1000 * sum(gb.values()) / args.n / 60:.1f} min per 1,000 scans")
        print(f"through Dagster (graph): {1000 * total_g / args.n / 60:.1f} min per 1,000 scans")
        from vpr_assets.core.onnx_sessions import available_cpus

        cores = available_cpus()
        print(f"  CPU time of the graph:  {cpu_g / args.n:.3f} CPU-s per scan ({cpu_g / total_g / cores:.0%} "
              f"of {cores} cores busy; what a run costs whatever the disk waits)")
        if small:
            n_few, t_few = small[0], sum(small[1].values())
            marginal = (total_g - t_few) / (args.n - n_few)
            fixed = t_few - n_few * marginal
            print(f"  graph on {n_few} scans: {t_few:.1f} s -> fixed {fixed:.1f} s per run, marginal {marginal:.3f} s per scan")
            print(f"through Dagster, in batches of 1,000: {(fixed + 1000 * marginal) / 60:.1f} min per 1,000 scans")
        print(f"ratio dagster/direct:    {total_g / total_d:.2f}x (orchestration, catalog writes, checks, clusters, index)")
        print(f"peak RSS:                {peak_rss_mb():.0f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
