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

import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.run import STUDY_FILE, is_finished

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
# either: under the paper's protocol a pool of 8 was chosen on validation for adult, connect4 and
# ocr_letters, and one won the tunes of ad and cwebkb, where a fresh mask every minibatch never did.
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
# on: the starting trials set the bar. Waiting for four pools let adult's first random ones (2 x 1354
# units, two residual blocks) run to their cap at 19-20 nats against the starting pool's 13.07.
PRUNING_STARTUP_TRIALS, PRUNING_WARMUP_STEPS = 1, 2


def searched_options() -> set[str]:
    """The ``made train`` options (dest names) that a tune sets itself."""
    names = {p.name for p in SEARCH_SPACE} - {"layers", "width", "residual_blocks"}
    return names | {"hidden", "blocks"} | set(FIXED_OPTIONS) | set(UNLIMITED_OPTIONS)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def train_argv(values: dict[str, Any]) -> list[str]:
    """The ``made train`` options of a trial's settings (a value per row of :data:`SEARCH_SPACE`)."""
    rest = {k: v for k, v in values.items() if k not in ("layers", "width", "residual_blocks")}
    argv = ["--hidden", *[str(values["width"])] * values["layers"]]
    argv += ["--blocks", *["residual"] * values.get("residual_blocks", 0)]
    unlimited = UNLIMITED_OPTIONS if values.get("masks") == "unlimited" else {}
    for name, value in {**FIXED_OPTIONS, **unlimited, **rest}.items():
        if isinstance(value, bool):
            argv.append(_flag(name) if value else "--no-" + name.replace("_", "-"))
        else:
            argv += [_flag(name), str(value)]
    return argv


def budget_key(out: Path) -> str:
    """The study user attribute holding the seconds this machine has spent on the tune into ``out``."""
    return f"seconds:{socket.gethostname()}:{out.resolve()}"


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


def open_study(out: Path, storage: str | None, name: str, record: dict, seed: int) -> Any:
    """Create or reopen the study (``sqlite:///OUT/study.db`` unless ``storage``); refuse one whose
    trials were trained with another ``record`` (the data and the fixed training options)."""
    import optuna

    from .pruning import KindMedianPruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(out / STUDY_FILE).resolve()}"
    study = optuna.create_study(
        study_name=name,
        storage=url,
        sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True),  # parallel trials spread out
        pruner=KindMedianPruner(PRUNING_STARTUP_TRIALS, PRUNING_WARMUP_STEPS),
        direction="minimize",
        load_if_exists=True,
    )
    stored = study.user_attrs.get("record")
    started = [t for t in study.get_trials(deepcopy=False) if t.state != optuna.trial.TrialState.WAITING]
    if stored is None:
        study.set_user_attr("record", record)
        for values in STARTING_TRIALS:
            study.enqueue_trial(values)
    elif stored != record and not started:  # a tune that failed before any trial (a mistyped file name)
        study.set_user_attr("record", record)
    elif stored != record:
        differ = sorted(k for k in set(stored) | set(record) if stored.get(k) != record.get(k))
        raise ValueError(
            f"study {name!r} in {url} was started with other {', '.join(differ)}; "
            "choose another --out, --storage or --study-name"
        )
    return study


def fail_interrupted(study: Any, host_key: str) -> int:
    """Mark as failed the trials an interrupted session of this tune left running; returns how many."""
    from optuna.trial import TrialState

    stale = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.user_attrs.get("owner") == host_key
    ]
    for t in stale:
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(stale)


def ranked_trials(study: Any, host_key: str) -> list[Any]:
    """Finished trials of this machine's tune whose run folder is here, best validation NLL first."""
    from optuna.trial import TrialState

    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("owner") == host_key and is_finished(t.user_attrs["folder"])
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
    trials. Keeping the slowest trial's evaluation instead left 3 of adult's 10 minutes unused when a
    poor 32-mask trial of 1736 units took 94 s to evaluate."""
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
    each residual block's two layers, D x D for the direct connection). Counting units instead (width x
    layers) made a 2 x 1354 network with two blocks look 4 times cheaper per second than it was (adult)."""
    masks, width = values["masks"], values["width"]
    passes = UNLIMITED_OPTIONS["test_ensemble"] if masks == "unlimited" else int(masks)
    square = values["layers"] - 1 + 2 * values.get("residual_blocks", 0)
    return passes * (2 * num_inputs * width + square * width**2 + (num_inputs**2 if values["direct"] else 0))


def evaluation_estimate(values: dict[str, Any], finished: list[Any], num_inputs: int) -> float:
    """Seconds the final evaluation of a trial with ``values`` should take on data of ``num_inputs``
    columns, scaled from the finished trials' (the slowest per unit of :func:`evaluation_size`); 0 before
    any finished. A pool of 300 masks costs 300 times what one mask does, so one-mask trials alone would
    badly underestimate it. A trial's ``eval_seconds`` time its evaluation alone (``metrics["eval_seconds"]``):
    with the reading of the data in it, a one-mask trial's seconds per unit were ten times a pool's, and
    pools were refused."""
    rates = [
        t.user_attrs["eval_seconds"] / evaluation_size(t.params, num_inputs)
        for t in finished
        if "eval_seconds" in t.user_attrs
    ]
    return max(rates, default=0.0) * evaluation_size(values, num_inputs)
