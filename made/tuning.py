"""The end of ``made tune``, as a library: the best trial, or a mixture of the best trials, becomes the
tune's run folder (the search itself: :mod:`made.tune`; the folder's layout: :mod:`made.io.run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .data.columns import encode_splits, in_original_units
from .inference.evaluate import evaluate_nll, summarize_nll
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
    candidates = Mixture([m.to(dtype) for m, _ in loaded], ensembles=[c["eval"]["ensemble"] for _, c in loaded])
    # every member scores valid once: EM, the choice of members and the mixture's figure all read these
    parts = candidates.member_log_probs(to_tensor(splits.valid), batch, None, context["valid"])
    kept = [i for i, w in enumerate(em_weights(parts).tolist()) if w >= MIN_WEIGHT]
    if len(kept) < 2:
        return None
    model = Mixture([candidates.members[i] for i in kept], ensembles=[candidates.ensembles[i] for i in kept])
    model.weights.copy_(em_weights(parts[kept]).to(model.weights))
    valid = in_original_units(summarize_nll(-model.mixed_log_prob(parts[kept]), model.num_inputs), schema)
    if not valid.nll < beat:
        return None
    test = in_original_units(evaluate_nll(model, to_tensor(splits.test), batch, None, context["test"]), schema)
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
