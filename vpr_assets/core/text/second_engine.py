"""The second OCR engine: Tesseract, for caption regions the offline EasyOCR weights cannot read.

The offline EasyOCR package ships English (Latin) weights only, so a Japanese, Chinese, Korean or
Cyrillic caption comes out as symbol noise with a low confidence. `CaptionOCR` hands those regions
(already found by CRAFT, which is script-agnostic) to Tesseract: every region is read as a single
text line (`--psm 7`) in each language, and keeps the reading whose mean word confidence is
highest. The script of a region is the script of the text that won (`scripts.text_script`). Two
shortcuts skip languages that cannot win: a region the Latin model reads surely is settled
(`settle_at`), and Chinese and Korean read only where Japanese finds CJK letters (`cjk_gate`).

Tesseract is a Debian package (`tesseract-ocr` plus `tesseract-ocr-jpn`, `-chi-tra`, `-kor`, `-rus`, `-ukr`, `-bel`),
installed by `scripts/setup_tesseract.sh`. It runs in this process through the installed library's C
API (`tesseract_api`: each language loaded once per process) when that library is the command's own,
and otherwise as the command (one run per language, every region a page of it). Both give the same
readings. Where it or a language is missing, `usable_languages` leaves it out and the OCR settings
hash says so, so cards are read again once it is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .scripts import CJK_LETTERS, char_script, join_tokens, text_script
from .tesseract_api import tsv_pages

LINE_HEIGHT = 64  # px: regions (text + margins) are rescaled to this height: ~40 px letters, where Tesseract reads best
MAX_UPSCALE = 4.0
PAD = 10


# a script -> the languages that read it, for the second pass on a card known to be in that script
SCRIPT_LANGUAGES = {
    "cyrillic": ("rus", "ukr", "bel", "bul", "srp"), "japanese": ("jpn",), "han": ("chi_tra", "jpn", "chi_sim"),
    "hangul": ("kor",), "greek": ("ell",),
}
# the inverse: the scripts a language's reading must be in to count (a Cyrillic model "reading"
# digits or a Japanese one reading Latin says nothing about the region's script)
LANG_SCRIPTS: dict[str, set[str]] = {}
for _script, _langs in SCRIPT_LANGUAGES.items():
    for _lang in _langs:
        LANG_SCRIPTS.setdefault(_lang, set()).add(_script)


class SecondEngineError(RuntimeError):
    """Tesseract was found but failed (timeout, crash, unreadable output)."""


@dataclass(frozen=True)
class RegionReading:
    text: str
    confidence: float  # mean word confidence, 0-1
    lang: str  # the Tesseract language that won
    script: str | None


# Hangul compatibility jamo (ㄱ ... ㆎ): printed Korean sets composed syllables, so a reading with a
# letter standing alone is Tesseract's Korean model spelling out something else (seen on Latin cards)
LONE_JAMO = frozenset(chr(c) for c in range(0x3131, 0x318F))


def tesseract_binary(command: str = "tesseract") -> str | None:
    """The executable `command` names (a name on PATH or a path), or None."""
    return shutil.which(command)


@lru_cache(maxsize=8)
def _list_langs(command: str) -> tuple[str | None, frozenset[str]]:
    """The command's tessdata folder and the languages it can load (None, empty without Tesseract)."""
    exe = tesseract_binary(command)
    if exe is None:
        return None, frozenset()
    try:
        out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None, frozenset()
    lines = out.splitlines()
    folder = re.search(r'"([^"]+)"', lines[0]) if lines else None  # List of available languages in "/usr/...":
    return (folder.group(1) if folder else None), frozenset(line.strip() for line in lines[1:] if line.strip())


def installed_languages(command: str = "tesseract") -> frozenset[str]:
    """Languages that Tesseract can load (empty without Tesseract)."""
    return _list_langs(command)[1]


@lru_cache(maxsize=8)
def command_version(command: str = "tesseract") -> str | None:
    """"5.3.0" for `tesseract 5.3.0`, or None."""
    exe = tesseract_binary(command)
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"tesseract\s+v?(\S+)", (out.stdout or out.stderr).strip())
    return m.group(1) if m else None


def in_process_tessdata(command: str = "tesseract") -> str | None:
    """The tessdata folder to read in this process (tesseract_api) when the installed library is the
    command's own (same version, the command's folder), else None: then the command is run."""
    folder = _list_langs(command)[0]
    if folder is None:
        return None
    from .tesseract_api import library_version

    version = library_version()
    return folder if version is not None and version == command_version(command) else None


def usable_languages(langs: Sequence[str], command: str = "tesseract") -> tuple[str, ...]:
    """The subset of `langs` this machine's Tesseract can read, in the given order."""
    have = installed_languages(command)
    return tuple(lang for lang in langs if lang in have)


def _prepare(crop: np.ndarray) -> np.ndarray:
    """A grey crop rescaled to LINE_HEIGHT with replicated borders (no hard edge around the text)."""
    import cv2

    h, w = crop.shape[:2]
    scale = min(MAX_UPSCALE, LINE_HEIGHT / max(1, h))
    if abs(scale - 1.0) > 0.05:
        crop = cv2.resize(crop, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    return cv2.copyMakeBorder(crop, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)


def _run(exe: str, list_path: str, lang: str, timeout: float) -> dict[int, list[tuple[str, float]]]:
    """One Tesseract run over every page of `list_path`: page number (0-based) -> [(word, conf)]."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # small images: threads only contend with torch
    try:
        proc = subprocess.run([exe, list_path, "stdout", "-l", lang, "--psm", "7", "tsv"], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise SecondEngineError(f"tesseract -l {lang} took over {timeout:.0f} s") from e
    if proc.returncode != 0:
        raise SecondEngineError(f"tesseract -l {lang} failed: {proc.stderr.strip()[-300:]}")
    return tsv_pages(proc.stdout, header=True)


def _read_with_command(exe: str, lines: list[np.ndarray], lang: str, timeout: float) -> dict[int, list[tuple[str, float]]]:
    """Each prepared line as one page of one run of the command."""
    import cv2

    with tempfile.TemporaryDirectory(prefix="vpr-tess-") as tmp:
        paths = []
        for i, line in enumerate(lines):
            path = os.path.join(tmp, f"{i:04d}.png")
            cv2.imwrite(path, line)
            paths.append(path)
        list_path = os.path.join(tmp, "pages.txt")
        with open(list_path, "w") as f:
            f.write("\n".join(paths) + "\n")
        return _run(exe, list_path, lang, timeout)


def _read_in_process(tessdata: str, lines: list[np.ndarray], lang: str) -> dict[int, list[tuple[str, float]]]:
    """Each prepared line through the library (tesseract_api), the language loaded once per process."""
    from .tesseract_api import TesseractLibraryError, line_reader

    try:
        with line_reader(tessdata, lang) as reader:
            return {i: reader.words(line) for i, line in enumerate(lines)}
    except TesseractLibraryError as e:
        raise SecondEngineError(str(e)) from e


def read_regions(crops: Sequence[np.ndarray], langs: Sequence[str], *, command: str = "tesseract",
                 timeout: float = 120.0, in_process: bool = True, first: Sequence[str] = (),
                 settle_at: float | None = None, cjk_gate: str | None = None,
                 gated: Sequence[str] = ()) -> list[RegionReading | None]:
    """Read each grey crop (one text line) with every language in `langs`; per crop, the reading
    with the highest mean word confidence among those in their language's script (LANG_SCRIPTS),
    or None when no language read anything there. `in_process`: through the installed library when
    it is the command's own (the same readings, no process per language); `timeout` bounds a run
    of the command only. The languages of `first` read before the others; a crop one of them reads
    at `settle_at` or surer is settled, and the other languages skip it (each costs 10-20 ms a line).
    `cjk_gate`: a language read before those of `gated`; they read only the crops where its raw
    reading (any confidence, before the filters) holds a Han, kana or Hangul letter. Japanese
    reads Han and kana, and finds CJK-looking strokes in Hangul print too, so Chinese and Korean
    models (22 ms a line each) skip the Latin and Cyrillic print and the texture."""
    exe = tesseract_binary(command)
    langs = usable_languages(langs, command)
    if not crops or exe is None or not langs:
        return [None] * len(crops)
    gate = cjk_gate if cjk_gate in langs and cjk_gate not in gated else None
    head = [lang for lang in first if lang in langs] + ([gate] if gate and gate not in first else [])
    langs = head + [lang for lang in langs if lang not in head]  # the first languages, then the gate
    cjk_seen: set[int] = set()
    tessdata = in_process_tessdata(command) if in_process else None
    lines = [_prepare(crop) for crop in crops]
    best: list[RegionReading | None] = [None] * len(crops)
    settled: set[int] = set()
    for lang in langs:
        todo = [i for i in range(len(lines)) if i not in settled]
        if gate is not None and lang in gated:
            todo = [i for i in todo if i in cjk_seen]
        if not todo:
            continue
        sub = [lines[i] for i in todo]
        pages = _read_in_process(tessdata, sub, lang) if tessdata else _read_with_command(exe, sub, lang, timeout)
        pages = {todo[p]: words for p, words in pages.items() if 0 <= p < len(todo)}
        for page, words in pages.items():
            if not words:
                continue
            conf = sum(c for _, c in words) / len(words)
            text = join_tokens([w for w, _ in words])
            if lang == gate and any(char_script(c) in CJK_LETTERS for c in text):
                cjk_seen.add(page)
            script = text_script(text)
            if lang in LANG_SCRIPTS and script not in LANG_SCRIPTS[lang]:
                continue
            if len({c for c in text if c.isalpha()}) < 2:  # blank paper read as "ーー" or "I"
                continue
            if script == "hangul" and any(c in LONE_JAMO for c in text):  # "대ㅁㄷㅁ타": Latin print or texture
                continue
            if best[page] is None or conf > best[page].confidence:
                best[page] = RegionReading(text, round(conf, 4), lang, script)
            if lang in first and settle_at is not None and conf >= settle_at:
                settled.add(page)
    return best
