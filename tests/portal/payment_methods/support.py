"""Kept for tests outside the portal (``tests/security``) that import from here; the portal's
tests import ``tests.portal.support``."""

from tests.portal.support import (
    audit_events,
    customer_by_email,
    intents_on,
    set_features,
    signed_in,
)

__all__ = ["audit_events", "customer_by_email", "intents_on", "set_features", "signed_in"]
