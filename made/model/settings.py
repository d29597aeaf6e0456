r"""How a settings dataclass describes each of its fields once: the values it takes, since when it exists,
and how ``made train`` spells it.

A field made with :func:`setting` carries a :class:`Setting` in its metadata. From it the class checks its
values when built (:func:`check_settings`), model files are checked (:func:`allows`) and completed when
older (:func:`older_defaults`), and :mod:`made.config` derives the command-line options and ``args.json``.
:class:`~made.model.config.MADEConfig` and :class:`~made.training.loop.TrainConfig` are built this way.
"""

from __future__ import annotations

import argparse
import copy
import math
import numbers
import operator
import typing
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Literal

__all__ = [
    "Values",
    "Setting",
    "setting",
    "integers",
    "reals",
    "one_of",
    "setting_of",
    "option_name",
    "flag_of",
    "allows",
    "describe",
    "check_settings",
    "default_of",
    "defaults",
    "older_defaults",
    "json_hints",
]

Kind = Literal["value", "list", "flag", "switch"]  # one value, several, --x alone, --x/--no-x


@dataclass(frozen=True, eq=False)
class Values:
    """The values a setting takes: ``test`` tells one, ``words`` say them (or give them when asked:
    registries grow), ``read`` turns command-line text into a candidate value, and ``choices`` lists
    them when they are few (a collection read when asked, so a registry's later entries count)."""

    test: Callable[[Any], bool]
    words: str | Callable[[], str]
    read: Callable[[str], Any] = str
    choices: Collection | None = None

    def allows(self, value: Any) -> bool:
        """Whether ``value`` is one of them; a value of another type (which the test cannot compare) is not."""
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        """The values in words, as an error message says them."""
        return self.words() if callable(self.words) else self.words

    def listed(self) -> tuple | None:
        """The values, when they are few enough to list (a registry's sorted, a ``Literal``'s in order)."""
        return None if self.choices is None else _listed(self.choices)

    def parse(self, text: str) -> Any:
        """One value from command-line text; argparse names the option when this refuses the text."""
        try:
            value = self.read(text)
        except ValueError:
            value = None
        if value is None or not self.allows(value):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return value


def _integer(value: Any) -> bool:
    """An integer (numpy's included), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _real(value: Any) -> bool:
    """A real number (numpy's included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integers(low: int, high: int | None = None) -> Values:
    """The integers from ``low`` (to ``high``)."""
    words = f"an integer from {low} to {high:,}" if high is not None else f"an integer of at least {low}"
    return Values(lambda v: _integer(v) and v >= low and (high is None or v <= high), words, int)


def reals(low: float, high: float = math.inf, low_open: bool = False, high_open: bool = False) -> Values:
    """The finite numbers from ``low`` (above it with ``low_open``) to ``high`` (below it with ``high_open``)."""
    words = f"a finite number {'above' if low_open else 'of at least'} {low:g}"
    if math.isfinite(high):
        words += f" and {'below' if high_open else 'at most'} {high:g}"

    def test(v: Any) -> bool:
        return (
            _real(v)
            and math.isfinite(v)
            and (v > low if low_open else v >= low)
            and (v < high if high_open else v <= high)
        )

    return Values(test, words, float)


def one_of(choices: Collection) -> Values:
    """One of ``choices`` (a tuple, or a registry read when asked)."""

    def words() -> str:
        listed = [repr(c) for c in _listed(choices)]
        return " or ".join([", ".join(listed[:-1]), listed[-1]] if len(listed) > 1 else listed)

    return Values(lambda v: isinstance(v, str) and v in choices, words, str, choices)


def _listed(choices: Collection) -> tuple:
    """``choices`` in order: a registry's sorted, a tuple's as given."""
    return tuple(sorted(choices)) if isinstance(choices, (dict, set)) else tuple(choices)


@dataclass(frozen=True)
class Setting:
    """One field of a settings dataclass. What it takes: ``values`` (None: any value of its type; None is
    taken where it is the default), each item's with ``kind`` "list"; ``added_in`` is the made version that
    added it and ``before`` the value that rebuilds a model saved by an older one. How ``made train`` spells
    it (``help`` None: no option): ``option`` names it when the field's name is not its name, ``help`` (or a
    function of the default giving it), ``choices`` when narrower than ``values``', ``kind``, ``metavar``,
    the argparse ``group`` and ``exclusive`` group it is listed in, and whether ``--resume`` may change it
    (how a run goes, not what it trains)."""

    values: Values | None = None
    kind: Kind = "value"
    added_in: str | None = None
    before: Any = None
    help: str | Callable[[Any], str] | None = None
    option: str | None = None
    choices: tuple | None = None
    metavar: str | None = None
    group: str | None = None
    exclusive: str | None = None
    resume: bool = False

    def parse(self, text: str) -> Any:
        """One value (one item of a list) from command-line text, refused when not allowed."""
        return text if self.values is None else self.values.parse(text)

    def listed(self) -> tuple | None:
        """The values the command line offers, when few."""
        return self.choices if self.choices is not None or self.values is None else self.values.listed()


NOTHING_SAID = Setting()  # the setting of a field that describes nothing


def setting(default: Any = MISSING, help: str | Callable[[Any], str] | None = None, **described: Any) -> Any:
    """A dataclass field with its default (none: required) and its :class:`Setting`."""
    metadata = {"setting": Setting(help=help, **described)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def setting_of(spec: Field) -> Setting:
    """The :class:`Setting` of a dataclass field (one that says nothing for a field made without one)."""
    return spec.metadata.get("setting", NOTHING_SAID)


def option_name(spec: Field) -> str:
    """The name of a field's option (in ``args.json``, and the flag's words)."""
    return setting_of(spec).option or spec.name


def flag_of(name: str) -> str:
    """The command-line flag of the option ``name``: ``batch_size`` is ``--batch-size``."""
    return "--" + name.replace("_", "-")


def allows(spec: Field, value: Any) -> bool:
    """Whether the field ``spec`` takes ``value``: one of its values (a list of them, for a list), or None
    where None is its default."""
    described = setting_of(spec)
    if described.values is None or (value is None and default_of(spec) is None):
        return True
    if described.kind == "list":
        iterable = isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping))
        return iterable and all(described.values.allows(v) for v in value)
    return described.values.allows(value)


def describe(spec: Field) -> str:
    """The values the field ``spec`` takes, in words."""
    described = setting_of(spec)
    words = "any value" if described.values is None else described.values.describe()
    return f"a list, each {words}" if described.kind == "list" else words


def check_settings(settings: Any) -> None:
    """Refuse a value its field does not take, in one line naming the field, then store each value as
    plain Python (numpy numbers as ``int`` and ``float``, sequences as tuples): what ``__post_init__`` of a
    frozen settings dataclass calls."""
    hints = _hints(type(settings))
    for spec in fields(settings):
        value = getattr(settings, spec.name)
        if not allows(spec, value):
            raise ValueError(f"{spec.name} must be {describe(spec)}, got {value!r:.80}")
        object.__setattr__(settings, spec.name, _plain(value, hints[spec.name]))


def _plain(value: Any, hint: Any = None) -> Any:
    """``value`` as plain Python: a bool, an ``int``, a ``float`` (for a float field, an integer too), a
    string or a mapping as given, any other iterable (a list, an array) a tuple of plain values."""
    if hint is bool and not isinstance(value, bool) and _integer(value):
        return bool(value)
    if isinstance(value, (bool, str, bytes, Mapping)) or value is None:
        return value
    if hint is float and _real(value):
        return float(value)
    if hasattr(value, "__index__"):  # an integer of any kind, a one-element integer tensor
        try:
            return operator.index(value)
        except TypeError:
            pass
    if _real(value):
        return float(value)
    if isinstance(value, Iterable):
        return tuple(_plain(v) for v in value)
    return value


def _hints(cls: type) -> dict[str, Any]:
    """The type hints of a settings class's fields."""
    return typing.get_type_hints(cls)


def json_hints(cls: type) -> dict[str, Any]:
    """The type each field of ``cls`` has in JSON (:func:`made.data.fields.check_fields` reads them)."""
    return {spec.name: _hints(cls)[spec.name] for spec in fields(cls)}


def default_of(spec: Field) -> Any:
    """The default value of the dataclass field ``spec`` (MISSING for a required one)."""
    return spec.default_factory() if spec.default_factory is not MISSING else spec.default


def defaults(cls: type) -> dict[str, Any]:
    """The default of every field of ``cls`` that has one."""
    return {spec.name: default_of(spec) for spec in fields(cls) if default_of(spec) is not MISSING}


def older_defaults(cls: type, values: dict) -> dict:
    """``values`` written by an older made, completed with the values of the fields added since that
    rebuild what it saved."""
    added = {
        spec.name: copy.copy(setting_of(spec).before)
        for spec in fields(cls)
        if setting_of(spec).added_in is not None and spec.name not in values
    }
    return {**values, **added}
