import json
import math

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from made import MADE
from made.data import load_dataset
from made.inference.evaluate import evaluate_nll
from made.training.loop import TrainConfig, fingerprint, fit, learning_rate, make_optimizer


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


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "adagrad", "adadelta"])
def test_optimizers(name):
    model = MADE(5, [8])
    opt = make_optimizer(model, TrainConfig(optimizer=name))
    assert opt.__class__.__name__.lower() == name
    if name == "adadelta":
        assert opt.defaults["rho"] == 0.95 and opt.defaults["eps"] == 1e-5
    else:  # torch's fused kernels where the CPU has them
        assert opt.defaults["fused"]


def test_adagrad_is_fused_only_on_the_cpu():
    # torch's fused Adagrad has no CUDA kernel and refuses it only at the first step(): a
    # made train --optimizer adagrad --device cuda died there. Off the CPU, the plain kernel.
    model = MADE(5, [8]).to("meta")
    assert not make_optimizer(model, TrainConfig(optimizer="adagrad")).defaults["fused"]
    assert make_optimizer(MADE(5, [8]), TrainConfig(optimizer="adagrad")).defaults["fused"]


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


@pytest.mark.parametrize(
    "field, value",
    [
        ("lr", math.inf),
        ("lr", math.nan),
        ("max_seconds", math.inf),
        ("adadelta_eps", 0.0),
        ("adagrad_eps", -1.0),
        ("weight_decay", math.nan),
        ("weight_decay", -0.1),
        ("adadelta_rho", 1.5),
        ("valid_ensemble", 0),
    ],
)
def test_config_numbers_must_be_finite_and_in_range(field, value):
    with pytest.raises(ValueError, match=f"^{field} must be"):
        TrainConfig(**{field: value})


def test_training_with_a_pool_cycles_masks():
    train, valid, _ = digits()
    model = MADE(64, [50], num_masks=4, seed=0)
    seeds = []
    original = model.set_mask_seed
    model.set_mask_seed = lambda s: (seeds.append(s), original(s))[1]
    fit(model, train[:800], valid, TrainConfig(epochs=1))
    # one mask per minibatch, in the pool's order; validation evaluates masks as values, never switching
    assert seeds == model.mask_seeds * 2


def test_time_budget_stops_at_the_minibatch_that_passes_it():
    """One process ends even its first epoch at the minibatch past the budget: an epoch of a large set
    can outlast a whole tune trial (msnbc: one 12-minute epoch in a 10-minute tune)."""
    train, valid, _ = digits()
    model = MADE(64, [20], seed=0)
    steps = []
    hook = register_optimizer_step_post_hook(lambda *_: steps.append(1))
    try:
        history = fit(model, train[:200], valid, TrainConfig(epochs=50, batch_size=10, max_seconds=1e-9))
        assert history.epochs == 1 and history.best_epoch == 1 and len(steps) == 1  # 1 of the epoch's 20 steps
        steps.clear()
        fit(MADE(64, [20], seed=0), train[:200], valid, TrainConfig(epochs=1, batch_size=10, max_seconds=3600))
        assert len(steps) == 20  # a budget not yet passed cuts nothing
    finally:
        hook.remove()
    with pytest.raises(ValueError, match="max_seconds"):
        TrainConfig(max_seconds=0)


def test_time_budget_is_not_part_of_what_a_checkpoint_was_trained_with():
    train, valid, _ = digits()
    model = MADE(64, [20], seed=0)
    assert fingerprint(model, TrainConfig(max_seconds=5), train, valid) == fingerprint(
        model, TrainConfig(), train, valid
    )


def test_fit_with_context_trains_resumes_and_checks_the_context(tmp_path):
    """A class-conditional categorical model: the context feeds training and validation, an
    interrupted fit resumes to the same weights, and a checkpoint of other context is refused."""
    from made.io.atomic import CheckpointError

    rng = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (240,), generator=rng)
    x = (labels[:, None] + torch.randint(0, 2, (240, 5), generator=rng)).double()  # depends on the label
    context = torch.nn.functional.one_hot(labels, 3).double()
    train, valid, c_train, c_valid = x[:200], x[200:], context[:200], context[200:]
    config = TrainConfig(epochs=4, batch_size=50, lr=0.01)

    def model():
        torch.manual_seed(0)
        return MADE(5, [16], family="categorical", categories=4, context_size=3, direct=True).double()

    straight = model()
    blind = evaluate_nll(straight, valid, context=c_valid).nll
    fit(straight, train, valid, config, train_context=c_train, valid_context=c_valid, checkpoint_dir=tmp_path / "a")
    assert evaluate_nll(straight, valid, context=c_valid).nll < blind - 0.5

    class Stop(Exception):
        pass

    def stop_at_3(record):
        if record["epoch"] == 3:
            raise Stop

    with pytest.raises(Stop):
        fit(
            model(),
            train,
            valid,
            config,
            on_epoch=stop_at_3,
            train_context=c_train,
            valid_context=c_valid,
            checkpoint_dir=tmp_path / "b",
        )
    with pytest.raises(CheckpointError, match="another train_context"):
        fit(
            model(),
            train,
            valid,
            config,
            train_context=c_train.flip(1),
            valid_context=c_valid,
            checkpoint_dir=tmp_path / "b",
            resume=True,
        )
    resumed = model()
    fit(
        resumed,
        train,
        valid,
        config,
        train_context=c_train,
        valid_context=c_valid,
        checkpoint_dir=tmp_path / "b",
        resume=True,
    )
    for key, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[key]), key


def test_adamw_decays_weights_apart_from_the_gradient():
    """With a zero gradient Adam's L2 term still moves weights through its moment estimates, AdamW
    shrinks each weight by exactly lr * weight_decay of itself per step."""
    model = MADE(4, [6], seed=0).double()
    before = model.output.weight.detach().clone()
    opt = make_optimizer(model, TrainConfig(optimizer="adamw", lr=0.1, weight_decay=0.5))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.allclose(model.output.weight.detach(), before * (1 - 0.1 * 0.5))


def test_learning_rate_schedule_is_a_function_of_the_epoch():
    constant = TrainConfig(lr=0.01)
    assert [learning_rate(e, constant) for e in (1, 50, 1000)] == [0.01] * 3
    cosine = TrainConfig(lr=0.01, lr_schedule="cosine", warmup_epochs=4, epochs=104)
    warm = [learning_rate(e, cosine) for e in range(1, 6)]
    assert warm == pytest.approx([0.002, 0.004, 0.006, 0.008, 0.01])  # linear up, then the full rate
    assert learning_rate(55, cosine) == pytest.approx(0.005)  # half way down the cosine
    lrs = [learning_rate(e, cosine) for e in range(5, 105)]
    assert all(a > b for a, b in zip(lrs, lrs[1:])) and 0 < lrs[-1] < 1e-5
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")


def test_fit_uses_the_scheduled_learning_rate(monkeypatch):
    import made.training.loop as train_module

    train, valid, _ = digits()
    config = TrainConfig(epochs=3, lr=0.01, lr_schedule="cosine", warmup_epochs=1)
    optimizers = []
    monkeypatch.setattr(
        train_module, "make_optimizer", lambda m, c: optimizers.append(make_optimizer(m, c)) or optimizers[-1]
    )
    seen = []
    fit(
        MADE(64, [64], seed=0),
        train,
        valid,
        config,
        on_epoch=lambda r: seen.append(optimizers[0].param_groups[0]["lr"]),
    )
    assert seen == pytest.approx([learning_rate(e, config) for e in (1, 2, 3)])


def test_adamw_with_a_schedule_resumes_bit_for_bit(tmp_path):
    """The schedule needs no checkpoint state: a run stopped in epoch 3 and resumed ends with the
    weights of one never stopped (AdamW's moments are in the checkpoint like Adam's)."""
    x = (torch.rand(200, 8, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    train, valid = x[:160], x[160:]
    config = TrainConfig(
        epochs=5, batch_size=32, lr=0.02, optimizer="adamw", weight_decay=0.01, lr_schedule="cosine", warmup_epochs=2
    )

    def model():
        torch.manual_seed(0)
        return MADE(8, [12], seed=3)

    def stop_in_epoch_3(record):
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    straight = model()
    fit(straight, train, valid, config, checkpoint_dir=tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(model(), train, valid, config, on_epoch=stop_in_epoch_3, checkpoint_dir=tmp_path / "b")
    resumed = MADE(8, [12], seed=3)
    assert fit(resumed, train, valid, config, checkpoint_dir=tmp_path / "b", resume=True).epochs == 5
    for key, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[key]), key


def test_fit_leaves_validate_args_as_it_found_it():
    train, valid, _ = digits()
    for setting in (True, False):
        model = MADE(64, [20], seed=0)
        model.validate_args = setting
        fit(model, train[:200], valid[:50], TrainConfig(epochs=1))
        assert model.validate_args is setting
