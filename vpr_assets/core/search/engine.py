"""Search the collection by picture or by place name, with the current index and model.

The engine composes the parts of search, one module each: `state` (what is loaded, reloaded only
when a watched table changed; the model is always the one named by the index's `model_version`,
since a query embedded by another model would land in the wrong space), `query_image` (safe
decoding of the query picture), `landmark_vote` (which landmark, or non-landmark, and why),
`names` (place-name matching against cluster names, the places clusters were named from and the
geo-words places of their members) and `errors` (every bad input is a `SearchError` with a reason).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from vpr_assets.core.search.config import SearchConfig
from vpr_assets.core.search.errors import BadQueryError
from vpr_assets.core.search.landmark_vote import landmark_vote, query_landmark_score
from vpr_assets.core.search.names import name_score, normalise_name
from vpr_assets.core.search.query_image import QueryImageReader
from vpr_assets.core.search.state import Cluster, SearchState, load_state, table_signature


class SearchEngine:
    """Search one data root by image or by place name (thread-safe; reloads when data changes)."""

    def __init__(self, home: str | Path, config: SearchConfig | None = None):
        self.home = Path(home).resolve()
        self.config = config or SearchConfig()
        self._lock = threading.RLock()
        self._reader = QueryImageReader(self.config)
        self._state: SearchState | None = None

    # -- loading ----------------------------------------------------------------------------------

    def state(self) -> SearchState:
        """The loaded state, reloaded when a watched table's files changed since the last call."""
        with self._lock:
            sig = table_signature(self.home)
            if self._state is None or self._state.signature != sig:
                self._state = load_state(self.home, self.config, sig, self._state)
            return self._state

    # -- helpers ----------------------------------------------------------------------------------

    def _card(self, st: SearchState, scan_id: str, score: float | None = None) -> dict:
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
        return self._embed(*self._read_query(image))

    def _read_query(self, image):
        """(full decode, embedder's decode) of a query: a file or bytes is decoded for the embedder as
        the collection's files were (`embedding_load_size`), so a card sent as a query gets its own
        index vector."""
        from vpr_assets.core.vision.embedder import embedding_load_size

        return self._reader.read_for_search(image, lambda: embedding_load_size(self.state().model.embedder))

    def _embed(self, im, view) -> np.ndarray:
        """`im`: the full decode (its caption is read from it); `view`: the embedder's decode."""
        from vpr_assets.core.vision.embedder import embed_images

        st = self.state()
        vec = embed_images(st.model.embedder, [view], runtime=self.config.embedding_runtime,
                           onnx_cache=self.config.embedder_cache)
        if bool(st.index_row.get("fused_text")) and st.model.recognizer is not None:
            import torch

            rec = st.model.recognizer
            text = None
            if self.config.read_captions:
                from vpr_assets.core.query_text import query_text_vectors, read_captions

                text = query_text_vectors(st.model.text_sources, read_captions([im], self.config.ocr_tools))[0]
            t = torch.from_numpy(np.asarray(text, np.float32)[None]) if text is not None else torch.zeros((1, rec.config.text_dim))
            with torch.no_grad():
                vec = rec.fuse(torch.from_numpy(vec), t, torch.tensor([1.0 if text is not None else 0.0])).numpy()
        return np.asarray(vec, dtype=np.float32)

    # -- search by image --------------------------------------------------------------------------

    def search_image(self, image, k: int = 10) -> dict:
        """Nearest cards to a picture, and the landmark it shows (or `non-landmark`)."""
        k = self._check_k(k)
        im, view = self._read_query(image)  # decoded before the lock: a costly picture never holds up other searches
        with self._lock:
            st = self.state()
            q = self._embed(im, view)
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
        prediction = landmark_vote(st, ids, scores, self.config.vote_neighbours, accepted)
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

    # -- search by name ---------------------------------------------------------------------------

    def _positions(self, st: SearchState) -> dict:
        if st.positions is None:
            st.positions = {sid: i for i, sid in enumerate(st.index.reconstruct_ids(np.arange(st.index.count)))}
        return st.positions

    def _vectors(self, st: SearchState, scan_ids: list[str]) -> tuple[list[str], np.ndarray]:
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

    def _ranked_members(self, st: SearchState, c: Cluster, k: int) -> list[dict]:
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
