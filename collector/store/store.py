"""The store: one ClickHouse database, embedded (chDB) or a server, through clickhouse-connect."""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from tracehouse._errors import StoreError
from tracehouse.collector.store.clients import ClientPool
from tracehouse.collector.store.engine import connect as _connect
from tracehouse.collector.store.memory import embedded_memory
from tracehouse.collector.store.migrations import MIGRATIONS
from tracehouse.collector.store.readonly import DEFAULT_LIMITS, QueryLimits, ReaderPool, readonly_error
from tracehouse.collector.store.sql_guard import check_readonly_sql

if TYPE_CHECKING:
    import pandas as pd
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger("tracehouse")

_DATABASE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class BadRowsError(StoreError):
    """An insert was refused because of the values in it (not because the store is unavailable).

    Retrying the same rows fails the same way: the writer splits the batch to isolate them."""


# ClickHouse error codes that blame the rows of an insert, not the store: parse and conversion
# failures, values out of range, NULL into a plain column, string too large, and (for code 252,
# TOO_MANY_PARTS) "too many partitions for single INSERT block". 252 also means "too many parts",
# which is the store being behind on merges: transient, so the message decides.
_ROW_FAULT_CODES = frozenset({6, 26, 27, 32, 38, 41, 53, 69, 70, 72, 117, 131, 190, 321, 349, 407})
_CODE_RE = re.compile(r"Code: (\d+)\.")


def refusal(error: BaseException, what: str) -> StoreError:
    """The StoreError for a failed insert or statement: BadRowsError when the values are at fault."""
    from clickhouse_connect.driver.exceptions import DataError

    text = _first_line(error)
    match = _CODE_RE.search(str(error))
    code = int(match.group(1)) if match else None
    at_fault = (
        isinstance(error, DataError)
        or code in _ROW_FAULT_CODES
        or (code == 252 and "too many partitions" in str(error).lower())
    )
    if at_fault:
        return BadRowsError(f"{what} refused the values: {text}")
    return StoreError(f"{what} failed: {text}")


class Store:
    """One tracehouse database: schema migrations, batched inserts, SQL reads.

    `Store(url, database)` connects and applies pending migrations. `url` is `chdb:///path` for the
    embedded engine or `http(s)://user:password@host:port` for a ClickHouse server.
    """

    def __init__(self, url: str, database: str = "tracehouse") -> None:
        if not isinstance(database, str) or not _DATABASE_RE.match(database):
            raise StoreError(f"database: expected a ClickHouse identifier ([A-Za-z_][A-Za-z0-9_]*), got {database!r}")
        self.url = url
        self.database = database
        admin = _connect(url)
        try:
            admin.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            self.client = _connect(url, database)
        except StoreError:
            raise
        except Exception as error:
            raise StoreError(f"cannot create database {database!r}: {error}") from error
        finally:
            admin.close()  # after the database client is open: closing chDB's last client stops the engine
        self._lock = threading.Lock()  # the client's: inserts, commands, migrations
        self._readers = ReaderPool(lambda settings: _connect(url, database, settings=settings))
        self._reads = ClientPool(lambda: _connect(url, database))  # trusted reads: never behind an insert
        self._types: dict[str, dict[str, str]] = {}
        self._reaching_functions: Optional[frozenset[str]] = None
        self.migrate()

    def another_client(self) -> Store:
        """The same database over a connection of its own (for a second writer thread); no migrations."""
        other = object.__new__(Store)
        other.url, other.database = self.url, self.database
        other.client = _connect(self.url, self.database)
        other._lock = threading.Lock()
        other._readers = ReaderPool(lambda settings: _connect(self.url, self.database, settings=settings))
        other._reads = ClientPool(lambda: _connect(self.url, self.database))
        other._types = {}
        other._reaching_functions = None
        return other

    @property
    def embedded(self) -> bool:
        """True for the in-process chDB engine."""
        return self.url.startswith("chdb://")

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded in `collector/store/migrations.py`; return their names."""
        db = self.database
        self.client.command(
            f"CREATE TABLE IF NOT EXISTS `{db}`._migrations "
            "(name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = MergeTree ORDER BY name"
        )
        done = {row[0] for row in self.client.query(f"SELECT name FROM `{db}`._migrations").result_rows}
        applied = []
        for name, statements in MIGRATIONS:
            if name in done:
                continue
            for statement in statements:
                self.client.command(statement.format(db=f"`{db}`"))
            self.client.insert("_migrations", [[name]], column_names=["name"], database=db)
            applied.append(name)
        return applied

    def insert(self, table: str, columns: Mapping[str, Sequence[Any]], dedup_token: Optional[str] = None) -> None:
        """Insert column-oriented data; a repeated `dedup_token` makes a resent batch a no-op."""
        names = list(columns)
        if not names or not len(columns[names[0]]):
            return
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        try:
            with self._lock:
                types = self._column_types(table)
                self.client.insert(
                    table, [columns[n] for n in names], column_names=names, column_oriented=True,
                    database=self.database, settings=settings, column_type_names=[types[n] for n in names],
                )  # fmt: skip
                self._return_memory()
        except Exception as error:
            raise refusal(error, f"insert into {table}") from error

    def _return_memory(self) -> None:
        """After a write on the embedded engine, hand its freed pages back (throttled; see memory.py)."""
        if self.embedded:
            embedded_memory.after_write(self.client)

    def _column_types(self, table: str) -> dict[str, str]:
        """Column types of a table, read once (the client would otherwise DESCRIBE it on every insert)."""
        types = self._types.get(table)
        if types is None:
            result = self.client.query(f"DESCRIBE TABLE `{self.database}`.`{table}`")
            types = self._types[table] = {str(row[0]): str(row[1]) for row in result.result_rows}
        return types

    def query_df(self, sql: str, parameters: Optional[Mapping[str, Any]] = None) -> pd.DataFrame:
        """Run a SELECT; the result as a pandas DataFrame. Values bind as {name:Type} parameters."""
        try:
            with self._reads.borrow() as client:
                return client.query_df(sql, parameters=dict(parameters or {}))
        except Exception as error:
            raise StoreError(f"query failed: {_first_line(error)}") from error

    def query_rows(
        self, sql: str, parameters: Optional[Mapping[str, Any]] = None, settings: Optional[dict[str, Any]] = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a SELECT; (column names, rows)."""
        try:
            with self._reads.borrow() as client:
                result = client.query(sql, parameters=dict(parameters or {}), settings=settings)
        except Exception as error:
            raise StoreError(f"query failed: {_first_line(error)}") from error
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    def command(
        self, sql: str, parameters: Optional[Mapping[str, Any]] = None, settings: Optional[dict[str, Any]] = None
    ) -> None:
        """Run a statement that returns no rows (an INSERT ... SELECT); BadRowsError when values do not fit."""
        try:
            with self._lock:
                self.client.command(sql, parameters=dict(parameters or {}), settings=settings)
                self._return_memory()
        except Exception as error:
            raise refusal(error, "statement") from error

    def query_readonly(
        self, sql: str, parameters: Optional[Mapping[str, Any]] = None, limits: QueryLimits = DEFAULT_LIMITS
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run untrusted SQL (see `sql_guard.py` and `readonly.py`); (column names, rows)."""
        reader = self._checked_reader(sql, limits)
        try:
            result = reader.query(sql, parameters=dict(parameters or {}))
        except Exception as error:
            raise readonly_error(error, limits) from error
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    def query_readonly_df(
        self, sql: str, parameters: Optional[Mapping[str, Any]] = None, limits: QueryLimits = DEFAULT_LIMITS
    ) -> pd.DataFrame:
        """Run untrusted SQL; the result as a DataFrame (types as ClickHouse gives them)."""
        reader = self._checked_reader(sql, limits)
        try:
            return reader.query_df(sql, parameters=dict(parameters or {}))
        except Exception as error:
            raise readonly_error(error, limits) from error

    def _checked_reader(self, sql: str, limits: QueryLimits) -> Client:
        """The read-only session for `limits`, once `sql` passed the guard (ConfigError otherwise)."""
        check_readonly_sql(sql, self._engine_table_functions())
        return self._readers.get(limits.checked())

    def _engine_table_functions(self) -> frozenset[str]:
        """The table functions this engine has (the guard refuses all but the generators), read once."""
        if self._reaching_functions is None:
            try:
                _, rows = self.query_rows("SELECT name FROM system.table_functions")
                self._reaching_functions = frozenset(str(r[0]).lower() for r in rows)
            except StoreError:
                return frozenset()
        return self._reaching_functions

    def ping(self) -> bool:
        """True when the store answers."""
        try:
            with self._reads.borrow() as client:
                client.query("SELECT 1")
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Close the clients (for chDB, the data directory's lock is released with the last client)."""
        self._readers.close()
        self._reads.close()
        self.client.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:2000]
    return type(error).__name__
