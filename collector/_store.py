"""The store: one ClickHouse database, embedded (chDB) or a server, through clickhouse-connect."""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from tracehouse._errors import StoreError

from ._migrations import MIGRATIONS

if TYPE_CHECKING:
    import pandas as pd
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger("tracehouse")

_DATABASE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_embedded_path: Optional[str] = None  # chDB serves one data directory per process, for its whole life
_embedded_lock = threading.Lock()


def _get_client(url: str, database: Optional[str], settings: Optional[dict[str, Any]] = None) -> Client:
    import clickhouse_connect

    options: dict[str, Any] = {"dsn": url}
    if database:
        options["database"] = database
    if settings:
        options["settings"] = settings
    return clickhouse_connect.get_client(**options)


def _connect(url: str, database: Optional[str] = None, settings: Optional[dict[str, Any]] = None) -> Client:
    """A client for `url`; chDB's one-directory-per-process and lock errors become clear StoreErrors."""
    global _embedded_path
    if not url.startswith("chdb://"):
        try:
            return _get_client(url, database, settings)
        except Exception as error:
            raise StoreError(f"cannot connect to ClickHouse at {_redact_url(url)}: {error}") from error
    path = url[len("chdb://") :]
    with _embedded_lock:
        if _embedded_path is not None and _embedded_path != path:
            raise StoreError(
                f"this process already opened the embedded store at {_embedded_path!r}; chDB serves one data "
                f"directory per process, so {path!r} cannot be opened too"
            )
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            client = _get_client(url, database, settings)
        except Exception as error:
            if "lock" in str(error).lower():
                raise StoreError(
                    f"the embedded store at {path!r} is open in another process (chDB allows one). Read through "
                    "that process, or run `tracehouse serve` there and point TRACEHOUSE_ENDPOINT at it"
                ) from error
            raise StoreError(f"cannot open the embedded store at {path!r}: {error}") from error
        _embedded_path = path
        return client


class BadRowsError(StoreError):
    """An insert was refused because of the values in it (not because the store is unavailable)."""


def _redact_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


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
        self._lock = threading.Lock()
        self._reader: Optional[Client] = None
        self._types: dict[str, dict[str, str]] = {}
        self.migrate()

    def another_client(self) -> Store:
        """The same database over a connection of its own (for a second writer thread); no migrations."""
        other = object.__new__(Store)
        other.url, other.database = self.url, self.database
        other.client = _connect(self.url, self.database)
        other._lock = threading.Lock()
        other._reader = None
        other._types = {}
        return other

    @property
    def embedded(self) -> bool:
        """True for the in-process chDB engine."""
        return self.url.startswith("chdb://")

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded in `_migrations`; return their names."""
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
        from clickhouse_connect.driver.exceptions import DataError

        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        try:
            with self._lock:
                types = self._column_types(table)
                self.client.insert(
                    table, [columns[n] for n in names], column_names=names, column_oriented=True,
                    database=self.database, settings=settings, column_type_names=[types[n] for n in names],
                )  # fmt: skip
        except DataError as error:  # a value does not fit its column: the rows are at fault, not the store
            raise BadRowsError(f"insert into {table} refused the values: {_first_line(error)}") from error
        except Exception as error:
            raise StoreError(f"insert into {table} failed: {_first_line(error)}") from error

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
            with self._lock:
                return self.client.query_df(sql, parameters=dict(parameters or {}))
        except Exception as error:
            raise StoreError(f"query failed: {_first_line(error)}") from error

    def query_rows(
        self, sql: str, parameters: Optional[Mapping[str, Any]] = None, settings: Optional[dict[str, Any]] = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a SELECT; (column names, rows)."""
        return self._rows(self.client, sql, parameters, settings)

    def command(
        self, sql: str, parameters: Optional[Mapping[str, Any]] = None, settings: Optional[dict[str, Any]] = None
    ) -> None:
        """Run a statement that returns no rows (an INSERT ... SELECT); BadRowsError when values do not fit."""
        from clickhouse_connect.driver.exceptions import DataError

        try:
            with self._lock:
                self.client.command(sql, parameters=dict(parameters or {}), settings=settings)
        except DataError as error:
            raise BadRowsError(f"statement refused the values: {_first_line(error)}") from error
        except Exception as error:
            raise StoreError(f"statement failed: {_first_line(error)}") from error

    def _rows(
        self,
        client: Client,
        sql: str,
        parameters: Optional[Mapping[str, Any]],
        settings: Optional[dict[str, Any]] = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            with self._lock:
                result = client.query(sql, parameters=dict(parameters or {}), settings=settings)
        except Exception as error:
            raise StoreError(f"query failed: {_first_line(error)}") from error
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    def query_readonly(
        self, sql: str, parameters: Optional[Mapping[str, Any]] = None, max_rows: int = 10_000, timeout: float = 30.0
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run untrusted SQL on a read-only session, bounded in time and result rows.

        A separate client: ClickHouse sessions keep `readonly` once set, so the writing client must
        never see it.
        """
        if self._reader is None:
            self._reader = _connect(
                self.url,
                self.database,
                settings={"readonly": 2, "max_execution_time": timeout, "max_result_rows": max_rows,
                          "result_overflow_mode": "throw"},
            )  # fmt: skip
        return self._rows(self._reader, sql, parameters)

    def ping(self) -> bool:
        """True when the store answers."""
        try:
            with self._lock:
                self.client.query("SELECT 1")
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Close the clients (for chDB, the data directory's lock is released with the last client)."""
        if self._reader is not None:
            self._reader.close()
        self.client.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:2000]
    return type(error).__name__


def _reset_lock_after_fork() -> None:
    global _embedded_lock
    _embedded_lock = threading.Lock()  # a lock held by another thread at fork time would never be released


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_after_fork)
