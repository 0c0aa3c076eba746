"""Tesseract in this process, through its C API: the same library the `tesseract` command runs.

Why: the second engine reads a card's unsure regions once per language, and the command line pays a
process start and a model load for each (0.03-0.13 s per language, ~0.3 s per card for jpn, chi_tra,
kor, rus): on real Latin-script postcards that was nearly half of the OCR time. Here a language is
loaded once and kept (`TessBaseAPI` handles are not thread-safe, so a thread borrows one that no
other thread holds), and ctypes releases the GIL while Tesseract works, so OCR streams read in
parallel.

Why not `tesserocr` (the Cython binding on PyPI): its wheel bundles its own Tesseract (5.5.x), which
reads these crops differently from the Debian 5.3 build whose language packs `scripts/setup_tesseract.sh`
installs and whose readings the benchmarks measured (35 of 63 real regions read differently). The C
API (`capi.h`, stable since 4.0) of the installed library gives the command's readings exactly:
`tests/core/test_tesseract_api.py` checks that on real captions.

The library is used only when it is the command's own (same version string, the command's tessdata
folder); otherwise `second_engine` keeps running the command. Debian builds it with OpenMP, whose
teams cost more than they save on a line image (6x slower here), so reading runs with OpenMP
serial (`serial_openmp`), as the command is run with `OMP_THREAD_LIMIT=1`.

The trade: a crash inside the library would end the OCR process, where a crashed command only cost
its card the second reading. Tesseract has not crashed on any region measured (it gets small, padded,
8-bit line images); `OcrTools.tesseract_in_process=False` (`CaptionOcrResource`) runs the command again.
"""

from __future__ import annotations

import atexit
import csv
import ctypes
import ctypes.util
import io
import threading
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

TSV_FIELDS = ["level", "page_num", "block_num", "par_num", "line_num", "word_num", "left", "top", "width",
              "height", "conf", "text"]
PSM_SINGLE_LINE = 7
SOURCE_PPI = 70  # what the command assumes for a PNG without a resolution: the same readings


class TesseractLibraryError(RuntimeError):
    """The library failed to load a language or to read an image."""


@lru_cache(maxsize=1)
def _library():
    """The installed libtesseract with its C API declared, or None where it is missing."""
    name = ctypes.util.find_library("tesseract")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    h, c_int, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    sigs = {
        "TessVersion": ([], c_char_p),
        "TessBaseAPICreate": ([], h),
        "TessBaseAPIInit3": ([h, c_char_p, c_char_p], c_int),
        "TessBaseAPISetPageSegMode": ([h, c_int], None),
        "TessBaseAPISetImage": ([h, ctypes.c_void_p, c_int, c_int, c_int, c_int], None),
        "TessBaseAPISetSourceResolution": ([h, c_int], None),
        "TessBaseAPIRecognize": ([h, ctypes.c_void_p], c_int),
        "TessBaseAPIGetTsvText": ([h, c_int], ctypes.c_void_p),  # a char* we must free
        "TessDeleteText": ([ctypes.c_void_p], None),
        "TessBaseAPIEnd": ([h], None),
        "TessBaseAPIDelete": ([h], None),
    }
    for fn, (args, res) in sigs.items():
        f = getattr(lib, fn)
        f.argtypes, f.restype = args, res
    return lib


@lru_cache(maxsize=1)
def _openmp():
    """The OpenMP runtime the library runs on (by soname: torch's copy when torch loaded first), or None."""
    if _library() is None:
        return None
    try:
        omp = ctypes.CDLL("libgomp.so.1")
        omp.omp_get_max_active_levels.restype = ctypes.c_int
        omp.omp_set_max_active_levels.argtypes = [ctypes.c_int]
        return omp
    except (OSError, AttributeError):
        return None  # a build without OpenMP


_OMP_LOCK = threading.Lock()
_omp_users = 0
_omp_saved = 1


@contextmanager
def serial_openmp():
    """No OpenMP team while Tesseract reads: its LSTM opens a 4-thread parallel region per time step,
    which on a line image costs 6x the reading itself (0.059 against 0.009 s per region here). The
    runtime is shared with torch once torch is loaded, so its thread limit cannot be set from the
    environment any more; `max-active-levels` 0 (every region runs on the calling thread) is set
    while a reader is in use. Whether that value is global or per thread depends on the thread's
    OpenMP history, so each thread sets it for itself and puts back what it saw, and the last one
    out restores what the first one in found."""
    global _omp_users, _omp_saved
    omp = _openmp()
    if omp is None:
        yield
        return
    with _OMP_LOCK:
        if _omp_users == 0:
            _omp_saved = omp.omp_get_max_active_levels()
        _omp_users += 1
        own = omp.omp_get_max_active_levels()
        omp.omp_set_max_active_levels(0)
    try:
        yield
    finally:
        with _OMP_LOCK:
            _omp_users -= 1
            omp.omp_set_max_active_levels(_omp_saved if _omp_users == 0 else own or _omp_saved)


def library_version() -> str | None:
    """The installed library's version ("5.3.0"), or None without a usable library."""
    lib = _library()
    return lib.TessVersion().decode() if lib is not None else None


class LineReader:
    """One language loaded once; reads single text lines (grey uint8 arrays) into (word, conf 0-1)."""

    def __init__(self, tessdata: str, lang: str):
        lib = _library()
        if lib is None:
            raise TesseractLibraryError("libtesseract is not usable in this process")
        self._lib = lib
        self._handle = lib.TessBaseAPICreate()
        if lib.TessBaseAPIInit3(self._handle, tessdata.encode(), lang.encode()) != 0:
            lib.TessBaseAPIDelete(self._handle)
            raise TesseractLibraryError(f"libtesseract could not load {lang!r} from {tessdata}")
        lib.TessBaseAPISetPageSegMode(self._handle, PSM_SINGLE_LINE)
        self.lang = lang
        _OPEN.append(self)

    def words(self, grey: np.ndarray) -> list[tuple[str, float]]:
        grey = np.ascontiguousarray(grey, dtype=np.uint8)
        if grey.ndim != 2:
            raise ValueError(f"expected a grey image, got shape {grey.shape}")
        h, w = grey.shape
        lib = self._lib
        lib.TessBaseAPISetImage(self._handle, grey.ctypes.data, w, h, 1, w)
        lib.TessBaseAPISetSourceResolution(self._handle, SOURCE_PPI)
        if lib.TessBaseAPIRecognize(self._handle, None) != 0:
            raise TesseractLibraryError(f"libtesseract -l {self.lang} failed on a {w}x{h} region")
        ptr = lib.TessBaseAPIGetTsvText(self._handle, 0)
        if not ptr:
            return []
        try:
            tsv = ctypes.string_at(ptr).decode("utf-8", "replace")
        finally:
            lib.TessDeleteText(ptr)
        return tsv_pages(tsv).get(0, [])  # page_num 1: the one image set

    def close(self) -> None:
        if self._handle:
            self._lib.TessBaseAPIEnd(self._handle)
            self._lib.TessBaseAPIDelete(self._handle)
            self._handle = None


def tsv_pages(tsv: str, header: bool = False) -> dict[int, list[tuple[str, float]]]:
    """Page (0-based) -> words with a confidence (0-1), from Tesseract's TSV (the command prints a
    header line, the library does not); rows without text or with conf -1 (blocks, lines) are left out."""
    rows = csv.DictReader(io.StringIO(tsv), fieldnames=None if header else TSV_FIELDS, delimiter="\t",
                          quoting=csv.QUOTE_NONE)
    pages: dict[int, list[tuple[str, float]]] = {}
    for row in rows:
        text = (row.get("text") or "").strip()
        try:
            conf = float(row.get("conf") or -1)
            page = int(row.get("page_num") or 1) - 1
        except ValueError:
            continue
        if text and conf >= 0:
            pages.setdefault(page, []).append((text, conf / 100.0))
    return pages


_OPEN: list[LineReader] = []
_FREE: dict[tuple[str, str], list[LineReader]] = {}
_FREE_LOCK = threading.Lock()


@contextmanager
def line_reader(tessdata: str, lang: str):
    """A reader for `lang` that no other thread holds: a free one, or a new one (kept for the process
    afterwards), so each language is loaded once per concurrent reader, not once per card or batch."""
    key = (tessdata, lang)
    with _FREE_LOCK:
        free = _FREE.setdefault(key, [])
        reader = free.pop() if free else None
    with serial_openmp():
        if reader is None:
            reader = LineReader(tessdata, lang)  # may raise: nothing to give back then
        try:
            yield reader
        finally:
            with _FREE_LOCK:
                _FREE[key].append(reader)


@atexit.register
def _close_all() -> None:  # the library warns of leaked models at exit otherwise
    with _FREE_LOCK:
        _FREE.clear()
        while _OPEN:
            _OPEN.pop().close()
