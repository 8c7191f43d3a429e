"""In-memory store of Stripe objects, the server's clock and the event log.

Objects are kept as the JSON dicts the API returns, one table per ``object`` type
(``state.objects["customer"]["cus_..."]``).  References to other objects are stored as ids;
:mod:`.objects` expands them on the way out.  Keys starting with ``_`` are private
bookkeeping (a test card's behaviour, a coupon's redemption rules) and never leave the
server.

The clock is real time by default; tests can :meth:`Clock.freeze` it and
:meth:`Clock.advance` it (then let :func:`.billing.process_due` renew or end subscriptions),
which is what Stripe's test clocks are for.

Every state change records an event (``state.emit``) whose ``data.object`` is a snapshot of
the object at that moment, with ``data.previous_attributes`` for ``*.updated`` events.
"""

from __future__ import annotations

import copy
import random
import string
import threading
import time
from collections.abc import Iterator
from typing import Any

from stripe._api_version import _ApiVersion

from .errors import no_such

ALPHABET = string.ascii_letters + string.digits

# Longest prefixes first: "sub_sched_" must win over "sub_".
PREFIXES: dict[str, str] = {
    "sub_sched_": "subscription_schedule",
    "sub_": "subscription",
    "si_": "subscription_item",
    "cus_": "customer",
    "prod_": "product",
    "price_": "price",
    "pm_": "payment_method",
    "seti_": "setup_intent",
    "in_": "invoice",
    "ii_": "invoiceitem",
    "il_": "line_item",
    "txi_": "tax_id",
    "cs_": "checkout.session",
    "promo_": "promotion_code",
    "di_": "discount",
    "evt_": "event",
}

LABELS = {
    "checkout.session": "checkout.session",
    "invoiceitem": "invoiceitem",
    "tax_id": "tax_id",
}


class Clock:
    """Unix time for the server; frozen or offset for deterministic tests."""

    def __init__(self) -> None:
        self._frozen: int | None = None
        self._offset = 0

    def now(self) -> int:
        if self._frozen is not None:
            return self._frozen
        return int(time.time()) + self._offset

    def freeze(self, at: int | None = None) -> int:
        self._frozen = self.now() if at is None else int(at)
        return self._frozen

    def unfreeze(self) -> None:
        if self._frozen is not None:
            self._offset = self._frozen - int(time.time())
        self._frozen = None

    def advance(self, seconds: int) -> int:
        if self._frozen is not None:
            self._frozen += int(seconds)
        else:
            self._offset += int(seconds)
        return self.now()


class State:
    """All objects, events and counters of one fake Stripe account."""

    def __init__(self, *, seed: int | None = None, account_name: str = "Portico Test") -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.random = random.Random(seed)
        self.base_url = ""
        self.api_version = _ApiVersion.CURRENT
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.index: dict[str, str] = {}  # object id -> table
        self.order: dict[str, int] = {}  # object id -> insertion sequence
        self.events: list[dict[str, Any]] = []
        self.sequence = 0
        self.request: tuple[str | None, str | None] = (None, None)
        self.account: dict[str, Any] = {
            "id": "acct_" + self.token(16),
            "name": account_name,
            "email": "billing@example.test",
        }

    # -- ids and time -------------------------------------------------------------------
    def token(self, length: int = 24) -> str:
        return "".join(self.random.choice(ALPHABET) for _ in range(length))

    def new_id(self, prefix: str, length: int = 24) -> str:
        while True:
            candidate = prefix + self.token(length)
            if candidate not in self.index:
                return candidate

    def now(self) -> int:
        return self.clock.now()

    # -- storage --------------------------------------------------------------------------
    def table(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.objects.setdefault(kind, {})

    def insert(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.sequence += 1
        self.table(kind)[obj["id"]] = obj
        self.index[obj["id"]] = kind
        self.order[obj["id"]] = self.sequence
        return obj

    def remove(self, kind: str, object_id: str) -> dict[str, Any] | None:
        self.index.pop(object_id, None)
        return self.table(kind).pop(object_id, None)

    def get(self, kind: str, object_id: Any) -> dict[str, Any] | None:
        if not isinstance(object_id, str):
            return None
        return self.table(kind).get(object_id)

    def require(
        self, kind: str, object_id: Any, *, param: str = "id", status: int = 404
    ) -> dict[str, Any]:
        obj = self.get(kind, object_id)
        if obj is None:
            raise no_such(LABELS.get(kind, kind.replace("_", " ")), str(object_id), param, status)
        return obj

    def lookup(self, object_id: str) -> dict[str, Any] | None:
        kind = self.index.get(object_id)
        return None if kind is None else self.table(kind).get(object_id)

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Objects of one type, newest first (Stripe's list order)."""
        return sorted(self.table(kind).values(), key=self.sort_key, reverse=True)

    def sort_key(self, obj: dict[str, Any]) -> tuple[int, int]:
        return (int(obj.get("created") or 0), self.order.get(obj.get("id", ""), 0))

    def iter_objects(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for kind, table in self.objects.items():
            for obj in table.values():
                yield kind, obj

    # -- events -------------------------------------------------------------------------
    def emit(
        self,
        event_type: str,
        obj: dict[str, Any],
        previous_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        from .objects import render  # local import: objects imports state helpers

        request_id, idempotency_key = self.request
        event: dict[str, Any] = {
            "id": self.new_id("evt_"),
            "object": "event",
            "api_version": self.api_version,
            "created": self.now(),
            "data": {"object": render(self, obj)},
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": request_id, "idempotency_key": idempotency_key},
            "type": event_type,
        }
        if previous_attributes is not None:
            event["data"]["previous_attributes"] = previous_attributes
        self.events.append(event)
        self.insert("event", event)
        return event

    # -- transactions -------------------------------------------------------------------
    def snapshot(self) -> tuple[Any, ...]:
        # Events are append-only, so their table is copied shallowly and trimmed on restore.
        return (
            {
                kind: dict(table) if kind == "event" else copy.deepcopy(table)
                for kind, table in self.objects.items()
            },
            dict(self.index),
            dict(self.order),
            len(self.events),
            self.sequence,
            self.random.getstate(),
        )

    def restore(self, snapshot: tuple[Any, ...]) -> None:
        objects, index, order, event_count, sequence, random_state = snapshot
        self.objects, self.index, self.order = objects, index, order
        for event in self.events[event_count:]:
            objects.get("event", {}).pop(event["id"], None)
        del self.events[event_count:]
        self.sequence = sequence
        self.random.setstate(random_state)
