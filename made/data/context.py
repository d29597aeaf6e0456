r"""Side information for a conditional MADE, p(x | c): where the context comes from.

A context spec is a JSON-able dict stored in the run's config, so ``eval`` and
``sample`` rebuild the same inputs: ``{"kind": "labels", "classes": K}`` feeds the
data set's class labels as one-hot vectors of width K (the digits' 0-9, for a
class-conditional model).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .splits import DataError, Splits

__all__ = ["CONTEXT_KINDS", "CONTEXT_SPEC", "make_context_spec", "context_size", "split_context", "context_from_value"]

CONTEXT_KINDS = ("labels",)
CONTEXT_SPEC = {"kind": Literal["labels"], "classes": int}  # the JSON fields of a spec, checked on loading


def make_context_spec(kind: str | None, splits: Splits) -> dict | None:
    """The spec of context ``kind`` for these splits (``None`` for no context)."""
    if kind is None:
        return None
    if kind != "labels":
        raise ValueError(f"unknown context {kind!r}; known: {', '.join(CONTEXT_KINDS)}")
    if splits.labels is None:
        raise DataError(f"{splits.name} has no class labels to condition on (digits has)")
    return {"kind": "labels", "classes": int(max(int(part.max()) for part in splits.labels)) + 1}


def context_size(spec: dict | None) -> int:
    """Width of the context vector the model takes."""
    return 0 if spec is None else int(spec["classes"])


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((len(labels), classes), dtype=np.float32)
    out[np.arange(len(labels)), labels.astype(int)] = 1.0
    return out


def split_context(spec: dict | None, splits: Splits, split: str) -> np.ndarray | None:
    """The context rows of one split (``None`` without context)."""
    if spec is None:
        return None
    if splits.labels is None:
        raise DataError(f"this run is conditioned on labels, but {splits.name} has none")
    labels = splits.labels[("train", "valid", "test").index(split)]
    if labels.min() < 0 or labels.max() >= spec["classes"]:
        raise DataError(f"{splits.name} {split} labels must lie in 0..{spec['classes'] - 1}")
    return _one_hot(labels, spec["classes"])


def context_from_value(spec: dict | None, value: str | None, count: int) -> np.ndarray | None:
    """``count`` context rows from a command-line value (``--context 3``: the label 3)."""
    if spec is None:
        if value is not None:
            raise ValueError("this run has no context input; drop --context")
        return None
    if value is None:
        raise ValueError(f"this run is conditioned on a class label: pass --context LABEL (0..{spec['classes'] - 1})")
    try:
        label = int(value)
    except ValueError:
        raise ValueError(f"--context must be a class label, got {value!r}") from None
    if not 0 <= label < spec["classes"]:
        raise ValueError(f"--context must be a label in 0..{spec['classes'] - 1}, got {label}")
    return _one_hot(np.full(count, label), spec["classes"])
