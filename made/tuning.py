"""The end of ``made tune``, as a library: the best trial, or a mixture of the best trials, becomes the
tune's run folder (the search itself: :mod:`made.tune`; the folder's layout: :mod:`made.io.run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .data.columns import encode_splits, in_original_units
from .inference.evaluate import NLLResult, evaluate_nll
from .io.run import clear_result, copy_run, load_run, read_metrics, save_mixture, write_metrics
from .pipeline import all_binary, context_tensor, load_splits, nll_units, run_schema, to_tensor
from .training.mixture import Mixture

__all__ = ["tuned_mixture", "keep_result"]


def tuned_mixture(trials: list[Any], device: torch.device, beat: float) -> tuple[Mixture, dict, dict] | None:
    """The mixture of the trials' models (Optuna trials whose ``folder`` attribute is their run folder) with
    weights fitted on validation, its metrics and config sections; None when its validation NLL is not
    below ``beat`` (then test is never scored)."""
    loaded = [load_run(t.user_attrs["folder"], device) for t in trials]
    config = loaded[0][1]
    dtype = getattr(torch, config["eval"]["dtype"])
    model = Mixture([m.to(dtype) for m, _ in loaded], ensembles=[c["eval"]["ensemble"] for _, c in loaded])
    schema = run_schema(config, model.members[0])
    raw = load_splits(config["data"], binary=all_binary(schema))
    splits = encode_splits(schema, raw)
    batch = config["eval"]["batch_size"]
    context = {s: context_tensor(config.get("context"), raw, s) for s in ("valid", "test")}
    model.fit_weights(to_tensor(splits.valid), context["valid"], batch_size=batch)

    def score(split: str) -> NLLResult:
        return in_original_units(evaluate_nll(model, to_tensor(splits.split(split)), batch, None, context[split]), schema)

    valid = score("valid")
    if not valid.nll < beat:
        return None
    test = score("test")
    metrics = {"test_nll": test.nll, "test_nll_stderr": test.stderr, "test_bits_per_dim": test.bits_per_dim,
               "valid_nll": valid.nll, "valid_nll_stderr": valid.stderr, "ensemble": None, "dataset": splits.name,
               **nll_units(schema)}
    extra = {k: config.get(k) for k in ("data", "schema", "context", "image_shape")}
    extra["eval"] = {**config["eval"], "ensemble": None}  # each member averages its own masks
    return model, metrics, extra


def keep_result(out: str | Path, best_folder: str | Path, mixture: tuple[Mixture, dict, dict] | None,
                summary: dict) -> dict:
    """Make ``out`` the run folder of the best trial's ``best_folder``, or of ``mixture`` (as
    :func:`tuned_mixture` gives it), replacing an earlier result; its metrics carry the tune's ``summary``
    and are returned."""
    clear_result(out)
    if mixture is None:
        copy_run(best_folder, out)
        metrics = read_metrics(best_folder)
    else:
        model, metrics, extra = mixture
        save_mixture(out, model, extra)
    metrics = {**metrics, "tune": summary}
    write_metrics(out, metrics)
    return metrics
