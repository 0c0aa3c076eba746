"""Search the collection by picture or by place name, with the current index and model.

Why it is shaped like this:
- The index, the model that built it, the landmark clusters and the scan metadata are loaded once
  and kept; every call compares the Parquet files' signatures (stat only, no read) and reloads
  what changed. The model is always the one named by the index's `model_version`: a query
  embedded by another model would land in the wrong space.
- "Which landmark is this?" is a score-weighted vote of the top neighbours that belong to
  `status='landmark'` clusters. A query whose best neighbour scores below the non-landmark
  threshold is answered `non-landmark`. The threshold is chosen on data by the evaluation
  (`evaluations.non_landmark_threshold` of the same model version); without one a constant
  measured on the demo collection is used. The result always says which one was used.
- Place names are matched case- and accent-insensitively, exactly first, then fuzzily
  (rapidfuzz), against cluster names, the places clusters were named from, and the geo-words
  places of their members (OCR'd captions).
- Every bad input raises a `SearchError` (a ValueError) with a short `reason`, so the CLI and the
  HTTP API can turn it into a clear message and status code.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vpr_assets.core.files import FileRefused, read_regular_file
from vpr_assets.core.images.decode import DEFAULT_MAX_PIXELS, ImageRejected, _to_8bit_rgb, decode_image, probe_image

log = logging.getLogger(__name__)

NON_LANDMARK = "non-landmark"
# Fallback when no evaluation recorded a threshold for the index's model version (pretrained
# lite0_gem512, measured): on the demo collection every held-out landmark card's best neighbour in
# the index scores >= 0.82 and the dev-set evaluation chose 0.76; on the real photos
# (realsample/MANIFEST.tsv, `vpr evaluate`) the data-chosen threshold is 0.61. Real photos score
# lower than printed cards, so the fallback is the lower, safe value: it must not reject true
# landmarks. Greeting and portrait cards cannot be told apart by score with the pretrained
# embedder (they match each other at 0.90-0.99); the vote does that: their neighbours belong to
# no landmark cluster.
FALLBACK_THRESHOLD = 0.60
WATCHED_TABLES = ("faiss_indexes", "landmark_clusters", "raw_scans", "geo_words", "evaluations")


# --- errors --------------------------------------------------------------------------------------


class SearchError(ValueError):
    """A query that cannot be answered; `reason` is short and machine-readable."""

    reason = "bad_query"

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        if reason:
            self.reason = reason


class NoIndexError(SearchError):
    """No search index has been built yet (materialise `faiss_index`)."""

    reason = "no_index"


class BadImageError(SearchError):
    """The uploaded bytes are not a usable image (`reason` from the safe decoder)."""

    reason = "not_an_image"


class ImageTooLargeError(BadImageError):
    """Too many bytes or pixels."""

    reason = "too_large"


class BadQueryError(SearchError):
    """An empty or malformed text query, or a bad parameter."""

    reason = "bad_query"


# --- configuration -------------------------------------------------------------------------------


@dataclass
class SearchConfig:
    threshold: float | None = None  # set to override the evaluation's / fallback threshold
    fallback_threshold: float = FALLBACK_THRESHOLD
    vote_neighbours: int = 5  # how many top neighbours vote for the landmark
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_k: int = 200
    fuzzy_cutoff: float = 80.0  # rapidfuzz score (0-100) a name must reach to match
    max_landmarks: int = 10  # landmarks returned by a name search
    read_captions: bool = True  # text-fused models: read the query's printed caption and fuse it, as the index was built
    # refused from the header before any decoding, outside the search lock: memory a decode costs
    # (pixels x bytes per pixel of the file's mode + the RGB copy; see decode.ImageHeader)
    max_decode_bytes: int = 256 * 1024 * 1024
    max_file_bytes: int = 50 * 1024 * 1024  # a query picture read from a path (`vpr search`)
    # formats a query may be, sniffed from the content (never the declared type)
    query_formats: tuple = ("JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP", "DIB", "GIF", "AVIF")
    decode_slots: int = 2  # concurrent query decodes (each up to max_decode_bytes)
    min_name_chars: int = 3  # a shorter name matches everything fuzzily


# --- text normalisation --------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_name(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form: "Pão de Açúcar!" -> "pao de acucar"."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_ALNUM.sub(" ", stripped.casefold()).strip()


WORD_MATCH = 85.0  # a query word must be this close to one word of the name (typos pass, "paris"/"pariser" not)


def name_score(query: str, candidate: str) -> float:
    """0-100: 100 for equal normalised names, 95 when one contains the other as whole words, else
    the mean similarity of each query word to its closest word of the name (typos) when every query
    word has one within WORD_MATCH or one long word matches outright; otherwise at most 79, under any
    match cutoff ("Paris" must not find "Brandenburg Gate on Pariser" through a part of a word)."""
    from rapidfuzz import fuzz

    q, c = normalise_name(query), normalise_name(candidate)
    if not q or not c:
        return 0.0
    if q == c:
        return 100.0
    if f" {q} " in f" {c} " or (len(c) >= 4 and f" {c} " in f" {q} "):
        return 95.0
    words, qwords = c.split(), q.split()
    per_word = [max(fuzz.ratio(w, x) for x in words) for w in qwords]
    strong = any(p >= 90 and len(w) >= 5 for w, p in zip(qwords, per_word))  # "eiffel" in "eiffel tower"
    if min(per_word) >= WORD_MATCH or strong:
        return float(sum(per_word) / len(per_word))
    return float(min(fuzz.WRatio(q, c), 79.0))


# --- loaded state --------------------------------------------------------------------------------


@dataclass
class _Cluster:
    cluster_id: int
    name: str
    status: str
    size: int
    representative_scan_id: str
    places: list[dict]
    members: list[str] = field(default_factory=list)
    geo_places: set[str] = field(default_factory=set)


@dataclass
class _State:
    index_row: dict
    index: Any  # VectorIndex
    model: Any  # ActiveModel
    clusters: dict[int, _Cluster]
    cluster_of: dict[str, int]
    scans: dict[str, dict]
    threshold: float
    threshold_source: str
    evaluation_id: str | None
    signature: tuple
    positions: dict | None = None  # scan_id -> index row, built on first name search
    rule: Any = None  # rejection.NonLandmarkRule of that evaluation (similarity + landmark score), if any


def _table_signature(home: Path, tables=WATCHED_TABLES) -> tuple:
    """Cheap change detector: (table, file, mtime, size) for every Parquet file of the tables."""
    out = []
    for t in tables:
        d = home / "tables" / t
        if d.is_dir():
            for p in sorted(d.glob("*.parquet")):
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                out.append((t, p.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def evaluation_threshold(cat, model_version: str) -> tuple[float, str, str] | None:
    """(threshold, evaluation_id, source) of the latest evaluation of `model_version`, or None.

    The pipeline's own evaluation (source 'dagster', on the collection's curated dev set) wins over
    ad-hoc `vpr evaluate` runs, which may use a manifest of quite different pictures; those count
    only when the pipeline never evaluated this model version.
    """
    if not cat.has("evaluations"):
        return None
    df = cat.query(
        "SELECT evaluation_id, value, source FROM evaluations WHERE metric = 'non_landmark_threshold' "
        "AND model_version = ? AND isfinite(value) "
        "ORDER BY (source = 'dagster') DESC, evaluated_at DESC, evaluation_id DESC LIMIT 1",
        [model_version])
    if df.empty:
        return None
    return float(df.value[0]), str(df.evaluation_id[0]), str(df.source[0])


def evaluation_rule(cat, evaluation_id: str | None):
    """The non-landmark rule recorded with an evaluation (`rejection_*` figures), or None: used only
    where its cross-fitted precision and recall beat the similarity threshold's on that evaluation
    (on generated demo cards the landmark score helps little; on real photos it helps a lot)."""
    if not evaluation_id or not cat.has("evaluations"):
        return None
    from vpr_assets.core.rejection import NonLandmarkRule

    df = cat.query("SELECT metric, value FROM evaluations WHERE evaluation_id = ? AND (metric LIKE 'rejection_%' "
                   "OR metric LIKE 'NonLandmark%')", [evaluation_id])
    m = dict(zip(df.metric, df.value))
    combined = m.get("NonLandmarkPrecision", float("nan")) + m.get("NonLandmarkRecall", float("nan"))
    similarity = m.get("NonLandmarkPrecision_similarity", float("nan")) + m.get("NonLandmarkRecall_similarity", float("nan"))
    if not m.get("rejection_out_of_sample") or not combined > similarity:
        return None
    return NonLandmarkRule.from_metrics(m)


def query_landmark_score(image) -> float:
    """The landmark score of a query picture (the ImageNet prior `scan_quality` uses)."""
    from vpr_assets.core.curation.landmark_classifier import prior_scores

    return float(prior_scores([image])[0])


def _places_from_json(text) -> list[dict]:
    if not text:
        return []
    try:
        places = json.loads(text)
    except (TypeError, ValueError):
        return []
    return [p for p in places if isinstance(p, dict)] if isinstance(places, list) else []


def _clean(value):
    """JSON-friendly scalar (NaN/NaT/None -> None, numpy -> python)."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


class SearchEngine:
    """Search one data root by image or by place name (thread-safe; reloads when data changes)."""

    def __init__(self, home: str | Path, config: SearchConfig | None = None):
        self.home = Path(home).resolve()
        self.config = config or SearchConfig()
        self._lock = threading.RLock()
        self._decode_slots = threading.BoundedSemaphore(max(1, self.config.decode_slots))
        self._state: _State | None = None

    # -- loading ----------------------------------------------------------------------------------

    def _catalog(self):
        from vpr_assets.storage import Catalog

        return Catalog(self.home)

    def state(self) -> _State:
        """The loaded state, reloaded when a watched table's files changed since the last call."""
        with self._lock:
            sig = _table_signature(self.home)
            if self._state is None or self._state.signature != sig:
                self._state = self._load(sig, self._state)
            return self._state

    def _load(self, signature: tuple, previous: _State | None) -> _State:
        from vpr_assets.core.active_model import active_model
        from vpr_assets.core.vision.index import VectorIndex
        from vpr_assets.core.vision.index_builds import latest_index_build

        cat = self._catalog()
        row = latest_index_build(cat)
        if row is None:
            raise NoIndexError(f"no search index in {self.home}: materialise the faiss_index asset first")
        path = self.home / str(row["path"])
        same_index = previous is not None and previous.index_row.get("path") == row["path"] \
            and previous.index_row.get("build_id") == row.get("build_id")
        if same_index:
            index, model = previous.index, previous.model
        else:
            if not Path(str(path) + ".json").exists():
                raise NoIndexError(f"the current index {path} is missing from the data root")
            index = VectorIndex.load(path)
            model = active_model(self.home, str(row["model_version"]))
            log.info("search: loaded index %s (%d cards, model %s)", row["path"], index.count, model.version)

        scans: dict[str, dict] = {}
        if cat.has("raw_scans"):
            cols = ["scan_id", "batch", "path", "file_name", "description", "thumbnail"]
            df = cat.read("raw_scans")
            df = df[[c for c in cols if c in df.columns]].drop_duplicates("scan_id")
            scans = {r["scan_id"]: {k: _clean(v) for k, v in r.items()} for r in df.to_dict("records")}

        clusters: dict[int, _Cluster] = {}
        cluster_of: dict[str, int] = {}
        if cat.has("landmark_clusters"):
            lc = cat.read("landmark_clusters")
            for r in lc.to_dict("records"):
                cid = int(r["cluster_id"])
                c = clusters.get(cid)
                if c is None:
                    c = clusters[cid] = _Cluster(cid, str(r["cluster_name"]), str(r["status"]), int(r["cluster_size"]),
                                                 str(r["representative_scan_id"]), _places_from_json(r.get("places_json")))
                c.members.append(r["scan_id"])
                cluster_of[r["scan_id"]] = cid
        if clusters and cat.has("geo_words"):
            geo = cat.read("geo_words", columns=["scan_id", "places"])
            for sid, places in zip(geo.scan_id, geo.places):
                cid = cluster_of.get(sid)
                if cid is None or places is None:
                    continue
                for p in places:
                    name = p.get("name") if isinstance(p, dict) else None
                    if name:
                        clusters[cid].geo_places.add(str(name))

        version = str(row["model_version"])
        found = evaluation_threshold(cat, version)
        if self.config.threshold is not None:
            threshold, source, eid = float(self.config.threshold), "config", None
        elif found is not None:
            threshold, eid, by = found
            source = f"evaluation ({by})"
        else:
            threshold, source, eid = float(self.config.fallback_threshold), "fallback", None
        rule = evaluation_rule(cat, eid) if self.config.threshold is None else None
        return _State(row, index, model, clusters, cluster_of, scans, threshold, source, eid, signature,
                      previous.positions if same_index and previous is not None else None, rule)

    # -- helpers ----------------------------------------------------------------------------------

    def _card(self, st: _State, scan_id: str, score: float | None = None) -> dict:
        meta = st.scans.get(scan_id, {})
        cid = st.cluster_of.get(scan_id)
        c = st.clusters.get(cid) if cid is not None else None
        out = {"scan_id": scan_id}
        if score is not None:
            out["score"] = round(float(score), 6)
        out.update({
            "file_name": meta.get("file_name"), "batch": meta.get("batch"), "thumbnail": meta.get("thumbnail"),
            "description": meta.get("description"),
            "cluster_id": c.cluster_id if c else None, "cluster_name": c.name if c else None,
            "landmark": c.name if c is not None and c.status == "landmark" else None,
        })
        return out

    def _to_image(self, image):
        from PIL import Image

        if isinstance(image, (bytes, bytearray, memoryview)):
            data = bytes(image)
            try:
                head = probe_image(data)  # header only: format sniffed, cost known before decoding
                if head.format not in self.config.query_formats:
                    raise BadImageError(f"{head.format} images are not accepted as queries; send "
                                        f"{', '.join(self.config.query_formats)}", "unsupported_format")
                if head.width * head.height > self.config.max_pixels:
                    raise ImageRejected("too_many_pixels", f"{head.width}x{head.height} = {head.width * head.height:,} "
                                                           f"px > limit {self.config.max_pixels:,} px")
                if head.decode_bytes > self.config.max_decode_bytes:
                    raise ImageTooLargeError(
                        f"decoding this {head.width}x{head.height} {head.mode} image takes ~{head.decode_bytes >> 20} MiB "
                        f"> limit {self.config.max_decode_bytes >> 20} MiB", "too_costly")
                with self._decode_slots:
                    return decode_image(data, self.config.max_pixels).image
            except ImageRejected as exc:
                cls = ImageTooLargeError if exc.reason == "too_many_pixels" else BadImageError
                raise cls(f"not a usable image ({exc.reason}): {exc.detail}" if exc.detail else
                          f"not a usable image ({exc.reason})", exc.reason) from None
        if isinstance(image, (str, Path)):
            p = Path(image)
            if not p.exists():
                raise BadImageError(f"image file not found: {p}", "missing_file")
            try:
                data = read_regular_file(p, max_bytes=self.config.max_file_bytes)
            except FileRefused as exc:
                cls = ImageTooLargeError if exc.reason == "too_large" else BadImageError
                raise cls(f"{p}: {exc.detail}", exc.reason) from None
            except OSError as exc:
                raise BadImageError(f"{p}: {type(exc).__name__}: {exc}", "unreadable") from None
            return self._to_image(data)
        if isinstance(image, Image.Image):
            w, h = image.size
            if w * h > self.config.max_pixels:
                raise ImageTooLargeError(f"{w}x{h} = {w * h:,} px > limit {self.config.max_pixels:,} px", "too_many_pixels")
            if w < 1 or h < 1:
                raise BadImageError(f"empty image {w}x{h}", "unreadable")
            return _to_8bit_rgb(image)
        raise BadImageError(f"expected image bytes, a path or a PIL image, got {type(image).__name__}", "bad_type")

    def _check_k(self, k) -> int:
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise BadQueryError(f"k must be an integer, got {k!r}") from None
        if not 1 <= k <= self.config.max_k:
            raise BadQueryError(f"k must be between 1 and {self.config.max_k}, got {k}")
        return k

    def embed(self, image) -> np.ndarray:
        """One query vector in the index's space. For a text-fused model the query's caption is read
        (the OCR of `ocr_text`) and fused as the index fused the collection's cards
        (`core.query_text`); a picture without text is fused with 'no text'."""
        from vpr_assets.core.vision.embedder import embed_images

        st = self.state()
        im = self._to_image(image)
        vec = embed_images(st.model.embedder, [im])
        if bool(st.index_row.get("fused_text")) and st.model.recognizer is not None:
            import torch

            rec = st.model.recognizer
            text = None
            if self.config.read_captions:
                from vpr_assets.core.query_text import query_text_vectors, read_captions

                text = query_text_vectors(st.model.text_sources, read_captions([im]))[0]
            t = torch.from_numpy(np.asarray(text, np.float32)[None]) if text is not None else torch.zeros((1, rec.config.text_dim))
            with torch.no_grad():
                vec = rec.fuse(torch.from_numpy(vec), t, torch.tensor([1.0 if text is not None else 0.0])).numpy()
        return np.asarray(vec, dtype=np.float32)

    # -- search by image --------------------------------------------------------------------------

    def search_image(self, image, k: int = 10) -> dict:
        """Nearest cards to a picture, and the landmark it shows (or `non-landmark`)."""
        k = self._check_k(k)
        im = self._to_image(image)  # decoded before the lock: a costly picture never holds up other searches
        with self._lock:
            st = self.state()
            q = self.embed(im)
            n = max(k, self.config.vote_neighbours)
            scores, ids = st.index.search(q, n)
            # the evaluation's rule (similarity + landmark score) decides landmark-or-not when there is one
            landmark_score = query_landmark_score(im) if st.rule is not None and st.rule.uses_score else None
        scores, ids = scores[0][: len(ids[0])], ids[0]
        results = []
        for rank, (sid, s) in enumerate(zip(ids[:k], scores[:k]), start=1):
            results.append({"rank": rank, **self._card(st, sid, s)})
        accepted = None
        if st.rule is not None and len(ids):
            accepted = bool(st.rule.is_landmark([float(scores[0])], None if landmark_score is None else [landmark_score])[0])
        prediction = self._vote(st, ids, scores, accepted)
        return {
            "model_version": st.model.version, "index": st.index_row.get("build_id"), "index_size": st.index.count,
            "k": k, "threshold": st.threshold, "threshold_source": st.threshold_source,
            "threshold_evaluation_id": st.evaluation_id,
            "rejection": "rule (similarity + landmark score)" if st.rule is not None and st.rule.uses_score
            else ("rule (similarity)" if st.rule is not None else "threshold"),
            "landmark_score": landmark_score,
            "top_score": float(scores[0]) if len(scores) else None,
            "prediction": prediction["label"], "landmark": prediction["landmark"], "reason": prediction["reason"],
            "results": results,
        }

    def _vote(self, st: _State, ids: list, scores: np.ndarray, accepted: bool | None = None) -> dict:
        """`accepted`: the rejection rule's answer (None: the similarity threshold decides)."""
        if accepted is False:
            return {"label": NON_LANDMARK, "landmark": None,
                    "reason": "the non-landmark rule (top-1 similarity and landmark score) says no landmark"}
        if not len(ids) or (accepted is None and float(scores[0]) < st.threshold):
            return {"label": NON_LANDMARK, "landmark": None,
                    "reason": "best neighbour below the non-landmark threshold" if len(ids) else "empty index"}
        floor = st.threshold if accepted is None else float("-inf")  # an accepted query: every top neighbour votes
        votes: dict[int, float] = {}
        counts: dict[int, int] = {}
        for sid, s in zip(ids[: self.config.vote_neighbours], scores[: self.config.vote_neighbours]):
            cid = st.cluster_of.get(sid)
            c = st.clusters.get(cid) if cid is not None else None
            if c is None or c.status != "landmark" or float(s) < floor:
                continue
            votes[cid] = votes.get(cid, 0.0) + float(s)
            counts[cid] = counts.get(cid, 0) + 1
        if not votes:
            return {"label": NON_LANDMARK, "landmark": None,
                    "reason": "no neighbour above the threshold belongs to a landmark cluster"}
        best = max(votes, key=lambda c: (votes[c], counts[c]))
        c = st.clusters[best]
        rep = st.scans.get(c.representative_scan_id, {})
        landmark = {"cluster_id": c.cluster_id, "name": c.name, "size": c.size, "places": c.places,
                    "votes": counts[best], "confidence": round(votes[best] / sum(votes.values()), 4),
                    "representative_scan_id": c.representative_scan_id,
                    "representative_thumbnail": rep.get("thumbnail")}
        return {"label": c.name, "landmark": landmark, "reason": "score-weighted vote of the top neighbours"}

    # -- search by name ---------------------------------------------------------------------------

    def _positions(self, st: _State) -> dict:
        if st.positions is None:
            st.positions = {sid: i for i, sid in enumerate(st.index.reconstruct_ids(np.arange(st.index.count)))}
        return st.positions

    def _vectors(self, st: _State, scan_ids: list[str]) -> tuple[list[str], np.ndarray]:
        """Index vectors of the given cards (those the index holds), in the given order."""
        import faiss

        pos = self._positions(st)
        kept = [s for s in scan_ids if s in pos]
        if not kept:
            return [], np.zeros((0, st.index.dim), np.float32)
        idx = st.index.index
        try:
            ivf = faiss.extract_index_ivf(idx)
        except RuntimeError:
            ivf = None
        if ivf is not None and ivf.direct_map.type == faiss.DirectMap.NoMap:
            ivf.make_direct_map()
        vecs = np.stack([idx.reconstruct(int(pos[s])) for s in kept]).astype(np.float32)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return kept, vecs

    def neighbours(self, scan_id: str, k: int = 8) -> list[dict]:
        """The cards nearest to an indexed card (itself left out), best first; [] when the card is
        not in the index (a rejected or duplicate card, or one indexed since the last build)."""
        k = self._check_k(k)
        with self._lock:
            st = self.state()
            kept, vecs = self._vectors(st, [scan_id])
            if not kept:
                return []
            scores, ids = st.index.search(vecs, k + 1)
        out = [{"rank": 0, **self._card(st, sid, s)} for sid, s in zip(ids[0], scores[0]) if sid != scan_id][:k]
        for i, c in enumerate(out, start=1):
            c["rank"] = i
        return out

    def search_landmark(self, name: str, k: int = 50) -> dict:
        """Landmarks whose name or places match `name`, each with its cards ranked by similarity
        to the cluster's representative card (best first, at most k per landmark)."""
        if not isinstance(name, str) or not normalise_name(name):
            raise BadQueryError("give a landmark or place name (letters or digits)", "empty_name")
        if len(name) > 200:
            raise BadQueryError("name is too long (200 characters at most)", "name_too_long")
        if len(normalise_name(name).replace(" ", "")) < self.config.min_name_chars:
            raise BadQueryError(f"name is too short ({self.config.min_name_chars} letters or digits at least): "
                                "a shorter one matches every landmark", "name_too_short")
        k = self._check_k(k)
        with self._lock:
            st = self.state()
            found = []
            for c in st.clusters.values():
                if c.status != "landmark":
                    continue
                cands = [("cluster_name", c.name)] + \
                        [("place", str(p.get("name"))) for p in c.places if p.get("name")] + \
                        [("geo_words", g) for g in sorted(c.geo_places)]
                best = max(((name_score(name, text), src, text) for src, text in cands), key=lambda t: t[0])
                if best[0] >= self.config.fuzzy_cutoff:
                    found.append((best, c))
            found.sort(key=lambda t: (-t[0][0], -t[1].size, t[1].name))
            matches = []
            for (score, src, text), c in found[: self.config.max_landmarks]:
                matches.append({"cluster_id": c.cluster_id, "name": c.name, "match_score": round(score, 2),
                                "matched_on": src, "matched_text": text, "size": c.size, "places": c.places,
                                "representative_scan_id": c.representative_scan_id,
                                "representative_thumbnail": st.scans.get(c.representative_scan_id, {}).get("thumbnail"),
                                "cards": self._ranked_members(st, c, k)})
        return {"query": name, "normalised": normalise_name(name), "model_version": st.model.version,
                "n_matches": len(matches), "matches": matches}

    def _ranked_members(self, st: _State, c: _Cluster, k: int) -> list[dict]:
        members = [c.representative_scan_id] + [m for m in c.members if m != c.representative_scan_id]
        kept, vecs = self._vectors(st, members)
        if kept and kept[0] == c.representative_scan_id:
            sims = vecs @ vecs[0]
            order = np.argsort(-sims, kind="stable")
            ranked = [(kept[i], float(sims[i])) for i in order]
        else:  # representative not indexed: keep the table's order, no similarity
            ranked = [(m, None) for m in members]
        out = []
        for sid, s in ranked[:k]:
            card = self._card(st, sid)
            card["similarity"] = round(s, 6) if s is not None else None
            card["is_representative"] = sid == c.representative_scan_id
            out.append(card)
        return out

    # -- status -----------------------------------------------------------------------------------

    def health(self) -> dict:
        """What is loaded (loads it if needed); raises NoIndexError when there is no index."""
        st = self.state()
        return {"status": "ok", "home": str(self.home), "index": st.index_row.get("build_id"),
                "index_size": st.index.count, "model_version": st.model.version,
                "landmarks": sum(1 for c in st.clusters.values() if c.status == "landmark"),
                "scans": len(st.scans), "threshold": st.threshold, "threshold_source": st.threshold_source}


def image_bytes_of(image) -> bytes:
    """PIL image -> JPEG bytes (handy for tests and for re-posting a query)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()
