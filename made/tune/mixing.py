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
from ..io.run import Claim, built_beside, copy_run, load_run, read_metrics, save_mixture, write_metrics
from ..model.made import MADE
from ..model.mixture import Mixture, check_member_log_probs, em_weights
from ..pipeline import all_binary, context_tensor, load_splits, nll_units, run_schema, to_tensor

__all__ = ["MIN_WEIGHT", "MixedRuns", "run_difference", "mix_runs", "keep_result"]


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


# The options behind the fields of a run's data section and of its schema's columns, for messages.
DATA_FLAGS = {"dataset": "--dataset", "path": "--data", "data_dir": "--data-dir", "split_seed": "--split-seed"}
DATA_FLAGS |= {"header": "--header"}
COLUMN_FLAGS = {"type": "--schema", "components": "--components", "categories": "--schema or --max-categories"}


def run_difference(first: dict, other: dict) -> str | None:
    """What differs between two runs' configs in what a mixture needs alike (their data, its columns as
    modelled, the context), named by the option behind it (``--components (3 and 1) in column 2``);
    None when nothing does."""
    data, data_other = first.get("data") or {}, other.get("data") or {}
    for key in sorted(set(data) | set(data_other)):
        if data.get(key) != data_other.get(key):
            return (
                f"the data they were trained on: {DATA_FLAGS.get(key, key)} ({data_other.get(key)} and {data.get(key)})"
            )
    columns, columns_other = first.get("schema") or [], other.get("schema") or []
    if len(columns) != len(columns_other):
        return f"their number of columns ({len(columns_other)} and {len(columns)})"
    for i, (column, column_other) in enumerate(zip(columns, columns_other)):
        for key in sorted(set(column) | set(column_other)):
            if column.get(key) != column_other.get(key):
                what = COLUMN_FLAGS.get(key, f"the {key} fitted")
                return f"{what} ({column_other.get(key)} and {column.get(key)}) in column {i + 1}"
    if first.get("context") != other.get("context"):
        return f"--context ({other.get('context')} and {first.get('context')})"
    return None


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
        difference = run_difference(loaded[0][1], config)
        if difference:
            raise ValueError(
                f"{folder} and {folders[0]} differ in {difference}; a mixture's members model the same data, "
                "with the same columns"
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
    valid_row, split = raw.where("valid"), "" if raw.lines is None else " (a validation row)"

    def where(row: int) -> str:
        return f"{raw.source or raw.name}: {valid_row(row)}{split}"

    check_member_log_probs(parts, where)  # a row no member scores: no weights (equal or fitted) can mix it
    kept, weights = list(range(len(folders))), None  # None: equal weights
    if fit_weights:
        kept = [i for i, w in enumerate(em_weights(parts, where=where).tolist()) if w >= MIN_WEIGHT]
        if len(kept) < 2:
            return None
        weights = em_weights(parts[kept], where=where)
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


def keep_result(claim: Claim, chosen: str | Path | MixedRuns, summary: dict) -> dict:
    """Make ``claim.out`` (claimed by :func:`made.io.run.claim_folder`) the run folder of ``chosen``: a finished
    single model's run folder (copied) or a mixture. The result is built beside it and swapped in, the run
    it replaces moved aside first (:func:`made.io.run.built_beside`); its metrics carry ``summary`` (under
    the key it has) and are returned."""
    with built_beside(claim) as work:
        if isinstance(chosen, MixedRuns):
            save_mixture(work, chosen.model, chosen.extra)
            metrics = chosen.metrics
        else:
            copy_run(chosen, work)
            metrics = read_metrics(chosen)
        metrics = {**metrics, **summary}
        write_metrics(work, metrics)
    return metrics
