"""`vpr`: the command-line entry point (ingest, demo, status, search, evaluate, serve, models).

Every command honours VPR_HOME and DAGSTER_HOME, falling back to the project's own vpr_data/ and
dagster_home/. Heavy imports happen inside the commands so `vpr --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def cmd_ingest(args: argparse.Namespace) -> int:
    from vpr_assets.core.ingest import copy_batch_into_inbox
    from vpr_assets.paths import inbox_dir, vpr_home
    from vpr_assets.runner import add_batch_partition

    source = Path(args.path)
    batch = args.batch or source.resolve().name
    from tqdm import tqdm

    from vpr_assets.core.ingest import read_not_copied, validate_batch_name

    validate_batch_name(batch)  # before anything is copied or registered
    n_files = sum(len(names) for _, _, names in os.walk(source)) if source.is_dir() else 0  # never follows links
    with tqdm(total=n_files, desc=f"copy {batch}", unit="file", disable=n_files < 50) as bar:
        target, created = copy_batch_into_inbox(source, inbox_dir(vpr_home()), batch, progress=bar.update)
    new_partition = add_batch_partition(batch)
    n = sum(len(names) for _, _, names in os.walk(target))
    refused = read_not_copied(target)
    print(f"batch {batch!r}: {'copied' if created else 'already in the inbox'} ({n} files) -> {target}")
    if refused:
        print(f"not copied ({len(refused)}; each becomes a scan_rejects row):", file=sys.stderr)
        for rel, reason, detail in refused[:20]:
            print(f"  {rel}: {reason} ({detail})", file=sys.stderr)
    print(f"partition {batch!r} {'registered' if new_partition else 'already registered'} in {vpr_home_hint()}")
    if args.materialize:
        from vpr_assets.runner import materialize_partitions

        materialize_partitions(["raw_scans", "scan_rejects"], [batch])
    else:
        print(f"next: dagster asset materialize -m vpr_assets.definitions --select raw_scans,scan_rejects --partition {batch!r}"
              "  (or let the new_scan_batches sensor pick it up in `dagster dev`)")
    return 0


def vpr_home_hint() -> str:
    from vpr_assets.paths import dagster_home

    return f"DAGSTER_HOME={dagster_home()}"


def cmd_status(args: argparse.Namespace) -> int:
    from vpr_assets.core.active_model import model_version_label
    from vpr_assets.core.vision.index_builds import latest_index_build
    from vpr_assets.paths import dagster_home, vpr_home
    from vpr_assets.storage import Catalog

    cat = Catalog(vpr_home())
    out = {"VPR_HOME": str(cat.home), "DAGSTER_HOME": str(dagster_home()), "catalog": str(cat.db_path),
           "model": model_version_label(cat.home), "index": None, "tables": {}}
    build = latest_index_build(cat)
    if build is not None:
        out["index"] = {k: build[k] for k in ("build_id", "path", "count", "model_version", "mode", "factory")}
        out["index"]["created_at"] = str(build["created_at"])
        out["index"]["count"] = int(out["index"]["count"])
    with cat.connect() as con:
        for t in cat.tables():
            out["tables"][t] = {"rows": con.execute(f"SELECT count(*) FROM {t}").fetchone()[0],
                                "partitions": len(cat.partitions(t))}
    out["evaluation"] = _evaluation_status(cat)
    out["curation"] = _curation_status(cat)
    out["ocr"] = _ocr_status(cat)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"VPR_HOME     {out['VPR_HOME']}\nDAGSTER_HOME {out['DAGSTER_HOME']}\ncatalog      {out['catalog']}")
        print(f"model        {out['model']}  (embeds new scans and queries)")
        ix = out["index"]
        print(f"index        {ix['count']} cards, {ix['model_version']}, built {ix['created_at']} ({ix['path']})"
              if ix else "index        none yet (materialise faiss_index)")
        ev = out["evaluation"]
        print(f"evaluation   mAP@5 {ev['mAP@5']:.3f} of {ev['model_version']} on {ev['manifest']} ({ev['evaluated_at']})"
              if ev.get("evaluated") else f"evaluation   none: {ev['reason']}")
        oc = out["ocr"]
        if oc["cards"]:
            print(f"ocr          {oc['cards'].get(oc['pipeline'], 0)} cards read by {oc['pipeline']} (current)"
                  + (f", {oc['older']} by older pipelines ({', '.join(f'{v}: {n}' for v, n in oc['cards'].items() if v != oc['pipeline'])}):"
                     " a backfill of ocr_text reads them again" if oc["older"] else ""))
        cu = out["curation"]
        print(f"curation     {cu['card_decisions']} card decisions, {cu['labels_from_the_browser']} labels from the browser, "
              f"{cu['landmark_decisions']} landmark decisions"
              + (f" ({cu['landmark_decisions_not_applied']} could not apply: see /map of vpr serve)"
                 if cu["landmark_decisions_not_applied"] else ""))
        for t, v in out["tables"].items():
            print(f"  {t:<22} {v['rows']:>8} rows  {v['partitions']:>4} partitions")
    return 0


def _curation_status(cat) -> dict:
    """How many curator decisions the collection holds (hand-edited files and the browser's logs; no
    scan table is read, so it stays quick on a large collection), and how many landmark decisions
    the last clustering could not apply."""
    from vpr_assets.core.browse import landmark_decisions, unapplied_landmark_decisions
    from vpr_assets.core.curation.curator_files import DECISIONS_FILE, LABELS_LOG, read_decisions, read_log

    decisions = read_decisions(cat.home / DECISIONS_FILE)
    on_landmarks = landmark_decisions(cat)
    return {"card_decisions": len(decisions.keep) + len(decisions.reject) + len(decisions.not_duplicates),
            "labels_from_the_browser": len(read_log(cat.home / LABELS_LOG)),
            "landmark_decisions": len(on_landmarks),
            "landmark_decisions_not_applied":
                len(unapplied_landmark_decisions(cat, on_landmarks)) if cat.has("landmark_clusters") else 0}


def _ocr_status(cat) -> dict:
    """Which OCR pipeline read the collection's cards: after an OCR change, the cards still on an older one."""
    from vpr_assets.core.collection_reads import ocr_pipeline_versions
    from vpr_assets.core.text.ocr_version import OCR_PIPELINE_VERSION

    cards = ocr_pipeline_versions(cat)
    return {"pipeline": OCR_PIPELINE_VERSION, "cards": cards,
            "older": sum(n for v, n in cards.items() if v != OCR_PIPELINE_VERSION)}


def _evaluation_status(cat) -> dict:
    """The latest evaluation, or why there is none (a new collection has no dev manifest yet)."""
    from vpr_assets.core.evaluation_records import default_manifest

    if cat.has("evaluations"):
        df = cat.query("""SELECT evaluation_id, any_value(model_version) AS model_version, any_value(manifest) AS manifest,
                                 max(evaluated_at) AS evaluated_at, max(value) FILTER (metric = 'mAP@5') AS map5
                          FROM evaluations GROUP BY 1 ORDER BY evaluated_at DESC LIMIT 1""")
        if len(df):
            r = df.iloc[0]
            return {"evaluated": True, "evaluation_id": r.evaluation_id, "model_version": r.model_version,
                    "manifest": r.manifest, "evaluated_at": str(r.evaluated_at),
                    "mAP@5": None if r.map5 != r.map5 else float(r.map5)}
    manifest = default_manifest(cat.home)
    if manifest is None:
        return {"evaluated": False, "reason": f"no dev manifest: put a labelled one at {cat.home / 'eval' / 'manifest.tsv'}"}
    return {"evaluated": False, "reason": f"not evaluated yet (dev manifest {manifest}): materialise evaluations"}


def cmd_recover(args: argparse.Namespace) -> int:
    """Free pool slots held by ended runs or runs whose process was killed (issue #15)."""
    from dagster import DagsterInstance

    from vpr_assets.defs.recovery import reconcile_pool_slots
    from vpr_assets.paths import ensure_dagster_home_env

    ensure_dagster_home_env()
    with DagsterInstance.get() as instance:
        done = reconcile_pool_slots(instance)
    print(f"runs marked failed (process gone): {len(done.failed_runs)} {done.failed_runs}")
    print(f"runs whose pool slots were freed:  {len(done.freed_runs)} {done.freed_runs}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vpr_assets.demo import run_demo

    return run_demo(n_per_place=args.per_place, seed=args.seed)


# --- search, evaluation, models, serving ---------------------------------------------------------


def _json_safe(obj):
    """NaN/inf -> None so the output is strict JSON."""
    import math

    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _print_json(obj) -> None:
    print(json.dumps(_json_safe(obj), ensure_ascii=False, indent=2))


def cmd_search(args: argparse.Namespace) -> int:
    import contextlib

    from vpr_assets.core.search import SearchConfig, SearchEngine
    from vpr_assets.paths import embedder_export_cache, ocr_tools, vpr_home

    image = Path(args.image)
    if not image.is_file():
        raise FileNotFoundError(f"no such image file: {image}")
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the answer
        engine = SearchEngine(vpr_home(), SearchConfig(threshold=args.threshold, ocr_tools=ocr_tools(),
                                                       embedder_cache=embedder_export_cache()))
        res = engine.search_image(image, k=args.k)  # read with the engine's byte cap, never whole
    if args.json:
        _print_json(res)
        return 0
    lm = res["landmark"]
    print(f"prediction: {res['prediction']}"
          + (f"  ({lm['votes']} votes, confidence {lm['confidence']:.2f})" if lm else f"  ({res['reason']})"))
    if lm and lm.get("places"):
        print("places:     " + ", ".join(f"{p.get('name')} ({p.get('country', '')})" for p in lm["places"]))
    print(f"threshold:  {res['threshold']:.4f} ({res['threshold_source']}), best score {res['top_score']:.4f}, "
          f"model {res['model_version']}")
    for r in res["results"]:
        print(f"  {r['rank']:>3}  {r['score']:.4f}  {str(r['cluster_name'] or '-'):<28.28} {r['batch']}/{r['file_name']}")
    return 0


def cmd_landmark(args: argparse.Namespace) -> int:
    import contextlib

    from vpr_assets.core.search import SearchEngine
    from vpr_assets.paths import vpr_home

    with contextlib.redirect_stdout(sys.stderr):
        res = SearchEngine(vpr_home()).search_landmark(args.name, k=args.k)
    if args.json:
        _print_json(res)
        return 0 if res["matches"] else 1  # the same exit status with and without --json
    if not res["matches"]:
        print(f"no landmark matches {args.name!r}")
        return 1
    for m in res["matches"]:
        print(f"{m['name']}  ({m['size']} cards; matched on {m['matched_on']} {m['matched_text']!r}, {m['match_score']:.0f}/100)")
        for c in m["cards"]:
            sim = "  -   " if c["similarity"] is None else f"{c['similarity']:.4f}"
            print(f"  {sim}  {c['batch']}/{c['file_name']}{'  (representative)' if c['is_representative'] else ''}")
    return 0


def _model_for(home: Path, spec: str | None):
    """--model: "pretrained:NAME", a registry version "3" or "vpr_landmark_recognizer/3"; default:
    the champion, else the pretrained embedder."""
    from vpr_assets.core.active_model import REGISTERED_MODEL, active_model, model_version_label

    if not spec:
        label = model_version_label(home)
        return active_model(home, label)
    spec = spec.strip()
    if spec.startswith("pretrained:"):
        try:
            return active_model(home, spec)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"unknown pretrained model in {spec!r}: {exc}") from None
    name, _, version = spec.rpartition("/")
    if name and name != REGISTERED_MODEL:
        raise ValueError(f"unknown registered model {name!r} (this project registers {REGISTERED_MODEL!r})")
    if not version.isdigit():
        raise ValueError(f"--model must be 'pretrained:NAME', a version number or '{REGISTERED_MODEL}/N', got {spec!r}")
    if not (home / "mlflow.db").exists():
        raise ValueError(f"no model registry in {home}: no version {version} to evaluate")
    try:
        return active_model(home, version)
    except Exception as exc:  # MLflow raises its own type for a missing version
        raise ValueError(f"cannot load {REGISTERED_MODEL} version {version}: {exc}") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    import contextlib

    import numpy as np
    from tqdm import tqdm

    from vpr_assets.core.evaluation import embed_fn_for, evaluate_manifest, flat_figures, manifest_descriptions, read_manifest
    from vpr_assets.paths import ocr_tools, vpr_home
    from vpr_assets.storage import Catalog
    from vpr_assets.storage.atomic import atomic_path

    home = vpr_home()
    manifest_path = Path(args.manifest)
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no such manifest: {manifest_path}")
    if args.images and not Path(args.images).is_dir():
        raise FileNotFoundError(f"no such images folder: {args.images}")
    manifest = read_manifest(manifest_path, args.images)
    from vpr_assets.core.evaluation import MIN_IMAGES

    if len(manifest.files) < MIN_IMAGES:  # before any model is loaded
        raise ValueError(f"{manifest_path}: {len(manifest.files)} usable image(s); an evaluation needs at least "
                         f"{MIN_IMAGES} (every image queries the others); problems: {manifest.problems[:3]}")
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the figures (MLflow, logs -> stderr)
        from vpr_assets.core.collection_reads import text_vectors_by_scan
        from vpr_assets.core.evaluation_records import record_evaluation

        cat = Catalog(home)
        model = _model_for(home, args.model)
        base = embed_fn_for(model, args.image_size or None, text_vectors_by_scan(cat, model.text_sources),
                            read_captions=not args.no_captions, descriptions=manifest_descriptions(manifest),
                            ocr_tools=ocr_tools(home))

        def embed(paths):
            vecs, oks = [], []
            chunk = 32
            for start in tqdm(range(0, len(paths), chunk), desc=f"embed {len(paths)} images", unit="batch",
                              file=sys.stderr, disable=args.no_progress):
                v, ok = base(paths[start:start + chunk])
                vecs.append(np.asarray(v, np.float32))
                oks.append(np.asarray(ok, bool))
            return np.concatenate(vecs), np.concatenate(oks)

        from vpr_assets.core.vision.rerank import retrieval_config_from_args

        retrieval = retrieval_config_from_args(args)
        from vpr_assets.core.evaluation import landmark_score_fn

        scorer = None if args.no_landmark_score or args.threshold is not None else landmark_score_fn()
        result = evaluate_manifest(manifest, embed, threshold=args.threshold, retrieval=retrieval, landmark_score=scorer)
        figures = flat_figures(result.metrics)
        params = {"image_size": args.image_size, "threshold": args.threshold, "captions": not args.no_captions,
                  "landmark_score": scorer is not None, "retrieval": retrieval.describe() if retrieval else "cosine",
                  "images": len(manifest.files)}
        eid = None if args.no_record else record_evaluation(
            cat, home, figures, model.version, str(manifest_path.resolve()), source="cli", params=params,
            manifest_frame=manifest.frame())["evaluation_id"]
    if args.rankings:
        out = Path(args.rankings)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(result.rankings, ensure_ascii=False, indent=1), encoding="utf-8")
    summary = {**figures, "threshold": result.threshold, "threshold_chosen_on_data": args.threshold is None,
               "model_version": model.version, "manifest": str(manifest_path), "evaluation_id": eid,
               "manifest_problems": manifest.problems, "rankings": str(args.rankings) if args.rankings else None}
    if args.json:
        _print_json(summary)
        return 0
    print(f"model {model.version} on {manifest_path} ({figures.get('n_images', 0):.0f} images, "
          f"{figures.get('n_queries', 0):.0f} landmark queries, {len(manifest.problems)} manifest problems)")
    for p in manifest.problems[:5]:
        print(f"  skipped: {p}")
    ks = (1, 3, 5, 10)
    print(f"  {'k':>4} {'P@k':>7} {'Recall@k':>9} {'RecCap@k':>9} {'mAP@k':>7}")
    for k in ks:
        vals = [figures.get(f"{m}@{k}", float("nan")) for m in ("P", "Recall", "RecallCapped", "mAP")]
        print(f"  {k:>4} " + " ".join(f"{v:>{w}.4f}" for v, w in zip(vals, (7, 9, 9, 7))))
    for key in ("R-precision", "landmark_accuracy", "NonLandmarkPrecision", "NonLandmarkRecall"):
        print(f"  {key:<22} {figures.get(key, float('nan')):.4f}")
    print(f"  non-landmark threshold {result.threshold:.4f} ({'chosen on this data' if args.threshold is None else 'given'})")
    if eid:
        print(f"recorded as evaluation {eid} (evaluations table + MLflow experiment vpr_evaluations)")
    if args.rankings:
        print(f"rankings written to {args.rankings}")
    return 0


HIDDEN_TAGS = ("promotion_figures", "mAP_at_5", "landmark_accuracy")  # long JSON, or repeated under figures


def cmd_models(args: argparse.Namespace) -> int:
    import contextlib

    from vpr_assets.paths import vpr_home

    home = vpr_home()
    versions = []
    if (home / "mlflow.db").exists():
        with contextlib.redirect_stdout(sys.stderr):
            from vpr_assets.core.tracking import ModelRegistry

            versions = ModelRegistry(home).versions()
    if args.json:
        _print_json({"home": str(home), "versions": versions})
        return 0
    if not versions:
        print(f"no registered models in {home} (the pretrained embedder is used)")
        return 0
    for v in versions:
        print(f"{v['model']}/{v['version']}  aliases: {', '.join(v['aliases']) or '-'}  run {v['run_id']}")
        figs = {k: val for k, val in v["metrics"].items() if any(s in k for s in ("mAP", "accuracy", "P_at_1", "R_precision"))}
        if figs:
            print("    figures: " + ", ".join(f"{k} {val:.4f}" for k, val in sorted(figs.items())))
        for k, val in sorted(v["tags"].items()):  # lineage: Dagster run/asset/partition, input data versions, ...
            if k not in HIDDEN_TAGS:
                print(f"    {k}: {val if len(val) <= 120 else val[:117] + '...'}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from vpr_assets.api.server import ApiConfig, serve
    from vpr_assets.core.search import SearchConfig
    from vpr_assets.paths import embedder_export_cache, vpr_home

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach it can search and upload", file=sys.stderr)
    cfg = ApiConfig(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                    search=SearchConfig(threshold=args.threshold, embedder_cache=embedder_export_cache()))
    home = vpr_home()
    print(f"vpr serve: data root {home}; open http://{args.host}:{args.port}/", file=sys.stderr)
    serve(home, args.host, args.port, cfg, log_level=args.log_level)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vpr", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="copy a folder of scans into the inbox as a new batch (partition)")
    s.add_argument("path", help="folder with image files and an optional descriptions.csv (file,description)")
    s.add_argument("--batch", help="batch name (default: the folder's name)")
    s.add_argument("--materialize", action="store_true", help="also materialise raw_scans for the batch now")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("status", help="data root, instance and catalog tables")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("recover", help="free pool slots held by killed or ended runs (re-runs wait for them otherwise)")
    s.set_defaults(func=cmd_recover)

    s = sub.add_parser("demo", help="generate a demo collection, ingest it as two batches and materialise the graph")
    s.add_argument("--per-place", type=int, default=10, help="cards per demo place")
    s.add_argument("--seed", type=int, default=7)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("search", help="the cards most like a picture, and the landmark it shows")
    s.add_argument("image", help="image file (JPEG, PNG, ...)")
    s.add_argument("--k", type=int, default=10, help="how many cards (default 10)")
    s.add_argument("--threshold", type=float, default=None,
                   help="non-landmark threshold (default: the latest evaluation's for the index's model)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("landmark", help="landmarks matching a name (fuzzy, accent-insensitive) with their cards")
    s.add_argument("name")
    s.add_argument("--k", type=int, default=50, help="cards per landmark (default 50)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_landmark)

    s = sub.add_parser("evaluate", help="retrieval figures of a model on a labelled manifest (file, label TSV)")
    s.add_argument("--manifest", required=True, help="TSV with columns file and label ('none' = no landmark)")
    s.add_argument("--images", help="folder the manifest's files are relative to (default: the manifest's folder)")
    s.add_argument("--model", help="'pretrained:lite0_gem512', a registry version '3' or 'vpr_landmark_recognizer/3' "
                                   "(default: the champion, else pretrained)")
    s.add_argument("--image-size", type=int, default=0, help="embedding input size (default: the model's on this device)")
    s.add_argument("--threshold", type=float, default=None, help="fixed non-landmark threshold (default: chosen on the data)")
    s.add_argument("--rankings", help="write {query file: [gallery files, best first]} as JSON here")
    s.add_argument("--no-record", action="store_true", help="do not record in the evaluations table and MLflow")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--no-landmark-score", action="store_true",
                   help="non-landmark rejection on top-1 similarity alone (default: combined with the landmark score)")
    s.add_argument("--no-captions", action="store_true",
                   help="models that fuse text: do not read each image's caption (only the collection's text is fused)")
    s.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    from vpr_assets.core.vision.rerank import add_retrieval_arguments

    add_retrieval_arguments(s)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("models", help="registered model versions with aliases, figures and lineage")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("serve", help="the search API and upload page (FastAPI + uvicorn)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--max-upload-mb", type=float, default=10.0, help="largest accepted upload (default 10 MB)")
    s.add_argument("--max-pixels", type=int, default=80_000_000, help="largest accepted image in pixels")
    s.add_argument("--threshold", type=float, default=None, help="fixed non-landmark threshold")
    s.add_argument("--log-level", default="info")
    s.set_defaults(func=cmd_serve)
    return p


def _error(args: argparse.Namespace, exc: Exception, status: int, with_type: bool = False) -> int:
    """An error as a message (stderr), or with --json as one JSON object on stdout, which is what a
    script reading --json output parses; the exit status is the same either way."""
    message = f"{type(exc).__name__}: {exc}" if with_type else str(exc)
    if getattr(args, "json", False):
        print(json.dumps({"error": message, "type": type(exc).__name__, "command": args.command, "exit": status}))
    else:
        print(f"vpr {args.command}: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        return _error(args, exc, 2)
    except OSError as exc:  # permissions, a full disk, ...: a message, not a traceback
        return _error(args, exc, 1, with_type=True)


if __name__ == "__main__":
    sys.exit(main())
