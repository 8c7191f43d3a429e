"""Static files (``static/``: the stylesheet, images), served from memory with a content hash.

The files are few and small and change only with a deployment, so they are read once, when the
first app is built, each with the SHA-256 of its bytes. Templates link them through
``static_url("css/portico.css")``, which gives ``/static/css/portico.css?v=<hash>``:

- a request whose ``v`` is the file's current hash is answered with
  ``Cache-Control: public, max-age=31536000, immutable`` (a new deployment that changes the file
  changes the URL the pages link to);
- any other request for the file (no ``v``, an old one) with ``public, no-cache``: caches keep it
  but ask again each time, which costs a 304;
- every answer carries a strong ``ETag`` (the hash); ``If-None-Match`` with it gives 304;
- ``HEAD`` gives the same headers without the body; other methods 405; any name that is not one
  of the files read at startup 404, so no path (``..``, encoded or not, symlinks that leave the
  folder) can reach another file.

The handler is a bare ASGI mount, not a Litestar route that builds a ``Response``: no file-system
call, thread hop or cookie per request. It is left out of the CSRF middleware (which would
otherwise set a token cookie on every answer, and caches do not keep answers that set
cookies); it accepts no unsafe method anyway. The app's ``before_send`` hook still adds the
security headers, and the app's error pages answer 404 and 405.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.handlers import ASGIRouteHandler, asgi
from litestar.types import Receive, Scope, Send

from app.settings import PROJECT_ROOT

log = logging.getLogger("portico")

STATIC_DIR = PROJECT_ROOT / "static"
PREFIX = "/static"
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"public, no-cache"
ALLOW = "GET, HEAD"

# The types the product ships, independent of the machine's /etc/mime.types.
CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
}


def content_type(name: str) -> str:
    known = CONTENT_TYPES.get(Path(name).suffix.lower())
    if known is not None:
        return known
    guessed, encoding = mimetypes.guess_type(name, strict=True)
    if guessed is None or encoding is not None:
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: bytes
    version: str  # in the URL: the first 12 hex digits of the SHA-256
    etag: bytes  # a strong validator: '"<first 32 hex digits>"'

    @classmethod
    def of(cls, name: str, body: bytes) -> Asset:
        digest = hashlib.sha256(body).hexdigest()
        return cls(
            body=body,
            content_type=content_type(name).encode(),
            version=digest[:12],
            etag=f'"{digest[:32]}"'.encode(),
        )

    @property
    def versioned_query(self) -> bytes:
        return b"v=" + self.version.encode()


def read_assets(directory: Path) -> dict[str, Asset]:
    """Every regular file under ``directory`` (dot-files and dot-folders skipped, nothing outside
    the folder even through a symlink), by its path relative to it with ``/`` separators."""
    root = directory.resolve()
    assets: dict[str, Asset] = {}
    if not root.is_dir():
        return assets
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            target = path.resolve()
            if not target.is_file() or not target.is_relative_to(root):
                continue
            relative = path.relative_to(root).as_posix()
            assets[relative] = Asset.of(relative, target.read_bytes())
    return assets


def _matches(if_none_match: bytes, etag: bytes) -> bool:
    """``If-None-Match`` uses the weak comparison: ``W/"x"`` matches ``"x"``."""
    for candidate in if_none_match.split(b","):
        candidate = candidate.strip()
        if candidate == b"*" or candidate.removeprefix(b"W/") == etag:
            return True
    return False


class StaticFiles:
    """The files of one folder, read now, and the ASGI handler that serves them under
    ``prefix``."""

    def __init__(self, directory: Path = STATIC_DIR, prefix: str = PREFIX) -> None:
        self.directory = directory
        self.prefix = prefix.rstrip("/")
        self.assets = read_assets(directory)
        self._urls = {
            name: f"{self.prefix}/{name}?v={asset.version}" for name, asset in self.assets.items()
        }
        self._missing: set[str] = set()

    def url(self, relative: str) -> str:
        """The versioned URL of a file; a name that is not a file gets its plain URL (which
        answers 404) and one warning in the log."""
        found = self._urls.get(relative)
        if found is not None:
            return found
        if relative not in self._missing:
            self._missing.add(relative)
            log.warning("static_url: no file %r in %s", relative, self.directory)
        return f"{self.prefix}/{relative}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            raise MethodNotAllowedException(headers={"Allow": ALLOW})
        # Mounted at the prefix: the path is what follows it ("/css/portico.css").
        asset = self.assets.get(scope["path"].removeprefix("/"))
        if asset is None:
            raise NotFoundException()
        versioned = scope["query_string"] == asset.versioned_query
        headers = [
            (b"etag", asset.etag),
            (b"cache-control", IMMUTABLE if versioned else REVALIDATE),
        ]
        if_none_match = next((v for k, v in scope["headers"] if k == b"if-none-match"), None)
        if if_none_match is not None and _matches(if_none_match, asset.etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        headers += [
            (b"content-type", asset.content_type),
            (b"content-length", str(len(asset.body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = b"" if method == "HEAD" else asset.body
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def route_handler(self) -> ASGIRouteHandler:
        files = self

        async def serve_static(scope: Scope, receive: Receive, send: Send) -> None:
            await files(scope, receive, send)

        return asgi(
            self.prefix,
            is_static=True,  # a mount whose path is the file's ("/css/portico.css", no "/" added)
            copy_scope=False,  # the scope is only read
            name="static",
            opt={"exclude_from_csrf": True},
        )(serve_static)


@cache
def default_files() -> StaticFiles:
    """The project's ``static/`` folder, read once per process."""
    return StaticFiles(STATIC_DIR)


def static_url(relative: str) -> str:
    """``static_url("css/portico.css")`` in templates: the URL with the file's content hash."""
    return default_files().url(relative)
