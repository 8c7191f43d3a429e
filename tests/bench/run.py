"""``python -m tests.bench``: build the data set, start the real server, load it, print the figures.

Per backend (SQLite, PostgreSQL): a fresh database with 10,000 customers and 100,000 invoices;
the server started as ``portico serve`` starts it (``tests.bench.server``: same uvicorn options,
plus the bare Litestar plaintext endpoint that is the ceiling); an SMTP sink so the mail worker
delivers passcodes as in production; then, from a separate load-generator process, each endpoint
at full speed, the overview at 70% of its maximum rate, the workers' resident memory, and the
Stripe calls per page view with ``PORTICO_BILLING=stripe`` against the Stripe-API test server.

Only figures are printed: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import os
import re
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.bench import dataset
from tests.bench.server import CEILING_PATH
from tests.portico_process import free_port, wait_until_answers

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SECRET = "bench-secret-key-" + "b" * 32
SESSION_COOKIE = "portico_session"  # over http (PORTICO_BASE_URL is not https)

# Pages measured as repeat views (with the page cache) and, on a second server, rendered.
PORTAL_PAGES = ("portal overview", "invoice list", "htmx fragment (invoices p2)")

TARGETS = {
    "overview_ratio": 0.15,  # of the ceiling's throughput, on PostgreSQL
    "overview_p99_ms_at_70": 50.0,
    "passcode_rps": 300.0,
    "stripe_calls_per_view": 0.0,
    "rss_mb": 150.0,
}


@dataclass
class Options:
    backends: list[str]
    customers: int = 10_000
    invoices: int = 100_000
    sessions: int = 2_000
    duration: float = 5.0
    warmup: float = 1.0
    concurrency: int = 32
    workers: int = 1
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    stripe_views: int = 200
    quiet: bool = False


@dataclass
class BackendResult:
    backend: str
    build_seconds: float = 0.0
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    overview_at_70: dict[str, Any] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    stripe: dict[str, Any] = field(default_factory=dict)
    outbox: dict[str, Any] = field(default_factory=dict)


# -- databases -------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def fresh_database(backend: str, options: Options, workdir: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    import asyncpg

    name = f"portico_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(options.postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(options.postgres_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(options.postgres_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _pending_mail(url: str) -> tuple[int, int]:
    """(messages still to deliver, messages sent) in the outbox."""
    pending_sql = "SELECT count(*) FROM mail_outbox WHERE status IN ('queued', 'sending')"
    sent_sql = "SELECT count(*) FROM mail_outbox WHERE status = 'sent'"
    if url.startswith("sqlite:///"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
            return (
                connection.execute(pending_sql).fetchone()[0],
                connection.execute(sent_sql).fetchone()[0],
            )
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(pending_sql), await connection.fetchval(sent_sql)
    finally:
        await connection.close()


async def outbox_drained(url: str, patience: float = 300.0) -> dict[str, Any]:
    """Wait until the server's mail worker has delivered every queued message."""
    started = time.monotonic()
    while True:
        pending, sent = await _pending_mail(url)
        waited = time.monotonic() - started
        if pending == 0 or waited > patience:
            return {"seconds": waited, "pending": pending, "sent": sent}
        await asyncio.sleep(0.25)


# -- an SMTP sink, so the mail worker delivers as in production ---------------------------------
@contextlib.asynccontextmanager
async def smtp_sink() -> AsyncIterator[int]:
    from aiosmtpd.smtp import SMTP

    class Sink:
        async def handle_DATA(self, server, session, envelope) -> str:
            return "250 OK"

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink()), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


# -- the server under test -------------------------------------------------------------------------
class Server:
    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.port = free_port()
        self.env = env
        self.workers = workers
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Server:
        out = self.log.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "tests.bench.server",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=out,
        )
        out.close()
        await wait_until_answers(f"{self.base}/readyz", self.check_alive, 60, self.tail, 0.2)
        return self

    def check_alive(self) -> None:
        assert self.process is not None
        if self.process.returncode is not None:
            raise RuntimeError(f"server exited; see {self.log}:\n{self.tail()}")

    async def __aexit__(self, *exc: object) -> None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 40)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def serving_pids(self) -> list[int]:
        assert self.process is not None
        pid = self.process.pid
        if self.workers == 1:
            return [pid]
        return [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _ppid(int(entry.name)) == pid
        ]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the serving processes used so far: per request, a measure
        that other jobs on the machine disturb far less than throughput."""
        return sum(_cpu_seconds(pid) for pid in self.serving_pids())

    def worker_rss_mb(self) -> dict[str, float]:
        """Resident memory of each process serving requests: the server itself with one worker,
        else its worker children (the supervisor is listed too, for completeness)."""
        assert self.process is not None
        pid = self.process.pid
        children = [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _ppid(int(entry.name)) == pid
        ]
        if self.workers == 1:
            return {f"worker pid {pid}": _rss_mb(pid)}
        found = {f"supervisor pid {pid}": _rss_mb(pid)}
        for child in children:
            # multiprocessing's resource tracker is a child too; workers run spawn_main.
            role = "worker" if b"spawn_main" in _cmdline(child) else "helper"
            found[f"{role} pid {child}"] = _rss_mb(child)
        return found


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_env(database_url: str, smtp_port: int, workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        PORTICO_DATABASE_URL=database_url,
        PORTICO_SECRET_KEY=SECRET,
        PORTICO_VAR_DIR=str(workdir / "var"),
        PORTICO_SMTP_HOST="127.0.0.1",
        PORTICO_SMTP_PORT=str(smtp_port),
        PORTICO_LOG_FORMAT="json",
        # The load generator stands behind a proxy at 127.0.0.1 that reports each simulated
        # client's address (X-Forwarded-For): the per-IP throttles apply per simulated client,
        # as they would in a deployment behind a reverse proxy.
        PORTICO_TRUSTED_PROXIES="127.0.0.1",
    )
    env.update(extra)
    return env


# -- load ------------------------------------------------------------------------------------------
async def load(server: Server, request: dict[str, Any], options: Options, **spec: Any) -> dict:
    """One load-generator run in its own process."""
    payload = {
        "host": "127.0.0.1",
        "port": server.port,
        "request": request,
        "concurrency": options.concurrency,
        "duration": options.duration,
        "warmup": options.warmup,
        **spec,
    }
    process = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "tests.bench.loadgen",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    cpu_before = server.cpu_seconds()
    out, _ = await process.communicate(json.dumps(payload).encode())
    if process.returncode != 0:
        raise RuntimeError("load generator failed")
    result = json.loads(out)
    result["server_cpu_ms"] = (
        (server.cpu_seconds() - cpu_before) * 1000 / max(result["completed"], 1)
    )
    return result


async def prime(server: Server, request: dict[str, Any], options: Options) -> None:
    """One untimed request per cookie of ``request`` (a view per signed-in session)."""
    count = len(request.get("cookies", [])) or 1
    await load(server, request, options, count=count, warmup=0, duration=600)


async def csrf_pair(server: Server, login_path: str) -> tuple[str, str]:
    """A CSRF cookie and the form token that goes with it, from the real login page."""
    async with httpx.AsyncClient(base_url=server.base) as client:
        page = await client.get(login_path)
        page.raise_for_status()
        cookie = next(c for c in client.cookies.jar if "csrftoken" in c.name)
        match = re.search(r'name="_csrf_token"\s+value="([^"]+)"', page.text) or re.search(
            r'value="([^"]+)"\s+name="_csrf_token"', page.text
        )
        if match is None:
            raise RuntimeError("no CSRF token field on the login page")
        return f"{cookie.name}={cookie.value}", html.unescape(match.group(1))


def scenarios(data: dataset.Dataset, csrf: tuple[str, str]) -> dict[str, dict[str, Any]]:
    login = f"/p/login/{data.login_token}"
    # What a signed-in browser sends: its session cookie and the CSRF cookie from the login page.
    sessions = [f"{SESSION_COOKIE}={token}; {csrf[0]}" for token in data.session_tokens]
    return {
        "plaintext (ceiling)": {"kind": "get", "path": CEILING_PATH},
        "login page": {"kind": "get", "path": f"{login}/"},
        "passcode request": {
            "kind": "passcode",
            "path": f"{login}/",
            "emails": data.emails,
            "offset": 0,
            "unknown_domain": "nobody.example",
            "csrf_cookie": csrf[0],
            "csrf_token": csrf[1],
            "expect": [303],
        },
        "portal overview": {"kind": "get", "path": "/portal/", "cookies": sessions},
        "invoice list": {"kind": "get", "path": "/portal/invoices/", "cookies": sessions},
        "htmx fragment (invoices p2)": {
            "kind": "get",
            "path": "/portal/invoices/?page=2",
            "cookies": sessions,
            "headers": {"HX-Request": "true"},
        },
    }


async def sanity(server: Server, data: dataset.Dataset) -> None:
    """Every scenario answers what a browser would get (a page, not a redirect to sign-in)."""
    cookies = {SESSION_COOKIE: data.session_tokens[0]}
    async with httpx.AsyncClient(base_url=server.base, cookies=cookies) as client:
        for path in ("/portal/", "/portal/invoices/"):
            response = await client.get(path)
            if response.status_code != 200 or "<html" not in response.text:
                raise RuntimeError(f"{path}: {response.status_code}, not the signed-in page")
        part = await client.get("/portal/invoices/?page=2", headers={"HX-Request": "true"})
        if part.status_code != 200 or "<html" in part.text or "BENCH-" not in part.text:
            raise RuntimeError("the htmx request did not get the invoice list fragment")


async def run_backend(backend: str, options: Options, say) -> BackendResult:
    result = BackendResult(backend)
    with tempfile.TemporaryDirectory(prefix=f"portico-bench-{backend}-") as tmp:
        workdir = Path(tmp)
        async with fresh_database(backend, options, workdir) as url:
            say(f"[{backend}] building {options.customers} customers, {options.invoices} invoices")
            data = await dataset.build(
                url,
                customers=options.customers,
                invoices=options.invoices,
                sessions=options.sessions,
            )
            result.build_seconds = data.build_seconds
            say(f"[{backend}] built in {data.build_seconds:.1f} s")
            async with smtp_sink() as smtp_port:
                env = server_env(url, smtp_port, workdir)
                async with Server(env, options.workers, workdir / "server.log") as server:
                    await sanity(server, data)
                    csrf = await csrf_pair(server, f"/p/login/{data.login_token}/")
                    for name, request in scenarios(data, csrf).items():
                        if name in PORTAL_PAGES:
                            # Repeat views: each signed-in customer has seen the page once.
                            say(f"[{backend}] {name}: one untimed view per session first")
                            await prime(server, request, options)
                        say(f"[{backend}] {name}")
                        cpu_before = server.cpu_seconds()
                        result.endpoints[name] = figures = await load(server, request, options)
                        if request["kind"] == "passcode":
                            # The mail worker delivers the queued passcodes in the same process:
                            # let it finish before the next endpoint is measured, and count its
                            # CPU time in the passcode request's cost.
                            result.outbox = await outbox_drained(url)
                            figures["server_cpu_ms"] = (
                                (server.cpu_seconds() - cpu_before)
                                * 1000
                                / max(figures["completed"], 1)
                            )
                    say(f"[{backend}] plaintext (ceiling) again")
                    again = await load(server, {"kind": "get", "path": CEILING_PATH}, options)
                    first = result.endpoints["plaintext (ceiling)"]
                    first["rps_runs"] = [first["rps"], again["rps"]]
                    first["rps"] = (first["rps"] + again["rps"]) / 2
                    overview = scenarios(data, csrf)["portal overview"]
                    rate = max(1.0, 0.7 * result.endpoints["portal overview"]["rps"])
                    say(f"[{backend}] portal overview at {rate:.0f}/s (70%)")
                    result.overview_at_70 = await load(
                        server, overview, options, rate=rate, concurrency=64
                    )
                    result.overview_at_70["rate"] = rate
                    result.rss_mb = server.worker_rss_mb()
                # First views: the same pages rendered every time (the page cache off).
                env_off = {**env, "PORTICO_PAGE_CACHE_MB": "0"}
                async with Server(env_off, options.workers, workdir / "server-off.log") as server:
                    for name, request in scenarios(data, csrf).items():
                        if name in PORTAL_PAGES:
                            say(f"[{backend}] {name}, rendered (page cache off)")
                            result.endpoints[f"{name}, rendered"] = await load(
                                server, request, options
                            )
                say(f"[{backend}] Stripe mode")
                result.stripe = await stripe_calls(data, url, smtp_port, workdir, options)
    return result


async def stripe_calls(
    data: dataset.Dataset, url: str, smtp_port: int, workdir: Path, options: Options
) -> dict[str, Any]:
    """Page views in Stripe mode against the Stripe-API test server, and the requests it got."""
    from tests.stripe_api import StripeAPIServer
    from tests.stripe_api.app import DEFAULT_KEY

    with StripeAPIServer() as stripe_api:
        env = server_env(
            url,
            smtp_port,
            workdir,
            PORTICO_BILLING="stripe",
            PORTICO_STRIPE_SECRET_KEY=DEFAULT_KEY,
            PORTICO_STRIPE_API_BASE=stripe_api.url,
        )
        async with Server(env, 1, workdir / "server-stripe.log") as server:
            before = len(stripe_api.requests)
            views = 0
            async with httpx.AsyncClient(base_url=server.base) as client:
                for n in range(options.stripe_views):
                    token = data.session_tokens[n % len(data.session_tokens)]
                    client.cookies.set(SESSION_COOKIE, token)
                    path = "/portal/" if n % 2 == 0 else "/portal/invoices/"
                    response = await client.get(path)
                    views += response.status_code == 200
            calls = len(stripe_api.requests) - before
            rss_mb = server.worker_rss_mb()
    return {"views": views, "calls": calls, "per_view": calls / max(views, 1), "rss_mb": rss_mb}


# -- report ----------------------------------------------------------------------------------------
def report(results: list[BackendResult], options: Options) -> str:
    lines = [
        f"Portico benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"{options.workers} worker(s), {options.concurrency} connections, "
        f"{options.duration:g} s per endpoint after {options.warmup:g} s warm-up",
        f"data: {options.customers} customers, {options.invoices} invoices, "
        f"{options.sessions} signed-in sessions",
        "note: server and load generator share this machine (and other jobs may run): figures "
        "are noisy; compare ratios to the ceiling measured in the same run. cpu ms/req: the "
        "server's CPU time per request (the passcode's includes delivering its email), which "
        "other load disturbs far less than req/s; by cpu: the ceiling's CPU time per request over "
        "the endpoint's (the ceiling ratio a server with a core to itself would approach). "
        "gen cpu: the load generator's share of a core.",
    ]
    for result in results:
        ceiling = result.endpoints["plaintext (ceiling)"]["rps"] or float("nan")
        lines += [
            "",
            f"== {result.backend} (data set built in {result.build_seconds:.1f} s)",
            f"{'endpoint':<30}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ceiling':>9}"
            f"{'cpu ms/req':>11}{'by cpu':>8}{'errors':>8}{'gen cpu':>9}",
        ]
        ceiling_cpu = result.endpoints["plaintext (ceiling)"]["server_cpu_ms"]
        for name, row in result.endpoints.items():
            errors = row["failures"] + sum(row["unexpected"].values())
            by_cpu = ceiling_cpu / row["server_cpu_ms"] if row["server_cpu_ms"] else float("nan")
            lines.append(
                f"{name:<30}{row['rps']:>9.0f}{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}"
                f"{row['rps'] / ceiling:>8.1%} {row['server_cpu_ms']:>10.2f}{by_cpu:>8.1%}"
                f"{errors:>8}{row['generator_cpu']:>8.0%}"
            )
            if row["unexpected"]:
                lines.append(f"{'':<30}unexpected statuses: {row['unexpected']}")
        runs = result.endpoints["plaintext (ceiling)"].get("rps_runs", [])
        if runs:
            lines.append(f"ceiling runs (first, last): {runs[0]:.0f}, {runs[1]:.0f} req/s")
        at70 = result.overview_at_70
        lines.append(
            f"portal overview at a fixed {at70['rate']:.0f} req/s (70% of max): "
            f"p50 {at70['p50_ms']:.1f} ms, p99 {at70['p99_ms']:.1f} ms, achieved "
            f"{at70['rps']:.0f} req/s, errors {at70['failures'] + sum(at70['unexpected'].values())}"
        )
        if result.outbox:
            lines.append(
                f"mail worker: {result.outbox['sent']} passcode emails sent to the SMTP sink; "
                f"the outbox was empty {result.outbox['seconds']:.1f} s after the passcode run "
                f"({result.outbox['pending']} left)"
            )
        lines.append(
            "resident memory: "
            + ", ".join(f"{name} {mb:.0f} MB" for name, mb in result.rss_mb.items())
            + "; in Stripe mode (after its page views): "
            + ", ".join(f"{name} {mb:.0f} MB" for name, mb in result.stripe["rss_mb"].items())
        )
        stripe = result.stripe
        lines.append(
            f"Stripe calls per page view in Stripe mode: {stripe['per_view']:.2f} "
            f"({stripe['calls']} calls over {stripe['views']} views)"
        )
        overview = result.endpoints["portal overview"]
        worker_rss = [
            mb
            for found in (result.rss_mb, result.stripe["rss_mb"])
            for name, mb in found.items()
            if name.startswith("worker")
        ]
        checks = [
            (
                "overview >= 15% of ceiling",
                overview["rps"] / ceiling >= TARGETS["overview_ratio"],
            ),
            (
                "overview p99 <= 50 ms at 70%",
                at70["p99_ms"] <= TARGETS["overview_p99_ms_at_70"],
            ),
            (
                "passcode request >= 300/s",
                result.endpoints["passcode request"]["rps"] >= TARGETS["passcode_rps"],
            ),
            ("0 Stripe calls per page view", stripe["calls"] == 0),
            ("RSS per worker <= 150 MB", max(worker_rss) <= TARGETS["rss_mb"]),
        ]
        lines.append(
            "targets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in checks)
        )
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description="Portico's benchmark (see README, Benchmarks)."
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not counted")
    parser.add_argument("--concurrency", type=int, default=32, help="connections")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=2_000, help="signed-in customers")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "PORTICO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="an admin connection; a fresh database is created next to it and dropped after",
    )
    parser.add_argument("--stripe-views", type=int, default=200)
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    return Options(
        backends=backends,
        customers=args.customers,
        invoices=args.invoices,
        sessions=args.sessions,
        duration=args.duration,
        warmup=args.warmup,
        concurrency=args.concurrency,
        workers=args.workers,
        postgres_url=args.postgres_url,
        stripe_views=args.stripe_views,
    )


async def run(options: Options, say=print) -> list[BackendResult]:
    return [await run_backend(backend, options, say) for backend in options.backends]


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    results = asyncio.run(run(options, lambda line: print(line, file=sys.stderr, flush=True)))
    print(report(results, options))
