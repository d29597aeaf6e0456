"""Mixtures of finished runs, and the end of ``made tune`` as a library: the best trial, or a mixture of
the best trials, becomes the tune's run folder (the search itself: :mod:`made.tune`; the folder's layout:
:mod:`made.io.run`). ``made mix`` mixes any runs of the same data with :func:`mix_runs` too."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.columns import encode_splits, in_original_units
from ..inference.evaluate import evaluate_nll, summarize_nll
from ..io.run import clear_result, copy_run, load_run, read_metrics, save_mixture, write_metrics
from ..model.made import MADE
from ..model.mixture import Mixture, em_weights
from ..pipeline import all_binary, context_tensor, load_splits, nll_units, run_schema, to_tensor

__all__ = ["MIN_WEIGHT", "MixedRuns", "mix_runs", "keep_result"]


# Members whose fitted weight is below this are dropped and the others refitted: they would cost
# time at every evaluation and draw for a negligible share of the likelihood.
MIN_WEIGHT = 0.01


@dataclass
class MixedRuns:
    """A mixture of run folders' models: the model, its metrics (valid and test), the config sections of
    its run folder and which of the folders it kept (their indices, in the order given)."""

    model: Mixture
    metrics: dict
    extra: dict
    kept: list[int]


def mix_runs(
    folders: list[str | Path], device: torch.device, fit_weights: bool = True, beat: float = math.inf
) -> MixedRuns | None:
    """The mixture of the finished runs in ``folders`` (single models of the same data), each member
    averaging its own masks as its run does. ``fit_weights``: weights fitted by EM on validation, members
    below :data:`MIN_WEIGHT` dropped and the rest refitted; None when fewer than two are kept. Otherwise
    equal weights. None too when the mixture's validation NLL is not below ``beat`` (then test is never
    scored)."""
    loaded = [load_run(folder, device) for folder in folders]
    members: list[MADE] = []
    for folder, (model, config) in zip(folders, loaded):
        if isinstance(model, Mixture):
            raise ValueError(f"{folder} is a mixture; mix the runs it was made of instead")
        members.append(model)
        differ = [k for k in ("data", "schema", "context") if config.get(k) != loaded[0][1].get(k)]
        if differ:
            raise ValueError(
                f"{folder} was trained on other data than {folders[0]} (their {', '.join(differ)} "
                "sections differ); a mixture's members model the same data"
            )
    config = loaded[0][1]
    dtype = getattr(torch, config["eval"]["dtype"])
    schema = run_schema(config, loaded[0][0])
    raw = load_splits(config["data"], binary=all_binary(schema))
    splits = encode_splits(schema, raw)
    batch = config["eval"]["batch_size"]
    context = {s: context_tensor(config.get("context"), raw, s) for s in ("valid", "test")}
    candidates = Mixture([m.to(dtype) for m in members], ensembles=[c["eval"]["ensemble"] for _, c in loaded])
    # every member scores valid once: EM, the choice of members and the mixture's figure all read these
    parts = candidates.member_log_probs(to_tensor(splits.valid), batch, None, context["valid"])
    kept, weights = list(range(len(folders))), None  # None: equal weights
    if fit_weights:
        kept = [i for i, w in enumerate(em_weights(parts).tolist()) if w >= MIN_WEIGHT]
        if len(kept) < 2:
            return None
        weights = em_weights(parts[kept])
    model = Mixture([candidates.member_models[i] for i in kept], weights, [candidates.ensembles[i] for i in kept])
    valid = in_original_units(summarize_nll(-model.mixed_log_prob(parts[kept]), model.num_inputs), schema)
    if not valid.nll < beat:
        return None
    test = in_original_units(evaluate_nll(model, to_tensor(splits.test), batch, None, context["test"]), schema)
    metrics = {
        "test_nll": test.nll,
        "test_nll_stderr": test.stderr,
        "test_bits_per_dim": test.bits_per_dim,
        "valid_nll": valid.nll,
        "valid_nll_stderr": valid.stderr,
        "ensemble": None,
        "dataset": splits.name,
        **nll_units(schema),
    }
    extra = {k: config.get(k) for k in ("data", "schema", "context", "image_shape")}
    extra["eval"] = {**config["eval"], "ensemble": None}  # each member averages its own masks
    return MixedRuns(model, metrics, extra, kept)


def keep_result(out: str | Path, chosen: str | Path | MixedRuns, summary: dict) -> dict:
    """Make ``out`` the run folder of ``chosen``: a finished single model's run folder (copied) or a
    mixture, replacing an earlier result; its metrics carry ``summary`` (under the key it has) and are
    returned."""
    clear_result(out)
    if isinstance(chosen, MixedRuns):
        save_mixture(out, chosen.model, chosen.extra)
        metrics = chosen.metrics
    else:
        copy_run(chosen, out)
        metrics = read_metrics(chosen)
    metrics = {**metrics, **summary}
    write_metrics(out, metrics)
    return metrics
