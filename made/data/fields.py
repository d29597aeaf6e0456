r"""Checks of JSON read from disk against the types and values the code expects.

A run folder comes from anywhere, so every JSON field is checked before use:
its type against the type hint of the field it feeds (``MADEConfig``,
``TrainConfig``) and its value against the allowed range (the options of
``args.json`` are checked by :meth:`made.config.RunSettings.from_json`). ``True`` is never taken for an integer nor
``"3"`` for a number. Every failure is a :class:`SchemaError` naming the field. The checks live in
:mod:`made.data` because column schemas read from users' files need them as much as :mod:`made.io` does.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["SchemaError", "check_value", "check_fields"]


class SchemaError(ValueError):
    """A JSON value of the wrong type or outside its allowed values."""


def _describe(hint: Any) -> str:
    """A reader's name for the values a type hint admits."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, collections.abc.Sequence):
        return f"a list of ({_describe(args[0])})" if args else "a list"
    if origin is dict or hint is dict:
        return "an object"
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(hint, f"a {getattr(hint, '__name__', hint)}")


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(type(value) is type(a) and value == a for a in args)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if origin in (list, collections.abc.Sequence):
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value) if args else isinstance(value, list)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            return False
        key_hint, value_hint = args if args else (str, Any)
        return all(_matches(k, key_hint) and _matches(v, value_hint) for k, v in value.items())
    if isinstance(hint, type):
        return False  # a Python class (e.g. a Family object) never comes from JSON
    raise TypeError(f"no JSON check for the type hint {hint!r}")


def check_value(value: Any, hint: Any, where: str) -> None:
    """Raise :class:`SchemaError` unless the JSON ``value`` fits the type ``hint``."""
    if not _matches(value, hint):
        raise SchemaError(f"{where} must be {_describe(hint)}, got {value!r:.80}")


def check_fields(
    data: Any,
    hints: Mapping[str, Any],
    where: str,
    optional: Iterable[str] = (),
    ranges: Mapping[str, Callable[[Any], bool]] | None = None,
) -> None:
    """Check a JSON object field by field: exactly the keys of ``hints`` (some ``optional``),
    each of its hinted type and, where ``ranges`` has a test for it, of an allowed value."""
    if not isinstance(data, dict):
        raise SchemaError(f"{where} must be an object, got {type(data).__name__}")
    missing = set(hints) - set(data) - set(optional)
    unknown = set(data) - set(hints)
    if missing or unknown:
        raise SchemaError(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
    for key, value in data.items():
        check_value(value, hints[key], f"{where}.{key}")
        test = (ranges or {}).get(key)
        if test is not None and not test(value):
            raise SchemaError(f"{where}.{key} has a value outside its allowed range: {value!r:.80}")
