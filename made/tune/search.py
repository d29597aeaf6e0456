r"""Hyperparameter search for ``made tune``: one search space, one time budget, choice on validation only.

The study is an Optuna study (TPE sampler, median pruning on the per-epoch
validation NLL) kept in a database, ``RUN/study.db`` by default, so that an
interrupted tune continues with the budget it had left: the seconds each machine
has spent on the study are stored in the study's user attributes under
:func:`budget_key`. Trials are ordinary ``made train`` runs in ``RUN/trials/N``; the
search space below is their options, one row per searched setting.

Optuna is imported inside the functions that need it, so ``import made`` does not.
"""

from __future__ import annotations

import hashlib
import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.run import STUDY_FILE, is_finished, trial_folder
from ..model.settings import flag_of

__all__ = [
    "Param",
    "SEARCH_SPACE",
    "STARTING_TRIALS",
    "UNLIMITED_OPTIONS",
    "DEFAULT_PATIENCE",
    "mixture_candidates",
    "member_seconds",
    "ending_seconds",
    "evaluation_size",
    "evaluation_estimate",
    "TRIAL_SHARE",
    "searched_options",
    "train_argv",
    "Budget",
    "budget_key",
    "data_fingerprint",
    "storage_url",
    "unopenable",
    "open_study",
    "fail_interrupted",
    "ranked_trials",
    "trial_line",
]

DEFAULT_PATIENCE = 15  # epochs without validation improvement before a trial stops (made train: 30)
TRIAL_SHARE = 1 / 3  # the most of the budget one trial may train for, so that several are tried


@dataclass(frozen=True)
class Param:
    """One searched ``made train`` option: its range (or choices) and the first trial's value.

    ``name`` is the option's name with underscores (``batch_size`` is ``--batch-size``);
    ``layers`` and ``width`` together make ``--hidden``, ``residual_blocks`` makes ``--blocks``. Integers and
    floats between ``low`` and ``high`` (``log``: on a log scale), or one of ``choices``.
    """

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial: Any) -> Any:
        """This setting's value for an Optuna ``trial``."""
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if isinstance(self.default, int):
            assert self.low is not None and self.high is not None  # every numeric row of the space has bounds
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)


# The search space, one row per setting. The first trials are made's defaults (one layer of 500, Adam's
# step size) with one mask and with a pool of 8 masks (STARTING_TRIALS), so a tune does no worse than
# either; each wins on some sets (benchmarks/debd/README.md).
SEARCH_SPACE: tuple[Param, ...] = (
    Param("layers", 1, 1, 2),  # hidden layers, all of `width` units
    Param("width", 500, 100, 2000, log=True),
    Param("direct", False, choices=(False, True)),  # direct input-to-output connection
    Param("masks", 1, choices=(1, 8, 32, "unlimited")),  # mask pool; validation and test average the pool
    Param("lr", 1e-3, 1e-4, 1e-2, log=True),
    Param("weight_decay", 1e-6, 1e-6, 1e-2, log=True),  # AdamW's decoupled decay
    Param("batch_size", 100, choices=(32, 100, 250)),
    Param("residual_blocks", 0, 0, 2),  # residual blocks after the last hidden layer (--blocks residual ...)
    Param("dropout", 0.0, choices=(0.0, 0.1, 0.25, 0.5)),  # on every hidden unit, in training
)
FIXED_OPTIONS = {"optimizer": "adamw"}  # every trial's, so weight_decay is decoupled
# A fresh mask every minibatch: early stopping on 32 masks keeps an epoch's validation cheap; the
# chosen model's validation and test figures average 300 (each mask alone is a weak model, and
# 300 masks cost what 300 evaluations of a one-mask model cost, within the budget).
UNLIMITED_OPTIONS = {"valid_ensemble": 32, "test_ensemble": 300}
STARTING_TRIALS: tuple[dict[str, Any], ...] = (
    {p.name: p.default for p in SEARCH_SPACE},
    {**{p.name: p.default for p in SEARCH_SPACE}, "masks": 8},
)
# Pruning within each kind of trial, one mask or a mask pool (made.tune.pruning), from the first finished one
# on: the starting trials set the bar, so poor random trials stop early (benchmarks/debd/README.md).
PRUNING = {"n_startup_trials": 1, "n_warmup_steps": 2}


def searched_options() -> set[str]:
    """The ``made train`` options (dest names) that a tune sets itself."""
    names = {p.name for p in SEARCH_SPACE} - {"layers", "width", "residual_blocks"}
    return names | {"hidden", "blocks"} | set(FIXED_OPTIONS) | set(UNLIMITED_OPTIONS)


def train_argv(values: dict[str, Any]) -> list[str]:
    """The ``made train`` options of a trial's settings (a value per row of :data:`SEARCH_SPACE`)."""
    rest = {k: v for k, v in values.items() if k not in ("layers", "width", "residual_blocks")}
    argv = ["--hidden", *[str(values["width"])] * values["layers"]]
    argv += ["--blocks", *["residual"] * values.get("residual_blocks", 0)]
    unlimited = UNLIMITED_OPTIONS if values.get("masks") == "unlimited" else {}
    for name, value in {**FIXED_OPTIONS, **unlimited, **rest}.items():
        if isinstance(value, bool):
            argv.append(flag_of(name) if value else flag_of("no_" + name))
        else:
            argv += [flag_of(name), str(value)]
    return argv


def budget_key(out: Path, shared: bool = False) -> str:
    """The study user attribute holding the seconds spent on the tune into ``out``: one for a study of its
    own (so that the folder may move), one per machine and folder name in ``shared`` storage (no absolute
    path, so that a folder moved on its machine keeps its budget)."""
    return f"seconds:{socket.gethostname()}:{out.resolve().name}" if shared else "seconds"


def data_fingerprint(splits: Any) -> str:
    """SHA-256 of a tune's data as read (each split's dtype, shape and values, and labels where it has them):
    recorded in the study, so that a file changed between two sessions is noticed, wherever it lies."""
    digest = hashlib.sha256()
    arrays = [splits.train, splits.valid, splits.test, *(splits.labels or ())]
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class Budget:
    """Wall-clock seconds of a tune, counted over every session and stored in the study."""

    def __init__(self, study: Any, seconds: float, key: str, start: float | None = None) -> None:
        """``start``: the ``time.perf_counter()`` this session began at (default: now)."""
        self.study, self.total, self.key = study, seconds, key
        self.before = float(study.user_attrs.get(key, 0.0))
        self.start = time.perf_counter() if start is None else start
        self.saved_at = -math.inf

    def used(self) -> float:
        return self.before + time.perf_counter() - self.start

    def left(self) -> float:
        return self.total - self.used()

    def save(self, every: float = 0.0) -> None:
        """Store the seconds used so far (at most once per ``every`` seconds)."""
        now = time.perf_counter()
        if now - self.saved_at >= every:
            self.study.set_user_attr(self.key, self.used())
            self.saved_at = now


# The packages that provide the database drivers SQLAlchemy asks for, by the module it imports.
DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
    "asyncpg": "asyncpg",
    "oracledb": "oracledb",
    "pyodbc": "pyodbc",
}


def storage_url(out: Path, storage: str | None) -> str:
    """The database URL of a tune's study: ``storage`` checked (parsed, its driver installed), or the
    default ``sqlite:///OUT/study.db`` with the path escaped, so that no character of ``--out`` (``?``,
    ``#``, ``%``) moves the database elsewhere."""
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    if storage is None:
        return URL.create("sqlite", database=str((out / STUDY_FILE).resolve())).render_as_string()
    try:
        url = make_url(storage)
    except ArgumentError:
        raise ValueError(
            f"--storage {storage!r}: not a database URL; write one like postgresql://USER@HOST/DB or sqlite:///FILE"
        ) from None
    shown = url.render_as_string(hide_password=True)
    try:
        dialect = url.get_dialect()
    except ArgumentError:
        raise ValueError(f"--storage {shown}: SQLAlchemy knows no database {url.drivername!r}") from None
    try:
        dialect.import_dbapi()
    except ImportError as err:
        package = DRIVER_PACKAGES.get(err.name or "", err.name)
        raise ValueError(
            f"--storage {shown}: its driver {err.name} is not installed; pip install '{package}'"
        ) from None
    return storage


def unopenable(shown: str, err: Exception) -> ValueError:
    """The one-line error for a database that SQLAlchemy cannot open (no server, no such file, refused
    login), naming it as ``shown`` and giving the driver's own first line as the cause."""
    cause = str(getattr(err, "orig", None) or err).splitlines()[0]
    return ValueError(f"{shown}: cannot open the database ({cause})")


def _study_mismatch(where: str, stored: dict, record: dict, source: str) -> str:
    """Why a study cannot continue with ``record``: the first setting that differs from the one it was started with."""
    key = next(k for k in sorted(set(stored) | set(record)) if stored.get(k) != record.get(k))
    if key == "data_sha256":
        return (
            f"{source} changed since {where} was started (its content's SHA-256 was {str(stored.get(key))[:12]}..., "
            f"now {record[key][:12]}...), so its trials were scored on other data; restore the file, or tune "
            "the new data into another --out"
        )
    return (
        f"{where} was started with {key} {stored.get(key)!r}, not {record.get(key)!r}; give the options it was "
        "started with, or choose another --out, --storage or --study-name"
    )


def open_study(out: Path, storage: str | None, name: str, record: dict, seed: int, source: str = "the data") -> Any:
    """Create or reopen the study (``sqlite:///OUT/study.db`` unless ``storage``); refuse one whose
    trials were trained with another ``record`` (the data's content and the options that shape the trials),
    naming ``source`` (the data file) when its content changed."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    from .pruning import KindMedianPruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage_url(out, storage)
    if storage is None:  # the database file's folder
        out.mkdir(parents=True, exist_ok=True)
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)  # parallel trials spread out
    pruner = KindMedianPruner(PRUNING["n_startup_trials"], PRUNING["n_warmup_steps"])
    try:
        try:
            study = optuna.create_study(
                study_name=name, storage=url, sampler=sampler, pruner=pruner, direction="minimize"
            )
            created = True
        except optuna.exceptions.DuplicatedStudyError:  # an earlier session's, or another machine's
            study, created = optuna.load_study(study_name=name, storage=url, sampler=sampler, pruner=pruner), False
    except SQLAlchemyError as err:
        raise unopenable("--storage" if storage else f"the study in {out}", err) from None
    stored = study.user_attrs.get("record")
    started = [t for t in study.get_trials(deepcopy=False) if t.state != optuna.trial.TrialState.WAITING]
    if stored is None:
        study.set_user_attr("record", record)
        if created:  # by this machine alone: two starting at once would both queue them
            for values in STARTING_TRIALS:
                study.enqueue_trial(values)
    elif stored != record and not started:  # a tune that failed before any trial (a mistyped file name)
        study.set_user_attr("record", record)
    elif stored != record:
        raise ValueError(_study_mismatch(f"study {name!r}", stored, record, source))
    return study


def fail_interrupted(study: Any, host_key: str) -> int:
    """Mark as failed the trials an interrupted session of this tune left running, and queue their settings
    to be tried again; returns how many."""
    from optuna.trial import TrialState

    stale = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.user_attrs.get("owner") == host_key
    ]
    for t in stale:
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params)  # the settings it was trying are tried again
    return len(stale)


def ranked_trials(study: Any, host_key: str, out: Path) -> list[Any]:
    """Finished trials of this tune (``host_key``'s) whose run folder in ``out`` has finished, best validation
    NLL first; the folder is found from the trial's number, so a tune folder may be moved or copied."""
    from optuna.trial import TrialState

    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("owner") == host_key and is_finished(trial_folder(out, t.number))
    ]
    return sorted(done, key=lambda t: (t.value, t.number))


def trial_line(number: int, outcome: str, values: dict, best: float | None, seconds_left: float) -> str:
    """One progress line: trial, outcome, best so far, time left and the trial's settings."""
    shown = " ".join(f"{k}={_short(v)}" for k, v in values.items())
    best_text = "-" if best is None else f"{best:.4f}"
    return f"trial {number:3d}  {outcome:<22} best {best_text:>10}  {max(seconds_left, 0) / 60:5.1f} min left  {shown}"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def member_seconds(trial: Any) -> float:
    """Seconds a finished trial adds to the final mixture: about 1.5 times its own evaluation (valid once
    to fit the weights, and test)."""
    return 1.5 * trial.user_attrs.get("eval_seconds", 0.0)


def ending_seconds(ranked: list[Any]) -> float:
    """Seconds kept for the end of a tune, beyond its reserve: scoring a mixture of the two best finished
    trials (not the slowest trial's evaluation, which a poor trial can make most of the budget)."""
    return sum(member_seconds(t) for t in ranked[:2])


def mixture_candidates(ranked: list[Any], seconds_left: float) -> list[Any]:
    """The finished trials (best first) tried as a mixture at the end: as many as scoring them fits in
    ``seconds_left`` (:func:`member_seconds` each); EM then gives the useless ones no weight, so more
    candidates never make the validation likelihood worse."""
    chosen, cost = [], 0.0
    for trial in ranked:
        cost += member_seconds(trial)
        if cost >= seconds_left:
            break
        chosen.append(trial)
    return chosen


def evaluation_size(values: dict[str, Any], num_inputs: int) -> float:
    """What a trial's final evaluation costs, up to a factor: the masks it averages times the multiply-adds
    of one pass per row (input and output layers D x width, width x width between hidden layers and in
    each residual block's two layers, D x D for the direct connection); units alone (width x layers) would
    misjudge wide networks with residual blocks."""
    masks, width = values["masks"], values["width"]
    passes = UNLIMITED_OPTIONS["test_ensemble"] if masks == "unlimited" else int(masks)
    square = values["layers"] - 1 + 2 * values.get("residual_blocks", 0)
    return passes * (2 * num_inputs * width + square * width**2 + (num_inputs**2 if values["direct"] else 0))


def evaluation_estimate(values: dict[str, Any], finished: list[Any], num_inputs: int) -> float:
    """Seconds the final evaluation of a trial with ``values`` should take on data of ``num_inputs``
    columns, scaled from the finished trials' (the slowest per unit of :func:`evaluation_size`); 0 before
    any finished. A pool of 300 masks costs 300 times what one mask does, so one-mask trials alone would
    badly underestimate it. A trial's ``eval_seconds`` time its evaluation alone (``metrics["eval_seconds"]``),
    not the reading of its data, which would make one-mask trials look dearer per unit than pools."""
    rates = [
        t.user_attrs["eval_seconds"] / evaluation_size(t.params, num_inputs)
        for t in finished
        if "eval_seconds" in t.user_attrs
    ]
    return max(rates, default=0.0) * evaluation_size(values, num_inputs)
