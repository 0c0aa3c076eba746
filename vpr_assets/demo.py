"""`vpr demo`: a generated postcard collection, ingested as two batches and materialised end to end.

Runs go through the Dagster instance in DAGSTER_HOME (the project's dagster_home/ by default), so
afterwards `dagster dev` shows every run, materialisation, check and the lineage.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from PIL import Image

from vpr_assets.core.images import synth


def build_demo_collection(out_dir: Path, n_per_place: int = 10, seed: int = 7) -> dict[str, Path]:
    """Write two batch folders (`demo_batch_1`, `demo_batch_2`) and a `manifest.tsv` (file, label).

    Batch 2 holds the later cards of each place plus a re-encoded copy of a batch-1 card (a
    near duplicate across batches), an exact copy (a duplicate file), poor scans, non-landmark
    cards and card backs.
    """
    out_dir = Path(out_dir)
    batches = {name: out_dir / name for name in ("demo_batch_1", "demo_batch_2")}
    for d in batches.values():
        d.mkdir(parents=True, exist_ok=True)
    descriptions: dict[str, list[tuple[str, str]]] = {b: [] for b in batches}
    manifest: list[tuple[str, str, str]] = []

    def save(batch: str, name: str, img: Image.Image, label: str, kind: str, desc: str | None = None,
             quality: int = 88) -> Path:
        path = batches[batch] / name
        img.save(path, format="JPEG", quality=quality)
        manifest.append((f"{batch}/{name}", label, kind))
        if desc:
            descriptions[batch].append((name, desc))
        return path

    half = max(1, n_per_place // 2)
    first_card = None
    for place in synth.DEMO_PLACES:
        for i in range(n_per_place):
            batch = "demo_batch_1" if i < half else "demo_batch_2"
            img = synth.landmark_card(place, i, seed)
            style = ["Colour lithograph", "Real photo card", "Collotype, hand-coloured", "Halftone print"][i % 4]
            path = save(batch, f"{place.key}_{i:02d}.jpg", img, place.key, "landmark", f"{place.description}. {style}.")
            first_card = first_card or (path, img, place)
    for i in range(3):
        save("demo_batch_1" if i % 2 == 0 else "demo_batch_2", f"greeting_{i:02d}.jpg", synth.greeting_card(i, seed),
             "none", "non_landmark", "Greetings card with flowers.")
        save("demo_batch_2" if i % 2 == 0 else "demo_batch_1", f"portrait_{i:02d}.jpg", synth.portrait_card(i, seed),
             "none", "non_landmark", "Studio portrait of a young woman.")
    for i in range(2):
        save(f"demo_batch_{i + 1}", f"back_{i:02d}.jpg", synth.card_back(i, seed), "none", "postcard_back")
    base = synth.landmark_card(synth.DEMO_PLACES[0], 99, seed)
    for kind in ("blurred", "black", "blank", "tiny"):
        save("demo_batch_2", f"poor_{kind}.jpg", synth.poor_scan(kind, base), "none", f"poor_{kind}")
    # duplicates across batches: an exact copy and a re-encoded, resized, slightly cropped copy
    src_path, src_img, place = first_card
    (batches["demo_batch_2"] / "exact_copy.jpg").write_bytes(src_path.read_bytes())
    manifest.append(("demo_batch_2/exact_copy.jpg", place.key, "duplicate_file"))
    w, h = src_img.size
    near = src_img.crop((int(w * 0.03), int(h * 0.03), int(w * 0.97), int(h * 0.97))).resize((int(w * 0.6), int(h * 0.6)))
    save("demo_batch_2", "near_copy.jpg", near, place.key, "near_duplicate", f"{place.description}. Reprint.", quality=60)

    for batch, rows in descriptions.items():
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["file", "description"])
        writer.writerows(rows)
        (batches[batch] / "descriptions.csv").write_text(buf.getvalue(), encoding="utf-8")
    with open(out_dir / "manifest.tsv", "w", newline="", encoding="utf-8") as fh:
        fh.write("file\tlabel\tkind\n")
        for row in manifest:
            fh.write("\t".join(row) + "\n")
    return batches


def build_eval_set(eval_dir: Path, n_per_place: int = 3, seed: int = 7, first: int = 100) -> Path:
    """A held-out dev set (cards never ingested) with `manifest.tsv`: what models are judged on.

    `first` picks which cards are drawn (100.. for the demo's dev set; benchmarks choose training
    settings on another draw, e.g. 200.., and report on this one)."""
    eval_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for place in synth.DEMO_PLACES:
        for i in range(first, first + n_per_place):
            name = f"{place.key}_{i}.jpg"
            synth.landmark_card(place, i, seed).save(eval_dir / name, quality=88)
            rows.append((name, place.key))
    for i in range(first, first + 3):
        synth.greeting_card(i, seed).save(eval_dir / f"greeting_{i}.jpg", quality=88)
        synth.portrait_card(i, seed).save(eval_dir / f"portrait_{i}.jpg", quality=88)
        rows += [(f"greeting_{i}.jpg", "none"), (f"portrait_{i}.jpg", "none")]
    with open(eval_dir / "manifest.tsv", "w", encoding="utf-8") as fh:
        fh.write("file\tlabel\n" + "".join(f"{f}\t{lab}\n" for f, lab in rows))
    return eval_dir / "manifest.tsv"


def asset_plan() -> dict[str, list[str]]:
    """Materialisable asset keys grouped by partitioning ("scan_batches", "model_variants", "none"),
    each group in graph order."""
    plan: dict[str, list[str]] = {"scan_batches": [], "model_variants": [], "none": []}
    for stage, keys in asset_stages(include_models=True):
        plan[stage].extend(keys)
    return plan


def asset_stages(include_models: bool = False) -> list[tuple[str, list[str]]]:
    """The graph as runs can take it: (partitioning, keys) stages in dependency order, each stage one
    partitioning ("scan_batches": one run per batch; "none": one run). A run holds one partitioning,
    so a per-batch asset that reads a collection-wide one (geo_words reads landmark_lexicon) starts
    a new stage after it; the assets one op writes stay together. Model variants are trained on
    their own unless `include_models`."""
    from vpr_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    kind: dict = {}
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if not node.is_materializable:
            continue
        pd_ = node.partitions_def
        k = "none" if pd_ is None else ("scan_batches" if getattr(pd_, "name", None) == "scan_batches" else "model_variants")
        if k != "model_variants" or include_models:
            kind[key] = k
    remaining = [k for k in graph.toposorted_asset_keys if k in kind]
    stages: list[tuple[str, list[str]]] = []
    while remaining:
        waiting = set(remaining)

        def ready(key, stage: list) -> tuple[list, bool]:
            # the keys one op writes stay in one stage (scan_quality and derived_scans): split, the op would run twice
            group = [k for k in graph.get(key).assets_def.keys if k in waiting]
            parents = {p for k in group for p in graph.get(k).parent_keys} - set(group)
            return group, len({kind[k] for k in group}) == 1 and not any(p in waiting and p not in stage for p in parents)

        lead = next(kind[k] for k in remaining if ready(k, [])[1])
        stage: list = []
        grown = True
        while grown:  # graph order first; repeat until no group becomes ready
            grown = False
            for key in remaining:
                group, ok = ready(key, stage)
                if key not in stage and ok and kind[key] == lead:
                    stage.extend(k for k in group if k not in stage)
                    grown = True
        stage.sort(key=remaining.index)
        stages.append((lead, [k.to_user_string() for k in stage]))
        remaining = [k for k in remaining if k not in stage]
    return stages


def automation_requests(cursor: str | None = None, keys: tuple[str, ...] = ("image_embeddings",)):
    """What the automation sensor would launch now for `keys`: (requested partitions, new cursor).
    Call once without a cursor to mark "now", then with that cursor after something changed."""
    import dagster as dg

    from vpr_assets.definitions import defs
    from vpr_assets.paths import ensure_dagster_home_env

    ensure_dagster_home_env()
    with dg.DagsterInstance.get() as instance:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor,
                                                   asset_selection=dg.AssetSelection.assets(*keys))
    partitions = sorted(p for k in keys for p in (result.get_requested_partitions(dg.AssetKey(k)) or set()) if p)
    return partitions, result.cursor


def run_demo(n_per_place: int = 10, seed: int = 7, train_variant: str = "image_clusters") -> int:
    from vpr_assets.core.ingest import copy_batch_into_inbox
    from vpr_assets.paths import dagster_home, inbox_dir, vpr_home
    from vpr_assets.runner import add_batch_partition, materialize_partitions
    from vpr_assets.storage import Catalog

    t0 = time.time()
    home = vpr_home()
    src = home / "demo_source"
    print(f"[1/4] drawing the demo collection ({len(synth.DEMO_PLACES)} places x {n_per_place} cards + others) in {src}")
    batches = build_demo_collection(src, n_per_place, seed)
    build_eval_set(home / "eval", seed=seed)
    print("[2/4] ingesting as two batches")
    for name, folder in batches.items():
        copy_batch_into_inbox(folder, inbox_dir(home), name)
        add_batch_partition(name)
    plan = asset_plan()
    print(f"[3/4] materialising through the instance in {dagster_home()}:")
    from tqdm import tqdm

    quiet = "WARNING"  # the full logs are in the instance (dagster dev -> Runs)
    for partitioning, keys in asset_stages():
        if partitioning == "scan_batches":
            print(f"      per batch: {', '.join(keys)}")
            for b in tqdm(list(batches), desc="      batches", unit="batch"):
                materialize_partitions(keys, [b], log_level=quiet)
        else:
            print(f"      whole collection: {', '.join(keys)}")
            materialize_partitions(keys, [None], log_level=quiet)
    collection = plan["none"]
    if plan["model_variants"]:
        print(f"[4/4] training the {train_variant!r} model, registering it in MLflow, promotion check")
        _, before = automation_requests()
        res = materialize_partitions(plan["model_variants"], [train_variant], raise_on_error=False, log_level=quiet)[0]
        promoted = all(e.passed for e in res.get_asset_check_evaluations()) and res.success
        if promoted:
            from vpr_assets.core.active_model import model_version_label

            champion = model_version_label(home)
            print(f"      the new model beat the pretrained embedder: champion_model moved the alias to {champion}.")
            print("      image_embeddings follows champion_alias; the automation sensor re-embeds:")
            for partition in automation_requests(before)[0]:
                materialize_partitions(["image_embeddings"], [partition], tags={"vpr/champion": champion},
                                       log_level=quiet)
                print(f"        re-embedded {partition} with {champion}")
            materialize_partitions(collection, [None], log_level=quiet)
            print(f"      the index and the clusters followed: {', '.join(collection)}")
        else:
            print("      the new model did not beat the current champion/pretrained embedder: kept as candidate.")
    cat = Catalog(home)
    print(f"\nDone in {time.time() - t0:.0f} s. Catalog: {cat.db_path}")
    with cat.connect() as con:
        for t in cat.tables():
            n = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            print(f"  {t:<22} {n:>6} rows")
        if "scan_rejects" in cat.tables():
            for reason, n in con.execute("SELECT reason, count(*) FROM scan_rejects GROUP BY 1 ORDER BY 2 DESC").fetchall():
                print(f"    rejected: {reason:<26} {n}")
        if "evaluations" in cat.tables():
            print("\n  evaluation on the held-out dev set (eval/manifest.tsv):")
            for mv, m5, acc in con.execute("""SELECT model_version, max(value) FILTER (metric = 'mAP@5'),
                    max(value) FILTER (metric = 'landmark_accuracy') FROM evaluations
                    GROUP BY evaluation_id, model_version ORDER BY evaluation_id""").fetchall():
                print(f"    {mv:<34} mAP@5 {m5:.3f}  landmark accuracy {acc:.3f}")
    print("\nOpen the Dagster UI on the same instance:")
    print(f"  DAGSTER_HOME={dagster_home()} VPR_HOME={home} .venv/bin/dagster dev -w workspace.yaml")
    print(f"Open the MLflow UI on the same store:\n  .venv/bin/mlflow ui --backend-store-uri sqlite:///{home}/mlflow.db")
    print(f"Query the catalog:\n  duckdb {cat.db_path}  (or: .venv/bin/python -c \"import duckdb; print(duckdb.connect('{cat.db_path}', read_only=True).sql('from raw_scans'))\")")
    return 0
