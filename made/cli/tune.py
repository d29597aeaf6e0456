"""``made tune``: search training settings with Optuna within a time budget, and keep the best run or mixture."""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import torch

from ..config import RunSettings, float_in, int_in
from ..io.run import STUDY_FILE, TRIALS_DIR, Claim, claim_folder, trial_folder
from ..pipeline import data_spec, load_splits, train_settings
from ..training.distributed import ProcessInfo, init_from_env, shutdown
from ..tune.mixing import keep_result, mix_runs
from ..tune.search import (
    DEFAULT_PATIENCE,
    SEARCH_SPACE,
    STARTING_TRIALS,
    TRIAL_SHARE,
    Budget,
    budget_key,
    data_fingerprint,
    ending_seconds,
    evaluation_estimate,
    fail_interrupted,
    mixture_candidates,
    open_study,
    ranked_trials,
    searched_options,
    train_argv,
    trial_line,
)
from .common import nats, pick_device
from .options import add_data_args
from .train import command_parser, given_options

if TYPE_CHECKING:
    import optuna

TUNE_SETS = {
    "dataset",
    "data",
    "data_dir",
    "split_seed",
    "out",
    "resume",
    "overwrite",
    "max_minutes",
    "quiet",
    "seed",
    "checkpoint_every",
}  # options of 'made train' that made tune sets itself
INFINITE = "infinite valid NLL"  # a trial's outcome when a validation row has probability 0: nothing to rank
MAX_MINUTES = 1e6  # about two years: the budget in seconds stays an ordinary number
MAX_JOBS = 1024
MAX_SAMPLER_SEED = 2**32 - 1  # what numpy's generator behind Optuna's sampler takes


def add_parser(subparsers: Any) -> None:
    """Add ``made tune`` and its options to the command line."""
    tune = subparsers.add_parser(
        "tune",
        help="find training settings for your data within a time budget",
        description="Search the training settings of a MADE (hidden layers and widths, direct connection, mask "
        "pool, learning rate, weight decay, minibatch size) with Optuna's TPE sampler, stopping poor trials early "
        "on their validation NLL, and keep the best by validation NLL alone; at the end a mixture of the finished "
        "trials (weights fitted on validation) replaces it if its validation NLL is lower. RUN_DIR becomes an "
        f"ordinary run folder for 'made eval', 'sample' and 'impute'; the trials stay in RUN_DIR/{TRIALS_DIR}/N "
        f"and the study in RUN_DIR/{STUDY_FILE}, so the same command continues an interrupted tune with the time it "
        "had left. Needs optuna.",
    )
    add_data_args(tune, "digits")
    tune.add_argument("--out", metavar="RUN_DIR", required=True, help="run folder of the tune")
    tune.add_argument(
        "--minutes",
        type=float_in(0, MAX_MINUTES),
        default=10.0,
        metavar="M",
        help="wall-clock budget for everything, the final evaluation included (default: 10)",
    )
    tune.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage several machines share, e.g. "
        "postgresql://HOST/DB; each machine keeps its own trials and budget (default: "
        f"sqlite:///RUN_DIR/{STUDY_FILE})",
    )
    tune.add_argument("--study-name", default="made", help="name of the study in the storage (default: made)")
    tune.add_argument(
        "--train-options",
        default="",
        metavar="'OPTIONS'",
        help="further 'made train' options for every trial, in one quoted string, e.g. "
        "'--schema auto --patience 30'; not the searched ones (default: none)",
    )
    tune.add_argument(
        "--jobs",
        type=int_in(1, MAX_JOBS),
        default=2,
        help="trials trained at once, each with its share of torch's CPU "
        "threads: on 2 cores, two 1-thread trials train faster than one 2-thread trial (default: 2)",
    )
    tune.add_argument("--no-mixture", action="store_true", help="keep the best single trial, never a mixture")
    tune.add_argument(
        "--seed",
        type=int_in(0, MAX_SAMPLER_SEED),
        default=0,
        help="seed of the sampler; trial N trains with seed+N (default: 0)",
    )
    tune.add_argument(
        "--overwrite",
        action="store_true",
        help="tune into a folder that holds a run of another command (replaced when the tune ends) or files "
        "made did not write (kept: made deletes no file it did not write)",
    )
    tune.add_argument("--device", default="auto", help="(default: auto)")
    tune.add_argument("--quiet", action="store_true", help="no line per trial")
    tune.set_defaults(func=run)


def _tune_train_argv(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The 'made train' options every trial shares, and those of --train-options (checked)."""
    try:
        extra = shlex.split(args.train_options)
    except ValueError as err:
        raise ValueError(f"--train-options: {err}") from None
    # a trial is never resumed (an interrupted one is failed), so no checkpoint each epoch
    base = [
        "train",
        "--split-seed",
        str(args.split_seed),
        "--device",
        args.device,
        "--patience",
        str(DEFAULT_PATIENCE),
        "--checkpoint-every",
        "1000000",
    ]
    if args.data:
        base += ["--data", str(Path(args.data).resolve())]
    else:
        base += ["--dataset", args.dataset] + (
            ["--data-dir", str(Path(args.data_dir).resolve())] if args.data_dir else []
        )
    if args.header is not None:
        base.append("--header" if args.header else "--no-header")
    _parse_train(["train", *extra], "--train-options")
    clash = given_options(["train", *extra]) & (searched_options() | TUNE_SETS)
    if clash:
        flags = ", ".join(sorted("--" + name.replace("_", "-") for name in clash))
        raise ValueError(f"--train-options: made tune sets {flags} itself; leave them out")
    first = ["--out", "trial", *train_argv(STARTING_TRIALS[0])]
    try:
        RunSettings.from_args(_parse_train([*base, *first, *extra], "--train-options"))
    except ValueError as err:
        raise ValueError(f"--train-options: {err}") from None
    return base, extra


def _parse_train(argv: list[str], blame: str) -> argparse.Namespace:
    """A 'made train' command line parsed, a refusal raised as one line that names ``blame``, the tune
    option it came from (argparse would print train's usage and name options the user never typed)."""
    parser, train = command_parser()

    def refuse(message: str) -> NoReturn:
        raise ValueError(f"{blame}: {message}")

    parser.error = train.error = refuse  # type: ignore[method-assign]
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """``made tune``: train trials until the budget is spent, then make ``--out`` the best run or mixture."""
    try:
        import optuna  # noqa: F401 -- checked here, used by _Search
    except ImportError:
        raise ValueError("made tune needs optuna: pip install 'made[tune]'") from None

    start = time.perf_counter()
    claim = claim_folder(args.out, "tune", args.overwrite)  # before the first write, links refused
    out = claim.out
    base, extra = _tune_train_argv(args)
    # read once before the study exists, so a mistyped or unreadable file leaves no study behind
    splits = load_splits(data_spec(args.dataset, args.data, args.data_dir, args.split_seed, args.header), binary=False)
    record = {
        "--dataset": None if args.data else args.dataset,
        "--split-seed": args.split_seed,
        "--header": args.header,
        "--train-options": extra,
        "data_sha256": data_fingerprint(splits),
    }  # no path (the data or the folder may move), no --device (it may change)
    source = str(args.data) if args.data else f"data set {args.dataset}"
    study = open_study(out, args.storage, args.study_name, record, args.seed, source)
    key = budget_key(out, shared=args.storage is not None)
    budget = Budget(study, 60 * args.minutes, key, start)
    fail_interrupted(study, key)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // args.jobs))
    info, device = init_from_env(pick_device(args.device))
    search = _Search(args, study, key, budget, base, extra, info, device, splits.num_inputs)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the trials' own reports; one line each is shown
            search.train_trials()
        ranked = ranked_trials(study, key, out)
        if not ranked:
            raise ValueError(_why_no_trial(study, key, args.minutes))
        _finish_tune(claim, ranked, args, budget, device)
    except KeyboardInterrupt:
        done = len(ranked_trials(study, key, out))
        print(
            f"made: interrupted; {done} trials finished. Run the same command again to continue the tune "
            "with the time it had left",
            file=sys.stderr,
        )
        return 130
    finally:
        budget.save()
        torch.set_num_threads(threads)
        shutdown()
    return 0


def _why_no_trial(study: optuna.Study, key: str, minutes: float) -> str:
    """Why a tune has no finished trial to keep: every trial gave validation an infinite NLL, or time ran out."""
    infinite = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("outcome") == INFINITE]
    if any(t.user_attrs.get("owner") == key for t in infinite):
        return (
            "no trial has a finite validation NLL: each gave a validation row probability 0; look for values "
            "in the validation split far outside the training split's"
        )
    return f"no trial finished within --minutes {minutes:g}; give the tune more time"


class _Search:
    """The trials of one tune: each trains a 'made train' run with sampled settings into ``out/trials/N``,
    reporting its validation NLL per epoch so that poor trials stop early, within the budget."""

    def __init__(
        self,
        args: argparse.Namespace,
        study: optuna.Study,
        key: str,
        budget: Budget,
        base: list[str],
        extra: list[str],
        info: ProcessInfo,
        device: torch.device,
        num_inputs: int,
    ) -> None:
        """A search for ``made tune`` with ``args``, training trials from ``base`` + sampled settings + ``extra``
        on data of ``num_inputs`` columns."""
        self.args, self.study, self.key, self.budget = args, study, key, budget
        self.out, self.base, self.extra, self.info, self.device = Path(args.out), base, extra, info, device
        self.num_inputs = num_inputs
        self.reserve = max(0.15 * budget.total, 2.0)  # the last trial's last epoch and evaluation, and the final choice
        self.shown = sys.stdout  # where trial lines go while the trials' own output is silenced
        self.asking, self.failures = threading.Lock(), []
        self.stopping = threading.Event()  # set on Ctrl-C: each running trial stops at its next epoch

    def trial_seconds(self) -> float:
        """Training time for the next trial: its share of the budget, less what the end needs."""
        ending = ending_seconds(ranked_trials(self.study, self.key, self.out))
        return min(self.budget.total * TRIAL_SHARE, self.budget.left() - self.reserve - ending)

    def objective(self, trial: optuna.Trial, seconds: float) -> float:
        """Train one trial for at most ``seconds``; its validation NLL (pruned trials raise TrialPruned)."""
        import optuna

        values = {p.name: p.suggest(trial) for p in SEARCH_SPACE}
        # the trial's own evaluation must fit too: a 300-mask pool costs far more than a one-mask trial's
        estimate = evaluation_estimate(values, ranked_trials(self.study, self.key, self.out), self.num_inputs)
        seconds = min(seconds, self.budget.left() - self.reserve - estimate)
        if seconds <= 0:
            trial.set_user_attr("outcome", "no time left to evaluate it")
            raise optuna.TrialPruned()
        folder = trial_folder(self.out, trial.number)
        trial.set_user_attr("owner", self.key)
        argv = [
            *self.base,
            "--out",
            str(folder),
            "--overwrite",
            "--quiet",
            "--seed",
            str(self.args.seed + trial.number),
            "--max-minutes",
            f"{seconds / 60:.6f}",
            *train_argv(values),
            *self.extra,
        ]
        trial_args = command_parser()[0].parse_args(argv)

        def on_epoch(record: dict) -> None:
            if self.stopping.is_set():
                trial.set_user_attr("outcome", "interrupted")
                raise KeyboardInterrupt
            trial.report(record["best_valid_nll"], record["epoch"])
            self.budget.save(every=5.0)
            if trial.should_prune():
                trial.set_user_attr("outcome", f"pruned at epoch {record['epoch']}")
                raise optuna.TrialPruned()

        try:
            metrics, _ = train_settings(
                RunSettings.from_args(trial_args), folder, self.info, self.device, overwrite=True, on_epoch=on_epoch
            )
        except FloatingPointError:
            trial.set_user_attr("outcome", "diverged")
            raise optuna.TrialPruned() from None
        trial.set_user_attr("eval_seconds", metrics["eval_seconds"])  # scoring valid and test, for evaluation_estimate
        if not math.isfinite(metrics["valid_nll"]):  # a validation row it gives probability 0: no figure to rank
            trial.set_user_attr("outcome", INFINITE)
            raise optuna.TrialPruned()
        return float(metrics["valid_nll"])

    def report(self, trial: optuna.trial.FrozenTrial) -> None:
        """Save the budget and, unless --quiet, print one line on the finished trial."""
        import optuna

        self.budget.save()
        if self.args.quiet:
            return
        outcome = trial.user_attrs.get("outcome", "failed")
        if trial.state == optuna.trial.TrialState.COMPLETE:
            outcome = f"valid NLL {trial.value:.4f}"
        ranked = ranked_trials(self.study, self.key, self.out)
        print(
            trial_line(trial.number, outcome, trial.params, ranked[0].value if ranked else None, self.budget.left()),
            file=self.shown,
            flush=True,
        )

    def worker(self) -> None:
        """Train trials until the budget is spent; asking is serialized so no two take the same trial."""
        import optuna

        while not self.failures and not self.stopping.is_set():
            seconds = self.trial_seconds()
            if seconds <= 0:
                return
            with self.asking:
                trial = self.study.ask()
            try:
                value, state = self.objective(trial, seconds), optuna.trial.TrialState.COMPLETE
            except optuna.TrialPruned:
                value, state = None, optuna.trial.TrialState.PRUNED
            except BaseException as err:  # noqa: BLE001 -- recorded, then raised by the main thread
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                if isinstance(err, KeyboardInterrupt):  # the next session trains these settings again
                    self.study.enqueue_trial(trial.params)
                self.failures.append(err)
                return
            self.report(self.study.tell(trial, value, state=state))

    def train_trials(self) -> None:
        """Run ``--jobs`` workers (in this thread for one) and raise the first failure of any. On Ctrl-C the
        workers stop at their trials' next epoch and are waited for (a second Ctrl-C exits at once: the
        next session fails the trials left running), so no thread is killed inside torch."""
        if self.args.jobs == 1:
            self.worker()
        else:
            workers = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.args.jobs)]
            for w in workers:
                w.start()
            try:
                for w in workers:
                    w.join()
            except KeyboardInterrupt:
                self._stop(workers)
        if self.failures:
            raise self.failures[0]

    def _stop(self, workers: list[threading.Thread]) -> NoReturn:
        """Stop the workers at their trials' next epoch, wait for them, and raise KeyboardInterrupt."""
        self.stopping.set()
        print("made: stopping at the running trials' next epoch (Ctrl-C again to stop now)", file=sys.stderr)
        try:
            for w in workers:
                w.join()
        except KeyboardInterrupt:
            self.budget.save()
            print("made: interrupted; run the same command again to continue the tune", file=sys.stderr, flush=True)
            os._exit(130)
        raise KeyboardInterrupt


def _finish_tune(claim: Claim, ranked: list, args: argparse.Namespace, budget: Budget, device: torch.device) -> None:
    """Make ``claim.out`` the run folder of the best trial, or of a mixture of the finished trials when its
    validation NLL is lower (weights fitted on validation); print what was chosen."""
    out = claim.out
    best = ranked[0]
    summary = {
        "trials_finished": len(ranked),
        "chosen_trials": [best.number],
        "weights": None,
        "settings": best.params,
        "minutes": args.minutes,
    }
    mixture = None
    members = mixture_candidates(ranked, budget.left())
    if not args.no_mixture and len(members) > 1:
        mixture = mix_runs([trial_folder(out, t.number) for t in members], device, beat=best.value)
    what = f"trial {best.number}"
    if mixture is not None:
        weights = mixture.model.weights
        summary.update(chosen_trials=[members[i].number for i in mixture.kept], weights=weights.tolist())
        what = f"a mixture of trials {summary['chosen_trials']} (weights {', '.join(f'{w:.2f}' for w in weights)})"
    summary["seconds"] = budget.used()
    metrics = keep_result(claim, mixture or trial_folder(out, best.number), {"tune": summary})
    print(
        f"chose {what} on validation NLL {nats(metrics['valid_nll'])}; test NLL {nats(metrics['test_nll'])} ± "
        f"{nats(metrics['test_nll_stderr'])} nats; {len(ranked)} trials finished in {budget.used() / 60:.1f} min"
    )
    print(f"run folder: {out}")
