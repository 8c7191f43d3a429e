"""Whether billing answered lately, for the portal's "billing is unreachable" notice.

Pages render from the local mirror, so they keep working while Stripe is slow or down; only
changes fail. When a Stripe call of the gateway fails with ``GatewayUnavailable`` (an action, the
refresh at sign-in, the customer lookup before a passcode email), the gateway marks its
``BillingHealth`` degraded. For the next ``DEGRADED_FOR`` seconds portal pages show a notice; a
later call that Stripe answers clears it at once. The state lives in the process (on the gateway,
which ``app.state`` holds): each worker process learns on its own, which is enough for a notice.
The sandbox gateway has none, so it never shows.

Portal pages: ``billing_notice(request)`` is the text to show, or None.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from litestar import Request

from app.i18n import gettext as _

DEGRADED_FOR = 180.0  # seconds the notice stays after the last failure


class BillingHealth:
    """The last time billing failed to answer (monotonic clock), cleared when it answers."""

    def __init__(
        self, *, window: float = DEGRADED_FOR, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self._clock = clock
        self._failed_at: float | None = None
        self.failed_at: datetime | None = None  # wall time, for display

    def failed(self) -> None:
        self._failed_at = self._clock()
        self.failed_at = datetime.now(UTC)

    def recovered(self) -> None:
        self._failed_at = None
        self.failed_at = None

    @property
    def degraded(self) -> bool:
        return self._failed_at is not None and self._clock() - self._failed_at < self.window


def health_of(gateway: object) -> BillingHealth | None:
    """The gateway's health record (Stripe), or None (the sandbox never degrades)."""
    health = getattr(gateway, "health", None)
    return health if isinstance(health, BillingHealth) else None


def billing_notice(request: Request) -> str | None:
    """The notice for portal pages while billing is degraded, else None."""
    health = health_of(getattr(request.app.state, "gateway", None))
    if health is None or not health.degraded:
        return None
    return _("Billing is temporarily unreachable: you can look around, but changes may fail.")
