"""Search on real photographs: a held-back photo of a landmark finds its landmark, a held-back
distractor is answered `non-landmark`. The store holds the other real sample photos, embedded with
the pretrained model and clustered (real photos are less alike than printed cards: the clustering
threshold here is 0.3 on centred vectors, min size 3)."""

from __future__ import annotations

import shutil

import dagster as dg
import pandas as pd
import pytest

from vpr_assets.runner import materialize_partitions
from vpr_assets.storage import Catalog

pytestmark = pytest.mark.slow

HELD_BACK_LANDMARK = "piazza_san_marco__5.jpg"
HELD_BACK_DISTRACTOR = "none__cat_chelsea.png"


def test_held_back_photo_finds_its_landmark_and_a_distractor_does_not(realsample_dir, vpr_home, dagster_home):
    from vpr_assets.core.search import SearchEngine

    manifest = pd.read_csv(realsample_dir / "MANIFEST.tsv", sep="\t")
    inbox = vpr_home / "inbox" / "real"
    inbox.mkdir(parents=True)
    for f in manifest.file:
        if f not in (HELD_BACK_LANDMARK, HELD_BACK_DISTRACTOR):
            shutil.copy(realsample_dir / f, inbox / f)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("scan_batches", ["real"])
    cfg = {"ops": {"image_embeddings": {"config": {"num_workers": 0}}}}
    assert materialize_partitions(["raw_scans", "scan_rejects", "image_embeddings"], ["real"], run_config=cfg)[0].success
    cfg = {"ops": {"landmark_clusters": {"config": {"pretrained_threshold": 0.3, "min_size": 3, "k": 10}}}}
    assert materialize_partitions(["landmark_clusters", "faiss_index"], [None], run_config=cfg)[0].success

    cat = Catalog(vpr_home)
    clusters = cat.query("SELECT c.cluster_name, r.file_name FROM landmark_clusters c JOIN raw_scans r USING (scan_id)")
    label = dict(zip(manifest.file, manifest.label))
    engine = SearchEngine(vpr_home)

    hit = engine.search_image(realsample_dir / HELD_BACK_LANDMARK, k=5)
    assert hit["prediction"] != "non-landmark", hit
    members = clusters[clusters.cluster_name == hit["prediction"]].file_name
    assert (members.map(label) == "piazza_san_marco").mean() > 0.5, (hit["prediction"], list(members))
    assert label[hit["results"][0]["file_name"]] == "piazza_san_marco"

    miss = engine.search_image(realsample_dir / HELD_BACK_DISTRACTOR, k=5)
    assert miss["prediction"] == "non-landmark", miss
