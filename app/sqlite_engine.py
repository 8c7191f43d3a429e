"""Piccolo's SQLite engine, with the connection kept between queries.

Piccolo's ``SQLiteEngine`` opens a new aiosqlite connection for every query outside a
transaction: a new thread, ``sqlite3.connect`` (opening the file, reading the schema), a
``PRAGMA``, the query, then closing it all again. On a portal page of eight queries that was most
of the page's time. ``PooledSQLiteEngine`` runs those queries on a few long-lived threads instead,
each with its own open ``sqlite3`` connection (made with the same arguments, so the same type
converters, autocommit mode and lock timeout apply). Transactions (``db.write()``) keep Piccolo's
own dedicated connection, unchanged.

Connections are in autocommit mode (``isolation_level=None``, Piccolo's default), so a pooled
connection never holds a transaction, or a stale read snapshot, between queries.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from piccolo.engine.sqlite import SQLiteEngine, dict_factory

POOL_THREADS = 4  # SQLite releases the GIL while it works; a few threads let reads overlap
# Page cache per pooled connection, in KiB (SQLite's default is 2,000): the operating system
# caches the file too, and each worker process holds POOL_THREADS of these.
CACHE_KIB = 1024


class PooledSQLiteEngine(SQLiteEngine):
    def __init__(self, path: str, *, threads: int = POOL_THREADS, **kwargs: Any) -> None:
        super().__init__(path=path, **kwargs)
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []

    def _pool(self) -> ThreadPoolExecutor:
        # Made at first use (and again after ``close``), so a stopped engine can start again.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="sqlite")
            self._local = threading.local()
        return self._executor

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            # check_same_thread=False only so that ``close`` may close it; it is used by its
            # own thread alone.
            connection = sqlite3.connect(**self.connection_kwargs, check_same_thread=False)
            connection.row_factory = dict_factory
            connection.execute("PRAGMA foreign_keys = 1")
            connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _run(self, query: str, args: list[Any]) -> list[dict[str, Any]]:
        cursor = self._connection().execute(query, args)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ):
        if query_type == "insert" and self.get_version_sync() < 3.35:
            # No RETURNING before SQLite 3.35: Piccolo's own path reads the new row back.
            return await super()._run_in_new_connection(query, args, query_type, table)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), self._run, query, args or [])

    def close(self) -> None:
        """Stop the threads and close their connections (``app.db.stop``)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
