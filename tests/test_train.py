import json

import pytest
import torch

from made import MADE
from made.data import load_dataset
from made.evaluate import evaluate_nll
from made.train import TrainConfig, fingerprint, fit, make_optimizer


def digits():
    s = load_dataset("digits")
    return torch.from_numpy(s.train), torch.from_numpy(s.valid), torch.from_numpy(s.test)


def test_training_on_digits_lowers_test_nll(tmp_path):
    train, valid, test = digits()
    model = MADE(64, [200], seed=0)
    before = evaluate_nll(model, test).nll
    history = fit(model, train, valid, TrainConfig(epochs=15, patience=30), log_path=tmp_path / "log.jsonl")
    after = evaluate_nll(model, test).nll
    assert after < before - 10  # from ~44 nats (uniform-ish) to the low 20s
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(1, 16)) and history.epochs == 15


def test_early_stopping_keeps_best_weights():
    train, valid, _ = digits()
    model = MADE(64, [100], seed=0)
    config = TrainConfig(epochs=200, patience=3, lr=0.05)  # a large step overfits and stops early
    history = fit(model, train, valid, config)
    assert history.epochs < 200
    assert history.epochs - history.best_epoch == 3
    assert evaluate_nll(model, valid).nll == pytest.approx(history.best_valid_nll, rel=1e-6)


@pytest.mark.parametrize("name", ["adam", "sgd", "adagrad", "adadelta"])
def test_optimizers(name):
    model = MADE(5, [8])
    opt = make_optimizer(model, TrainConfig(optimizer=name))
    assert opt.__class__.__name__.lower() == name
    if name == "adadelta":
        assert opt.defaults["rho"] == 0.95 and opt.defaults["eps"] == 1e-5
    else:  # torch's fused kernels where the CPU has them
        assert opt.defaults["fused"]


@pytest.mark.parametrize("name", ["adam", "sgd", "adagrad"])
def test_fused_optimizers_take_the_same_steps(name):
    models = [MADE(6, [12], seed=0).double() for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    config = TrainConfig(optimizer=name, lr=0.05)
    fused = make_optimizer(models[0], config)
    options = {"adagrad": dict(eps=config.adagrad_eps)}.get(name, {})
    plain = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad}[name](
        models[1].parameters(), lr=0.05, **options
    )
    x = (torch.rand(20, 6, dtype=torch.float64) < 0.5).double()
    for _ in range(5):
        for model, opt in zip(models, (fused, plain)):
            opt.zero_grad()
            (-model.log_prob(x).mean()).backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_bad_config():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)


def test_training_with_a_pool_cycles_masks():
    train, valid, _ = digits()
    model = MADE(64, [50], num_masks=4, seed=0)
    seeds = []
    original = model.set_mask_seed
    model.set_mask_seed = lambda s: (seeds.append(s), original(s))[1]
    fit(model, train[:400], valid, TrainConfig(epochs=1))
    assert seeds[:8] == model.mask_seeds * 2  # one mask per minibatch, in the pool's order


def test_time_budget_stops_after_the_epoch_that_exceeds_it():
    train, valid, _ = digits()
    model = MADE(64, [20], seed=0)
    history = fit(model, train[:200], valid, TrainConfig(epochs=50, max_seconds=1e-9))
    assert history.epochs == 1 and history.best_epoch == 1
    with pytest.raises(ValueError, match="max_seconds"):
        TrainConfig(max_seconds=0)


def test_time_budget_is_not_part_of_what_a_checkpoint_was_trained_with():
    train, valid, _ = digits()
    model = MADE(64, [20], seed=0)
    assert fingerprint(model, TrainConfig(max_seconds=5), train, valid) == fingerprint(model, TrainConfig(), train, valid)
