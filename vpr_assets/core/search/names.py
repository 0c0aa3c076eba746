"""Place-name matching: case-, accent- and punctuation-insensitive, exact first, then fuzzy
(rapidfuzz) word by word, so a typo matches and a part of a word does not."""

from __future__ import annotations

import re
import unicodedata

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
