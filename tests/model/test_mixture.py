import json
import math

import numpy as np
import pytest
import torch
from conftest import all_binary, total_variation

from made import MADE
from made.cli import main
from made.inference.evaluate import evaluate_nll
from made.io.run import load_mixture, load_run_model, save_mixture
from made.model.mixture import Mixture, em_weights


def members() -> list[MADE]:
    """Three different small models of 6 binary inputs: one mask, a reordering pool, natural order."""
    return [
        MADE(6, [12], seed=1).double(),
        MADE(6, [12], num_masks=4, seed=2).double(),
        MADE(6, [16, 16], ordering="random", seed=3).double(),
    ]


def randomized(models: list[MADE]) -> list[MADE]:
    """Scale the weights so the members are far from uniform and from each other."""
    with torch.no_grad():
        for m in models:
            for p in m.parameters():
                p.mul_(4)
    return models


def test_mixture_is_normalized_over_all_vectors():
    mix = Mixture(randomized(members()), weights=[0.2, 0.5, 0.3], ensembles=[None, 4, None])
    x = all_binary(6)
    total = mix.log_prob(x).exp().sum()
    assert float(total) == pytest.approx(1.0, abs=1e-10)
    by_hand = sum(w * m.log_prob(x, ensemble=e).exp() for w, m, e in zip([0.2, 0.5, 0.3], mix.members, [None, 4, None]))
    assert torch.allclose(mix.log_prob(x).exp(), by_hand)
    assert torch.allclose(-mix.per_example_nll(x), mix.log_prob(x))


def test_samples_follow_the_exact_probabilities():
    mix = Mixture(randomized(members()), weights=[0.6, 0.1, 0.3], ensembles=[None, 4, None])
    generator = torch.Generator().manual_seed(0)
    samples = mix.sample(40_000, generator=generator)
    exact = mix.log_prob(all_binary(6)).exp()
    # 64 cells, 40,000 draws: the expected total variation of an exact sampler is about 0.02 (seed 0)
    assert total_variation(samples, exact) < 0.03


def test_em_weights_improve_validation_nll_and_sum_to_one():
    torch.manual_seed(0)
    x = (torch.rand(300, 6) < torch.tensor([0.9, 0.1, 0.8, 0.2, 0.5, 0.5])).double()
    mix = Mixture(randomized(members()))
    before = evaluate_nll(mix, x).nll
    mix.fit_weights(x)
    after = evaluate_nll(mix, x).nll
    assert after < before
    assert float(mix.weights.sum()) == pytest.approx(1.0, abs=1e-12) and bool((mix.weights >= 0).all())
    # EM reaches the optimum: no other weighting does better on the data it was fitted on
    log_probs = mix.member_log_probs(x)
    for w in ([1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1 / 3] * 3):
        other = -torch.logsumexp(torch.tensor(w).log()[:, None] + log_probs, dim=0).mean()
        assert after <= float(other) + 1e-9


def test_em_finds_known_weights():
    """Two members with disjoint supports: the best weights are the fractions of rows each explains."""
    log_probs = torch.tensor([[0.0] * 30 + [-1e4] * 70, [-1e4] * 30 + [0.0] * 70])
    assert em_weights(log_probs).tolist() == pytest.approx([0.3, 0.7], abs=1e-6)


def test_conditional_and_impute_are_exact_for_the_mixture():
    models = randomized([MADE(4, [10], num_masks=3, seed=s).double() for s in (1, 2)])
    mix = Mixture(models, weights=[0.3, 0.7], ensembles=[3, 3])
    x = all_binary(4)
    observed = torch.tensor([True, False, True, False]).expand(16, 4)
    cond = mix.conditional_log_prob(x, observed).exp()
    # for each observed value, the conditionals over the missing values sum to 1
    keys = x[:, [0, 2]] @ torch.tensor([2.0, 1.0], dtype=x.dtype)
    for k in range(4):
        assert float(cond[keys == k].sum()) == pytest.approx(1.0, abs=1e-10)
    # impute draws from it: the frequencies of the completions of one row match cond
    row = x[5:6].expand(20_000, 4)
    draws = mix.impute(row, observed[:1].expand(20_000, 4), generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws[:, [0, 2]], row[:, [0, 2]])
    same = keys == keys[5]
    codes = (draws[:, [1, 3]] @ torch.tensor([2.0, 1.0], dtype=x.dtype)).long()
    freq = torch.bincount(codes, minlength=4).double() / 20_000
    exact = cond[same][torch.argsort(x[same][:, [1, 3]] @ torch.tensor([2.0, 1.0], dtype=x.dtype))]
    assert float((freq - exact).abs().max()) < 0.015  # 4 cells, 20,000 draws, seed 0


def test_members_must_model_the_same_data():
    with pytest.raises(ValueError, match="member 1"):
        Mixture([MADE(4, [8]), MADE(5, [8])])
    with pytest.raises(ValueError, match="weights"):
        Mixture([MADE(4, [8]), MADE(4, [8])], weights=[1.0, -1.0])


def test_run_folder_round_trip_and_cli(tmp_path):
    """A mixture run folder reads back exactly and 'made eval', 'sample', 'impute' take it."""
    data = tmp_path / "data.npz"
    rng = np.random.default_rng(0)
    split = {k: (rng.random((n, 6)) < 0.3).astype(np.uint8) for k, n in (("train", 200), ("valid", 50), ("test", 50))}
    np.savez(data, **split)
    runs = []
    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        assert (
            main(
                [
                    "train",
                    "--data",
                    str(data),
                    "--out",
                    str(run),
                    "--hidden",
                    "16",
                    "--epochs",
                    "2",
                    "--seed",
                    str(seed),
                    "--quiet",
                ]
            )
            == 0
        )
        runs.append(run)
    models = [load_run_model(r)[0] for r in runs]
    config = json.loads((runs[0] / "config.json").read_text())
    mix = Mixture(models).fit_weights(torch.from_numpy(split["valid"]).float())
    out = tmp_path / "mix"
    save_mixture(out, mix, {k: config[k] for k in ("data", "eval", "schema", "context", "image_shape")})
    again, _ = load_mixture(out)
    x = torch.from_numpy(split["test"]).float()
    assert torch.equal(again.log_prob(x), mix.log_prob(x))
    assert main(["eval", str(out), "--json"]) == 0
    assert main(["sample", str(out), "-n", "5", "--out", str(tmp_path / "s.npy"), "--quiet"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (5, 6)
    holes = split["test"][:4].astype(float)
    holes[:, 3:] = np.nan  # the last columns come last in both members' natural orderings
    np.save(tmp_path / "holes.npy", holes)
    assert (
        main(["impute", str(out), "--data", str(tmp_path / "holes.npy"), "--out", str(tmp_path / "f.npy"), "--quiet"])
        == 0
    )
    filled = np.load(tmp_path / "f.npy")
    assert filled.shape == (4, 6) and np.array_equal(filled[:, :3], split["test"][:4, :3])


def test_eval_json_of_a_mixture_is_its_nll(tmp_path, capsys):
    test_run_folder_round_trip_and_cli(tmp_path)
    capsys.readouterr()
    main(["eval", str(tmp_path / "mix"), "--json"])
    report = json.loads(capsys.readouterr().out)
    mix, _ = load_mixture(tmp_path / "mix")
    test = np.load(tmp_path / "data.npz")["test"]
    assert report["test_nll"] == pytest.approx(evaluate_nll(mix, torch.from_numpy(test).float()).nll, rel=1e-6)


def test_an_ensemble_larger_than_a_members_pool_names_that_member():
    mixture = Mixture([MADE(4, [8], num_masks=8, seed=1), MADE(4, [8], num_masks=2, seed=2)]).double()
    x = all_binary(4)
    torch.testing.assert_close(mixture.log_prob(x, ensemble=2).exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    message = "member 1 of this mixture: ensemble of 3 masks asked, but the pool has only 2; without it each member"
    with pytest.raises(ValueError, match=message + " averages its own masks"):
        mixture.log_prob(x, ensemble=3)


@pytest.mark.parametrize(
    "weights, normalized",
    [([1e308, 1e308], [0.5, 0.5]), ([1e-320, 3e-320], [0.25, 0.75]), ([1e308, 0.0], [1.0, 0.0])],
)
def test_extreme_weights_are_normalized(weights, normalized):
    """Issue 25: weights=[1e308, 1e308] summed to inf, every weight became 0 and the NLL inf."""
    models = members()[:2]
    mix = Mixture(models, weights=weights)
    assert mix.weights.tolist() == pytest.approx(normalized, rel=1e-12)
    x = all_binary(6)
    reference = Mixture(models, weights=normalized)
    torch.testing.assert_close(mix.log_prob(x), reference.log_prob(x))
    assert bool(torch.isfinite(mix.log_prob(x)).all())


@pytest.mark.parametrize(
    "weights", [[float("nan"), 1.0], [float("inf"), 1.0], [-1.0, 2.0], [0.0, 0.0], ["a", "b"], [1.0]]
)
def test_unusable_weights_are_refused_in_one_line(weights):
    with pytest.raises(ValueError, match=r"^weights must be 2 finite non-negative numbers with a positive sum, got"):
        Mixture(members()[:2], weights=weights)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_a_mixture_whose_weights_were_broken_refuses_to_sample_or_score(bad):
    """Issue 25: weights broken after construction (a loaded state, an edit) reached torch.multinomial
    ('probability tensor contains either inf, nan or element < 0') or gave NaN densities."""
    mix = Mixture(members()[:2])
    state = mix.state_dict()
    state["weights"] = torch.tensor([bad, 0.5], dtype=torch.float64)
    mix.load_state_dict(state)
    message = r"^this mixture's weights \[[^\n]*\] are not finite non-negative numbers with a positive sum"
    for call in (lambda: mix.sample(3), lambda: mix.log_prob(all_binary(6)), lambda: mix.impute(*_half(6))):
        with pytest.raises(ValueError, match=message):
            call()


def _half(d: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = all_binary(d)[:4]
    return x, torch.arange(d).expand(4, d) < d // 2


def test_em_refuses_rows_no_weights_can_mix_naming_the_row():
    """Issue 25: em_weights and fit_weights returned NaN weights for a row every member scores -inf (or a
    NaN), and made mix reported them as 'every run but one has a weight under 0.01'."""
    log_probs = torch.tensor([[-1.0, -2.0, -math.inf], [-1.5, -0.5, -math.inf]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^row 3: every member gives it probability 0"):
        em_weights(log_probs)
    log_probs[:, 2] = torch.tensor([-1.0, math.nan])
    with pytest.raises(ValueError, match=r"^line 9: member 1 scores it nan, not a log-probability"):
        em_weights(log_probs, where=lambda row: f"line {row + 7}")
    log_probs[1, 2] = math.inf
    with pytest.raises(ValueError, match=r"^row 3: member 1 scores it inf"):
        em_weights(log_probs)
    log_probs[1, 2] = -math.inf  # one member can score the row: fine
    weights = em_weights(log_probs)
    assert bool(torch.isfinite(weights).all()) and float(weights.sum()) == pytest.approx(1.0)


def test_fit_weights_names_the_validation_row_no_member_can_score():
    gaussians = [MADE(2, [8], family="gaussian", seed=s).double() for s in (1, 2)]
    mix = Mixture(gaussians)
    valid = torch.tensor([[0.0, 0.1], [1e300, 0.0], [0.5, -0.5]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^valid row 2: every member gives it probability 0"):
        mix.fit_weights(valid)
    assert mix.weights.tolist() == [0.5, 0.5]  # unchanged


@pytest.mark.parametrize("log_probs", [torch.zeros(3), torch.zeros(2, 0), [[0.0]]])
def test_em_refuses_log_probs_of_another_shape(log_probs):
    with pytest.raises(ValueError, match=r"^log_probs must be a tensor \[members, rows\]"):
        em_weights(log_probs)
