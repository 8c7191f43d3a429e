"""The load generator: its own process (``python -m tests.bench.loadgen``), a JSON spec on stdin,
a JSON result on stdout.

A small HTTP/1.1 keep-alive client on asyncio streams (a general client such as httpx costs
several times more CPU per request, and this process shares the machine with the server). Two
modes:

- ``closed``: ``concurrency`` connections, each sending its next request as soon as the previous
  answer arrived, for ``duration`` seconds: the maximum throughput.
- ``rate``: requests scheduled at a fixed ``rate`` per second, served by up to ``concurrency``
  connections; a request's latency counts from its scheduled time, so a stalled server is not
  hidden by requests that were never sent (coordinated omission).

Requests sent during the first ``warmup`` seconds are not counted. The result says how much CPU
this process used, so a saturated generator can be told from a saturated server.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode


def _ip(n: int) -> str:
    """A distinct client address per request (10.0.0.0/8), reported in X-Forwarded-For."""
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def request_maker(host: str, spec: dict[str, Any]) -> Callable[[int], bytes]:
    """Request ``n`` of the scenario, as bytes."""
    path = spec["path"]
    headers = [f"Host: {host}", "User-Agent: portico-bench", "Accept: text/html"]
    headers += [f"{k}: {v}" for k, v in spec.get("headers", {}).items()]
    cookies: list[str] = spec.get("cookies", [])

    if spec["kind"] == "get":
        fixed = "\r\n".join(headers)

        def make_get(n: int) -> bytes:
            cookie = f"\r\nCookie: {cookies[n % len(cookies)]}" if cookies else ""
            return f"GET {path} HTTP/1.1\r\n{fixed}{cookie}\r\n\r\n".encode()

        return make_get

    if spec["kind"] == "passcode":
        # Every request for a different email (the known customers' first, then addresses no
        # customer has, which take the same path by design) and from a different client address.
        emails: list[str] = spec["emails"]
        offset: int = spec["offset"]
        csrf_cookie, csrf_token = spec["csrf_cookie"], spec["csrf_token"]
        fixed = "\r\n".join(
            [
                *headers,
                f"Cookie: {csrf_cookie}",
                "Content-Type: application/x-www-form-urlencoded",
            ]
        )

        def make_passcode(n: int) -> bytes:
            k = offset + n
            email = emails[k] if k < len(emails) else f"nobody{k}@{spec['unknown_domain']}"
            body = urlencode({"_csrf_token": csrf_token, "email": email}).encode()
            head = (
                f"POST {path} HTTP/1.1\r\n{fixed}\r\nX-Forwarded-For: {_ip(k)}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            return head.encode() + body

        return make_passcode
    raise ValueError(f"unknown request kind {spec['kind']!r}")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, connection stays open) after reading one whole response."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked, keep = None, False, True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            keep = False
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()
        keep = False
    return status, keep


class Run:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.host, self.port = spec["host"], spec["port"]
        self.make = request_maker(f"{self.host}:{self.port}", spec["request"])
        self.expect = set(spec["request"].get("expect", [200]))
        self.concurrency = spec.get("concurrency", 16)
        self.duration = spec.get("duration", 5.0)
        self.warmup = spec.get("warmup", 1.0)
        self.rate = spec.get("rate")
        # Stop after this many requests (none timed): a warming pass, e.g. one view per session.
        self.count = spec.get("count")
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.failures = 0
        self.next = 0
        self.completed = 0  # warm-up included

    def take(self) -> int:
        n, self.next = self.next, self.next + 1
        return n

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)

    async def _exchange(self, conn, payload: bytes):
        reader, writer = conn
        writer.write(payload)
        await writer.drain()
        status, keep = await read_response(reader)
        if not keep:
            writer.close()
            conn = None
        return status, conn

    def _record(self, status: int | None, latency: float, counted: bool) -> None:
        self.completed += status is not None
        if not counted:
            return
        if status is None:
            self.failures += 1
            return
        self.statuses[status] += 1
        self.latencies.append(latency)

    async def closed_worker(self, start: float, end: float) -> None:
        conn = None
        while (now := time.perf_counter()) < end:
            if self.count is not None and self.next >= self.count:
                break
            counted = now >= start
            try:
                conn = conn or await self._connect()
                t0 = time.perf_counter()
                status, conn = await self._exchange(conn, self.make(self.take()))
                self._record(status, time.perf_counter() - t0, counted and t0 >= start)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self._record(None, 0.0, counted)
                conn = None
                await asyncio.sleep(0.01)
        if conn:
            conn[1].close()

    async def rate_worker(self, queue: asyncio.Queue, start: float) -> None:
        conn = None
        while True:
            scheduled = await queue.get()
            if scheduled is None:
                break
            try:
                conn = conn or await self._connect()
                status, conn = await self._exchange(conn, self.make(self.take()))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status, conn = None, None
            self._record(status, time.perf_counter() - scheduled, scheduled >= start)
        if conn:
            conn[1].close()

    async def run(self) -> dict[str, Any]:
        begin = time.perf_counter()
        cpu0 = os.times()
        start, end = begin + self.warmup, begin + self.warmup + self.duration
        if self.rate:
            queue: asyncio.Queue = asyncio.Queue()
            workers = [
                asyncio.create_task(self.rate_worker(queue, start)) for _ in range(self.concurrency)
            ]
            k = 0
            while (scheduled := begin + k / self.rate) < end:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                queue.put_nowait(scheduled)
                k += 1
            for _ in workers:
                queue.put_nowait(None)
            await asyncio.gather(*workers)
        else:
            await asyncio.gather(*(self.closed_worker(start, end) for _ in range(self.concurrency)))
        elapsed = max(time.perf_counter() - start, 1e-9)
        cpu1 = os.times()
        cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            if not ordered:
                return float("nan")
            return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

        ok = sum(n for status, n in self.statuses.items() if status in self.expect)
        return {
            "count": len(ordered),
            "completed": self.completed,
            "ok": ok,
            "unexpected": {str(s): n for s, n in self.statuses.items() if s not in self.expect},
            "failures": self.failures,
            "seconds": round(elapsed, 3),
            "rps": ok / self.duration,
            "p50_ms": pct(50),
            "p99_ms": pct(99),
            "generator_cpu": cpu / (time.perf_counter() - begin),
        }


def main() -> None:
    spec = json.load(sys.stdin)
    result = asyncio.run(Run(spec).run())
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
