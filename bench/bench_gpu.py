"""GPU figures for docs/scaling.md: embeddings, training, exact search and OCR on one CUDA device.

    python bench/bench_gpu.py vision --images data/landmark_corpus/images --json out.json
    python bench/bench_gpu.py ocr --photos ../shared/data/realsample --json out.json

`vision` prints, on the first CUDA device:
  - embedding throughput at 448 px: the bare model on decoded batches already on the GPU (fp32 and
    fp16 autocast, channels_last), and `embed_paths` from JPEG files on disk with 2 and more decode
    workers (the feed, not the GPU, is what limits a real run);
  - training: the project's `train()` (phase 1 cached views + neck steps, phase 2 end-to-end steps)
    on real landmark photos, plus the compute ceiling of one end-to-end step on tensors;
  - exact search of 1M x 512 vectors by a float16 matrix product on the GPU (batch and single
    query), since no faiss-gpu build for this CUDA is installable offline.
`ocr` prints CaptionOCR and a plain `readtext` loop on the GPU over real postcards and captioned
photos (bench/bench_ocr.py's synthetic captions on real photos), with word recovery for the latter.
Every section runs on its own: one failing prints its error and the others go on.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


DEV = torch.device("cuda")
SMOKE = False  # --smoke: tiny sizes on the CPU, to check the script here before spending device time


def sync() -> None:
    if DEV.type == "cuda":
        torch.cuda.synchronize()


def timed_loop(fn, warmup: int = 3, repeat: int = 10) -> float:
    """Seconds per call, after warm-up, with the device synchronised around the timed calls."""
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync()
    return (time.perf_counter() - t0) / repeat


def device_facts() -> dict:
    facts = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
             "cpus": __import__("os").cpu_count()}
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
        facts["gpu_mem_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return facts


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def _embedder(out: dict):
    """lite0 + GeM with its ImageNet weights; random weights (same cost) if they do not load there."""
    from vpr_assets.core.vision.models import build_embedder

    try:
        return build_embedder("lite0_gem512", pretrained=True)
    except Exception as exc:  # e.g. another timm version's key order on the GPU machine
        out.setdefault("notes", []).append(f"ImageNet weights did not load ({exc!r}); random weights, same cost")
        return build_embedder("lite0_gem512", pretrained=False)


# --- vision --------------------------------------------------------------------------------------


def bench_embeddings(images: list[Path], out: dict, n_files: int) -> None:
    from PIL import Image

    from vpr_assets.core.vision.embedder import DEFAULT_RESIZE, embed_paths, resize_for_model
    dev = DEV
    model = _embedder(out).eval().to(dev).to(memory_format=torch.channels_last)
    size = model.config.image_size
    arrs = [resize_for_model(Image.open(p).convert("RGB"), size, DEFAULT_RESIZE) for p in images[:64]]
    base = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float().div(255)
    mean = torch.tensor(model.config.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.config.std).view(1, 3, 1, 1)
    base = ((base - mean) / std)
    res = {"image_size": size, "bare": {}}
    for bs in ((4,) if SMOKE else (64, 256)):
        x = base.repeat((bs + len(base) - 1) // len(base), 1, 1, 1)[:bs].to(dev).contiguous(memory_format=torch.channels_last)
        for amp in (False, True):
            def step(x=x, amp=amp):
                with torch.no_grad(), torch.autocast(DEV.type, dtype=torch.float16, enabled=amp and DEV.type == "cuda"):
                    model(x)
            sec = timed_loop(step)
            key = f"batch{bs}_{'fp16' if amp else 'fp32'}"
            res["bare"][key] = round(bs / sec, 1)
            print(f"embed bare {key}: {bs / sec:,.0f} img/s", flush=True)
    files = [images[i % len(images)] for i in range(n_files)]
    res["pipeline"] = {}
    for workers in ((0, 2) if SMOKE else (2, 8, 14)):
        embed_paths(model, files[:128], batch_size=64, num_workers=workers)  # warm the workers' code paths
        t0 = time.perf_counter()
        r = embed_paths(model, files, batch_size=64, num_workers=workers)
        sec = time.perf_counter() - t0
        res["pipeline"][f"workers{workers}"] = round(len(files) / sec, 1)
        print(f"embed_paths {len(files)} files, {workers} workers: {len(files) / sec:,.0f} img/s "
              f"({int(r.ok.sum())} ok)", flush=True)
    out["embeddings"] = res


def bench_training(images_root: Path, out: dict) -> None:
    from vpr_assets.core.training.data import TrainItem
    from vpr_assets.core.training.recognizer import Recognizer, RecognizerConfig
    from vpr_assets.core.training.trainer import TrainConfig, train
    from vpr_assets.core.vision.models import ArcMarginProduct, arcface_loss

    manifest = images_root.parent / "MANIFEST.tsv"
    items = []
    if manifest.exists():
        rows = [line.split("\t") for line in manifest.read_text().splitlines()]
        head = rows[0]
        for r in rows[1:]:
            rec = dict(zip(head, r))
            if rec.get("kind") == "landmark":
                items.append(TrainItem(str(images_root.parent / rec["file"]), rec["label"]))
    if len({i.label for i in items}) < 2:
        raise RuntimeError(f"need labelled landmark photos in {manifest}")
    cfg = TrainConfig(views=4, neck_epochs=10, epochs=3, freeze_stages=0, batch_size=32, device=DEV.type)
    if SMOKE:
        keep = sorted({i.label for i in items})[:2]
        items = [it for lab in keep for it in [i for i in items if i.label == lab][:4]]
        cfg = TrainConfig(views=1, neck_epochs=1, epochs=1, freeze_stages=0, batch_size=4, image_size=64, device="cpu")
    t0 = time.perf_counter()
    result = train(cfg, items)
    total = time.perf_counter() - t0
    hist = result.epochs
    neck = [h for h in hist if h["phase"] == "neck"]
    fine = [h for h in hist if h["phase"] == "finetune"]
    from vpr_assets.core.training.trainer import train_image_size

    size = train_image_size(cfg, result.model, DEV)
    res = {"items": len(items), "classes": len(result.class_map), "image_size": size, "total_s": round(total, 1),
           "neck_epochs": len(neck), "finetune_epochs": len(fine)}
    if fine:
        fine_s = fine[-1]["seconds"] - neck[-1]["seconds"] if neck else fine[-1]["seconds"]
        res["finetune_s_per_epoch"] = round(fine_s / len(fine), 2)
        res["finetune_img_per_s"] = round(len(items) * len(fine) / fine_s, 1)  # ~ items drawn per epoch
    print(f"train(): {json.dumps(res)}", flush=True)

    # compute ceiling: one end-to-end step (all stages trainable) on tensors already on the GPU
    dev = DEV
    model = Recognizer(_embedder(out), RecognizerConfig("image_clusters")).to(dev)
    model = model.to(memory_format=torch.channels_last).train()
    head = ArcMarginProduct(model.embedding_dim, 1000).to(dev)
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=DEV.type == "cuda")
    px = 64 if SMOKE else 448
    for bs in ((2,) if SMOKE else (32, 128)):
        x = torch.randn(bs, 3, px, px, device=dev).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (bs,), device=dev)
        empty_text = torch.zeros(bs, 384, device=dev)
        has = torch.zeros(bs, dtype=torch.bool, device=dev)

        def step(x=x, y=y, t=empty_text, h=has):
            with torch.autocast(DEV.type, dtype=torch.float16, enabled=DEV.type == "cuda"):
                feats = model.features(x, t, h)
                loss = arcface_loss(head(feats.float(), y), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

        sec = timed_loop(step, warmup=3, repeat=10)
        res[f"step_batch{bs}_per_s"] = round(1 / sec, 2)
        res[f"step_batch{bs}_img_per_s"] = round(bs / sec, 1)
        print(f"train step ceiling batch {bs} @448 fp16: {1 / sec:.2f} steps/s, {bs / sec:,.0f} img/s", flush=True)
    if DEV.type == "cuda":
        res["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    out["training"] = res


def bench_exact_search(out: dict, n: int = 1_000_000, d: int = 512) -> None:
    dev = DEV
    g = torch.Generator(device=dev).manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(n // 100, d, device=dev, generator=g), dim=1)
    assign = torch.randint(0, len(centres), (n,), device=dev, generator=g)
    xb = torch.nn.functional.normalize(centres[assign] + 0.08 * torch.randn(n, d, device=dev, generator=g), dim=1)
    nq = min(1000, len(centres))
    q = torch.nn.functional.normalize(centres[:nq] + 0.08 * torch.randn(nq, d, device=dev, generator=g), dim=1)
    t0 = time.perf_counter()
    xb16 = xb.half() if DEV.type == "cuda" else xb
    sync()
    build = time.perf_counter() - t0
    truth = torch.topk(q @ xb.T, 10, dim=1).indices
    got = torch.topk((q.to(xb16.dtype) @ xb16.T).float(), 10, dim=1).indices
    recall = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(truth, got)]))
    res = {"n": n, "d": d, "fp16_bytes": n * d * 2, "build_s": round(build, 4), "recall_at_10_vs_fp32": round(recall, 4)}
    for bs in (1, 64, nq):
        qb = q[:bs].to(xb16.dtype)
        sec = timed_loop(lambda qb=qb: torch.topk((qb @ xb16.T).float(), 10, dim=1), warmup=3, repeat=20)
        res[f"batch{bs}_ms"] = round(sec * 1000, 3)
        res[f"batch{bs}_qps"] = round(bs / sec, 1)
        print(f"exact fp16 search 1M x {d}, batch {bs}: {sec * 1000:.3f} ms/batch, {bs / sec:,.0f} queries/s", flush=True)
    lat = []
    for i in range(20 if SMOKE else 200):
        t0 = time.perf_counter()
        torch.topk((q[i:i + 1].to(xb16.dtype) @ xb16.T).float(), 10, dim=1).indices.cpu()
        lat.append(time.perf_counter() - t0)
    res["single_query_p50_ms_incl_copy"] = round(float(np.percentile(lat, 50)) * 1000, 3)
    res["single_query_p99_ms_incl_copy"] = round(float(np.percentile(lat, 99)) * 1000, 3)
    print(f"single query incl. host copy: p50 {res['single_query_p50_ms_incl_copy']} ms, "
          f"p99 {res['single_query_p99_ms_incl_copy']} ms; recall@10 vs fp32 {recall:.4f}", flush=True)
    out["exact_search"] = res


# --- ocr -----------------------------------------------------------------------------------------


def bench_ocr(photos: Path, out: dict, n_synthetic: int) -> None:
    from PIL import Image

    from bench.bench_ocr import recovered
    from vpr_assets.core.text.ocr import CaptionOCR, get_reader, to_rgb_array
    from vpr_assets.core.text.synth import synthetic_set
    from vpr_assets.paths import ocr_tools

    reader = get_reader(gpu=DEV.type == "cuda")
    ocr = CaptionOCR(gpu=DEV.type == "cuda", tools=ocr_tools())
    res = {"device": str(reader.device)}
    cards = sorted(p for p in photos.glob("*__pc*.jpg"))[: 2 if SMOKE else None]
    sets = {"real_postcards": [(to_rgb_array(Image.open(p)), None) for p in cards]}
    photo_files = sorted(p for p in photos.glob("*.jpg") if "__" in p.name and "verso" not in p.name)
    synth = synthetic_set(photo_files, n_synthetic + 1, seed=7)
    sets["captioned_photos"] = [(to_rgb_array(im), cap) for im, cap, _, _ in synth[1:]]
    warm = to_rgb_array(synth[0][0])
    ocr.read(warm)
    reader.readtext(warm)
    for name, cases in sets.items():
        if not cases:
            continue
        row = {"images": len(cases)}
        for label, fn in (("caption_ocr", lambda a: ocr.read(a).text),
                          ("plain_readtext", lambda a: "\n".join(r[1] for r in reader.readtext(a)))):
            hit = tot = 0
            sync()
            t0 = time.perf_counter()
            for arr, cap in cases:
                text = fn(arr)
                if cap:
                    h, t = recovered(cap, text)
                    hit, tot = hit + h, tot + t
            sync()
            sec = time.perf_counter() - t0
            row[f"{label}_img_per_s"] = round(len(cases) / sec, 2)
            if tot:
                row[f"{label}_words"] = f"{hit}/{tot}"
            print(f"ocr {name} {label}: {len(cases) / sec:.2f} img/s" + (f", words {hit}/{tot}" if tot else ""), flush=True)
        res[name] = row
    out["ocr"] = res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["vision", "ocr"])
    ap.add_argument("--images", default=str(ROOT / "data" / "landmark_corpus" / "images"))
    ap.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "realsample"))
    ap.add_argument("--files", type=int, default=4000, help="files embedded by the embed_paths pipeline")
    ap.add_argument("--synthetic", type=int, default=30, help="captioned photos for the OCR word check")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the script, no figures")
    args = ap.parse_args()
    global DEV, SMOKE
    if args.smoke:
        DEV, SMOKE = torch.device("cpu"), True
        args.files, args.synthetic = 16, 1
    elif not torch.cuda.is_available():
        sys.exit("no CUDA device: these figures are GPU figures (--smoke checks the script on the CPU)")
    out: dict = {"machine": device_facts(), "what": args.what}
    print(json.dumps(out["machine"]), flush=True)
    sections = ([("embeddings", lambda: bench_embeddings(image_files(Path(args.images)), out, args.files)),
                 ("training", lambda: bench_training(Path(args.images), out)),
                 ("exact_search", lambda: bench_exact_search(out, n=20_000 if SMOKE else 1_000_000))]
                if args.what == "vision" else [("ocr", lambda: bench_ocr(Path(args.photos), out, args.synthetic))])
    for name, fn in sections:
        t0 = time.perf_counter()
        try:
            fn()
        except Exception:  # one section failing must not lose the others' figures
            out[f"{name}_error"] = traceback.format_exc()
            print(f"{name} FAILED:\n{traceback.format_exc()}", flush=True)
        print(f"-- {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
