"""Static files from memory: versioned URLs, ETag and 304, cache policies, HEAD, 404 and 405, and
no way out of the folder."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from app.web.static import IMMUTABLE, REVALIDATE, STATIC_DIR, StaticFiles, content_type, static_url

CSS = "css/portico.css"
CSS_BYTES = (STATIC_DIR / CSS).read_bytes()
CSS_HASH = hashlib.sha256(CSS_BYTES).hexdigest()
CSS_ETAG = f'"{CSS_HASH[:32]}"'
CSS_VERSIONED = f"/static/{CSS}?v={CSS_HASH[:12]}"


async def raw_get(app, path: str, query: bytes = b"", method: str = "GET", headers=()) -> tuple:
    """The app called as uvicorn calls it, with the path exactly as given (an HTTP client would
    remove ``..`` segments before sending)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"portal.test"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = messages[0]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return start["status"], dict(start["headers"]), body


# -- the real app ----------------------------------------------------------------------------------
async def test_pages_link_the_stylesheet_by_its_versioned_url(portal):
    page = await portal.client.get("/signed-out")
    assert f'href="{CSS_VERSIONED}"' in page.text
    assert static_url(CSS) == CSS_VERSIONED
    # HTML is still never stored; the stylesheet it links is kept for a year.
    assert page.headers["cache-control"] == "no-store"
    response = await portal.client.get(CSS_VERSIONED)
    assert response.status_code == 200
    assert response.content == CSS_BYTES
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.headers["content-length"] == str(len(CSS_BYTES))
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["etag"] == CSS_ETAG


async def test_plain_and_stale_urls_are_revalidated(portal):
    for url in (f"/static/{CSS}", f"/static/{CSS}?v=0123456789ab", f"/static/{CSS}?x=1"):
        response = await portal.client.get(url)
        assert response.status_code == 200, url
        assert response.content == CSS_BYTES
        assert response.headers["cache-control"] == "public, no-cache", url
        assert response.headers["etag"] == CSS_ETAG


async def test_static_files_keep_the_security_headers_and_set_no_cookie(portal):
    for url in (f"/static/{CSS}", CSS_VERSIONED, "/static/img/portal-overview.png"):
        response = await portal.client.get(url)
        assert response.status_code == 200, url
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "content-security-policy" in response.headers
        assert "no-store" not in response.headers["cache-control"]
        assert "set-cookie" not in response.headers, url  # a cookie would keep caches off
    png = await portal.client.get("/static/img/portal-overview.png")
    assert png.headers["content-type"] == "image/png"
    assert png.content == (STATIC_DIR / "img/portal-overview.png").read_bytes()


@pytest.mark.parametrize(
    "if_none_match",
    [CSS_ETAG, f"W/{CSS_ETAG}", f'"other", {CSS_ETAG}', "*"],
)
async def test_if_none_match_gives_304(portal, if_none_match):
    for url, policy in ((CSS_VERSIONED, IMMUTABLE), (f"/static/{CSS}", REVALIDATE)):
        response = await portal.client.get(url, headers={"If-None-Match": if_none_match})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == CSS_ETAG
        assert response.headers["cache-control"] == policy.decode()
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_another_etag_gets_the_file(portal):
    for if_none_match in ('"0123"', CSS_HASH[:32], 'W/"0123"', ""):
        response = await portal.client.get(
            f"/static/{CSS}", headers={"If-None-Match": if_none_match}
        )
        assert response.status_code == 200, if_none_match
        assert response.content == CSS_BYTES


async def test_head_gives_the_headers_without_the_body(portal):
    response = await portal.client.head(CSS_VERSIONED)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(CSS_BYTES))
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.headers["cache-control"] == IMMUTABLE.decode()
    assert response.headers["etag"] == CSS_ETAG
    revalidated = await portal.client.head(CSS_VERSIONED, headers={"If-None-Match": CSS_ETAG})
    assert revalidated.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/static/css/nothing.css",
        "/static/css",
        "/static/css/",
        "/static/",
        "/static",
        "/static/CSS/PORTICO.CSS",
    ],
)
async def test_unknown_files_are_404(portal, path):
    response = await portal.client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"


async def test_other_methods_are_405(portal):
    token_page = await portal.client.get(portal.login_path)
    token = re.search(r'name="_csrf_token"\s+value="([^"]+)"', token_page.text) or re.search(
        r'value="([^"]+)"\s+name="_csrf_token"', token_page.text
    )
    assert token
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        response = await portal.client.request(
            method, f"/static/{CSS}", headers={"x-csrftoken": token.group(1)}
        )
        assert response.status_code == 405, method
        assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pyproject.toml",
        "/static/css/../../pyproject.toml",
        "/static/..%2fpyproject.toml",
        "/static/%2e%2e/pyproject.toml",
        "/static//etc/passwd",
        "/static/../../../../etc/passwd",
        "/static/css/..\\..\\pyproject.toml",
        "/static/./css/portico.css",
        "/static/css/./portico.css",
    ],
)
async def test_no_path_leaves_the_folder(portal, path):
    status, _, body = await raw_get(portal.app, path)
    assert status == 404, path
    assert b"[project]" not in body
    assert b"root:" not in body


# -- a folder of one's own ------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text("outside\n")
    public = tmp_path / "public"
    (public / "js").mkdir(parents=True)
    (public / "js" / "app.js").write_text("console.log(1)\n")
    (public / "icon.svg").write_text("<svg/>")
    (public / "data.bin").write_bytes(b"\x00\x01")
    (public / ".env").write_text("SECRET=1\n")
    (public / ".git").mkdir()
    (public / ".git" / "config").write_text("[core]\n")
    (public / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (public / "outside").symlink_to(tmp_path, target_is_directory=True)
    (public / "inside.js").symlink_to(public / "js" / "app.js")
    return public


def test_only_the_folders_own_files_are_read(folder):
    files = StaticFiles(folder)
    assert sorted(files.assets) == ["data.bin", "icon.svg", "inside.js", "js/app.js"]
    assert files.assets["inside.js"].body == b"console.log(1)\n"


async def test_dot_files_and_links_out_of_the_folder_are_404(folder):
    app = Litestar([StaticFiles(folder, prefix="/assets").route_handler()])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://portal.test"
    ) as client:
        for path in (".env", ".git/config", "leak.txt", "outside/secret.txt", "secret.txt"):
            assert (await client.get(f"/assets/{path}")).status_code == 404, path
        script = await client.get("/assets/js/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    for path in ("/assets/../secret.txt", "/assets/outside/../../secret.txt"):
        status, _, body = await raw_get(app, path)
        assert status == 404
        assert b"outside" not in body


def test_urls_carry_the_content_hash(folder, caplog):
    files = StaticFiles(folder, prefix="/assets/")
    digest = hashlib.sha256(b"console.log(1)\n").hexdigest()
    assert files.url("js/app.js") == f"/assets/js/app.js?v={digest[:12]}"
    assert files.assets["js/app.js"].etag == f'"{digest[:32]}"'.encode()
    # A name that is no file: its plain URL (a 404) and one warning, not a broken page.
    assert files.url("js/missing.js") == "/assets/js/missing.js"
    files.url("js/missing.js")
    assert [r.getMessage() for r in caplog.records].count(
        f"static_url: no file 'js/missing.js' in {folder}"
    ) == 1


def test_content_types():
    assert content_type("a.css") == "text/css; charset=utf-8"
    assert content_type("a.PNG") == "image/png"
    assert content_type("a.woff2") == "font/woff2"
    assert content_type("a.html") == "text/html; charset=utf-8"
    assert content_type("a.tar.gz") == "application/octet-stream"  # never served as gzip-encoded
    assert content_type("a.unknown-thing") == "application/octet-stream"
