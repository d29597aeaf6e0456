"""One typed description of a training run: its data, model and training settings and how it runs.

Each option is a dataclass field carrying a :class:`~made.model.settings.Setting` (its values, flag, help,
group, whether ``--resume`` may change it): the fields of :class:`DataSettings`, :class:`ColumnSettings`
and :class:`RunSettings` here, and those with a help of :class:`~made.model.config.MADEConfig` and
:class:`~made.training.loop.TrainConfig`, which describe themselves. The ``made train`` options
(:func:`add_options`), the ``args.json`` record (:meth:`RunSettings.to_json`, :meth:`RunSettings.from_json`)
and the resume rule (:func:`resumable`) are derived from them."""

from __future__ import annotations

import argparse
import typing
from collections.abc import Collection, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from .data.columns import DEFAULT_MAX_CATEGORIES
from .data.context import CONTEXT_KINDS
from .data.datasets import DATASETS
from .data.fields import SchemaError
from .families import DEFAULT_MIN_SCALE
from .model.config import MAX_ENSEMBLE, MAX_SEED, POOL_SIZES, MADEConfig
from .model.settings import Setting, default_of, flag_of, integers, one_of, option_name, reals, setting, setting_of
from .training.loop import TrainConfig

__all__ = [
    "DataSettings",
    "ColumnSettings",
    "RunSettings",
    "add_options",
    "option_names",
    "options_of",
    "resumable",
    "DATASET_NAMES",
    "flag_of",
    "POSITIVE",
    "NON_NEGATIVE",
    "SEED",
    "ENSEMBLE",
    "masks_arg",
    "integers",
    "reals",
]

DATASET_NAMES = ["digits", *DATASETS]

# option types of the commands that share them: argparse names the option when one refuses a value
POSITIVE, NON_NEGATIVE = integers(1).parse, integers(0).parse
SEED, ENSEMBLE = integers(0, MAX_SEED).parse, integers(1, MAX_ENSEMBLE).parse
masks_arg = POOL_SIZES.parse


@dataclass(frozen=True)
class DataSettings:
    """The data of a run (see :func:`made.pipeline.data_spec`)."""

    dataset: str | None = setting(
        "digits",
        lambda d: (
            f"a named data set{' (default: %(default)s)' if d else ''}: digits is built in, "
            "the paper's sets are read from --data-dir or downloaded once into ~/.cache/made"
        ),
        values=one_of(tuple(DATASET_NAMES)),
        exclusive="source",
    )
    data: str | None = setting(
        None,
        "your own data: .npz (train_data/valid_data/test_data or train/valid/test), .npy or .csv; "
        "a single array is split 80/10/10 with --split-seed",
        metavar="FILE",
        exclusive="source",
    )
    data_dir: str | None = setting(
        None, "folder holding NAME.npz for the paper's sets (or MADE_DATA_DIR)", metavar="DIR"
    )
    split_seed: int | None = setting(
        0,
        lambda d: (
            "seed of the 80/10/10 split of a single array (default: " + ("the run's" if d is None else str(d)) + ")"
        ),
        values=integers(0, MAX_SEED),
    )
    header: bool | None = setting(
        None,
        "whether the first line of a .csv is a header (default: a header when none of its cells is a number; "
        "a numeric header such as pandas' 0,1,2 needs --header)",
        kind="switch",
        added_in="0.3",
    )


@dataclass(frozen=True)
class ColumnSettings:
    """How the columns of the data are modelled, and the side information a model is conditioned on."""

    schema: str = setting(
        "binary",
        "how columns are modelled: binary (0/1 columns, the paper's MADE); auto "
        "(per column: 0/1 -> binary, integers with few values -> categorical, else real, "
        "standardized); onehot (auto, and runs of 0/1 columns where no row has two ones -> one "
        "categorical each); or a JSON schema file (see README) (default: binary)",
        metavar="binary|auto|onehot|FILE",
        group="columns and context",
    )
    max_categories: int = setting(
        DEFAULT_MAX_CATEGORIES,
        "auto schema: integer columns with at most K values are categorical (default: %(default)s)",
        values=integers(1),
        metavar="K",
        group="columns and context",
    )
    components: int = setting(
        1,
        "real columns: a Gaussian (1) or a mixture of C Gaussians (default: 1)",
        values=integers(1),
        metavar="C",
        group="columns and context",
    )
    min_scale: float = setting(
        DEFAULT_MIN_SCALE,
        "floor of every Gaussian scale, in standard deviations (default: %(default)s)",
        values=reals(0.0, low_open=True),
        group="columns and context",
    )
    context: str | None = setting(
        None,
        "condition on side information: labels = the data set's class labels, one-hot "
        "(digits); sample with 'made sample RUN_DIR --context LABEL'",
        values=one_of(tuple(CONTEXT_KINDS)),
        group="columns and context",
    )


def _held_defaults(cls: type) -> dict[str, Any]:
    """The defaults of the options of ``cls`` (a settings class held as a dict), by field name."""
    return {spec.name: _value(default_of(spec)) for spec in _option_fields(cls)}


@dataclass(frozen=True)
class RunSettings:
    """A whole run: what it trains (``data``, ``model``, ``columns``, ``train``) and how it runs. ``model``
    holds the keyword arguments of :class:`~made.MADE` that ``made train`` sets (those of
    :class:`~made.model.config.MADEConfig` with an option; the data gives the others)."""

    data: DataSettings = field(default_factory=DataSettings)
    model: dict[str, Any] = field(default_factory=lambda: _held_defaults(MADEConfig), metadata={"holds": MADEConfig})
    columns: ColumnSettings = field(default_factory=ColumnSettings)
    train: TrainConfig = field(default_factory=TrainConfig)
    # how long, not what: --resume may change it, but it is listed with the training settings
    max_minutes: float | None = setting(
        None,
        "wall-clock budget: stop at the minibatch that passes it (several "
        "processes: after its epoch), keeping the best weights (default: none)",
        values=reals(0.0, low_open=True),
        metavar="M",
        group="optimization",
        resume=True,
    )
    test_ensemble: int | None = setting(
        None,
        "masks averaged for the test figure (default: the pool; 1000 for unlimited)",
        values=integers(1, MAX_ENSEMBLE),
        metavar="K",
        group="optimization",
    )
    device: str = setting(
        "auto", "cpu, cuda, cuda:1 ... (default: auto, a GPU if there is one)", group="running", resume=True
    )
    dtype: str = setting("float32", "(default: float32)", values=one_of(("float32", "float64")), group="running")
    quiet: bool = setting(False, "no progress bar", kind="flag", group="running", resume=True)

    def train_config(self) -> TrainConfig:
        """The training loop's settings: the seed is the model's, the time budget in seconds."""
        seconds = None if self.max_minutes is None else 60 * self.max_minutes
        return replace(self.train, seed=self.model["seed"], max_seconds=seconds)

    def to_json(self) -> dict:
        """The settings as ``args.json`` keeps them: one key per option, sorted."""
        return dict(sorted(_values(self)))

    @classmethod
    def from_json(cls, options: Any, where: str) -> RunSettings:
        """The settings of an ``args.json`` ``options`` object, each value checked as the command line checks
        it (a :class:`SchemaError` naming ``where`` otherwise); options added since the run was written take
        the values that train as that run did."""
        if not isinstance(options, dict):
            raise SchemaError(f"{where} must be an object, got {type(options).__name__}")
        described = {name: (spec, option) for name, spec, option in options_of(cls)}
        options = {**{n: _value(default_of(f)) for n, (f, o) in described.items() if o.added_in}, **options}
        missing, unknown = set(described) - set(options), set(options) - set(described)
        if missing or unknown:
            raise SchemaError(f"{where}: missing options {sorted(missing)}, unknown options {sorted(unknown)}")
        for name, (spec, option) in described.items():
            if not _valid(options[name], option, default_of(spec)):
                raise SchemaError(f"{where}.{name}: {options[name]!r:.80} is not a valid value of {flag_of(name)}")
        return _build(cls, options)

    def replace(self, **changes: Any) -> RunSettings:
        """These settings with the options named in ``changes`` (wherever they are held) changed."""
        return _build(type(self), {**dict(_values(self)), **changes})

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunSettings:
        """The settings of a parsed ``made train`` command line, data paths made absolute (the run's
        ``args.json`` then names the same files from anywhere)."""
        paths = {
            name: str(Path(getattr(args, name)).resolve())
            for name in ("data", "data_dir")
            if getattr(args, name) is not None
        }
        return _build(cls, {**vars(args), **paths})


def _is_option(spec: Field) -> bool:
    """Whether a dataclass field is a command-line option (a setting with a help)."""
    return setting_of(spec).help is not None


def _option_fields(cls: type) -> list[Field]:
    """The fields of ``cls`` that are options."""
    return [spec for spec in fields(cls) if _is_option(spec)]


def _value(value: Any) -> Any:
    """A value as an option holds it: a sequence as a list."""
    return list(value) if isinstance(value, (list, tuple)) else value


def options_of(cls: type) -> Iterator[tuple[str, Field, Setting]]:
    """Each option of a settings class (its name, dataclass field and :class:`Setting`), those of the
    settings it holds included, in the order ``made train --help`` lists them."""
    hints = typing.get_type_hints(cls)
    for spec in fields(cls):
        if _is_option(spec):
            yield option_name(spec), spec, setting_of(spec)
        elif "holds" in spec.metadata:
            yield from options_of(spec.metadata["holds"])
        elif is_dataclass(hints[spec.name]):
            yield from options_of(hints[spec.name])


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    """Settings of class ``cls`` from one value per option name."""
    hints, built = typing.get_type_hints(cls), {}
    for spec in fields(cls):
        if _is_option(spec):
            built[spec.name] = values[option_name(spec)]
        elif "holds" in spec.metadata:
            built[spec.name] = {f.name: _value(values[option_name(f)]) for f in _option_fields(spec.metadata["holds"])}
        elif is_dataclass(hints[spec.name]):
            built[spec.name] = _build(hints[spec.name], values)
    return cls(**built)


def _values(settings: Any) -> Iterator[tuple[str, Any]]:
    """The option names and values of ``settings``, those of the settings it holds included."""
    for spec in fields(settings):
        value = getattr(settings, spec.name)
        if _is_option(spec):
            yield option_name(spec), _value(value)
        elif "holds" in spec.metadata:
            yield from ((option_name(f), _value(value[f.name])) for f in _option_fields(spec.metadata["holds"]))
        elif is_dataclass(value):
            yield from _values(value)


def _valid(value: Any, option: Setting, default: Any) -> bool:
    """Whether ``value`` is one the command line could have given the option (or its default)."""
    if option.kind in ("flag", "switch"):
        return isinstance(value, bool) or (value is None and default is None)  # --header: unset
    if value is None:
        return default is None
    if option.kind == "list":
        return isinstance(value, list) and all(_valid_item(v, option) for v in value)
    return _valid_item(value, option)


def _valid_item(value: Any, option: Setting) -> bool:
    """Whether ``value`` is what the option parses some text to, among its choices."""
    if option.values is None:
        ok = isinstance(value, str)
    elif isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    else:
        try:
            parsed = option.parse(str(value))
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            return False
        ok = type(parsed) is type(value) and parsed == value
    listed = option.listed()
    return ok and (listed is None or value in listed)


def option_names(cls: type) -> set[str]:
    """The names of the options of the settings class ``cls`` (those of the settings it holds included)."""
    return {name for name, _, _ in options_of(cls)}


def resumable(cls: type = RunSettings) -> set[str]:
    """The options that ``--resume`` may be given: how the run goes, not what it trains."""
    return {name for name, _, option in options_of(cls) if option.resume}


def add_options(
    parser: argparse.ArgumentParser,
    cls: type,
    defaults: Mapping[str, Any] | None = None,
    suppress: bool = False,
    only: Collection[str] | None = None,
) -> None:
    """Add the options of the settings class ``cls`` (those named in ``only``) to ``parser``, each in its
    group; ``defaults`` replaces some defaults; with ``suppress`` an option not given is left out of the
    parsed namespace (which tells the options given from those left to their defaults)."""
    holders: dict[str | None, Any] = {None: parser}
    for name, spec, option in options_of(cls):
        if only is not None and name not in only:
            continue
        if option.group not in holders:
            holders[option.group] = parser.add_argument_group(option.group)
        if option.exclusive and option.exclusive not in holders:
            holders[option.exclusive] = holders[option.group].add_mutually_exclusive_group()
        default = (defaults or {}).get(name, default_of(spec))
        text = option.help(default) if callable(option.help) else option.help
        holder = holders[option.exclusive or option.group]
        holder.add_argument(
            flag_of(name), help=text, default=argparse.SUPPRESS if suppress else default, **_argparse_kind(option)
        )


def _argparse_kind(option: Setting) -> dict:
    """The add_argument keywords of how ``option`` is written: action, nargs, type (or choices), metavar."""
    if option.kind == "flag":
        return {"action": "store_true"}
    if option.kind == "switch":
        return {"action": argparse.BooleanOptionalAction}
    choices = option.listed()
    parse = None if choices is not None or option.values is None else option.parse
    keywords = {"type": parse, "choices": choices, "metavar": option.metavar}
    return {**keywords, "nargs": "*"} if option.kind == "list" else keywords
