"""The DuckDB catalog over per-partition Parquet files.

DuckDB allows one writing process per database file while Dagster runs partitions in parallel
processes. So every asset writes Parquet files (one per partition, or one for an unpartitioned
asset), each atomically, and `catalog.duckdb` holds only *views* over those files. Parallel runs
never contend for the database; the short view (re)definitions are serialised with a file lock
and retried while an analyst holds the database open.

Layout under the data root::

    tables/<asset>/<quoted partition key>.parquet   partitioned assets
    tables/<asset>/_all.parquet                     unpartitioned assets
    catalog.duckdb                                  CREATE VIEW <asset> AS SELECT * FROM read_parquet(...)
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vpr_assets.storage.atomic import atomic_write
from vpr_assets.storage.names import UNPARTITIONED, partition_file_stem, partition_from_stem, storable_key_problem  # noqa: F401
from vpr_assets.storage.schemas import SCHEMAS, conform

log = logging.getLogger(__name__)

_IDENT_OK = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def _check_table_name(table: str) -> str:
    if not table or not set(table) <= _IDENT_OK or table[0].isdigit():
        raise ValueError(f"table name must be a lower-case identifier, got {table!r}")
    return table


def vectors_to_arrow(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """A (n, d) float array as an Arrow fixed-size list column (DuckDB reads it as FLOAT[d])."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-d array, got shape {vectors.shape}")
    n, d = vectors.shape
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()), d)


def arrow_to_vectors(column: pa.ChunkedArray | pa.Array, dim: int | None = None) -> np.ndarray:
    """The inverse of `vectors_to_arrow`; accepts fixed-size or variable lists."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    if len(column) == 0:
        return np.zeros((0, dim or 0), dtype=np.float32)
    flat = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    return flat.reshape(len(column), -1)


WRITER_LOCK_TIMEOUT_S = 600.0  # steps hold it for a read-modify-write of one table: seconds, not minutes


class Catalog:
    """Read and write the asset tables of one data root."""

    def __init__(self, home: str | Path):
        self.home = Path(home).resolve()
        self.tables_dir = self.home / "tables"
        self.db_path = self.home / "catalog.duckdb"
        self._lock_path = self.home / ".catalog.lock"

    # ---- paths -------------------------------------------------------------------------------
    def table_dir(self, table: str) -> Path:
        return self.tables_dir / _check_table_name(table)

    def partition_path(self, table: str, partition: str = UNPARTITIONED) -> Path:
        return self.table_dir(table) / f"{partition_file_stem(partition)}.parquet"

    def tables(self) -> list[str]:
        if not self.tables_dir.exists():
            return []
        return sorted(p.name for p in self.tables_dir.iterdir() if p.is_dir() and any(p.glob("*.parquet")))

    def partitions(self, table: str) -> list[str]:
        d = self.table_dir(table)
        if not d.exists():
            return []
        return sorted(partition_from_stem(p.stem) for p in d.glob("*.parquet") if p.stem != UNPARTITIONED)

    def has(self, table: str, partition: str | None = None) -> bool:
        if partition is None:
            d = self.table_dir(table)
            return d.exists() and any(d.glob("*.parquet"))
        return self.partition_path(table, partition).exists()

    # ---- writes ------------------------------------------------------------------------------
    def write_partition(
        self,
        table: str,
        partition: str,
        data: pd.DataFrame | pa.Table,
        schema: pa.Schema | None = None,
        sync: bool = True,
    ) -> Path:
        """Replace one partition's rows (atomically): re-running never duplicates rows. A table named
        in `storage.schemas` is written with exactly its schema (SchemaMismatch otherwise)."""
        if partition != UNPARTITIONED and (problem := storable_key_problem(partition)):
            raise ValueError(f"partition {partition[:80]!r} of {table} cannot be stored: {problem}")
        schema = schema or SCHEMAS.get(table)
        if isinstance(data, pd.DataFrame):
            data = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
        elif schema is not None and table not in SCHEMAS:
            data = data.cast(schema)
        data = conform(table, data)
        path = self.partition_path(table, partition)
        atomic_write(path, lambda tmp: pq.write_table(data, tmp, compression="zstd"))
        if sync:
            self.sync_views([table])
        return path

    def write_table(self, table: str, data: pd.DataFrame | pa.Table, schema: pa.Schema | None = None,
                    sync: bool = True) -> Path:
        """Replace an unpartitioned table."""
        return self.write_partition(table, UNPARTITIONED, data, schema=schema, sync=sync)

    def append_rows(self, table: str, rows: list[dict], schema: pa.Schema | None = None) -> Path:
        """Append rows to an unpartitioned history table (model versions, index builds,
        evaluations): read, concatenate and rewrite under the writer lock, so concurrent runs
        never lose each other's rows."""
        schema = schema or SCHEMAS[table]
        with self.writer_lock():
            hist = self.arrow(table).cast(schema) if self.has(table) else schema.empty_table()
            path = self.write_table(table, pa.concat_tables([hist, pa.Table.from_pylist(rows, schema=schema)]), sync=False)
        self.sync_views([table])
        return path

    def delete_partition(self, table: str, partition: str) -> bool:
        path = self.partition_path(table, partition)
        if path.exists():
            path.unlink()
            self.sync_views([table])
            return True
        return False

    # ---- reads -------------------------------------------------------------------------------
    def _source(self, table: str, partition: str | None = None) -> str:
        if partition is not None:
            path = self.partition_path(table, partition)
            return f"read_parquet('{_sql_str(path)}')"
        return f"read_parquet('{_sql_str(self.table_dir(table))}/*.parquet', union_by_name=true)"

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with a view per table: no lock on the catalog file."""
        con = duckdb.connect()
        for table in self.tables():
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {self._source(table)}")
        return con

    def arrow(self, table: str, partition: str | None = None, columns: Sequence[str] | None = None,
              where: str | None = None, params: Sequence | None = None) -> pa.Table:
        """Rows of a table (or one partition) as Arrow; an absent table is an empty result."""
        if not self.has(table, partition):
            return pa.table({c: pa.array([], type=pa.null()) for c in (columns or [])})
        cols = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        sql = f"SELECT {cols} FROM {self._source(table, partition)}"
        if where:
            sql += f" WHERE {where}"
        with duckdb.connect() as con:
            return con.sql(sql, params=list(params or [])).to_arrow_table()

    def read(self, table: str, partition: str | None = None, columns: Sequence[str] | None = None,
             where: str | None = None, params: Sequence | None = None) -> pd.DataFrame:
        return self.arrow(table, partition, columns, where, params).to_pandas()

    def columns(self, table: str) -> list[str]:
        """The column names of a table as its files hold them now ([] when it is absent)."""
        if not self.has(table):
            return []
        with duckdb.connect() as con:
            return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {self._source(table)}").fetchall()]

    def query(self, sql: str, params: Sequence | None = None) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(sql, list(params or [])).fetch_df()

    # ---- the catalog file --------------------------------------------------------------------
    @contextmanager
    def writer_lock(self, timeout_s: float = WRITER_LOCK_TIMEOUT_S) -> Iterator[None]:
        """Serialise short read-modify-write steps across processes (not re-entrant). A lock not
        had within `timeout_s` is an error naming the lock file, never a silent hang."""
        from filelock import FileLock, Timeout

        self.home.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self._lock_path), timeout=timeout_s)
        try:
            lock.acquire()
        except Timeout:
            raise TimeoutError(f"catalog writer lock {self._lock_path} not free after {timeout_s:.0f} s: another "
                               "run is writing (or a stuck process holds it)") from None
        try:
            yield
        finally:
            lock.release()

    @property
    def _pending_path(self) -> Path:
        return self.home / ".views_pending"

    def views_pending(self) -> list[str]:
        """Tables whose views could not be (re)defined because another program held the catalog
        file; the next successful sync (any run, any `vpr` command that writes) defines them."""
        try:
            return sorted({t for t in self._pending_path.read_text().split() if set(t) <= _IDENT_OK})
        except OSError:
            return []

    def sync_views(self, tables: Sequence[str] | None = None, timeout_s: float | None = None) -> bool:
        """(Re)define the views in catalog.duckdb; serialised across processes.

        While another program holds the file (an analyst's connection, read-only ones too) this
        retries for `timeout_s` (default VIEW_SYNC_TIMEOUT_S, env VPR_VIEW_SYNC_TIMEOUT_S), logging
        each wait; then it records the tables in `.views_pending`, logs a warning and returns
        False: the Parquet files are the source of truth and the next sync defines the pending
        views too. Callers report False (Dagster assets: metadata and a warning in the run log).
        """
        timeout_s = view_sync_timeout_s() if timeout_s is None else timeout_s
        wanted = [t for t in (tables or self.tables()) if self.has(t)]
        deadline = time.monotonic() + timeout_s
        next_log = time.monotonic()
        with self.writer_lock():
            pending = self.views_pending()
            wanted = sorted(set(wanted) | {t for t in pending if self.has(t)})
            while True:
                try:
                    with duckdb.connect(str(self.db_path)) as con:
                        for table in wanted:
                            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {self._source(table)}")
                        for table in self._stale_views(con):
                            con.execute(f"DROP VIEW IF EXISTS {table}")
                    if pending:
                        self._pending_path.unlink(missing_ok=True)
                        log.info("catalog %s: pending views %s defined", self.db_path, pending)
                    return True
                except duckdb.IOException as exc:  # another process holds the file
                    now = time.monotonic()
                    if now > deadline:
                        todo = sorted(set(pending) | set(wanted))
                        atomic_write(self._pending_path, lambda p: p.write_text("\n".join(todo) + "\n"))
                        log.warning("catalog %s held by another program for %.0f s: views of %s NOT synced "
                                    "(the next sync defines them): %s", self.db_path, timeout_s, todo, exc)
                        return False
                    if now >= next_log:
                        log.warning("catalog %s held by another program (an open connection?); retrying for "
                                    "%.0f s more", self.db_path, deadline - now)
                        next_log = now + 5.0
                    time.sleep(0.2)

    def _stale_views(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        rows = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        return [r[0] for r in rows if not self.has(r[0]) and set(r[0]) <= _IDENT_OK]


VIEW_SYNC_TIMEOUT_S = 20.0


def view_sync_timeout_s() -> float:
    """How long a view sync waits for a held catalog file (env VPR_VIEW_SYNC_TIMEOUT_S)."""
    try:
        return max(0.0, float(os.environ.get("VPR_VIEW_SYNC_TIMEOUT_S", VIEW_SYNC_TIMEOUT_S)))
    except ValueError:
        return VIEW_SYNC_TIMEOUT_S


def _sql_str(path: Path | str) -> str:
    return str(path).replace("'", "''")
