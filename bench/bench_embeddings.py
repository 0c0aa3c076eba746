"""Embedding throughput: files on disk -> DataLoader (decode+resize in workers) -> model, against a
bare model forward over the same images already decoded into tensors, in the same run.

    .venv/bin/python bench/bench_embeddings.py --n 64 --image-size 320
    .venv/bin/python bench/bench_embeddings.py --generate --n 64   # synthetic 1400x900 JPEG scans

Prints images/s for both, their ratio (pipeline / bare; 1.0 = loading costs nothing), the same
pipeline without worker processes, and peak RSS (this process and its workers).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vpr_assets.core.vision.embedder import (  # noqa: E402
    DEFAULT_RESIZE,
    ImageFileDataset,
    _normalise_batch,
    configure_torch_threads,
    default_device,
    default_num_workers,
    embed_paths,
)
from vpr_assets.core.vision.models import build_embedder  # noqa: E402

REALSAMPLE = ROOT.parent / "shared" / "data" / "realsample"


def peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def make_paths(n: int, generate: bool, workdir: Path) -> list[Path]:
    if not generate and REALSAMPLE.exists():
        photos = sorted(p for p in REALSAMPLE.iterdir() if p.suffix.lower() in (".jpg", ".png"))
        return [photos[i % len(photos)] for i in range(n)]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        small = rng.integers(0, 255, (9, 14, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((1400, 900), Image.BICUBIC)
        p = workdir / f"scan_{i:05d}.jpg"
        im.save(p, quality=90)
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--model", default="lite0_gem512")
    ap.add_argument("--image-size", type=int, default=320)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--generate", action="store_true", help="synthetic 1400x900 JPEGs instead of the real sample")
    ap.add_argument("--scales", default="1.0", help="comma list, e.g. 0.707,1,1.414")
    args = ap.parse_args()

    threads = configure_torch_threads()
    device = default_device()
    workers = default_num_workers() if args.workers is None else args.workers
    scales = tuple(float(s) for s in args.scales.split(","))
    model = build_embedder(args.model).to(device)
    print(f"model={args.model} device={device} torch_threads={threads} workers={workers} "
          f"image_size={args.image_size} batch={args.batch_size} scales={scales} n={args.n}")

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_paths(args.n, args.generate, Path(tmp))
        src = "generated 1400x900 JPEG" if args.generate or not REALSAMPLE.exists() else "real sample photos"
        print(f"images: {src}")

        # warm-up (first-call allocations, thread pools)
        embed_paths(model, paths[: args.batch_size], args.image_size, args.batch_size, 0, scales, device=device)

        # baseline: the same images decoded and resized up front, then a bare forward pass only
        ds = ImageFileDataset(paths, args.image_size, DEFAULT_RESIZE)
        batches = [torch.stack([ds[i][0] for i in range(s, min(s + args.batch_size, len(ds)))])
                   for s in range(0, len(ds), args.batch_size)]
        tensors = [_normalise_batch(b, model, device) for b in batches]
        t0 = time.perf_counter()
        with torch.inference_mode():
            for x in tensors:
                with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
                    model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        bare = args.n / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        res = embed_paths(model, paths, args.image_size, args.batch_size, workers, scales, device=device)
        pipe = args.n / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        embed_paths(model, paths, args.image_size, args.batch_size, 0, scales, device=device)
        pipe0 = args.n / (time.perf_counter() - t0)

    own, children = peak_rss_mb()
    print(f"bare model forward (pre-made tensors): {bare:8.2f} img/s")
    print(f"pipeline, {workers} workers:              {pipe:8.2f} img/s   ratio {pipe / bare:.2f}")
    print(f"pipeline, no workers:               {pipe0:8.2f} img/s   ratio {pipe0 / bare:.2f}")
    print(f"failed items: {len(res.failures)}; dim={res.vectors.shape[1]}")
    print(f"peak RSS: main {own:.0f} MB, largest worker {children:.0f} MB")


if __name__ == "__main__":
    main()
