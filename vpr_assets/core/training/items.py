"""Training items for each variant, from the landmark clusters and an optional external manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vpr_assets.core.training.data import TrainItem
from vpr_assets.core.training.variants import text_for_sources
from vpr_assets.core.training.variants import variant as variant_of
from vpr_assets.storage import Catalog


def card_texts(cat: Catalog, scan_ids: list[str], sources: tuple[str, ...]) -> list[str | None]:
    """The text a variant sees for each card (`variants.text_for_sources`: OCR text and/or the
    human description), the same text `text_embeddings` stores for that source set."""
    ocr = {}
    if "ocr" in sources and cat.has("ocr_text"):
        df = cat.read("ocr_text", columns=["scan_id", "text"])
        ocr = dict(zip(df.scan_id, df.text))
    desc = {}
    if "description" in sources and cat.has("raw_scans"):
        df = cat.read("raw_scans", columns=["scan_id", "description"])
        desc = dict(zip(df.scan_id, df.description))
    return [text_for_sources(sources, ocr.get(s), desc.get(s)) for s in scan_ids]


def training_items(cat: Catalog, home: Path, variant: str, external_manifest: str = "",
                   external_images_dir: str = "", external_split: str = "train") -> tuple[list[TrainItem], dict]:
    """Items for `variant`; returns (items, summary of where they came from). The external manifest
    (the GLDv2 role: e.g. data/landmark_corpus/MANIFEST.tsv) gives its `external_split` rows only,
    so its dev images stay unseen."""
    spec = variant_of(variant)
    items: list[TrainItem] = []
    summary = {"cluster_cards": 0, "external_images": 0, "with_text": 0}
    if spec.clusters and cat.has("landmark_clusters"):
        lc = cat.query("""SELECT c.scan_id, c.cluster_name, r.path FROM landmark_clusters c
                          JOIN raw_scans r USING (scan_id) WHERE c.status = 'landmark'
                          ORDER BY c.scan_id""")  # a stable order: training is deterministic given a seed
        texts = card_texts(cat, list(lc.scan_id), spec.text_sources) if spec.uses_text else [None] * len(lc)
        vecs: dict[int, np.ndarray] = {}
        if spec.uses_text and any(texts):
            from vpr_assets.core.text.text_embeddings import embed_texts

            v, idx = embed_texts(texts)
            vecs = {i: v[j] for j, i in enumerate(idx)}
        for i, row in enumerate(lc.itertuples()):
            items.append(TrainItem(str(home / row.path), f"cluster:{row.cluster_name}", vecs.get(i)))
        summary["cluster_cards"] = len(lc)
        summary["with_text"] = len(vecs)
    if external_manifest:
        from vpr_assets.core.evaluation import read_manifest

        m = read_manifest(external_manifest, external_images_dir or None, split=external_split or None)
        for p, lab in zip(m.paths(), m.labels):
            if lab != "none":
                items.append(TrainItem(str(p), f"external:{lab}"))
                summary["external_images"] += 1
    return items, summary
