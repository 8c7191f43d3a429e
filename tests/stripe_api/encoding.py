"""Stripe's form encoding (``application/x-www-form-urlencoded`` with bracketed keys).

Stripe clients send nested parameters as ``items[0][price]=price_123``, lists of scalars as
``expand[0]=customer`` (older clients: ``expand[]=customer``) and hashes as
``metadata[plan]=gold``.  :func:`decode_pairs` turns such pairs into nested ``dict``s whose
keys are the bracket contents (numeric indexes stay strings such as ``"0"``; the parameter
validator turns them into lists when the Stripe type says ``List``), ``[]`` appends to a
list, and every leaf value stays a string, exactly as it travelled on the wire.

:func:`format_param` renders a parameter path back the way Stripe names parameters in
errors, e.g. ``("items", 0, "pricee")`` -> ``items[0][pricee]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def split_key(key: str) -> list[str]:
    """``items[0][price]`` -> ``["items", "0", "price"]``; ``expand[]`` -> ``["expand", ""]``."""
    match = _KEY.match(key)
    if not match:
        return [key]
    return [match.group(1), *_SEGMENT.findall(match.group(2))]


def format_param(path: Sequence[str | int]) -> str:
    if not path:
        return ""
    head, *rest = path
    return str(head) + "".join(f"[{segment}]" for segment in rest)


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Build the nested parameter tree from decoded ``(key, value)`` pairs."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        segments = split_key(key)
        node: Any = root
        for depth, segment in enumerate(segments):
            last = depth == len(segments) - 1
            path = segments[: depth + 1]
            if segment == "":
                if not last or not isinstance(node, list):
                    raise invalid(f"Invalid array: {format_param(path)}", format_param(path))
                node.append(value)
                break
            if not isinstance(node, dict):
                raise invalid(f"Invalid hash: {format_param(path[:-1])}", format_param(path[:-1]))
            if last:
                if isinstance(node.get(segment), dict | list):
                    raise invalid(f"Invalid hash: {format_param(path)}", format_param(path))
                node[segment] = value
                break
            following = segments[depth + 1]
            child = node.get(segment)
            if child is None:
                child = [] if following == "" else {}
                node[segment] = child
            elif isinstance(child, str):
                raise invalid(f"Invalid hash: {format_param(path)}", format_param(path))
            node = child
    return root


def decode_query(query: str) -> dict[str, Any]:
    return decode_pairs(parse_qsl(query, keep_blank_values=True))


def decode_body(body: bytes) -> dict[str, Any]:
    return decode_pairs(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


def encode_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Encode Python values the way the ``stripe`` package does (used by the seed helpers)."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for key, sub in value.items():
                walk(f"{prefix}[{key}]", sub)
        elif isinstance(value, list | tuple):
            for index, sub in enumerate(value):
                walk(f"{prefix}[{index}]", sub)
        elif isinstance(value, bool):
            pairs.append((prefix, "true" if value else "false"))
        else:
            pairs.append((prefix, str(value)))

    for key, value in params.items():
        walk(key, value)
    return pairs
