"""``python -m tests.bench.static_files``: the cost of a static file next to ``/healthz``.

The real server (``tests.bench.server``, as ``portico serve`` starts it, one worker) on a fresh
SQLite database. First at full speed from ``tests.bench.loadgen`` (its own process): ``/healthz``,
the stylesheet by its plain URL and by the versioned URL the pages link to. Then through httpx
(the load generator expects a body after every status, and a 304 has none): ``/healthz`` and a
revalidation of the stylesheet with ``If-None-Match`` (304). Prints throughput and the server's
CPU time per request (user + system, from /proc); nothing here asserts a time.

Note: ``/healthz`` is the one path whose access line is written at DEBUG (not written); every
other request costs one JSON access-log line.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
from pathlib import Path

import httpx

from tests.bench.run import ROOT, Options, Server, load, server_env
from tests.portico_process import portico_command

CSS = "/static/css/portico.css"


async def _versioned_url(server: Server) -> str:
    async with httpx.AsyncClient(base_url=server.base) as client:
        page = await client.get("/signed-out")
    found = re.search(r'href="(/static/css/portico\.css[^"]*)"', page.text)
    return found.group(1).replace("&amp;", "&") if found else CSS


def _line(label: str, rps: str, cpu_ms: float, note: str) -> None:
    print(f"{label:45} {rps:>12}  server CPU {cpu_ms:.3f} ms/request  ({note})")


async def _through_httpx(
    server: Server, label: str, path: str, headers: dict[str, str], concurrency: int, count: int
) -> None:
    statuses: list[int] = []

    async def client() -> None:
        async with httpx.AsyncClient(base_url=server.base) as http:
            for _ in range(count // concurrency):
                statuses.append((await http.get(path, headers=headers)).status_code)

    cpu_before = server.cpu_seconds()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    cpu_ms = (server.cpu_seconds() - cpu_before) * 1000 / len(statuses)
    answers = ", ".join(f"{s}: {statuses.count(s)}" for s in sorted(set(statuses)))
    _line(f"{label} [httpx]", "", cpu_ms, answers)


async def run(options: Options, count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="portico-bench-static-") as tmp:
        workdir = Path(tmp)
        env = server_env(f"sqlite:///{workdir / 'bench.sqlite3'}", 1, workdir)
        env["PORTICO_RUN_MAIL_WORKER"] = "false"
        migrate = await asyncio.create_subprocess_exec(
            portico_command(), "migrate", env=env, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL
        )
        if await migrate.wait() != 0:
            raise RuntimeError("portico migrate failed")
        async with Server(env, options.workers, workdir / "server.log") as server:
            versioned = await _versioned_url(server)
            for label, path in [("/healthz", "/healthz"), ("css", CSS), ("css", versioned)]:
                result = await load(server, {"kind": "get", "path": path}, options)
                note = f"{result['completed']} requests"
                _line(
                    f"{label} {path}", f"{result['rps']:.0f} req/s", result["server_cpu_ms"], note
                )
            async with httpx.AsyncClient(base_url=server.base) as client:
                etag = (await client.get(CSS)).headers.get("etag", '"none"')
            for label, path, headers in [
                ("/healthz", "/healthz", {}),
                ("css If-None-Match", CSS, {"If-None-Match": etag}),
            ]:
                await _through_httpx(server, label, path, headers, options.concurrency, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--httpx-requests", type=int, default=4000)
    args = parser.parse_args()
    options = Options(
        backends=["sqlite"], duration=args.duration, warmup=1.0, concurrency=args.concurrency
    )
    asyncio.run(run(options, args.httpx_requests))


if __name__ == "__main__":
    main()
