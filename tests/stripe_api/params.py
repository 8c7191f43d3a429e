"""Check decoded request parameters against the ``stripe`` package's ``*Params`` TypedDicts.

The ``stripe`` package ships a ``TypedDict`` for every endpoint's parameters
(``stripe.params.SubscriptionUpdateParams``, ``stripe.params.checkout.SessionCreateParams``,
...).  :func:`validate` walks a decoded parameter tree (see :mod:`.encoding`) through those
types with :func:`typing.get_type_hints`, recursing through nested TypedDicts, ``List``,
``Dict``/``UntypedStripeObject``, ``Union`` and ``Literal``, and

* rejects a key the TypedDict does not declare -> 400 ``parameter_unknown`` naming the
  bracketed path (``items[0][pricee]``), with a "Did you mean" hint like Stripe's;
* rejects a string outside a ``Literal`` -> 400 ``parameter_invalid_enum``;
* rejects a missing required key -> 400 ``parameter_missing``;
* coerces wire strings to the declared scalar (``int``, ``float``, ``bool``, ``Decimal``),
  400 ``parameter_invalid_integer`` (and friends) when that fails;
* turns ``{"0": ..., "1": ...}`` into lists where the type says ``List``.

Simplification: the generated types spell forward-compatible enums as
``Literal['a', 'b'] | str``.  A union that has named string literals *and* ``str`` is treated
as the closed enum (what the live API enforces); ``Literal[''] | str`` stays free text.
Keys inherited from ``RequestOptions`` (``api_key``, ``idempotency_key``, ...) are client-side
options, never wire parameters, so they are not accepted.
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Union

import stripe.params
import stripe.params.checkout
from stripe._request_options import RequestOptions
from typing_extensions import is_typeddict

from .encoding import format_param
from .errors import StripeError, invalid

Path = tuple[str | int, ...]


class _Opaque:
    """Stands in for names the generated modules import only under ``TYPE_CHECKING``."""

    def __class_getitem__(cls, item: Any) -> Any:
        return Any


@functools.cache
def params_class(name: str) -> type:
    """``"SubscriptionUpdateParams"`` or ``"checkout.SessionCreateParams"`` -> the TypedDict."""
    module: Any = stripe.params
    if "." in name:
        namespace, name = name.split(".", 1)
        module = getattr(stripe.params, namespace)
    return getattr(module, name)


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    localns: dict[str, Any] = {}
    for _ in range(50):
        try:
            hints = typing.get_type_hints(cls, localns=localns)
            break
        except NameError as exc:  # a TYPE_CHECKING-only import such as StripeContext
            if not exc.name or exc.name in localns:
                raise
            localns[exc.name] = _Opaque
    else:  # pragma: no cover - defensive
        raise RuntimeError(f"cannot resolve the annotations of {cls!r}")
    if RequestOptions in getattr(cls, "__orig_bases__", ()):
        for key in RequestOptions.__annotations__:
            hints.pop(key, None)
    return hints


def required_keys(cls: type) -> frozenset[str]:
    return frozenset(getattr(cls, "__required_keys__", frozenset()))


def validate(params: Mapping[str, Any], cls: type) -> dict[str, Any]:
    """Validate and coerce a decoded parameter tree; raise :class:`StripeError` on misuse."""
    return _typed_dict(params, cls, ())


def _typed_dict(value: Any, cls: type, path: Path) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(f"Invalid object: {format_param(path)}", format_param(path))
    hints = type_hints(cls)
    out: dict[str, Any] = {}
    for key, sub in value.items():
        if key not in hints:
            param = format_param((*path, key))
            message = f"Received unknown parameter: {param}"
            close = difflib.get_close_matches(key, list(hints), n=1)
            if close:
                message += f". Did you mean {close[0]}?"
            raise StripeError(400, message, code="parameter_unknown", param=param)
        out[key] = _value(sub, hints[key], (*path, key))
    for key in sorted(required_keys(cls)):
        if key in hints and key not in out:
            param = format_param((*path, key))
            raise StripeError(
                400, f"Missing required param: {param}.", code="parameter_missing", param=param
            )
    return out


def _value(value: Any, tp: Any, path: Path) -> Any:
    if tp is Any or tp is _Opaque:
        return value
    if is_typeddict(tp):
        return _typed_dict(value, tp, path)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union or origin is types.UnionType:
        return _union(value, args, path)
    if origin is Literal:
        return _union(value, (tp,), path)
    if origin in (list, typing.List):  # noqa: UP006 - both spellings appear
        return _list(value, args[0] if args else Any, path)
    if origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return _mapping(value, args[-1] if args else Any, path)
    if isinstance(tp, type) and issubclass(tp, Mapping):
        return _mapping(value, Any, path)
    return _scalar(value, tp, path)


def _list(value: Any, item_type: Any, path: Path) -> list[Any]:
    if isinstance(value, Mapping) and all(str(k).isdigit() for k in value):
        value = [value[k] for k in sorted(value, key=int)]
    if not isinstance(value, list):
        param = format_param(path)
        raise invalid(f"Invalid array: {param} must be an array", param)
    return [_value(item, item_type, (*path, index)) for index, item in enumerate(value)]


def _mapping(value: Any, value_type: Any, path: Path) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        param = format_param(path)
        raise invalid(f"Invalid hash: {param} must be a hash", param)
    return {str(k): _value(v, value_type, (*path, k)) for k, v in value.items()}


def _union(value: Any, members: tuple[Any, ...], path: Path) -> Any:
    literals: list[Any] = []
    others: list[Any] = []
    for member in members:
        if typing.get_origin(member) is Literal:
            literals.extend(typing.get_args(member))
        elif member is not type(None):
            others.append(member)
    if isinstance(value, str):
        for literal in literals:
            if value == literal or (isinstance(literal, bool) and value == str(literal).lower()):
                return literal
        named = [lit for lit in literals if isinstance(lit, str) and lit != ""]
        scalars = [m for m in others if m in (int, float, Decimal, bool)]
        for member in scalars:
            try:
                return _scalar(value, member, path)
            except StripeError:
                continue
        if named:
            param = format_param(path)
            options = ", ".join(named[:-1]) + (f", or {named[-1]}" if len(named) > 1 else named[0])
            raise StripeError(
                400,
                f"Invalid {param}: must be one of {options}",
                code="parameter_invalid_enum",
                param=param,
            )
        if str in others or Any in others:
            return value
        if scalars:
            return _scalar(value, scalars[0], path)
    structured = [m for m in others if m not in (int, float, Decimal, bool, str)]
    errors: list[StripeError] = []
    for member in structured:
        try:
            return _value(value, member, path)
        except StripeError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    param = format_param(path)
    raise invalid(f"Invalid value for {param}.", param)


def _scalar(value: Any, tp: Any, path: Path) -> Any:
    param = format_param(path)
    if not isinstance(value, str):
        kind = "array" if isinstance(value, list) else "hash"
        raise invalid(f"Invalid {param}: expected a scalar value, got an {kind}", param)
    if tp is str:
        return value
    if tp is bool:
        if value in ("true", "false"):
            return value == "true"
        raise invalid(f"Invalid boolean: {value}", param)
    if tp is int:
        try:
            return int(value)
        except ValueError:
            raise StripeError(
                400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
            ) from None
    if tp in (float, Decimal):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise invalid(f"Invalid decimal: {value}", param) from None
        return float(number) if tp is float else number
    return value
