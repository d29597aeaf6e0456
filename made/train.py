r"""The training loop: minibatches, one mask per minibatch, early stopping on validation NLL."""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .evaluate import evaluate_nll
from .model import MADE

__all__ = ["TrainConfig", "History", "make_optimizer", "fit", "DEFAULT_LR"]

DEFAULT_LR = {"adam": 1e-3, "sgd": 0.01, "adagrad": 0.01, "adadelta": 1.0}


@dataclass
class TrainConfig:
    """How to train; every field has the default a user would want."""

    batch_size: int = 100  # the paper's minibatch size
    optimizer: str = "adam"  # adam | sgd | adagrad | adadelta
    lr: float | None = None  # None: DEFAULT_LR of the optimizer
    patience: int = 30  # epochs without validation improvement before stopping (paper: 30)
    epochs: int = 1000  # hard cap on epochs
    seed: int = 0  # minibatch order
    weight_decay: float = 0.0
    adadelta_rho: float = 0.95  # the authors' command: decay 0.95
    adadelta_eps: float = 1e-5  # the authors' command: epsilon 1e-5
    adagrad_eps: float = 1e-6  # the paper's MNIST setting
    valid_ensemble: int | None = None  # masks averaged for validation; None: the whole pool (300 if unlimited)
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        if self.optimizer not in DEFAULT_LR:
            raise ValueError(f"optimizer must be one of {sorted(DEFAULT_LR)}, got {self.optimizer!r}")
        for name in ("batch_size", "patience", "epochs", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@dataclass
class History:
    """What happened during training; ``log`` has one dict per epoch."""

    best_valid_nll: float = math.inf
    best_epoch: int = 0
    epochs: int = 0
    seconds: float = 0.0
    log: list[dict] = field(default_factory=list)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer over the model's parameters."""
    lr = config.lr if config.lr is not None else DEFAULT_LR[config.optimizer]
    params, wd = model.parameters(), config.weight_decay
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=config.adagrad_eps, weight_decay=wd)
    return torch.optim.Adadelta(params, lr=lr, rho=config.adadelta_rho, eps=config.adadelta_eps, weight_decay=wd)


def validation_masks(model: MADE, config: TrainConfig) -> int | None:
    """How many masks validation averages: none for one mask, else the pool (300 if unlimited)."""
    if config.valid_ensemble is not None:
        return config.valid_ensemble
    if model.num_masks == 1:
        return None
    return 300 if model.num_masks == "unlimited" else model.num_masks


def fit(
    model: MADE,
    train: Tensor,
    valid: Tensor,
    config: TrainConfig | None = None,
    log_path: str | Path | None = None,
    progress: bool | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> History:
    """Train ``model`` in place and leave it with its best-validation weights.

    Each minibatch uses the next mask of the pool (a fresh one if unlimited). After
    every epoch the validation NLL is computed (averaged over the pool's masks);
    training stops after ``patience`` epochs without improvement or at ``epochs``.
    ``log_path`` receives one JSON line per epoch; ``progress=None`` shows a bar on
    a terminal only.
    """
    from tqdm.auto import tqdm

    config = config or TrainConfig()
    device, dtype = model.output.weight.device, model.output.weight.dtype
    model.family.check_support(train)
    model.family.check_support(valid)
    model.validate_args = False  # data checked once above
    train = train.to(device=device, dtype=dtype)  # once, not per minibatch
    optimizer = make_optimizer(model, config)
    order_gen = torch.Generator().manual_seed(config.seed)
    valid_k = validation_masks(model, config)
    history, best_state, start, step = History(), None, time.perf_counter(), 0
    log = open(log_path, "a") if log_path else None
    bar = tqdm(total=config.epochs, desc="training", unit="epoch", disable=None if progress is None else not progress)
    try:
        for epoch in range(1, config.epochs + 1):
            model.train()
            total, seen = 0.0, 0
            for idx in torch.randperm(train.shape[0], generator=order_gen).split(config.batch_size):
                model.mask_for_step(step)
                x = train[idx.to(device)]
                loss = -model.log_prob(x).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * x.shape[0]
                seen += x.shape[0]
                step += 1
            if not math.isfinite(total):
                raise FloatingPointError(f"training loss became {total} at epoch {epoch}; try a smaller --lr")
            valid_nll = evaluate_nll(model, valid, config.eval_batch_size, valid_k).nll
            improved = valid_nll < history.best_valid_nll
            if improved:
                history.best_valid_nll, history.best_epoch = valid_nll, epoch
                best_state = copy.deepcopy(model.state_dict())
            history.epochs = epoch
            record = {
                "epoch": epoch,
                "train_nll": total / seen,
                "valid_nll": valid_nll,
                "best_valid_nll": history.best_valid_nll,
                "seconds": time.perf_counter() - start,
            }
            history.log.append(record)
            if log:
                log.write(json.dumps(record) + "\n")
                log.flush()
            if on_epoch:
                on_epoch(record)
            bar.set_postfix(valid_nll=f"{valid_nll:.3f}", best=f"{history.best_valid_nll:.3f}")
            bar.update()
            if epoch - history.best_epoch >= config.patience:
                break
    finally:
        bar.close()
        if log:
            log.close()
        model.validate_args = True
    if best_state is not None:
        model.load_state_dict(best_state)
    history.seconds = time.perf_counter() - start
    return history
