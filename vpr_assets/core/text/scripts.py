"""Which writing system a piece of text is in.

Postcards of 1900-1960 carry captions in Latin, Cyrillic, Greek, Han (Chinese characters, also used
alone in many Japanese and Korean captions), Japanese kana and Hangul. The OCR labels each region
with the script of what it read, so that a reader knows which engine read it and the benchmarks can
report recall per script. Unicode character names say it without a language model.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

# Unicode name prefix -> script label (the first that matches wins)
_PREFIXES = (
    ("CJK", "han"), ("HIRAGANA", "kana"), ("KATAKANA", "kana"), ("HANGUL", "hangul"),
    ("CYRILLIC", "cyrillic"), ("GREEK", "greek"), ("LATIN", "latin"), ("ARABIC", "arabic"),
    ("HEBREW", "hebrew"), ("DEVANAGARI", "devanagari"), ("THAI", "thai"),
)
CJK_LETTERS = frozenset({"han", "kana", "hangul"})  # char_script labels of scripts written without spaces
CJK_SCRIPTS = frozenset({"han", "japanese", "hangul"})  # text_script labels of the same scripts


def char_script(ch: str) -> str | None:
    """The script of one letter (None for digits, punctuation, spaces and unnamed code points)."""
    if ch.isascii():
        return "latin" if ch.isalpha() else None
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    for prefix, script in _PREFIXES:
        if name.startswith(prefix):
            return script
    return "other"


def script_counts(text: str) -> Counter:
    """Letters per script in `text`."""
    return Counter(s for s in map(char_script, text) if s)


def text_script(text: str) -> str | None:
    """The main script of `text`: the script with most letters, where Han with any kana is
    "japanese" (kanji + kana) and Han with any Hangul is "hangul" (mixed Korean). None when `text`
    has no letter."""
    counts = script_counts(text)
    if not counts:
        return None
    if counts["kana"]:
        counts["han"] += counts.pop("kana")
        counts["japanese"] = counts.pop("han")
    elif counts["hangul"] and counts["han"]:
        counts["hangul"] += counts.pop("han")
    return counts.most_common(1)[0][0]


# Cyrillic letters that look like Latin ones: a Cyrillic model "reading" Latin print returns these
_CYRILLIC_LOOKALIKES = set("АВЕЅІЈКМНОРСТУХаеіјорсухѕһԁ")


def distinctive_letters(text: str, script: str) -> int:
    """Letters of `script` in `text` that could not be a misread of Latin print (for Cyrillic, the
    letters without a Latin look-alike: Б, Д, Ж, Л, П, Я...); every letter for other scripts."""
    letters = [c for c in text if char_script(c) == script or (script == "japanese" and char_script(c) in ("han", "kana"))]
    if script == "cyrillic":
        letters = [c for c in letters if c not in _CYRILLIC_LOOKALIKES]
    return len(letters)


def join_tokens(tokens: list[str]) -> str:
    """Join recognised words the way their script writes them: no space between two CJK letters
    (engines report one "word" per character there), one space elsewhere."""
    out = ""
    for tok in (t.strip() for t in tokens):
        if not tok:
            continue
        if out and not (char_script(out[-1]) in CJK_LETTERS and char_script(tok[0]) in CJK_LETTERS):
            out += " "
        out += tok
    return out
