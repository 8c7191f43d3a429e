"""The real Portico server as a subprocess: its own SQLite database, seeded with the demo."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests import portico_process
from tests.portico_process import HOST, PROJECT_ROOT, free_port, portico_command


@dataclass
class LiveServer:
    base_url: str
    login_path: str
    db_path: Path
    log_path: Path
    process: subprocess.Popen

    @property
    def login_url(self) -> str:
        return self.base_url + self.login_path

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"the Portico server exited with {self.process.returncode}:\n{self.log_tail()}"
            )


def server_env(var_dir: Path, port: int, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        {
            "PORTICO_DATABASE_URL": f"sqlite:///{var_dir / 'e2e.sqlite3'}",
            "PORTICO_VAR_DIR": str(var_dir),
            "PORTICO_SECRET_KEY": secrets.token_urlsafe(36),  # 48 characters
            "PORTICO_BASE_URL": f"http://{HOST}:{port}",
            "PORTICO_SMTP_HOST": HOST,
            "PORTICO_SMTP_PORT": str(smtp_port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def seed(env: dict[str, str]) -> str:
    """``portico demo --seed-only``; returns the login path printed on the ``Login link:`` line."""
    result = subprocess.run(
        [portico_command(), "demo", "--seed-only"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r"^Login link: (\S+)$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or match is None:
        raise RuntimeError(
            f"portico demo --seed-only failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    url = match.group(1)
    base = env["PORTICO_BASE_URL"]
    if not url.startswith(base + "/p/login/"):
        raise RuntimeError(f"unexpected login link {url!r} (base URL {base})")
    return url.removeprefix(base)


def wait_until_up(server: LiveServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        server.check_alive()
        try:
            with urllib.request.urlopen(server.login_url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Portico server did not answer in {timeout:.0f} s")
        time.sleep(0.1)


def start(var_dir: Path, smtp_port: int) -> LiveServer:
    port = free_port()
    env = server_env(var_dir, port, smtp_port)
    login_path = seed(env)
    log_path = var_dir / "server.log"
    with log_path.open("wb") as log:
        process = portico_process.spawn_serve(env, port, log)
    server = LiveServer(
        base_url=env["PORTICO_BASE_URL"],
        login_path=login_path,
        db_path=var_dir / "e2e.sqlite3",
        log_path=log_path,
        process=process,
    )
    try:
        wait_until_up(server)
    except BaseException:
        stop(server)
        raise
    return server


def stop(server: LiveServer) -> None:
    portico_process.stop(server.process, 10)


# -- the demo merchant ------------------------------------------------------------------------
MERCHANT_LINE = re.compile(
    r"^Merchant sign-in: (?P<url>\S+) \((?P<email>\S+) / (?P<password>\S+)\)$", re.MULTILINE
)


@dataclass(frozen=True)
class MerchantSignIn:
    """What ``portico demo`` prints on its ``Merchant sign-in:`` line."""

    url: str
    email: str
    password: str


def parse_merchant_sign_in(output: str) -> MerchantSignIn:
    """The ``Merchant sign-in: <url> (<email> / <password>)`` line of ``portico demo``'s output."""
    match = MERCHANT_LINE.search(output)
    if match is None:
        raise RuntimeError(f"no 'Merchant sign-in:' line in the demo output:\n{output}")
    return MerchantSignIn(match["url"], match["email"], match["password"])


_merchant_sign_ins: dict[str, MerchantSignIn] = {}


def merchant_sign_in(server: LiveServer) -> MerchantSignIn:
    """The demo merchant's sign-in line for ``server``: ``portico demo --seed-only`` run again on
    the server's database and var directory (seeding is done once, so it only prints the same
    lines; the password is the one kept in the var directory). Run once per server."""
    if server.base_url not in _merchant_sign_ins:
        var_dir = server.db_path.parent
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
        env.update(
            {
                "PORTICO_DATABASE_URL": f"sqlite:///{server.db_path}",
                "PORTICO_VAR_DIR": str(var_dir),
                "PORTICO_BASE_URL": server.base_url,
                "PYTHONUNBUFFERED": "1",
            }
        )
        result = subprocess.run(
            [portico_command(), "demo", "--seed-only"],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"portico demo --seed-only failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        found = parse_merchant_sign_in(result.stdout)
        if not found.url.startswith(server.base_url + "/merchant/"):
            raise RuntimeError(f"unexpected merchant sign-in URL {found.url!r}")
        _merchant_sign_ins[server.base_url] = found
    return _merchant_sign_ins[server.base_url]
