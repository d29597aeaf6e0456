"""The end of ``made tune``, as a library: the best trial, or a mixture of the best trials, becomes the
tune's run folder (the search itself: :mod:`made.tune`; the folder's layout: :mod:`made.io.run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .data.columns import encode_splits, in_original_units
from .inference.evaluate import NLLResult, evaluate_nll, per_example_nll
from .io.run import clear_result, copy_run, load_run, read_metrics, save_mixture, write_metrics
from .pipeline import all_binary, context_tensor, load_splits, nll_units, run_schema, to_tensor
from .training.mixture import Mixture, em_weights

__all__ = ["MIN_WEIGHT", "tuned_mixture", "keep_result"]


# Members whose fitted weight is below this are dropped and the others refitted: they would cost
# time at every evaluation and draw for a negligible share of the likelihood.
MIN_WEIGHT = 0.01


def tuned_mixture(trials: list[Any], device: torch.device, beat: float) -> tuple[Mixture, dict, dict, list] | None:
    """The mixture of the trials' models (Optuna trials whose ``folder`` attribute is their run folder) with
    weights fitted on validation by EM, less members below :data:`MIN_WEIGHT`: the mixture, its metrics,
    config sections and the trials kept; None when fewer than two are kept or its validation NLL is not
    below ``beat`` (then test is never scored)."""
    loaded = [load_run(t.user_attrs["folder"], device) for t in trials]
    config = loaded[0][1]
    dtype = getattr(torch, config["eval"]["dtype"])
    schema = run_schema(config, loaded[0][0])
    raw = load_splits(config["data"], binary=all_binary(schema))
    splits = encode_splits(schema, raw)
    batch = config["eval"]["batch_size"]
    context = {s: context_tensor(config.get("context"), raw, s) for s in ("valid", "test")}
    valid_data = to_tensor(splits.valid)
    log_probs = torch.stack([-per_example_nll(m.to(dtype), valid_data, batch, c["eval"]["ensemble"], context["valid"])
                             for m, c in loaded])  # each member scored once; EM then runs on these
    weights = em_weights(log_probs)
    kept = [i for i, w in enumerate(weights.tolist()) if w >= MIN_WEIGHT]
    if len(kept) < 2:
        return None
    model = Mixture([loaded[i][0].to(dtype) for i in kept], ensembles=[loaded[i][1]["eval"]["ensemble"] for i in kept])
    model.weights.copy_(em_weights(log_probs[kept]).to(model.weights))

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
    return model, metrics, extra, [trials[i] for i in kept]


def keep_result(out: str | Path, best_folder: str | Path, mixture: tuple[Mixture, dict, dict, list] | None,
                summary: dict) -> dict:
    """Make ``out`` the run folder of the best trial's ``best_folder``, or of ``mixture`` (as
    :func:`tuned_mixture` gives it), replacing an earlier result; its metrics carry the tune's ``summary``
    and are returned."""
    clear_result(out)
    if mixture is None:
        copy_run(best_folder, out)
        metrics = read_metrics(best_folder)
    else:
        model, metrics, extra, _ = mixture
        save_mixture(out, model, extra)
    metrics = {**metrics, "tune": summary}
    write_metrics(out, metrics)
    return metrics
