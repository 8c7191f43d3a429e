"""A TCP relay in front of PostgreSQL that can stop a chosen transaction at its COMMIT, so a test
can kill the server at a known point of a request instead of at a random one.

It reads nothing but what it relays: a client→server chunk that inserts into ``watch`` (the
table's name appears in the statement's text, which asyncpg sends the first time a connection
runs that statement) marks the connection; on that connection's next ``COMMIT``:

- ``"before-commit"``: the COMMIT is not forwarded (the transaction is open on the server, all its
  writes done but none visible);
- ``"after-commit"``: the COMMIT is forwarded (the server commits) but its answer is held, so the
  application never learns it committed.

Either way ``held`` is set and from then on the proxy freezes: it forwards nothing more on any
connection (so no other connection of the server, such as the mail worker's, moves on either).
``cut()`` closes every connection: PostgreSQL rolls back whatever was still open.
"""

from __future__ import annotations

import asyncio
import contextlib

HOST = "127.0.0.1"


class PostgresProxy:
    def __init__(self, target_port: int, watch: bytes = b"mail_outbox") -> None:
        self.target_port = target_port
        self.watch = watch
        self.mode: str | None = None  # None | "before-commit" | "after-commit"
        self.held = asyncio.Event()
        self.frozen = False
        self.closing = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def arm(self, mode: str) -> None:
        assert mode in ("before-commit", "after-commit")
        self.mode = mode
        self.held.clear()

    def reset(self) -> None:
        """Relay everything again (for the next server)."""
        self.mode = None
        self.frozen = False
        self.held.clear()

    async def cut(self) -> None:
        for writer in list(self._writers):
            writer.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._writers.clear()

    async def close(self) -> None:
        self.closing = True
        if self._server is not None:
            self._server.close()
        await self.cut()
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            # Not cancelled by cut() while connecting (a cancelled connect leaks its socket).
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        if self.closing:
            writer.close()
            up_writer.close()
            return
        handler = asyncio.current_task()
        assert handler is not None
        self._tasks.add(handler)
        state = {"marked": False, "hold_answers": False}

        async def to_server() -> None:
            while data := await reader.read(65536):
                if self.frozen:
                    return
                if self.mode and b"INSERT" in data and self.watch in data:
                    state["marked"] = True
                if self.mode and state["marked"] and b"COMMIT" in data:
                    self.frozen = True
                    if self.mode == "after-commit":
                        state["hold_answers"] = True
                        up_writer.write(data)
                        await up_writer.drain()
                    self.held.set()
                    return
                up_writer.write(data)
                await up_writer.drain()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                if self.frozen or state["hold_answers"]:
                    return
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.ensure_future(to_server()), asyncio.ensure_future(to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if self.frozen:  # hold the connection open, silent, until cut()
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        finally:
            for task in tasks:
                task.cancel()
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()
            self._tasks.discard(handler)
