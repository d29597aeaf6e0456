import json
import math

import numpy as np
import optuna
import pytest

from made.cli import build_parser, main
from made.io.run import trial_folder
from made.tune.pruning import KindMedianPruner
from made.tune.search import SEARCH_SPACE, STARTING_TRIALS, budget_key, searched_options, train_argv


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A small binary data set with structure (correlated columns) in train/valid/test splits."""
    rng = np.random.default_rng(0)

    def rows(n):
        first = rng.random((n, 1)) < 0.4
        flips = rng.random((n, 8)) < 0.15
        return (first ^ flips).astype(np.uint8)

    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, train=rows(300), valid=rows(100), test=rows(100))
    return path


@pytest.fixture(scope="module")
def tuned(data, tmp_path_factory):
    run = tmp_path_factory.mktemp("tune") / "run"
    assert main(["tune", "--data", str(data), "--out", str(run), "--minutes", "0.1", "--quiet"]) == 0
    return run


def study_of(run):
    return optuna.load_study(study_name="made", storage=f"sqlite:///{run / 'study.db'}")


def test_tune_writes_a_run_folder_that_eval_reads(tuned, capsys):
    capsys.readouterr()
    assert main(["eval", str(tuned), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    metrics = json.loads((tuned / "metrics.json").read_text())
    assert report["test_nll"] == pytest.approx(metrics["test_nll"], rel=1e-6)
    assert np.isfinite(report["test_nll"]) and report["num_examples"] == 100
    # the budget covers training; the first trials' evaluations, begun before any evaluation time was
    # known, may run past it (a few seconds here, on a shared 2-core machine)
    assert metrics["tune"]["seconds"] <= 0.1 * 60 * 1.5


def test_choice_is_the_best_validation_nll(tuned):
    trials = study_of(tuned).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    best = min(trials, key=lambda t: t.value)
    metrics = json.loads((tuned / "metrics.json").read_text())
    assert metrics["tune"]["chosen_trials"][0] == best.number
    # a single trial's own figure, or a mixture that is better still on validation
    assert metrics["valid_nll"] <= best.value + 1e-9
    if metrics["tune"]["weights"] is None:
        assert metrics["valid_nll"] == pytest.approx(best.value, rel=1e-12)
        chosen = json.loads((tuned / "trials" / str(best.number) / "metrics.json").read_text())
        assert metrics["test_nll"] == chosen["test_nll"]


def test_first_trials_are_made_defaults_with_one_mask_and_with_a_pool_of_8(tuned):
    first, second = study_of(tuned).trials[:2]
    assert first.params == {p.name: p.default for p in SEARCH_SPACE}
    args = build_parser().parse_args(["train", *train_argv(first.params)])
    assert args.hidden == [500] and args.masks == 1 and not args.direct and args.optimizer == "adamw"
    assert args.valid_ensemble is None and args.test_ensemble is None  # a single mask: no ensemble
    assert second.params == {**first.params, "masks": 8}
    args = build_parser().parse_args(["train", *train_argv(second.params)])
    assert args.masks == 8 and args.valid_ensemble is None and args.test_ensemble is None  # the pool's 8 masks


def test_each_trial_keeps_the_seconds_its_evaluation_took(tuned):
    done = study_of(tuned).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert done
    for trial in done:
        metrics = json.loads((trial_folder(tuned, trial.number) / "metrics.json").read_text())
        assert trial.user_attrs["eval_seconds"] == metrics["eval_seconds"] > 0


def test_unlimited_masks_are_validated_on_32_and_tested_on_300():
    values = {**STARTING_TRIALS[0], "masks": "unlimited"}
    args = build_parser().parse_args(["train", *train_argv(values)])
    assert args.masks == "unlimited" and (args.valid_ensemble, args.test_ensemble) == (32, 300)


def test_tune_refuses_other_data_in_the_same_study(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["tune", "--data", str(data), "--out", str(run), "--minutes", "0.1", "--quiet"]) in (0, 2)
    capsys.readouterr()
    assert main(["tune", "--out", str(run), "--minutes", "0.1", "--quiet"]) == 2
    assert "was started with --dataset None, not 'digits'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options, message",
    [
        ("--hidden 5", "made tune sets --hidden itself"),
        ("--lr 0.1 --out x", "made tune sets --lr, --out itself"),
        ("'--schema", "--train-options: No closing quotation"),
    ],
)
def test_bad_train_options_are_one_line_errors(tmp_path, capsys, options, message):
    assert main(["tune", "--out", str(tmp_path / "run"), "--train-options", options]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("made: error: ") and message in err and "\n" not in err


def test_searched_options_are_train_options():
    from made.config import RunSettings, option_names

    assert searched_options() <= option_names(RunSettings)


@pytest.fixture(scope="module")
def member_runs(data, tmp_path_factory):
    """Two finished run folders standing for tune trials, best first: MADEs on two random orderings, each
    weak where the other is strong, so EM gives both a share (seeded: the same every time)."""
    root, runs = tmp_path_factory.mktemp("members"), []
    for seed in (1, 2):
        folder = root / str(seed)
        assert (
            main(
                [
                    "train",
                    "--data",
                    str(data),
                    "--out",
                    str(folder),
                    "--quiet",
                    "--epochs",
                    "40",
                    "--ordering",
                    "random",
                    "--seed",
                    str(seed),
                ]
            )
            == 0
        )
        runs.append(folder)
    return sorted(runs, key=valid_nll)


def valid_nll(folder):
    return json.loads((folder / "metrics.json").read_text())["valid_nll"]


def test_final_mixture_of_the_best_trials(data, tuned, member_runs, tmp_path, capsys):
    import torch

    from made.inference.evaluate import evaluate_nll
    from made.io.run import save_mixture
    from made.tune.mixing import mix_runs
    from made.tune.search import ranked_trials

    ranked = ranked_trials(study_of(tuned), budget_key(tuned), tuned)
    assert len(ranked) >= 2 and [t.value for t in ranked] == sorted(t.value for t in ranked)
    assert mix_runs(member_runs, torch.device("cpu"), beat=-math.inf) is None  # never better than -inf
    mixed = mix_runs(member_runs, torch.device("cpu"))
    assert mixed.kept == [0, 1]
    # EM maximizes a concave likelihood over the weights, whose corners are the members alone
    assert float(mixed.model.weights.sum()) == pytest.approx(1.0)
    assert mixed.metrics["valid_nll"] <= min(valid_nll(f) for f in member_runs) + 1e-4
    # the figure derived from the members' scores is the mixture's own evaluation of valid
    valid = torch.as_tensor(np.load(data)["valid"], dtype=mixed.model.output.weight.dtype)
    assert mixed.metrics["valid_nll"] == pytest.approx(evaluate_nll(mixed.model, valid).nll, rel=1e-12)
    save_mixture(tmp_path / "mix", mixed.model, mixed.extra)
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "mix"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_nll"] == pytest.approx(mixed.metrics["test_nll"], rel=1e-6)


def test_members_under_the_weight_floor_are_dropped(member_runs, monkeypatch):
    """Of two members, one has at most half the weight: both are kept over the floor, and with the
    floor just above the smaller weight the mixture is refused (fewer than two kept)."""
    import torch

    import made.tune.mixing as tuning

    mixed = tuning.mix_runs(member_runs, torch.device("cpu"))
    assert len(mixed.kept) == len(mixed.model.members) == 2 and float(mixed.model.weights.min()) >= tuning.MIN_WEIGHT
    monkeypatch.setattr(tuning, "MIN_WEIGHT", float(mixed.model.weights.min()) + 1e-9)
    assert tuning.mix_runs(member_runs, torch.device("cpu")) is None


def test_made_mix_writes_an_equal_weight_mixture_that_eval_reads(data, member_runs, tmp_path, capsys):
    """The default mixture has equal weights, and its stored test NLL is -log of the mean of the members'
    probabilities, each member's own made eval per example; made eval of the folder agrees."""
    import torch

    from made.io.run import load_run

    out = tmp_path / "mixed"
    assert main(["mix", *map(str, member_runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mixture of 2 runs" in printed and str(out) in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mix"] == {"runs": list(map(str, member_runs)), "weights": [0.5, 0.5], "fitted": False}
    test = torch.as_tensor(np.load(data)["test"], dtype=torch.float32)
    with torch.no_grad():
        member_log_p = torch.stack([load_run(f)[0].log_prob(test) for f in member_runs]).double()
    expected = -(torch.logsumexp(member_log_p, 0) - math.log(2)).mean()
    assert metrics["test_nll"] == pytest.approx(float(expected), rel=1e-5)
    assert main(["eval", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_nll"] == pytest.approx(metrics["test_nll"], rel=1e-6)


def test_made_mix_fits_weights_on_validation(member_runs, tmp_path, capsys):
    out = tmp_path / "fitted"
    assert main(["mix", *map(str, member_runs), "--out", str(out), "--fit-weights"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mix"]["fitted"] and sum(metrics["mix"]["weights"]) == pytest.approx(1.0)
    assert metrics["valid_nll"] <= min(valid_nll(f) for f in member_runs) + 1e-4


def test_made_mix_refusals(data, member_runs, tmp_path, capsys):
    """One-line errors, and nothing written: one run, --out a run mixed or a trained run, a mixture there
    without --overwrite, a mixture as a member, runs of other data."""
    first, second = map(str, member_runs)
    out = tmp_path / "mixed"
    other = tmp_path / "other.npz"
    np.savez(other, **{k: v[:, :6] for k, v in np.load(data).items()})
    assert main(["train", "--data", str(other), "--out", str(tmp_path / "six"), "--quiet", "--epochs", "2"]) == 0
    assert main(["mix", first, second, "--out", str(out)]) == 0
    capsys.readouterr()
    cases = [
        ([first, "--out", str(tmp_path / "x")], "needs two or more runs"),
        ([first, second, "--out", first], "is one of the runs mixed"),
        ([first, second, "--out", str(tmp_path / "six")], "holds a run of made train"),
        ([first, second, "--out", str(out)], "already holds a mixture; choose another --out, or pass --overwrite"),
        ([first, str(out), "--out", str(tmp_path / "y")], "is a mixture; mix the runs it was made of"),
        ([first, str(tmp_path / "six"), "--out", str(tmp_path / "z")], "differ in the data they were trained on"),
    ]
    for argv, message in cases:
        assert main(["mix", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("made: error: ") and message in err and "\n" not in err
    assert not any((tmp_path / name).exists() for name in ("x", "y", "z"))
    assert main(["mix", second, first, "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["mix"]["runs"] == [second, first]


def test_the_end_keeps_time_to_mix_the_two_best_trials_not_the_slowest():
    from types import SimpleNamespace

    from made.tune.search import ending_seconds

    ranked = [SimpleNamespace(user_attrs={"eval_seconds": s}) for s in (1.0, 0.2, 94.0)]  # best first
    assert ending_seconds(ranked) == pytest.approx(1.5 * 1.2)
    assert ending_seconds(ranked[:1]) == pytest.approx(1.5) and ending_seconds([]) == 0.0


def test_mixture_candidates_fit_the_budget_best_first():
    from types import SimpleNamespace

    from made.tune.search import mixture_candidates

    ranked = [SimpleNamespace(number=n, user_attrs={"eval_seconds": 2.0}) for n in range(5)]
    assert [t.number for t in mixture_candidates(ranked, 10.0)] == [0, 1, 2]  # 3 cost 9 s, 4 would cost 12
    assert mixture_candidates(ranked, 2.0) == []
    assert len(mixture_candidates(ranked, 1e9)) == 5


def test_interrupted_tune_continues_with_the_budget_left(data, tuned):
    """Last in this file: it extends the study of the ``tuned`` fixture that the tests above read."""
    study = study_of(tuned)
    used = study.user_attrs[budget_key(tuned)]
    first = [t.number for t in study.trials]
    assert 0 < used <= 0.1 * 60 * 1.5  # it stops early when what is left cannot train a trial
    # the same budget again: nothing left, so no new trial, and the run folder is made again
    assert main(["tune", "--data", str(data), "--out", str(tuned), "--minutes", "0.1", "--quiet", "--no-mixture"]) == 0
    assert [t.number for t in study_of(tuned).trials] == first
    # a larger budget: the study continues (new trials after the old ones) for the difference only
    assert main(["tune", "--data", str(data), "--out", str(tuned), "--minutes", "0.3", "--quiet", "--no-mixture"]) == 0
    study = study_of(tuned)
    assert [t.number for t in study.trials][: len(first)] == first and len(study.trials) > len(first)
    assert used < study.user_attrs[budget_key(tuned)] <= 0.3 * 60 * 1.5
    assert main(["eval", str(tuned), "--json"]) == 0


def test_trials_left_running_by_a_killed_tune_are_failed(tmp_path):
    from made.tune.search import fail_interrupted, open_study

    run = tmp_path / "run"
    study = open_study(run, None, "made", {"data": "x"}, seed=0)
    assert isinstance(study.pruner, KindMedianPruner)
    key = budget_key(run)
    ours, theirs = study.ask(), study.ask()
    ours.set_user_attr("owner", key)
    theirs.set_user_attr("owner", "another machine")  # a shared study: not ours to judge
    assert fail_interrupted(study, key) == 1
    states = {t.number: t.state for t in study.get_trials()}
    assert states[ours.number] == optuna.trial.TrialState.FAIL
    assert states[theirs.number] == optuna.trial.TrialState.RUNNING


def test_a_tune_that_failed_before_any_trial_can_be_rerun_with_other_data(tmp_path):
    from made.tune.search import open_study

    first = open_study(tmp_path, None, "made", {"data": ["--data", "typo.csv"]}, 0)
    assert len(first.get_trials()) == len(STARTING_TRIALS)  # queued, not started
    again = open_study(tmp_path, None, "made", {"data": ["--data", "right.csv"]}, 0)
    assert again.user_attrs["record"] == {"data": ["--data", "right.csv"]}
    trial = again.ask()
    again.tell(trial, 1.0)
    with pytest.raises(
        ValueError, match=r"was started with data \['--data', 'right.csv'\], not \['--data', 'third.csv'\]"
    ):
        open_study(tmp_path, None, "made", {"data": ["--data", "third.csv"]}, 0)


def test_a_missing_data_file_leaves_no_study(tmp_path, capsys):
    assert main(["tune", "--data", str(tmp_path / "typo.csv"), "--out", str(tmp_path / "run")]) == 2
    assert "typo.csv: no such file" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_evaluation_estimate_scales_with_the_masks_averaged_and_the_multiply_adds():
    from types import SimpleNamespace

    from made.tune.search import STARTING_TRIALS, evaluation_estimate

    one_mask, pool = STARTING_TRIALS
    finished = [SimpleNamespace(params=one_mask, user_attrs={"eval_seconds": 0.02})]
    assert evaluation_estimate(one_mask, [], 100) == 0.0
    assert evaluation_estimate(one_mask, finished, 100) == pytest.approx(0.02)
    assert evaluation_estimate(pool, finished, 100) == pytest.approx(0.02 * 8)  # 8 masks of the same network
    # 300 masks; per pass 2 x 100 x 1000 + 1000^2 + 100^2 multiply-adds against the trial's 2 x 100 x 500
    unlimited = {**one_mask, "masks": "unlimited", "width": 1000, "layers": 2, "direct": True}
    assert evaluation_estimate(unlimited, finished, 100) == pytest.approx(0.02 * 300 * 1_210_000 / 100_000)
    slowest = [*finished, SimpleNamespace(params=pool, user_attrs={"eval_seconds": 0.32})]  # twice as slow per pass
    assert evaluation_estimate(one_mask, slowest, 100) == pytest.approx(0.04)


def test_made_mix_says_when_fitted_weights_leave_one_run(member_runs, tmp_path, capsys, monkeypatch):
    import made.tune.mixing as tuning

    monkeypatch.setattr(tuning, "MIN_WEIGHT", 0.99)  # no member of two holds 99% of the weight
    assert main(["mix", *map(str, member_runs), "--out", str(tmp_path / "one"), "--fit-weights"]) == 2
    assert "every run but one has a weight under" in capsys.readouterr().err
    assert not (tmp_path / "one").exists()


def test_made_mix_refuses_runs_with_and_without_context(tmp_path, capsys):
    """The same data with and without --context labels: a mixture of both would be a model of x beside one
    of x given the label, so it is refused, naming the run."""
    runs = []
    for name, extra in (("plain", []), ("labels", ["--context", "labels"])):
        runs.append(str(tmp_path / name))
        assert (
            main(
                [
                    "train",
                    "--dataset",
                    "digits",
                    "--out",
                    runs[-1],
                    "--hidden",
                    "32",
                    "--epochs",
                    "1",
                    "--quiet",
                    *extra,
                ]
            )
            == 0
        )
    capsys.readouterr()
    assert main(["mix", *runs, "--out", str(tmp_path / "mixed")]) == 2
    err = capsys.readouterr().err
    assert f"{runs[1]} and {runs[0]} differ in --context" in err
