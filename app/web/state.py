"""Typed access to what the app holds for the whole process (set up in app.factory)."""

from __future__ import annotations

from litestar import Request

from app.billing.gateway import BillingGateway
from app.settings import Settings
from app.web.redis_store import RedisStore
from app.web.throttle import Throttle


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def throttle_of(request: Request) -> Throttle:
    return request.app.state.throttle


def gateway_of(request: Request) -> BillingGateway:
    return request.app.state.gateway


def redis_of(request: Request) -> RedisStore | None:
    """The shared Redis (``PORTICO_REDIS_URL``), or None when it is not configured."""
    return request.app.state.redis
