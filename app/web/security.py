"""Security headers on every response (an ASGI middleware, so error pages and static files get
them too) and the client address used for throttling and the audit log."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings

STRIPE_HOSTED_PAGES = [
    "https://checkout.stripe.com",
    "https://invoice.stripe.com",
    "https://pay.stripe.com",
]


def content_security_policy(settings: Settings) -> str:
    script_src = ["'self'"]
    htmx = urlsplit(settings.htmx_url)
    if htmx.scheme and htmx.netloc:
        script_src.append(f"{htmx.scheme}://{htmx.netloc}")
    form_action = ["'self'"]
    if settings.billing == "stripe":
        # A form may answer with a redirect to Stripe's hosted Checkout or invoice page; browsers
        # apply form-action to that redirect too.
        form_action += STRIPE_HOSTED_PAGES
        api = urlsplit(settings.stripe_api_base)
        if api.scheme and api.netloc:  # a Stripe-API server of one's own (tests) hosts them
            form_action.append(f"{api.scheme}://{api.netloc}")
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {' '.join(script_src)}",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            f"form-action {' '.join(form_action)}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


def security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    headers = {
        "content-security-policy": content_security_policy(settings),
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "same-origin",
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": "same-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
    if settings.is_https:
        headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"
    return [(k.encode(), v.encode()) for k, v in headers.items()]


class SecurityHeaders:
    """Adds the security headers to a response start message; HTML without its own
    ``Cache-Control`` gets ``no-store`` (pages carry CSRF tokens and, once signed in, billing
    data).

    Used as the app's ``before_send`` hook, which sees every response, including the 404 and 405
    pages Litestar's router answers before any middleware runs (an app middleware only wraps
    routed handlers, so those pages went out without the headers)."""

    def __init__(self, settings: Settings) -> None:
        self.headers = security_headers(settings)

    def apply(self, message: Message) -> None:
        if message["type"] != "http.response.start":
            return
        existing = list(message.get("headers", []))
        names = {name.lower() for name, _ in existing}
        extra = [(k, v) for k, v in self.headers if k not in names]
        content_type = next((v for k, v in existing if k.lower() == b"content-type"), b"")
        if content_type.startswith(b"text/html") and b"cache-control" not in names:
            extra.append((b"cache-control", b"no-store"))
        message["headers"] = existing + extra

    async def __call__(self, message: Message, scope: Scope) -> None:
        self.apply(message)


class SecurityHeadersMiddleware:
    """The same headers as an ASGI middleware, for an app mounted elsewhere."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.security = SecurityHeaders(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            self.security.apply(message)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_ip(scope: Scope) -> str:
    """The client's address, as used for throttles, sessions and the audit log.

    This is ``scope["client"]``: the socket peer, or, when the peer is a trusted proxy
    (``PORTICO_TRUSTED_PROXIES``), the address that proxy reported in ``X-Forwarded-For``: uvicorn
    (``portico serve``: ``proxy_headers`` with ``forwarded_allow_ips``) rewrites the scope before
    the app sees it, taking the nearest address in the header that is not itself a trusted proxy.
    A header from any other peer is ignored. Addresses are returned in canonical form
    (``2001:db8::1``, never ``2001:0db8:0:0::1``, and an IPv4-mapped IPv6 address as IPv4), so
    one client is one throttle key; anything that is not an IP address (a Unix socket name) is
    cut to 64 characters."""
    client = scope.get("client")
    return _canonical(str(client[0]) if client and client[0] else "")


@lru_cache(maxsize=4096)  # parsing an address costs more than the rest of an access line
def _canonical(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
