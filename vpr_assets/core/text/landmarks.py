"""Landmark names learned from the collection's own descriptions ("Tower Bridge", "Piazza San Marco").

No gazetteer lists "Notre-Dame" or "Marienplatz", but cataloguers write them again and again:
recurring capitalised phrases (on >= min_cards distinct cards) become landmarks, placed at the
city their cards most often resolve to (`places.resolve_place`, the same context rules a card's
own place follows: "Florencia ... Italia" is Florence, so a phrase of those cards is too).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Iterable

from .geowords import CONNECTORS, GENERIC, STOPWORDS, GeoWordExtractor, segments, strip_boilerplate
from .normalize import fix_mojibake
from .places import resolve_place

FIT_VERSION = 2  # 2: a phrase's city is the one its cards resolve to with context (places.resolve_place)


@dataclass
class Landmark:
    name: str  # most common written form
    cards: int  # distinct cards that mention it
    city: str | None = None
    country: str | None = None
    lat: float | None = None
    lon: float | None = None
    agreement: float = 0.0  # share of its cards resolved to that city

    def as_place(self, matched: str) -> dict:
        score = 0.5 + 0.45 * self.agreement if self.country else 0.5
        return {"name": self.name, "country": self.country, "lat": self.lat, "lon": self.lon,
                "score": round(score, 3), "kind": "landmark", "matched": matched, "city": self.city}


def _card_city(ex: GeoWordExtractor, text: str) -> dict | None:
    """The city a card is resolved to with context (`places.resolve_place`), or None."""
    place = resolve_place(ex.extract(text), text).place
    return place if place is not None and place.get("kind") == "city" else None


def _display(toks) -> str:
    """Written form, hyphens restored ("Notre-Dame")."""
    out = ""
    for t in toks:
        out += ("" if not out else " " if t.start else "-") + t.raw
    return out


def _runs(text: str, known_place, lower_words: set[str]) -> list[list]:
    """Capitalised runs (connectors allowed inside) per clause. A lone clause-initial word counts
    only if the corpus never writes it in lower case (so "Marienplatz" yes, "Selling" no)."""
    runs = []
    for seg in segments(strip_boilerplate(fix_mojibake(text))):
        cur: list = []
        for j, t in enumerate(seg + [None]):
            if t is not None and (t.capital and t.word not in STOPWORDS or (cur and t.word in CONNECTORS)):
                cur.append((j, t))
                continue
            while cur and (cur[-1][1].word in CONNECTORS or cur[-1][1].word in STOPWORDS):
                cur.pop()
            if cur:
                starts_clause = cur[0][0] == 0
                w0 = cur[0][1].word
                if len(cur) > 1 or ((not starts_clause or w0 not in lower_words) and len(w0) >= 5
                                    and w0 not in GENERIC and not known_place(w0)):
                    runs.append([t for _, t in cur])
            cur = []
    return runs


class LandmarkLexicon:
    """Folded phrase -> Landmark, learned from descriptions; pass it to GeoWordExtractor."""

    def __init__(self, min_cards: int = 2, max_words: int = 4):
        self.min_cards = min_cards
        self.max_words = max_words
        self.landmarks: dict[str, Landmark] = {}

    def __contains__(self, phrase: str) -> bool:
        return phrase in self.landmarks

    def __len__(self) -> int:
        return len(self.landmarks)

    def get(self, phrase: str) -> Landmark | None:
        return self.landmarks.get(phrase)

    def fit(self, descriptions: Iterable[str | None], gazetteer=None) -> "LandmarkLexicon":
        ex = GeoWordExtractor(gazetteer)
        docs = [d for d in descriptions if d and d.strip()]
        seen: dict[str, set[int]] = defaultdict(set)
        forms: dict[str, Counter] = defaultdict(Counter)
        lower_words = {t.word for d in docs for seg in segments(fix_mojibake(d)) for t in seg if not t.capital}
        for k, doc in enumerate(docs):
            for run in _runs(doc, lambda w: bool(ex.gaz.lookup(w)), lower_words):
                for a in range(len(run)):
                    for b in range(a + 1, min(a + self.max_words, len(run)) + 1):
                        sub = run[a:b]
                        if sub[0].word in CONNECTORS or sub[-1].word in CONNECTORS:
                            continue
                        if len(sub) == 1 and (len(sub[0].word) < 5 or sub[0].word in GENERIC):
                            continue
                        key = " ".join(t.word for t in sub)
                        seen[key].add(k)
                        forms[key][_display(sub)] += 1
        kept = {k: v for k, v in seen.items() if len(v) >= self.min_cards}
        # drop phrases that are themselves places, and sub-phrases never seen outside a longer one
        kept = {k: v for k, v in kept.items() if not ex.gaz.lookup(k)}
        for k in list(kept):
            if any(k != o and f" {k} " in f" {o} " and kept[o] == kept[k] for o in kept):
                del kept[k]
        city_of_card = {c: _card_city(ex, docs[c]) for c in set().union(*kept.values())} if kept else {}
        self.landmarks = {}
        for k, cards in kept.items():
            lm = Landmark(name=forms[k].most_common(1)[0][0], cards=len(cards))
            votes = Counter((p["name"], p["country"]) for c in cards if (p := city_of_card[c]) is not None)
            if votes:
                (city, cc), cnt = votes.most_common(1)[0]
                p = next(q for c in cards if (q := city_of_card[c]) is not None and (q["name"], q["country"]) == (city, cc))
                lm.city, lm.country, lm.lat, lm.lon = city, cc, p["lat"], p["lon"]
                lm.agreement = round(cnt / len(cards), 3)
            self.landmarks[k] = lm
        return self

    def to_dict(self) -> dict:
        return {"min_cards": self.min_cards, "max_words": self.max_words,
                "landmarks": {k: asdict(v) for k, v in self.landmarks.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "LandmarkLexicon":
        lex = cls(d.get("min_cards", 2), d.get("max_words", 4))
        lex.landmarks = {k: Landmark(**v) for k, v in d["landmarks"].items()}
        return lex
