"""``made tune``: search training settings with Optuna within a time budget, and keep the best run or mixture."""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..config import RunSettings
from ..io.run import STUDY_FILE, TRIALS_DIR, started_by_train, trial_folder
from ..pipeline import data_spec, load_splits, train_settings
from ..training.distributed import ProcessInfo, init_from_env, shutdown
from ..tune.mixing import keep_result, mix_runs
from ..tune.search import (
    DEFAULT_PATIENCE,
    SEARCH_SPACE,
    TRIAL_SHARE,
    Budget,
    budget_key,
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
from .common import pick_device
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
        type=float,
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
        type=int,
        default=2,
        help="trials trained at once, each with its share of torch's CPU "
        "threads: on 2 cores, two 1-thread trials train faster than one 2-thread trial (default: 2)",
    )
    tune.add_argument("--no-mixture", action="store_true", help="keep the best single trial, never a mixture")
    tune.add_argument(
        "--seed", type=int, default=0, help="seed of the sampler; trial N trains with seed+N (default: 0)"
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
    clash = given_options(["train", *extra]) & (searched_options() | TUNE_SETS)
    if clash:
        flags = ", ".join(sorted("--" + name.replace("_", "-") for name in clash))
        raise ValueError(f"--train-options: made tune sets {flags} itself; leave them out")
    return base, extra


def run(args: argparse.Namespace) -> int:
    """``made tune``: train trials until the budget is spent, then make ``--out`` the best run or mixture."""
    try:
        import optuna  # noqa: F401 -- checked here, used by _Search
    except ImportError:
        raise ValueError("made tune needs optuna: pip install 'made[tune]'") from None

    start = time.perf_counter()
    if not args.minutes > 0:
        raise ValueError(f"--minutes must be positive, got {args.minutes}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
    out = Path(args.out)
    if started_by_train(out):
        raise ValueError(f"{out} holds a 'made train' run; choose another --out")
    base, extra = _tune_train_argv(args)
    # read once before the study exists, so a mistyped or unreadable file leaves no study behind
    splits = load_splits(data_spec(args.dataset, args.data, args.data_dir, args.split_seed, args.header), binary=False)
    study = open_study(out, args.storage, args.study_name, {"data": base[1:], "train_options": extra}, args.seed)
    key = budget_key(out)
    budget = Budget(study, 60 * args.minutes, key, start)
    fail_interrupted(study, key)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // args.jobs))
    info, device = init_from_env(pick_device(args.device))
    search = _Search(args, study, key, budget, base, extra, info, device, splits.num_inputs)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the trials' own reports; one line each is shown
            search.train_trials()
        ranked = ranked_trials(study, key)
        if not ranked:
            raise ValueError(f"no trial finished within --minutes {args.minutes:g}; give the tune more time")
        _finish_tune(out, ranked, args, budget, device)
    finally:
        budget.save()
        torch.set_num_threads(threads)
        shutdown()
    return 0


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
        self.asking, self.failures = threading.Lock(), list[BaseException]()

    def trial_seconds(self) -> float:
        """Training time for the next trial: its share of the budget, less what the end needs."""
        ending = ending_seconds(ranked_trials(self.study, self.key))
        return min(self.budget.total * TRIAL_SHARE, self.budget.left() - self.reserve - ending)

    def objective(self, trial: optuna.Trial, seconds: float) -> float:
        """Train one trial for at most ``seconds``; its validation NLL (pruned trials raise TrialPruned)."""
        import optuna

        values = {p.name: p.suggest(trial) for p in SEARCH_SPACE}
        # the trial's own evaluation must fit too: a 300-mask pool costs far more than a one-mask trial's
        estimate = evaluation_estimate(values, ranked_trials(self.study, self.key), self.num_inputs)
        seconds = min(seconds, self.budget.left() - self.reserve - estimate)
        if seconds <= 0:
            trial.set_user_attr("outcome", "no time left to evaluate it")
            raise optuna.TrialPruned()
        folder = trial_folder(self.out, trial.number)
        trial.set_user_attr("owner", self.key)
        trial.set_user_attr("folder", str(folder.resolve()))
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
        ranked = ranked_trials(self.study, self.key)
        print(
            trial_line(trial.number, outcome, trial.params, ranked[0].value if ranked else None, self.budget.left()),
            file=self.shown,
            flush=True,
        )

    def worker(self) -> None:
        """Train trials until the budget is spent; asking is serialized so no two take the same trial."""
        import optuna

        while not self.failures:
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
                self.failures.append(err)
                return
            self.report(self.study.tell(trial, value, state=state))

    def train_trials(self) -> None:
        """Run ``--jobs`` workers (in this thread for one) and raise the first failure of any."""
        if self.args.jobs == 1:
            self.worker()
        else:
            workers = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.args.jobs)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        if self.failures:
            raise self.failures[0]


def _finish_tune(out: Path, ranked: list, args: argparse.Namespace, budget: Budget, device: torch.device) -> None:
    """Make ``out`` the run folder of the best trial, or of a mixture of the finished trials when its
    validation NLL is lower (weights fitted on validation); print what was chosen."""
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
        mixture = mix_runs([t.user_attrs["folder"] for t in members], device, beat=best.value)
    what = f"trial {best.number}"
    if mixture is not None:
        weights = mixture.model.weights
        summary.update(chosen_trials=[members[i].number for i in mixture.kept], weights=weights.tolist())
        what = f"a mixture of trials {summary['chosen_trials']} (weights {', '.join(f'{w:.2f}' for w in weights)})"
    summary["seconds"] = budget.used()
    metrics = keep_result(out, mixture or best.user_attrs["folder"], {"tune": summary})
    print(
        f"chose {what} on validation NLL {metrics['valid_nll']:.4f}; test NLL {metrics['test_nll']:.4f} ± "
        f"{metrics['test_nll_stderr']:.4f} nats; {len(ranked)} trials finished in {budget.used() / 60:.1f} min"
    )
    print(f"run folder: {out}")
