"""Batch ingestion: every file of a batch folder becomes a `raw_scans` row or a `scan_rejects` row.

Originals are only read, never modified or moved. Exact duplicates (same sha256) are stored once:
the first copy (earliest batch, then sorted path) is the scan, later copies are rejects pointing
to it, so `scan_id` stays a key of `raw_scans`.
"""

from __future__ import annotations

import contextlib
import csv
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pyarrow as pa

from vpr_assets.core.files import DEFAULT_MAX_FILE_BYTES, FileRefused, is_regular_file, kind_of, link_problem, read_regular_file
from vpr_assets.core.images.decode import DEFAULT_MAX_PIXELS, ImageRejected, decode_image
from vpr_assets.core.images.hashing import perceptual_hashes, sha256_bytes
from vpr_assets.core.images.thumbnails import write_thumbnail
from vpr_assets.storage.names import storable_key_problem
from vpr_assets.storage.schemas import RAW_SCANS_SCHEMA, SCAN_REJECTS_SCHEMA  # noqa: F401 (re-exported)

DESCRIPTIONS_FILE = "descriptions.csv"
LABELS_FILE = "labels.csv"  # curator labels travel with a batch too (see curation)
NOT_COPIED_FILE = ".vpr_not_copied.tsv"  # written by copy_batch_into_inbox: entries it refused to copy
METADATA_FILES = {DESCRIPTIONS_FILE, LABELS_FILE, NOT_COPIED_FILE}




@dataclass
class BatchResult:
    scans: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)

    def scans_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.scans, schema=RAW_SCANS_SCHEMA)

    def rejects_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rejects, schema=SCAN_REJECTS_SCHEMA)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def list_batch_files(batch_dir: Path) -> list[Path]:
    """Every entry of a batch that is not a folder it can walk into (recursively), sorted, except
    the batch's metadata files: regular files, and also links (to folders too), special files and
    folders that cannot be listed, so each of them gets a row (a reject with its reason) instead
    of being skipped silently. Links are never followed."""
    batch_dir = Path(batch_dir)
    files = []

    def unlistable(err: OSError) -> None:
        if err.filename and Path(err.filename) != batch_dir:
            files.append(Path(err.filename))

    for root, dirs, names in os.walk(batch_dir, onerror=unlistable, followlinks=False):
        linked = [d for d in dirs if os.path.islink(os.path.join(root, d))]
        dirs[:] = sorted(d for d in dirs if d not in linked)
        for name in sorted(names + linked):
            p = Path(root) / name
            if p.parent == batch_dir and name in METADATA_FILES:
                continue
            files.append(p)
    return sorted(set(files))


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # surrogate escapes of bytes that are not UTF-8
        return False


def _utf8(name: str) -> str:
    """`name` as valid UTF-8 text: the bytes of a name that is not UTF-8 become \\xNN escapes."""
    return name if _is_utf8(name) else os.fsencode(name).decode("utf-8", "backslashreplace")


def canonical_relpath(path: Path, root: Path) -> str:
    """The one form in which a file's path is stored in the tables and compared by the checks:
    relative to `root` when under it, POSIX separators, valid UTF-8 (a name whose bytes are not
    UTF-8 keeps them as \\xNN escapes, so it can be written to Parquet and still be matched)."""
    path = Path(path)
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    return _utf8(rel)


MAX_DESCRIPTION_CHARS = 20_000  # a postcard's description; longer is a reject row, not a lost file
MAX_DESCRIPTIONS_BYTES = 64 << 20  # descriptions.csv itself


def decode_text(raw: bytes) -> tuple[str, str]:
    """Bytes of a text file -> (text, encoding used). Policy: a BOM decides (UTF-8, UTF-16);
    then UTF-16 without BOM when every other byte of ASCII text is NUL; then strict UTF-8; then
    Windows-1252 (what spreadsheets on Windows save: curly quotes, dashes and the euro sign are
    0x80-0x9F there, control characters in Latin-1); Latin-1 only for bytes cp1252 leaves undefined."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", "replace"), "utf-8-sig"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", "replace"), "utf-16"
    if len(raw) >= 4:
        even, odd = raw[0::2], raw[1::2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) == 0:
            return raw.decode("utf-16-le", "replace"), "utf-16-le"
        if even.count(0) > 0.4 * len(even) and odd.count(0) == 0:
            return raw.decode("utf-16-be", "replace"), "utf-16-be"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def _looks_like_merged_rows(field: str, known_files: set[str]) -> bool:
    """A quoted field that runs over lines that start like rows of this file ("<file>,"): the
    mark of an unterminated quote that swallowed the rows after it."""
    for line in field.splitlines()[1:]:
        name = line.partition(",")[0].strip().strip('"')
        if "," in line and name in known_files:
            return True
    return False


def read_descriptions(csv_path: Path, known_files: set[str]) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Parse `descriptions.csv` (`file,description`), strictly and row by row.

    Returns the descriptions by relative file name, and problems as (location, reason, detail):
    every broken row (bad quoting, wrong field count, an unterminated quote that would swallow
    the rows after it, a description over MAX_DESCRIPTION_CHARS), unknown and repeated files is
    reported and skipped; the rows after it are still read. A descriptions.csv that is not a
    readable regular file is one problem, never a crash.
    """
    descriptions: dict[str, str] = {}
    problems: list[tuple[str, str, str]] = []
    try:
        raw = read_regular_file(csv_path, max_bytes=MAX_DESCRIPTIONS_BYTES, follow_links=False)
    except FileRefused as exc:
        return descriptions, [(DESCRIPTIONS_FILE, "bad_descriptions_file", f"{exc.reason}: {exc.detail}")]
    except OSError as exc:  # a folder named descriptions.csv (IsADirectoryError), permissions, ...
        return descriptions, [(DESCRIPTIONS_FILE, "bad_descriptions_file", f"{type(exc).__name__}: {exc}")]
    text, encoding = decode_text(raw)
    if encoding not in ("utf-8", "utf-8-sig"):
        problems.append((DESCRIPTIONS_FILE, "description_encoding", f"not UTF-8; read as {encoding}"))
    if "\x00" in text:
        problems.append((DESCRIPTIONS_FILE, "bad_descriptions_file", "NUL characters removed"))
        text = text.replace("\x00", "")
    lines = text.splitlines(keepends=True)
    saved_limit = csv.field_size_limit()
    csv.field_size_limit(max(saved_limit, len(text) + 1))  # long fields are judged below, per row
    try:
        records = list(_csv_records(lines, known_files, problems))
    finally:
        csv.field_size_limit(saved_limit)
    header_seen = False
    for lineno, row in records:
        loc = f"{DESCRIPTIONS_FILE}#{lineno}"
        if not row or all(not c.strip() for c in row):
            continue
        if not header_seen:
            header_seen = True
            if [h.strip().lower() for h in row][:2] == ["file", "description"]:
                continue
            problems.append((loc, "bad_description_row",
                             f"header should be 'file,description', got {_short(row)}; read as data"))
        if len(row) != 2:
            problems.append((loc, "bad_description_row", f"expected 2 fields, got {len(row)}: {_short(row)}"))
            continue
        name, desc = row[0].strip(), row[1].strip()
        if not name:
            problems.append((loc, "bad_description_row", "empty file name"))
            continue
        if len(desc) > MAX_DESCRIPTION_CHARS:
            problems.append((loc, "description_too_long",
                             f"{len(desc):,} characters > limit {MAX_DESCRIPTION_CHARS:,} for {name[:200]!r}"))
            continue
        if name not in known_files:
            problems.append((loc, "unknown_file_description", f"no file {name[:200]!r} in this batch"))
            continue
        if name in descriptions:
            problems.append((loc, "duplicate_description", f"second description for {name!r} ignored"))
            continue
        descriptions[name] = desc
    return descriptions, problems


def _short(row: list[str]) -> str:
    text = repr(row)
    return text if len(text) <= 300 else text[:300] + "..."


def _csv_records(lines: list[str], known_files: set[str], problems: list):
    """(first line number, fields) of each CSV record; a malformed record is reported and parsing
    resumes on the line after the one it started on, so one stray quote costs one row."""
    start = 0
    while start < len(lines):
        reader = csv.reader(lines[start:], strict=True)
        consumed = 0
        try:
            for row in reader:
                first = start + consumed + 1
                multi_line = reader.line_num - consumed > 1
                if multi_line and any(_looks_like_merged_rows(f, known_files) for f in row):
                    raise csv.Error("unterminated quote: the rows after it would merge into one field")
                consumed = reader.line_num
                yield first, row
        except csv.Error as exc:
            first = start + consumed + 1
            problems.append((f"{DESCRIPTIONS_FILE}#{first}", "bad_description_row",
                             f"csv.Error: {exc} (row skipped, the rows after it are read)"))
            start = start + consumed + 1
            continue
        return


def scan_file(path: Path, home: Path, max_pixels: int = DEFAULT_MAX_PIXELS, thumbnails: bool = True,
              batch_dir: Path | None = None, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> dict:
    """Read, hash and measure one file. Returns a scan row, or a reject row (key `reason`).

    Never raises for what the file is: links (never followed), FIFOs, devices, sockets, folders
    that cannot be listed, files over `max_bytes` and every decoder error are reject rows."""
    rel = canonical_relpath(path, home)
    base = {"path": rel, "file_name": _utf8(path.name)}
    if not _is_utf8(path.relative_to(home).as_posix() if path.is_relative_to(home) else str(path)):
        return {**base, "reason": "bad_file_name",
                "detail": "UnicodeEncodeError: file name is not valid UTF-8 (stored with \\xNN escapes)",
                "sha256": None, "bytes": None}
    refused = {**base, "sha256": None, "bytes": None}
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            reason, detail = link_problem(path, batch_dir or path.parent)
            return {**refused, "reason": reason, "detail": detail}
        if stat.S_ISDIR(st.st_mode):
            return {**refused, "reason": "unreadable", "detail": "PermissionError: a folder that cannot be listed"}
        data = read_regular_file(path, max_bytes=max_bytes, follow_links=False)
    except FileRefused as exc:
        return {**refused, "reason": exc.reason, "detail": exc.detail}
    except OSError as exc:
        return {**refused, "reason": "unreadable", "detail": f"{type(exc).__name__}: {exc}"}
    digest = sha256_bytes(data) if data else None
    try:
        decoded = decode_image(data, max_pixels=max_pixels)
        small = decoded.image.copy()
        small.thumbnail((512, 512))  # hashes and thumbnails need no more; whash on full size is slow
        hashes = perceptual_hashes(small)
        thumb = write_thumbnail(small, home, digest) if thumbnails else None
    except ImageRejected as exc:
        return {**base, "reason": exc.reason, "detail": exc.detail, "sha256": digest, "bytes": len(data)}
    except Exception as exc:  # noqa: BLE001 - one file never fails the batch
        return {**base, "reason": "unreadable", "detail": f"{type(exc).__name__}: {exc}"[:500],
                "sha256": digest, "bytes": len(data)}
    return {
        **base,
        "scan_id": digest,
        "bytes": len(data),
        "format": decoded.format,
        "width": decoded.width,
        "height": decoded.height,
        "mode": decoded.mode,
        "exif_orientation": decoded.exif_orientation,
        **hashes,
        "thumbnail": thumb,
    }


def _scan_file_star(args: tuple) -> dict:
    return scan_file(*args)


DECODE_TIMEOUT_S = 300.0  # one file's decode, hashes and thumbnail; a real 600 dpi scan takes ~1 s


def _refused_by_worker(job: tuple, reason: str, detail: str) -> dict:
    path, home = Path(job[0]), Path(job[1])
    return {"path": canonical_relpath(path, home), "file_name": _utf8(path.name), "reason": reason,
            "sha256": None, "bytes": None, "detail": detail}


def _decode_worker(conn) -> None:
    """A pool worker: reads (index, job) from its pipe, answers (index, row), until it reads None."""
    while True:
        message = conn.recv()
        if message is None:
            return
        i, job = message
        try:
            row = _scan_file_star(job)
        except Exception as exc:  # noqa: BLE001 - scan_file catches decode errors; this is the rest
            row = _refused_by_worker(job, "unreadable", f"{type(exc).__name__}: {exc}"[:500])
        conn.send((i, row))


class _DecodePool:
    """Worker processes that each hold at most one file, so that a worker's death or a file's
    overrun is charged to that file alone.

    The stdlib ProcessPoolExecutor cannot do this: a dead worker breaks the whole pool, and on
    Python 3.11 a worker started while the pool broke is never stopped, so a batch hung for ever
    (CI did, killing one worker). pebble stops with "All workers expired" when a worker dies before
    its first task. Workers come from a fresh single-threaded forkserver, never forked from this
    process: a fork of a process with other threads (torch's, a Dagster step's, a test runner's)
    can inherit a held lock and hang."""

    def __init__(self, workers: int):
        import multiprocessing

        self.ctx = multiprocessing.get_context("forkserver")
        self.size = workers
        self.by_conn: dict = {}  # every worker: pipe -> (process, index of the file it holds or None, started)
        self.idle_deaths = 0

    def start_worker(self) -> None:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_decode_worker, args=(child,), daemon=True, name="vpr-decode")
        proc.start()
        child.close()
        self.by_conn[parent] = (proc, None, 0.0)

    def stop(self, conn, kill: bool = False) -> None:
        proc = self.by_conn.pop(conn)[0]
        if not kill:
            with contextlib.suppress(OSError):
                conn.send(None)
        proc.join(0 if kill else 5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        conn.close()

    def close(self) -> None:
        for conn in list(self.by_conn):
            self.stop(conn)


def _scan_all(jobs: list[tuple], workers: int, progress: Callable[[int, int], None] | None,
              timeout_s: float = DECODE_TIMEOUT_S) -> list[dict]:
    """scan_file over every job, in worker processes when it pays, one file per worker at a time.

    A worker that dies (a decoder crashing the interpreter, the OOM killer) costs only the file it
    held: that file is tried once more in another worker (the OOM killer may have hit an innocent
    file), then becomes a `decoder_crashed` reject; a file that runs past `timeout_s` has its
    worker killed and becomes `decoder_timeout`. The rest of the batch goes on."""
    import time
    from collections import deque
    from multiprocessing.connection import wait

    rows: list[dict | None] = [None] * len(jobs)
    done = 0

    def record(i: int, row: dict) -> None:
        nonlocal done
        rows[i] = row
        done += 1
        if progress:
            progress(done, len(jobs))

    if workers <= 1 or len(jobs) <= 8:
        for i, job in enumerate(jobs):
            record(i, _scan_file_star(job))
        return rows  # type: ignore[return-value]

    pending = deque(range(len(jobs)))
    deaths: dict[int, int] = {}
    pool = _DecodePool(min(workers, len(jobs)))
    try:
        for _ in range(pool.size):
            pool.start_worker()
        while done < len(jobs):
            for conn, (proc, held, _) in list(pool.by_conn.items()):  # hand out work
                if held is None and pending:
                    i = pending.popleft()
                    try:
                        conn.send((i, jobs[i]))
                        pool.by_conn[conn] = (proc, i, time.monotonic())
                    except OSError:  # died idle; noticed below through its sentinel
                        pending.appendleft(i)
            sentinels = {proc.sentinel: conn for conn, (proc, _, _) in pool.by_conn.items()}
            started = [t for _, i, t in pool.by_conn.values() if i is not None]
            wait_s = max(0.0, min(started) + timeout_s - time.monotonic()) if started else 1.0
            for ready in wait(list(pool.by_conn) + list(sentinels), timeout=wait_s):
                conn = sentinels.get(ready, ready)
                if conn not in pool.by_conn:
                    continue
                proc, held, _ = pool.by_conn[conn]
                try:
                    if ready is conn:
                        i, row = conn.recv()
                        pool.by_conn[conn] = (proc, None, 0.0)
                        pool.idle_deaths = 0  # workers do start: only deaths in a row mean they cannot
                        record(i, row)
                        continue
                except (EOFError, OSError):
                    pass
                # the worker died: charge its file, if it held one, and start another
                pool.stop(conn, kill=True)
                if held is None:
                    pool.idle_deaths += 1
                    if pool.idle_deaths > 3 * pool.size:
                        raise RuntimeError(f"decode workers keep dying before taking a file "
                                           f"(exit code {proc.exitcode})")
                else:
                    deaths[held] = deaths.get(held, 0) + 1
                    if deaths[held] >= 2:
                        record(held, _refused_by_worker(
                            jobs[held], "decoder_crashed",
                            f"the process reading this file died twice (exit code {proc.exitcode})"))
                    else:
                        pending.appendleft(held)
                if pending:
                    pool.start_worker()
            now = time.monotonic()
            for conn, (proc, held, t0) in list(pool.by_conn.items()):
                if held is not None and now - t0 > timeout_s:
                    pool.stop(conn, kill=True)
                    record(held, _refused_by_worker(jobs[held], "decoder_timeout",
                                                    f"reading this file took longer than {timeout_s:g} s"))
                    if pending:
                        pool.start_worker()
    finally:
        pool.close()
    return rows  # type: ignore[return-value]


def ingest_batch(
    batch_dir: Path,
    batch: str,
    home: Path,
    known_scan_ids: dict[str, str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    decode_timeout_s: float = DECODE_TIMEOUT_S,
) -> BatchResult:
    """Scan one batch folder into scan rows and reject rows.

    `known_scan_ids` maps scan_id -> batch for scans already held by *other* batches; callers that
    run batches in parallel pass none here and apply `drop_known_duplicates` under a lock instead.
    """
    batch_dir = Path(batch_dir).resolve()
    home = Path(home).resolve()
    if not batch_dir.is_dir():
        raise FileNotFoundError(f"batch folder {batch_dir} does not exist")
    files = list_batch_files(batch_dir)
    rel_names = {p.relative_to(batch_dir).as_posix() for p in files}
    result = BatchResult()
    now = _now()

    descriptions: dict[str, str] = {}
    desc_path = batch_dir / DESCRIPTIONS_FILE
    if desc_path.exists() or desc_path.is_symlink():
        descriptions, problems = read_descriptions(desc_path, rel_names)
        desc_rel = desc_path.relative_to(home).as_posix() if desc_path.is_relative_to(home) else str(desc_path)
        for loc, reason, detail in problems:
            result.rejects.append({"batch": batch, "path": f"{desc_rel}#{loc.partition('#')[2]}" if "#" in loc else desc_rel,
                                   "file_name": DESCRIPTIONS_FILE, "reason": reason, "detail": detail,
                                   "rejected_at": now})

    batch_rel = canonical_relpath(batch_dir, home)
    for rel, reason, detail in read_not_copied(batch_dir):
        result.rejects.append({"batch": batch, "path": f"{batch_rel}/{rel}", "file_name": rel.rpartition("/")[2],
                               "reason": reason, "detail": f"not copied by vpr ingest: {detail}", "rejected_at": now})

    jobs = [(p, home, max_pixels, True, batch_dir) for p in files]
    rows = _scan_all(jobs, workers, progress, decode_timeout_s)

    seen_here: dict[str, dict] = {}
    for path, row in zip(files, rows):
        rel_name = path.relative_to(batch_dir).as_posix()
        desc = descriptions.get(rel_name)
        if "reason" in row:
            result.rejects.append({**row, "batch": batch, "rejected_at": now, "description": desc})
            continue
        sid = row["scan_id"]
        if sid in seen_here:
            kept = seen_here[sid]
            detail = f"same bytes as {kept['path']!r} in this batch"
            if desc and not kept["description"]:  # the kept copy had none: it takes this one
                kept["description"] = desc
                detail += "; its description moved to that scan"
            result.rejects.append({"batch": batch, "path": row["path"], "file_name": row["file_name"],
                                   "reason": "duplicate_file", "detail": detail, "description": desc,
                                   "sha256": sid, "bytes": row["bytes"], "duplicate_of": sid, "rejected_at": now})
            continue
        scan = {**row, "batch": batch, "description": desc, "source_scan_id": None, "ingested_at": now}
        seen_here[sid] = scan
        result.scans.append(scan)
    return drop_known_duplicates(result, known_scan_ids or {})


def drop_known_duplicates(result: BatchResult, known_scan_ids: dict[str, str]) -> BatchResult:
    """Move scans whose bytes another batch already holds (scan_id -> batch) to the rejects."""
    kept, rejects = [], list(result.rejects)
    for row in result.scans:
        sid = row["scan_id"]
        if sid in known_scan_ids and known_scan_ids[sid] != row["batch"]:
            rejects.append({"batch": row["batch"], "path": row["path"], "file_name": row["file_name"],
                            "reason": "duplicate_file",
                            "detail": f"same bytes as a scan already ingested in batch {known_scan_ids[sid]!r}",
                            "sha256": sid, "bytes": row["bytes"], "duplicate_of": sid,
                            "rejected_at": row["ingested_at"], "description": row.get("description")})
        else:
            kept.append(row)
    return BatchResult(scans=kept, rejects=rejects)


def store_batch(cat, batch: str, result: BatchResult) -> BatchResult:
    """Write a batch's `raw_scans` and `scan_rejects` partitions (both, always: each file lands in
    exactly one). The claim step runs under the catalog's writer lock: scans whose bytes another
    batch already holds become `duplicate_file` rejects, so two batches ingested at once can never
    both keep one file. Returns what was written."""
    with cat.writer_lock():
        others = cat.arrow("raw_scans", columns=["scan_id", "batch"], where="batch <> ?", params=[batch]) \
            if cat.has("raw_scans") else None
        known = dict(zip(others.column("scan_id").to_pylist(), others.column("batch").to_pylist())) if others else {}
        result = drop_known_duplicates(result, known)
        cat.write_partition("raw_scans", batch, result.scans_table(), sync=False)
        cat.write_partition("scan_rejects", batch, result.rejects_table(), sync=False)
    cat.sync_views(["raw_scans", "scan_rejects"])  # a held catalog: bounded retry, then reported by the caller
    return result


@dataclass
class _CopyPlan:
    dirs: list[str] = field(default_factory=list)  # relative folders to create
    files: list[str] = field(default_factory=list)  # relative regular files to copy
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (relative path, reason, detail)


def _plan_copy(source: Path) -> _CopyPlan:
    """What copying `source` means, decided without following a single link: regular files are
    copied; links (to files or folders, dangling, looping, leaving the folder), FIFOs, sockets,
    devices and folders that cannot be listed are refused with a reason."""
    plan = _CopyPlan()

    def unlistable(err: OSError) -> None:
        if err.filename and Path(err.filename) != source:
            plan.refused.append((_utf8(Path(err.filename).relative_to(source).as_posix()), "unreadable",
                                 f"{type(err).__name__}: {err.strerror}"))

    for root, dirs, names in os.walk(source, onerror=unlistable, followlinks=False):
        root_p = Path(root)
        for d in sorted(dirs):
            if os.path.islink(root_p / d):
                names.append(d)
            else:
                plan.dirs.append((root_p / d).relative_to(source).as_posix())
        dirs[:] = sorted(d for d in dirs if not os.path.islink(root_p / d))
        for name in sorted(names):
            p = root_p / name
            rel = p.relative_to(source).as_posix()
            try:
                mode = os.lstat(p).st_mode
            except OSError as exc:
                plan.refused.append((_utf8(rel), "unreadable", f"{type(exc).__name__}: {exc.strerror}"))
                continue
            if stat.S_ISREG(mode):
                plan.files.append(rel)
            elif stat.S_ISLNK(mode):
                plan.refused.append((_utf8(rel), *link_problem(p, source)))
            else:
                plan.refused.append((_utf8(rel), "special_file", f"a {kind_of(mode)}, not a regular file: not copied"))
    return plan


INBOX_LOCK_TIMEOUT_S = 3600.0


@contextlib.contextmanager
def _inbox_lock(inbox: Path):
    """Serialise copies into one inbox across processes (two `vpr ingest` of one new name raced).
    A copy holds it for as long as the folder takes to copy, so the wait is long but bounded."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(inbox / ".ingest.lock"), timeout=INBOX_LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise TimeoutError(f"another ingest into {inbox} held its lock for {INBOX_LOCK_TIMEOUT_S:.0f} s") from None
    try:
        yield
    finally:
        lock.release()


def copy_batch_into_inbox(source: Path, inbox: Path, batch: str,
                          progress: Callable[[], None] | None = None) -> tuple[Path, bool]:
    """Copy a folder of scans into `inbox/<batch>/` atomically (staging folder, then rename).

    Returns (batch folder, created). Re-ingesting the same folder under the same name is a no-op;
    a different folder under an existing name is refused rather than mixed in. Only regular files
    are copied: links are never followed (a link to /etc/passwd is not data), and every entry not
    copied (links, FIFOs, devices, sockets, unlistable folders) is listed with its reason in
    `.vpr_not_copied.tsv`, which ingestion turns into scan_rejects rows. Concurrent copies are
    serialised with a lock; the staging folder is removed on every failure path.
    """
    import shutil

    validate_batch_name(batch)
    source = Path(source).resolve()
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder")
    inbox = Path(inbox)
    inbox.mkdir(parents=True, exist_ok=True)
    plan = _plan_copy(source)
    with _inbox_lock(inbox):
        target = inbox / batch
        for stale in inbox.glob(f".incoming-{_glob_escape(batch)}-*"):  # left by a killed copy: we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        if target.exists() or target.is_symlink():
            if _same_copy(source, plan, target):
                return target, False
            raise FileExistsError(f"batch {batch!r} already exists in the inbox with different files; "
                                  "choose another --batch name")
        staging = inbox / f".incoming-{batch}-{os.getpid()}"
        try:
            staging.mkdir()
            for d in plan.dirs:
                (staging / d).mkdir(parents=True, exist_ok=True)
            for rel in plan.files:
                try:
                    data_src = source / rel
                    _copy_regular(data_src, staging / rel)
                except FileRefused as exc:  # swapped for a pipe or a link since the plan
                    plan.refused.append((_utf8(rel), exc.reason, exc.detail))
                if progress:
                    progress()
            if plan.refused:
                with open(staging / NOT_COPIED_FILE, "w", encoding="utf-8", newline="") as fh:
                    w = csv.writer(fh, delimiter="\t")
                    w.writerow(["path", "reason", "detail"])
                    w.writerows(sorted(plan.refused))
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target, True


def _glob_escape(text: str) -> str:
    import glob

    return glob.escape(text)


def _copy_regular(src: Path, dst: Path) -> None:
    """Copy one regular file without following a link or blocking on a pipe; keep its times."""
    import shutil

    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(src, flags)
    except OSError as exc:
        if exc.errno in (40, 6):  # ELOOP (now a link), ENXIO (now a socket/pipe)
            raise FileRefused("special_file", f"changed while copying: {exc.strerror}") from None
        raise
    with os.fdopen(fd, "rb") as fin:
        st = os.fstat(fin.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused("special_file", f"a {kind_of(st.st_mode)}, not a regular file: not copied")
        os.set_blocking(fin.fileno(), True)
        with open(dst, "xb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _same_copy(source: Path, plan: _CopyPlan, target: Path) -> bool:
    """True when `target` holds exactly the regular files `plan` would copy from `source`."""
    import filecmp

    there = _plan_copy(target)
    theirs = sorted(f for f in there.files if f != NOT_COPIED_FILE)
    if theirs != sorted(plan.files) or there.refused:
        return False
    return all(filecmp.cmp(source / r, target / r, shallow=False) for r in plan.files)


def read_not_copied(batch_dir: Path) -> list[tuple[str, str, str]]:
    """The entries `copy_batch_into_inbox` refused to copy: (relative path, reason, detail)."""
    path = Path(batch_dir) / NOT_COPIED_FILE
    if not is_regular_file(path) or path.is_symlink():
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return [tuple(r[:3]) for r in rows[1:] if len(r) >= 3]


def validate_batch_name(batch: str) -> str:
    """The batch name as a partition key, or ValueError saying why storage cannot hold it:
    before anything is copied or registered (a name registered and then impossible to write
    failed every materialisation)."""
    if not isinstance(batch, str) or not batch or batch.startswith(".") or "/" in batch or "\\" in batch \
            or batch.strip() != batch or len(batch) > 128:
        raise ValueError(f"invalid batch name {batch!r}: use a non-empty name without '/', leading '.' or spaces at the ends")
    if any(ord(c) < 32 or ord(c) == 127 for c in batch):
        raise ValueError(f"invalid batch name {batch!r}: control characters")
    if not _is_utf8(batch):
        raise ValueError(f"invalid batch name {_utf8(batch)!r}: not valid UTF-8")
    if problem := storable_key_problem(batch):
        raise ValueError(f"invalid batch name {batch!r}: {problem}")
    if len(f".incoming-{batch}-{2**22}".encode("utf-8")) > 255:
        raise ValueError(f"invalid batch name {batch!r}: too long for a folder name in the inbox")
    return batch


def inbox_batches(inbox: Path) -> list[str]:
    """Batch folders waiting in the inbox (staging folders start with '.' and are skipped)."""
    if not inbox.exists():
        return []
    return sorted(p.name for p in inbox.iterdir() if p.is_dir() and not p.name.startswith("."))


def invalid_batch_name(batch: str) -> str | None:
    """Why `batch` cannot be a batch (`validate_batch_name`'s message), or None."""
    try:
        validate_batch_name(batch)
    except ValueError as exc:
        return str(exc)
    return None
