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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import torch

from ..config import RunSettings, flag_of, integers, reals
from ..io.run import STUDY_FILE, TRIALS_DIR, Claim, claim_folder, trial_folder
from ..pipeline import ProcessInfo, data_spec, load_splits, processes, train_settings
from ..tune.machines import create_tables, machine_seed, publish_trial, shared_trials
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
    storage_url,
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
        "had left. Several machines tune one study with the same --storage (each its own RUN_DIR, trials and "
        "budget); with the same --share folder each ends with the best of all machines' trials, and --collect "
        "makes that choice alone once all have finished. Needs optuna (and for PostgreSQL: pip install "
        "'made[postgres]').",
    )
    add_data_args(tune, "digits")
    tune.add_argument("--out", metavar="RUN_DIR", required=True, help="run folder of the tune")
    tune.add_argument(
        "--minutes",
        type=reals(0, MAX_MINUTES, low_open=True).parse,
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
        "--share",
        metavar="DIR",
        help="a folder every machine of a shared --storage can read and write (e.g. on NFS), one per study: each "
        f"finished trial is copied into DIR/{TRIALS_DIR}/N, and the tune ends with the best of every machine's "
        "trials found there (or their mixture), chosen on validation NLL alone (default: none; each machine "
        "chooses among its own trials)",
    )
    tune.add_argument(
        "--collect",
        action="store_true",
        help="train nothing: make RUN_DIR the best run (or mixture) of every machine's trials in --share, "
        "read from the study in --storage, e.g. once every machine has finished; --minutes then bounds the "
        "scoring of the mixture",
    )
    tune.add_argument(
        "--train-options",
        default="",
        metavar="'OPTIONS'",
        help="further 'made train' options for every trial, in one quoted string, e.g. "
        "'--schema auto --patience 30'; not the searched ones (default: none)",
    )
    tune.add_argument(
        "--jobs",
        type=integers(1, MAX_JOBS).parse,
        default=2,
        help="trials trained at once, each with its share of torch's CPU "
        "threads: on 2 cores, two 1-thread trials train faster than one 2-thread trial (default: 2)",
    )
    tune.add_argument("--no-mixture", action="store_true", help="keep the best single trial, never a mixture")
    tune.add_argument(
        "--seed",
        type=integers(0, MAX_SAMPLER_SEED).parse,
        default=0,
        help="seed of the sampler (with --storage, mixed with the machine's name and RUN_DIR, so machines "
        "sharing a study draw different settings); trial N trains with seed+N (default: 0)",
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


def _folder_finder(share: str | None, out: Path) -> Callable[[Any], Path]:
    """Where a finished trial's run folder is read from: the shared folder, or the machine's own ``out``."""
    return lambda trial: trial_folder(share or out, trial.number)


def _collect(args: argparse.Namespace, claim: Claim) -> int:
    """``made tune --collect``: make ``out`` the best run (or mixture) of every machine's trials in ``--share``."""
    import optuna

    if not (args.storage and args.share):
        raise ValueError("--collect needs --storage URL and --share DIR: the study and the folder its trials are in")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=args.study_name, storage=storage_url(claim.out, args.storage))
    except KeyError:
        raise ValueError(f"--study-name: no study {args.study_name!r} in --storage") from None
    ranked = shared_trials(study, args.share)
    if not ranked:
        raise ValueError(f"--share {args.share}: no finished trial of study {args.study_name!r} is there")
    budget = Budget(study, 60 * args.minutes, budget_key(claim.out, shared=True))  # bounds the scoring; never stored
    _finish_tune(claim, ranked, _folder_finder(args.share, claim.out), args, budget, pick_device(args.device))
    return 0


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
        flags = ", ".join(sorted(flag_of(name) for name in clash))
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
    if args.collect:
        return _collect(args, claim)
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
    key = budget_key(out, shared=args.storage is not None)
    seed = machine_seed(args.seed, key) if args.storage else args.seed
    if args.storage:  # the URL and its driver checked before any connection
        create_tables(storage_url(out, args.storage))
    study = open_study(out, args.storage, args.study_name, record, seed, source)
    budget = Budget(study, 60 * args.minutes, key, start)
    fail_interrupted(study, key)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // args.jobs))
    with processes(pick_device(args.device)) as (info, device):
        search = _Search(args, study, key, budget, base, extra, info, device, splits.num_inputs)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the trials' own reports; one line each is shown
                search.train_trials()
            # with --share every machine's finished trials, this one's among them
            ranked = shared_trials(study, args.share) if args.share else ranked_trials(study, key, out)
            if not ranked:
                raise ValueError(_why_no_trial(study, key, args.minutes))
            _finish_tune(claim, ranked, _folder_finder(args.share, out), args, budget, device)
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
        self.asking = threading.Lock()
        self.failures: list[BaseException] = []
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
        trial.set_user_attr("owner", self.key)  # every trial this machine took, trained or not
        if seconds <= 0:
            trial.set_user_attr("outcome", "no time left to evaluate it")
            raise optuna.TrialPruned()
        folder = trial_folder(self.out, trial.number)
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
        assert metrics is not None  # trials train in one process, the main one
        trial.set_user_attr("eval_seconds", metrics["eval_seconds"])  # scoring valid and test, for evaluation_estimate
        if not math.isfinite(metrics["valid_nll"]):  # a validation row it gives probability 0: no figure to rank
            trial.set_user_attr("outcome", INFINITE)
            raise optuna.TrialPruned()
        if self.args.share:  # before the study calls it complete, so every complete trial is there
            publish_trial(folder, self.args.share, trial.number)
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


def _finish_tune(
    claim: Claim,
    ranked: list,
    folder_of: Callable[[Any], Path],
    args: argparse.Namespace,
    budget: Budget,
    device: torch.device,
) -> None:
    """Make ``claim.out`` the run folder of the best trial, or of a mixture of the finished trials when its
    validation NLL is lower (weights fitted on validation); print what was chosen. ``folder_of``: a
    trial's run folder."""
    out = claim.out
    best = ranked[0]
    summary = {
        "trials_finished": len(ranked),
        "tunes": len({t.user_attrs.get("owner") for t in ranked}),  # machines (and run folders) they came from
        "chosen_trials": [best.number],
        "weights": None,
        "settings": best.params,
        "minutes": args.minutes,
    }
    mixture = None
    members = mixture_candidates(ranked, budget.left())
    if not args.no_mixture and len(members) > 1:
        mixture = mix_runs([folder_of(t) for t in members], device, beat=best.value)
    what = f"trial {best.number}"
    if mixture is not None:
        weights = mixture.model.weights
        summary.update(chosen_trials=[members[i].number for i in mixture.kept], weights=weights.tolist())
        what = f"a mixture of trials {summary['chosen_trials']} (weights {', '.join(f'{w:.2f}' for w in weights)})"
    summary["seconds"] = budget.used()
    shared = f" by {summary['tunes']} tunes" if summary["tunes"] > 1 else ""
    metrics = keep_result(claim, mixture or folder_of(best), {"tune": summary})
    print(
        f"chose {what} on validation NLL {nats(metrics['valid_nll'])}; test NLL {nats(metrics['test_nll'])} ± "
        f"{nats(metrics['test_nll_stderr'])} nats; {len(ranked)} trials finished{shared} "
        f"in {budget.used() / 60:.1f} min"
    )
    print(f"run folder: {out}")
