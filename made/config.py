"""One typed description of a training run: its data, model and training settings and how it runs.

Each field of the frozen dataclasses below carries an :class:`Option` (its flag, help, parser, choices,
whether ``--resume`` may change it), from which the ``made train`` options (:func:`add_options`), the
``args.json`` record (:meth:`RunSettings.to_json`, :meth:`RunSettings.from_json`), the resume rule
(:func:`resumable`) and the arguments of :class:`~made.MADE` and :class:`~made.training.loop.TrainConfig`
are derived, so a setting is described once."""

from __future__ import annotations

import argparse
import math
import typing
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from .data.columns import DEFAULT_MAX_CATEGORIES
from .data.context import CONTEXT_KINDS
from .data.datasets import DATASETS
from .data.fields import SchemaError
from .families import DEFAULT_MIN_SCALE
from .model.network import BLOCK_TYPES
from .model.settings import MAX_ENSEMBLE, MAX_POOL, MAX_SEED, MODEL_ARGUMENTS
from .training.loop import DEFAULT_LR, LR_SCHEDULES, TrainConfig

__all__ = [
    "Option",
    "DataSettings",
    "ModelSettings",
    "TrainSettings",
    "RunSettings",
    "add_options",
    "option_names",
    "options_of",
    "resumable",
    "flag_of",
    "int_in",
    "float_in",
    "masks_arg",
    "DATASET_NAMES",
    "MAX_SEED",
    "MAX_ENSEMBLE",
]

DATASET_NAMES = ["digits", *DATASETS]


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An option type: an integer from ``low`` (to ``high``); argparse names the option when it refuses one."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            allowed = f"from {low} to {high:,}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"expected an integer {allowed}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def float_in(low: float, high: float = math.inf, open_low: bool = True) -> Callable[[str], float]:
    """An option type: a finite number above ``low`` (or from it, with ``open_low=False``) up to ``high``."""
    allowed = (f"above {low:g}" if open_low else f"of at least {low:g}") + (
        f" and at most {high:g}" if math.isfinite(high) else ""
    )

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value > low if open_low else value >= low) and value <= high):
            raise argparse.ArgumentTypeError(f"expected a finite number {allowed}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def masks_arg(text: str) -> int | str:
    """The type of ``--masks``: a pool size from 1 to ``MAX_POOL``, or 'unlimited'."""
    if text == "unlimited":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'unlimited', got {text!r}") from None
    if not 1 <= value <= MAX_POOL:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {MAX_POOL:,} or 'unlimited', got {text!r}")
    return value


POSITIVE, NON_NEGATIVE, SEED = int_in(1), int_in(0), int_in(0, MAX_SEED)
ENSEMBLE = int_in(1, MAX_ENSEMBLE)
POSITIVE_FLOAT, NON_NEGATIVE_FLOAT = float_in(0.0), float_in(0.0, open_low=False)
FRACTION = float_in(0.0, 1.0, open_low=False)
DROPOUT = float_in(0.0, 0.95, open_low=False)

Kind = Literal["value", "list", "flag", "switch"]  # one value, several, --x alone, --x/--no-x


@dataclass(frozen=True)
class Option:
    """How a setting appears on the command line and in ``args.json``: ``help`` (or a function of the
    default giving it), ``parse`` (text to value, refusing values out of range; None keeps the text),
    ``choices``, ``kind``, the argparse ``group`` and ``exclusive`` group it is listed in, whether
    ``resume`` may change it (how a run goes, not what it trains), and the version that added it
    (older ``args.json`` files lack it and train with its default)."""

    help: str | Callable[[Any], str]
    parse: Callable[[str], Any] | None = None
    choices: tuple | None = None
    kind: Kind = "value"
    metavar: str | None = None
    group: str | None = None
    exclusive: str | None = None
    resume: bool = False
    added_in: str | None = None


def setting(default: Any, help: str | Callable[[Any], str], **option: Any) -> Any:
    """A dataclass field with its default and its :class:`Option`."""
    make = {"default_factory": lambda: list(default)} if isinstance(default, list) else {"default": default}
    return field(**make, metadata={"option": Option(help, **option)})


def flag_of(name: str) -> str:
    """The command-line flag of the setting ``name``."""
    return "--" + name.replace("_", "-")


def _lr_help(_: Any) -> str:
    """The help of ``--lr``: the default learning rate of each optimizer."""
    return "learning rate (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")"


@dataclass(frozen=True)
class DataSettings:
    """The data of a run (see :func:`made.pipeline.data_spec`)."""

    dataset: str | None = setting(
        "digits",
        lambda d: (
            f"a named data set{' (default: %(default)s)' if d else ''}: digits is built in, "
            "the paper's sets are read from --data-dir or downloaded once into ~/.cache/made"
        ),
        choices=tuple(DATASET_NAMES),
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
        parse=SEED,
    )
    header: bool | None = setting(
        None,
        "whether the first line of a .csv is a header (default: a header when none of its cells is a number; "
        "a numeric header such as pandas' 0,1,2 needs --header)",
        kind="switch",
        added_in="0.3",
    )


@dataclass(frozen=True)
class ModelSettings:
    """The network, its masks and how the columns are modelled. What a setting of the model itself allows
    and since when it exists is said by :data:`made.model.settings.MODEL_ARGUMENTS`; the options here
    are how ``made train`` spells them."""

    hidden: list[int] = setting(
        [500],
        "hidden layer widths; none for no hidden layer (default: 500)",
        parse=POSITIVE,
        kind="list",
        metavar="H",
        group="model",
    )
    direct: bool = setting(
        False,
        "direct input-to-output connection, as in all the paper's experiments (default: off)",
        kind="switch",
        group="model",
    )
    blocks: list[str] = setting(
        [],
        "blocks after the last hidden layer, e.g. 'residual residual': residual blocks "
        "h + W2 act(W1 h) whose layers share its degrees (default: none)",
        choices=tuple(sorted(BLOCK_TYPES)),
        kind="list",
        metavar="TYPE",
        group="model",
        added_in=MODEL_ARGUMENTS["blocks"].added_in,
    )
    dropout: float = setting(
        0.0,
        "dropout probability of every hidden unit, in training only (default: 0)",
        parse=DROPOUT,
        metavar="P",
        group="model",
        added_in=MODEL_ARGUMENTS["dropout"].added_in,
    )
    masks: int | str = setting(
        1,
        "size of the mask pool cycled during training, one mask per minibatch; "
        "'unlimited' draws a fresh mask each minibatch (default: 1)",
        parse=masks_arg,
        metavar="K|unlimited",
        group="model",
    )
    resample: str = setting(
        "full",
        "what a pool of masks resamples (default: full)",
        choices=("full", "ordering", "connectivity"),
        group="model",
    )
    ordering: str = setting(
        "natural", "input ordering of a single mask (default: natural)", choices=("natural", "random"), group="model"
    )
    degrees: str = setting(
        "random",
        "hidden degrees: drawn uniformly as in the paper, or evenly spread (default: random)",
        choices=("random", "even"),
        group="model",
    )
    activation: str = setting(
        "relu", "hidden activation (default: relu)", choices=("relu", "tanh", "softplus"), group="model"
    )
    conditioning: bool = setting(False, "add the paper's connectivity-conditioning weights", kind="flag", group="model")
    init: str = setting(
        "default",
        "weight initialization: PyTorch's, or semi-orthogonal with zero biases as in the "
        "authors' code (default: default)",
        choices=("default", "orthogonal"),
        group="model",
    )
    seed: int = setting(0, "seed of weights, masks and minibatch order (default: 0)", parse=SEED, group="model")
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
        parse=POSITIVE,
        metavar="K",
        group="columns and context",
    )
    components: int = setting(
        1,
        "real columns: a Gaussian (1) or a mixture of C Gaussians (default: 1)",
        parse=POSITIVE,
        metavar="C",
        group="columns and context",
    )
    min_scale: float = setting(
        DEFAULT_MIN_SCALE,
        "floor of every Gaussian scale, in standard deviations (default: %(default)s)",
        parse=POSITIVE_FLOAT,
        group="columns and context",
    )
    context: str | None = setting(
        None,
        "condition on side information: labels = the data set's class labels, one-hot "
        "(digits); sample with 'made sample RUN_DIR --context LABEL'",
        choices=tuple(CONTEXT_KINDS),
        group="columns and context",
    )

    def made_kwargs(self) -> dict:
        """The keyword arguments of :class:`~made.MADE` these settings give (with those of the data)."""
        return {
            "hidden_sizes": list(self.hidden),
            "num_masks": self.masks,
            "ordering": self.ordering,
            "direct": self.direct,
            "seed": self.seed,
            "activation": self.activation,
            "blocks": list(self.blocks),
            "dropout": self.dropout,
            "resample": self.resample,
            "degrees": self.degrees,
            "conditioning": self.conditioning,
            "init": self.init,
        }


@dataclass(frozen=True)
class TrainSettings:
    """The optimizer, early stopping and evaluation during training."""

    optimizer: str = setting(
        "adam", "optimizer (default: adam)", choices=tuple(sorted(DEFAULT_LR)), group="optimization"
    )
    lr: float | None = setting(None, _lr_help, parse=POSITIVE_FLOAT, group="optimization")
    batch_size: int = setting(100, "minibatch size (default: 100)", parse=POSITIVE, group="optimization")
    patience: int = setting(
        30, "epochs without validation improvement before stopping (default: 30)", parse=POSITIVE, group="optimization"
    )
    epochs: int = setting(1000, "maximum number of epochs (default: 1000)", parse=POSITIVE, group="optimization")
    # how long, not what: --resume may change it, but it is listed and kept with the training settings
    max_minutes: float | None = setting(
        None,
        "wall-clock budget: stop at the minibatch that passes it (several "
        "processes: after its epoch), keeping the best weights (default: none)",
        parse=POSITIVE_FLOAT,
        metavar="M",
        group="optimization",
        resume=True,
    )
    weight_decay: float = setting(
        0.0,
        "L2 weight decay; with adamw, decoupled from the gradient (default: 0)",
        parse=NON_NEGATIVE_FLOAT,
        group="optimization",
    )
    lr_schedule: str = setting(
        "constant",
        "learning rate per epoch: constant, or a half cosine reaching 0 at --epochs (default: constant)",
        choices=tuple(LR_SCHEDULES),
        group="optimization",
        added_in="0.3",
    )
    warmup_epochs: int = setting(
        0,
        "linear warmup of the learning rate over the first N epochs (default: 0)",
        parse=NON_NEGATIVE,
        metavar="N",
        group="optimization",
        added_in="0.3",
    )
    adadelta_eps: float = setting(
        1e-5, "adadelta epsilon (default: 1e-5, the authors')", parse=POSITIVE_FLOAT, group="optimization"
    )
    adadelta_rho: float = setting(
        0.95, "adadelta decay (default: 0.95, the authors')", parse=FRACTION, group="optimization"
    )
    valid_ensemble: int | None = setting(
        None,
        "masks averaged for validation (default: the pool; 300 for unlimited)",
        parse=ENSEMBLE,
        metavar="K",
        group="optimization",
    )
    test_ensemble: int | None = setting(
        None,
        "masks averaged for the test figure (default: the pool; 1000 for unlimited)",
        parse=ENSEMBLE,
        metavar="K",
        group="optimization",
    )


@dataclass(frozen=True)
class RunSettings:
    """A whole run: what it trains (``data``, ``model``, ``train``) and how it runs."""

    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    device: str = setting(
        "auto", "cpu, cuda, cuda:1 ... (default: auto, a GPU if there is one)", group="running", resume=True
    )
    dtype: str = setting("float32", "(default: float32)", choices=("float32", "float64"), group="running")
    quiet: bool = setting(False, "no progress bar", kind="flag", group="running", resume=True)
    checkpoint_every: int = setting(
        1,
        "write a training checkpoint (for --resume) every N epochs (default: 1)",
        parse=POSITIVE,
        metavar="N",
        group="running",
        resume=True,
    )

    def train_config(self) -> TrainConfig:
        """The training loop's settings."""
        t = self.train
        return TrainConfig(
            batch_size=t.batch_size,
            optimizer=t.optimizer,
            lr=t.lr,
            patience=t.patience,
            epochs=t.epochs,
            seed=self.model.seed,
            weight_decay=t.weight_decay,
            lr_schedule=t.lr_schedule,
            warmup_epochs=t.warmup_epochs,
            adadelta_rho=t.adadelta_rho,
            adadelta_eps=t.adadelta_eps,
            valid_ensemble=t.valid_ensemble,
            checkpoint_every=self.checkpoint_every,
            max_seconds=None if t.max_minutes is None else 60 * t.max_minutes,
        )

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
        options = {**{n: _default(f) for n, (f, o) in described.items() if o.added_in}, **options}
        missing, unknown = set(described) - set(options), set(options) - set(described)
        if missing or unknown:
            raise SchemaError(f"{where}: missing options {sorted(missing)}, unknown options {sorted(unknown)}")
        for name, (spec, option) in described.items():
            if not _valid(options[name], option, _default(spec)):
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


def options_of(cls: type) -> Iterator[tuple[str, Any, Option]]:
    """Each option of a settings class (its name, dataclass field and :class:`Option`), those of the
    settings it holds included, in the order ``made train --help`` lists them."""
    hints = typing.get_type_hints(cls)
    for spec in fields(cls):
        if "option" in spec.metadata:
            yield spec.name, spec, spec.metadata["option"]
        else:
            yield from options_of(hints[spec.name])


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    """Settings of class ``cls`` from one value per option name."""
    hints = typing.get_type_hints(cls)
    return cls(
        **{
            spec.name: values[spec.name] if "option" in spec.metadata else _build(hints[spec.name], values)
            for spec in fields(cls)
        }
    )


def _values(settings: Any) -> Iterator[tuple[str, Any]]:
    """The option names and values of ``settings``, those of the settings it holds included."""
    for spec in fields(settings):
        value = getattr(settings, spec.name)
        if "option" in spec.metadata:
            yield spec.name, list(value) if isinstance(value, list) else value
        else:
            yield from _values(value)


def _default(spec: Any) -> Any:
    """The default value of the dataclass field ``spec``."""
    return spec.default_factory() if spec.default is MISSING else spec.default


def _valid(value: Any, option: Option, default: Any) -> bool:
    """Whether ``value`` is one the command line could have given the option (or its default)."""
    if option.kind in ("flag", "switch"):
        return isinstance(value, bool) or (value is None and default is None)  # --header: unset
    if value is None:
        return default is None
    if option.kind == "list":
        return isinstance(value, list) and all(_valid_item(v, option) for v in value)
    return _valid_item(value, option)


def _valid_item(value: Any, option: Option) -> bool:
    """Whether ``value`` is what the option parses some text to, among its choices."""
    if option.parse is None:
        ok = isinstance(value, str)
    elif isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    else:
        try:
            parsed = option.parse(str(value))
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            return False
        ok = type(parsed) is type(value) and parsed == value
    return ok and (option.choices is None or value in option.choices)


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
        default = (defaults or {}).get(name, _default(spec))
        text = option.help(default) if callable(option.help) else option.help
        holder = holders[option.exclusive or option.group]
        holder.add_argument(
            flag_of(name), help=text, default=argparse.SUPPRESS if suppress else default, **_argparse_kind(option)
        )


def _argparse_kind(option: Option) -> dict:
    """The add_argument keywords of how ``option`` is written: action, nargs, type, choices, metavar."""
    if option.kind == "flag":
        return {"action": "store_true"}
    if option.kind == "switch":
        return {"action": argparse.BooleanOptionalAction}
    keywords = {"type": option.parse, "choices": option.choices, "metavar": option.metavar}
    return {**keywords, "nargs": "*"} if option.kind == "list" else keywords
