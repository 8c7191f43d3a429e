"""The sandbox gateway (being built): Stripe's semantics over the local tables."""

from __future__ import annotations

from app.settings import Settings


class SandboxGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def refresh_customer(self, customer_id: str) -> None:
        return None
