r"""The training loop: minibatches, one mask per minibatch, early stopping on validation NLL."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..inference.evaluate import per_example_nll
from ..io.atomic import CheckpointError, atomic_write
from ..io.training_state import (
    STATE_FILE,
    clear_training_state,
    has_training_state,
    load_training_state,
    save_training_state,
)
from ..model.config import MAX_ENSEMBLE, MAX_SEED
from ..model.made import MADE
from ..model.settings import check_settings, integers, one_of, reals, setting
from .distributed import ProcessInfo, all_sum, process_info, shard, wrap

__all__ = [
    "TrainConfig",
    "History",
    "make_optimizer",
    "learning_rate",
    "fit",
    "fingerprint",
    "validation_masks",
    "DEFAULT_LR",
    "LR_SCHEDULES",
]

DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.01, "adagrad": 0.01, "adadelta": 1.0}
LR_SCHEDULES = ("constant", "cosine")


def _lr_help(_: Any) -> str:
    """The help of ``--lr``: the default learning rate of each optimizer."""
    return "learning rate (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")"


POSITIVE, POSITIVE_REAL = integers(1), reals(0.0, low_open=True)


@dataclass(frozen=True)
class TrainConfig:
    """How to train, checked when built; every field has the default a user would want. The fields with
    a help are ``made train``'s options (:mod:`made.config`)."""

    batch_size: int = setting(100, "minibatch size (default: 100)", values=POSITIVE, group="optimization")
    optimizer: str = setting(
        "adam",
        "optimizer (default: adam)",
        values=one_of(DEFAULT_LR),
        group="optimization",
    )
    lr: float | None = setting(None, _lr_help, values=POSITIVE_REAL, group="optimization")  # None: DEFAULT_LR's
    patience: int = setting(
        30, "epochs without validation improvement before stopping (default: 30)", values=POSITIVE, group="optimization"
    )
    epochs: int = setting(1000, "maximum number of epochs (default: 1000)", values=POSITIVE, group="optimization")
    seed: int = setting(0, values=integers(0, MAX_SEED))  # minibatch order: made train gives the model's
    weight_decay: float = setting(
        0.0,
        "L2 weight decay; with adamw, decoupled from the gradient (default: 0)",
        values=reals(0.0),
        group="optimization",
    )
    lr_schedule: str = setting(
        "constant",
        "learning rate per epoch: constant, or a half cosine reaching 0 at --epochs (default: constant)",
        values=one_of(LR_SCHEDULES),
        added_in="0.3",
        group="optimization",
    )
    warmup_epochs: int = setting(
        0,
        "linear warmup of the learning rate over the first N epochs (default: 0)",
        values=integers(0),
        added_in="0.3",
        metavar="N",
        group="optimization",
    )
    adadelta_rho: float = setting(
        0.95, "adadelta decay (default: 0.95, the authors')", values=reals(0.0, 1.0), group="optimization"
    )
    adadelta_eps: float = setting(
        1e-5, "adadelta epsilon (default: 1e-5, the authors')", values=POSITIVE_REAL, group="optimization"
    )
    adagrad_eps: float = setting(1e-6, values=POSITIVE_REAL)  # the paper's MNIST setting
    valid_ensemble: int | None = setting(  # None: the whole pool (300 if unlimited)
        None,
        "masks averaged for validation (default: the pool; 300 for unlimited)",
        values=integers(1, MAX_ENSEMBLE),
        metavar="K",
        group="optimization",
    )
    eval_batch_size: int = setting(1000, values=POSITIVE)
    checkpoint_every: int = setting(  # when fit is given a checkpoint_dir
        1,
        "write a training checkpoint (for --resume) every N epochs (default: 1)",
        values=POSITIVE,
        metavar="N",
        group="running",
        resume=True,
    )
    max_seconds: float | None = setting(None, values=POSITIVE_REAL)  # stop once passed (one process: mid-epoch)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class History:
    """What happened during training; ``log`` has one dict per epoch."""

    best_valid_nll: float = math.inf
    best_epoch: int = 0
    epochs: int = 0
    seconds: float = 0.0
    log: list[dict] = field(default_factory=list)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer over the model's parameters.

    Adam, SGD and Adagrad use torch's fused kernels where the parameters' device
    and dtype have them: the same update rule, about 30% less time per training
    step on a CPU (benchmarks/SPEED.md).
    """
    lr = config.lr if config.lr is not None else DEFAULT_LR[config.optimizer]
    params, wd = list(model.parameters()), config.weight_decay
    if config.optimizer == "adam":
        return _fused_if_available(torch.optim.Adam, params, lr=lr, weight_decay=wd)
    if config.optimizer == "adamw":
        return _fused_if_available(torch.optim.AdamW, params, lr=lr, weight_decay=wd)
    if config.optimizer == "sgd":
        return _fused_if_available(torch.optim.SGD, params, lr=lr, weight_decay=wd)
    if config.optimizer == "adagrad":
        options: dict[str, Any] = {"lr": lr, "eps": config.adagrad_eps, "weight_decay": wd}
        if all(p.device.type == "cpu" for p in params):  # torch's fused Adagrad is CPU-only, refused at step()
            return _fused_if_available(torch.optim.Adagrad, params, **options)
        return torch.optim.Adagrad(params, **options)
    return torch.optim.Adadelta(params, lr=lr, rho=config.adadelta_rho, eps=config.adadelta_eps, weight_decay=wd)


def learning_rate(epoch: int, config: TrainConfig) -> float:
    """The learning rate of ``epoch`` (counted from 1): a pure function of the epoch and the settings,
    so a resumed run follows the same schedule with no state of its own in the checkpoint.

    Linear warmup over ``warmup_epochs``, then constant or a half cosine that reaches 0 after
    ``epochs`` (the cap on epochs, so early stopping usually ends training before the end).
    """
    lr = config.lr if config.lr is not None else DEFAULT_LR[config.optimizer]
    if epoch <= config.warmup_epochs:
        return lr * epoch / (config.warmup_epochs + 1)
    if config.lr_schedule == "cosine":
        done = (epoch - 1 - config.warmup_epochs) / max(config.epochs - config.warmup_epochs, 1)
        return lr * 0.5 * (1 + math.cos(math.pi * done))
    return lr


def _fused_if_available(
    cls: Callable[..., torch.optim.Optimizer], params: list, **options: float
) -> torch.optim.Optimizer:
    try:
        return cls(params, fused=True, **options)
    except RuntimeError:  # a device or dtype without the fused kernel
        return cls(params, **options)


def validation_masks(model: MADE, config: TrainConfig) -> int | None:
    """How many masks validation averages: none for one mask, else the pool (300 if unlimited)."""
    if config.valid_ensemble is not None:
        return config.valid_ensemble
    if model.num_masks == 1:
        return None
    return 300 if model.num_masks == "unlimited" else model.num_masks


class _SummedNLL(nn.Module):
    """``-sum log p(x)`` of a minibatch as a module, so DistributedDataParallel can wrap it (the data
    was checked once before training, so no minibatch is checked again)."""

    def __init__(self, model: MADE) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return -self.model.log_prob(x, context, validate_args=False).sum()


def fingerprint(
    model: MADE,
    config: TrainConfig,
    train: Tensor,
    valid: Tensor,
    train_context: Tensor | None = None,
    valid_context: Tensor | None = None,
) -> dict:
    """What a checkpoint must have been trained on to be resumed: the model, the training
    settings (but how often to checkpoint and the time budget) and the data (shapes and SHA-256),
    context included."""

    def digest(data: Tensor) -> list:
        return [list(data.shape), hashlib.sha256(data.detach().cpu().contiguous().numpy().tobytes()).hexdigest()]

    settings = {k: v for k, v in asdict(config).items() if k not in ("checkpoint_every", "max_seconds")}
    record = {
        "model": model.config.to_dict(),
        "train": settings,
        "train_data": digest(train),
        "valid_data": digest(valid),
    }
    if train_context is not None:
        assert valid_context is not None  # the two splits' contexts come together
        record.update(train_context=digest(train_context), valid_context=digest(valid_context))
    return json.loads(json.dumps(record))  # as it reads back from JSON


def fit(
    model: MADE,
    train: Tensor,
    valid: Tensor,
    config: TrainConfig | None = None,
    log_path: str | Path | None = None,
    progress: bool | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    train_context: Tensor | None = None,
    valid_context: Tensor | None = None,
) -> History:
    """Train ``model`` in place and leave it with its best-validation weights.

    Each minibatch uses the next mask of the pool (a fresh one if unlimited). After every epoch the
    validation NLL is computed (averaged over the pool's masks); training stops after ``patience`` epochs
    without improvement, at ``epochs``, or after the epoch that exceeds ``max_seconds``. ``log_path``
    receives one JSON line per epoch; ``progress=None`` shows a bar on a terminal only.

    With ``checkpoint_dir``, a training checkpoint is committed every ``config.checkpoint_every`` epochs
    and when training stops; ``resume=True`` continues from the one there (if any) exactly where it was
    taken, and refuses a checkpoint of another model, configuration or data, or progress that does not fit
    them. The last checkpoint records that training stopped (epochs, patience or time budget), so resuming
    it trains no further. Under ``torchrun`` each process trains on its shard of every minibatch (see
    :mod:`made.training.distributed`); only rank 0 writes files. A model with a context input takes one
    context row per example in ``train_context`` and ``valid_context``.
    """
    config = config or TrainConfig()
    device, dtype = model.output.weight.device, model.output.weight.dtype
    for data in (train, valid):
        model.family.check_support(data)
    info = process_info()
    optimizer = make_optimizer(model, config)
    order_gen = torch.Generator().manual_seed(config.seed)
    run_fingerprint = (
        {} if checkpoint_dir is None else fingerprint(model, config, train, valid, train_context, valid_context)
    )
    history, step, finished, best_state = _starting_point(
        model, optimizer, order_gen, config, train.shape[0], info, run_fingerprint, checkpoint_dir, resume
    )
    run = _Run(
        model,
        wrap(_SummedNLL(model), info, device),
        optimizer,
        order_gen,
        config,
        info,
        device,
        train.to(device=device, dtype=dtype),  # once, not per minibatch
        None if train_context is None else train_context.to(device=device, dtype=dtype),
        valid,
        valid_context,
        validation_masks(model, config),
        run_fingerprint,
        checkpoint_dir,
        on_epoch,
    )
    done = (
        finished
        or history.epochs >= config.epochs
        or (history.epochs and history.epochs - history.best_epoch >= config.patience)
    )
    start, seconds_before = time.perf_counter(), history.seconds
    log = _open_log(log_path, history, info)
    bar = _progress_bar(config, history, info, progress)
    try:
        if not done:
            best_state = _train_until_stopped(run, history, step, best_state, log, bar)
    finally:
        bar.close()
        if log:
            log.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    history.seconds = seconds_before + time.perf_counter() - start
    return history


@dataclass(frozen=True)
class _Run:
    """What stays fixed while :func:`fit` trains: the model and how it is trained, the data, where
    checkpoints go and whom to tell about each epoch."""

    model: MADE
    net: nn.Module
    optimizer: torch.optim.Optimizer
    order_gen: torch.Generator
    config: TrainConfig
    info: ProcessInfo
    device: torch.device
    train: Tensor
    train_context: Tensor | None
    valid: Tensor
    valid_context: Tensor | None
    valid_masks: int | None
    fingerprint: dict
    checkpoint_dir: str | Path | None
    on_epoch: Callable[[dict], None] | None


def _train_until_stopped(
    run: _Run, history: History, step: int, best_state: dict | None, log: Any, bar: Any
) -> dict | None:
    """Train epoch after epoch from ``history`` until patience, ``epochs`` or the time budget stops it,
    checkpointing as configured; returns the best weights so far."""
    config, model, start, seconds_before = run.config, run.model, time.perf_counter(), history.seconds
    # One process ends an epoch at the minibatch that passes the budget (an epoch of a large set can outlast
    # a whole tune trial); several keep to whole epochs, so that none waits for a minibatch the others skip.
    single = config.max_seconds is not None and run.info.world_size == 1
    deadline = start + config.max_seconds - seconds_before if config.max_seconds is not None and single else None
    for epoch in range(history.epochs + 1, config.epochs + 1):
        total, seen, step = _train_epoch(
            model,
            run.net,
            run.optimizer,
            run.order_gen,
            run.train,
            run.train_context,
            config,
            epoch,
            step,
            run.info,
            run.device,
            deadline,
        )
        valid_nll = _validation_nll(model, run.valid, config, run.valid_masks, run.info, run.device, run.valid_context)
        if valid_nll < history.best_valid_nll:
            history.best_valid_nll, history.best_epoch = valid_nll, epoch
            best_state = copy.deepcopy(model.state_dict())
        history.epochs = epoch
        record = {
            "epoch": epoch,
            "train_nll": total / seen,
            "valid_nll": valid_nll,
            "best_valid_nll": history.best_valid_nll,
            "seconds": seconds_before + time.perf_counter() - start,
        }
        _report(record, history, log, run.on_epoch, bar)
        stop = epoch - history.best_epoch >= config.patience or _over_budget(record, config, run.info, run.device)
        finished = stop or epoch == config.epochs
        if run.checkpoint_dir is not None and run.info.is_main and (finished or epoch % config.checkpoint_every == 0):
            history.seconds = record["seconds"]
            progress_record = _progress(history, step, run.fingerprint, finished)
            save_training_state(run.checkpoint_dir, model, run.optimizer, run.order_gen, progress_record, best_state)
        if stop:
            break
    return best_state


def _open_log(log_path: str | Path | None, history: History, info: ProcessInfo) -> Any:
    """The per-epoch log opened for appending (on the main process), first rewritten to hold exactly the
    epochs of ``history`` (a resumed run drops lines past its checkpoint); None without a log."""
    if not (log_path and info.is_main):
        return None
    lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in history.log)
    atomic_write(log_path, lambda tmp: Path(tmp).write_text(lines))
    return open(log_path, "a")


def _progress_bar(config: TrainConfig, history: History, info: ProcessInfo, progress: bool | None) -> Any:
    """A tqdm bar over the epochs, shown on the main process (``progress=None``: on a terminal only)."""
    return tqdm(
        total=config.epochs,
        initial=history.epochs,
        desc="training",
        unit="epoch",
        disable=not info.is_main or (None if progress is None else not progress),
    )


def _starting_point(
    model: MADE,
    optimizer: torch.optim.Optimizer,
    order_gen: torch.Generator,
    config: TrainConfig,
    rows: int,
    info: ProcessInfo,
    run_fingerprint: dict,
    checkpoint_dir: str | Path | None,
    resume: bool,
) -> tuple[History, int, bool, dict | None]:
    """History, step, whether training had finished, and the best weights: from the checkpoint when
    resuming one (model, optimizer and order generator restored in place), else a fresh start."""
    if checkpoint_dir is not None and resume and has_training_state(checkpoint_dir):
        saved, best_state = load_training_state(checkpoint_dir, model, optimizer, order_gen, run_fingerprint)
        _check_resumed(saved, config, rows, Path(checkpoint_dir))
        return _history(saved), saved["step"], saved.get("finished", False), best_state
    if checkpoint_dir is not None and info.is_main:
        clear_training_state(checkpoint_dir)
    return History(), 0, False, None


def _train_epoch(
    model: MADE,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    order_gen: torch.Generator,
    train: Tensor,
    train_context: Tensor | None,
    config: TrainConfig,
    epoch: int,
    step: int,
    info: ProcessInfo,
    device: torch.device,
    deadline: float | None = None,
) -> tuple[float, int, int]:
    """One pass over the shuffled training rows, a mask per minibatch: the summed NLL over all processes,
    the rows seen and the step after it. The pass ends early after the minibatch that passes ``deadline``
    (a ``time.perf_counter()`` value)."""
    model.train()
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(epoch, config)
    total, seen = 0.0, 0
    for idx in torch.randperm(train.shape[0], generator=order_gen).split(config.batch_size):
        model.mask_for_step(step)
        rows = shard(idx, info).to(device)
        x = train[rows]
        nll_sum = net(x, None if train_context is None else train_context[rows])
        optimizer.zero_grad(set_to_none=True)
        (nll_sum * (info.world_size / len(idx))).backward()  # DDP averages: the minibatch mean
        optimizer.step()
        total += float(nll_sum.detach())
        seen += x.shape[0]
        step += 1
        if deadline is not None and time.perf_counter() > deadline:
            break
    total, seen_everywhere = all_sum([total, seen], info, device)
    if not math.isfinite(total):
        raise FloatingPointError(f"training loss became {total} at epoch {epoch}; try a smaller --lr")
    return total, int(seen_everywhere), step


def _report(record: dict, history: History, log: Any, on_epoch: Callable[[dict], None] | None, bar: Any) -> None:
    """An epoch's record into the history, the log file, the caller's callback and the progress bar."""
    history.log.append(record)
    if log:
        log.write(json.dumps(record, sort_keys=True) + "\n")
        log.flush()
    if on_epoch:
        on_epoch(record)
    bar.set_postfix(valid_nll=f"{record['valid_nll']:.3f}", best=f"{history.best_valid_nll:.3f}")
    bar.update()


def _over_budget(record: dict, config: TrainConfig, info: ProcessInfo, device: torch.device) -> bool:
    """Whether training has used up ``max_seconds`` (over all sessions of a resumed run); every
    process takes the same decision, so none waits for a minibatch the others never start."""
    if config.max_seconds is None:
        return False
    over = float(record["seconds"] > config.max_seconds)
    return all_sum([over], info, device)[0] > 0


def _validation_nll(
    model: MADE,
    valid: Tensor,
    config: TrainConfig,
    masks: int | None,
    info: ProcessInfo,
    device: torch.device,
    context: Tensor | None = None,
) -> float:
    """Mean validation NLL; each process scores its shard and the sums are added up."""
    part = shard(valid, info)
    own_context = None if context is None else shard(context, info)
    nll_sum = (
        float(per_example_nll(model, part, config.eval_batch_size, masks, own_context).sum()) if len(part) else 0.0
    )
    total, count = all_sum([nll_sum, float(len(part))], info, device)
    return total / count


def _check_resumed(saved: dict, config: TrainConfig, rows: int, directory: Path) -> None:
    """A checkpoint's progress must fit the run's settings: no more epochs than it allows and
    exactly the minibatch steps those epochs take, so a resumed run trains what was left (a finished
    run's last epoch may have been cut short by the time budget)."""
    per_epoch = math.ceil(rows / config.batch_size)
    low = (saved["epoch"] - 1) * per_epoch + 1 if saved.get("finished", False) else saved["epoch"] * per_epoch
    if saved["epoch"] > config.epochs or not low <= saved["step"] <= saved["epoch"] * per_epoch:
        raise CheckpointError(
            f"{directory / STATE_FILE}: progress of epoch {saved['epoch']}, step {saved['step']} "
            f"does not fit a run of {config.epochs} epochs of {per_epoch} steps; cannot resume"
        )


def _progress(history: History, step: int, fingerprint_record: dict, finished: bool) -> dict:
    """The JSON part of a training checkpoint."""
    return {
        "epoch": history.epochs,
        "step": step,
        "best_valid_nll": history.best_valid_nll if math.isfinite(history.best_valid_nll) else None,
        "best_epoch": history.best_epoch,
        "seconds": history.seconds,
        "log": history.log,
        "fingerprint": fingerprint_record,
        "finished": finished,
    }


def _history(progress: dict) -> History:
    best = progress["best_valid_nll"]
    return History(
        best_valid_nll=math.inf if best is None else best,
        best_epoch=progress["best_epoch"],
        epochs=progress["epoch"],
        seconds=progress["seconds"],
        log=list(progress["log"]),
    )
