"""Rendering stored objects as Stripe JSON: cleaning, ``expand[]``, list objects, pagination.

* :func:`render` deep-copies a stored object, drops private ``_`` keys, lets registered
  hydrators fill embedded copies (a subscription item embeds its current ``price`` and
  legacy ``plan``), then applies ``expand[]`` paths.
* Expansion is generic: a path walks dicts, list objects (``data``) and arrays; a final
  segment holding an id of a stored object is replaced by that object (rendered the same
  way), and an intermediate id is expanded on the way (``latest_invoice.customer``).
  Unknown segments answer Stripe's "This property cannot be expanded" 400.  Simplified:
  Stripe only allows fields its schema marks expandable; here any stored id can be.
* :func:`paginate` implements ``limit`` (1-100, default 10), ``starting_after`` and
  ``ending_before`` over newest-first lists and sets ``has_more``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import StripeError, invalid, no_such
from .state import State

Hydrator = Callable[[State, dict[str, Any]], None]
HYDRATORS: dict[str, Hydrator] = {}
MAX_EXPAND_DEPTH = 4


def hydrator(object_name: str) -> Callable[[Hydrator], Hydrator]:
    def register(func: Hydrator) -> Hydrator:
        HYDRATORS[object_name] = func
        return func

    return register


def render(state: State, obj: Any, expand: Iterable[str] = ()) -> Any:
    out = _clean(state, copy.deepcopy(obj))
    for path in expand:
        segments = path.split(".")
        if len(segments) > MAX_EXPAND_DEPTH:
            raise invalid(
                f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. "
                f"Property: {path}",
                "expand",
            )
        _expand_path(state, out, segments, path)
    return out


def _clean(state: State, value: Any) -> Any:
    if isinstance(value, dict):
        kind = value.get("object")
        hydrate = HYDRATORS.get(kind) if isinstance(kind, str) else None
        if hydrate is not None:
            hydrate(state, value)
        return {k: _clean(state, v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_clean(state, v) for v in value]
    return value


def _cannot_expand(path: str) -> StripeError:
    return invalid(f"This property cannot be expanded ({path}).", "expand")


def _expand_path(state: State, node: Any, segments: list[str], path: str) -> None:
    key, rest = segments[0], segments[1:]
    if not isinstance(node, dict) or key not in node:
        raise _cannot_expand(path)
    node[key] = _expand_value(state, node[key], rest, path)


def _expand_value(state: State, value: Any, rest: list[str], path: str) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_expand_value(state, item, rest, path) for item in value]
    if isinstance(value, str):
        target = state.lookup(value)
        if target is None:
            raise _cannot_expand(path)
        value = render(state, target)
    elif not isinstance(value, dict):
        raise _cannot_expand(path)
    if rest:
        _expand_path(state, value, rest, path)
    return value


# -- lists ------------------------------------------------------------------------------
def list_object(url: str, data: list[Any], has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def paginate(
    state: State, items: list[dict[str, Any]], params: Mapping[str, Any], url: str
) -> dict[str, Any]:
    """Slice a newest-first list the way Stripe's cursor pagination does."""
    limit = params.get("limit", 10)
    if not 1 <= limit <= 100:
        raise invalid("Invalid limit: must be between 1 and 100", "limit")
    starting_after = params.get("starting_after")
    ending_before = params.get("ending_before")
    if starting_after and ending_before:
        raise invalid(
            "You may only specify one of these parameters: ending_before, starting_after.",
            "ending_before",
        )
    if starting_after or ending_before:
        cursor_id = starting_after or ending_before
        param = "starting_after" if starting_after else "ending_before"
        cursor = state.lookup(cursor_id)
        if cursor is None:
            raise no_such("object", cursor_id, param, 400)
        key = state.sort_key(cursor)
        if starting_after:
            following = [o for o in items if state.sort_key(o) < key]
            return list_object(url, following[:limit], len(following) > limit)
        preceding = [o for o in items if state.sort_key(o) > key]
        return list_object(url, preceding[-limit:], len(preceding) > limit)
    return list_object(url, items[:limit], len(items) > limit)


def match_range(value: int | None, condition: Any) -> bool:
    """``created=123`` or ``created[gte]=...&created[lt]=...`` filters."""
    if condition is None:
        return True
    if value is None:
        return False
    if isinstance(condition, int):
        return value == condition
    checks = {
        "gt": lambda bound: value > bound,
        "gte": lambda bound: value >= bound,
        "lt": lambda bound: value < bound,
        "lte": lambda bound: value <= bound,
    }
    return all(checks[op](bound) for op, bound in condition.items() if op in checks)


# -- shared shapes ----------------------------------------------------------------------
ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")


def address(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not value:
        return None
    return {key: value.get(key) for key in ADDRESS_KEYS}


def shipping(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not value:
        return None
    return {
        "address": address(value.get("address")) or dict.fromkeys(ADDRESS_KEYS),
        "carrier": value.get("carrier"),
        "name": value.get("name"),
        "phone": value.get("phone"),
        "tracking_number": value.get("tracking_number"),
    }


def update_metadata(current: dict[str, str] | None, update: Any) -> dict[str, str]:
    """Stripe's metadata semantics: merge keys, ``""`` unsets a key, ``metadata=""`` clears."""
    merged = dict(current or {})
    if update == "":
        return {}
    for key, value in (update or {}).items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def previous_attributes(
    state: State, before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """Top-level values that changed, as ``data.previous_attributes`` of an update event."""
    old, new = render(state, before), render(state, after)
    return {key: old.get(key) for key in new if old.get(key) != new[key]}


def deleted(obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": obj["id"], "object": obj["object"], "deleted": True}
