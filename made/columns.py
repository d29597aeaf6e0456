r"""Column schemas: how the columns of a data file become the dimensions of a MADE.

A schema is a JSON-able list with one dict per model dimension:

* ``{"type": "binary"}``: one 0/1 column (a Bernoulli conditional).
* ``{"type": "categorical", "values": [v0, v1, ...]}``: one column of numbers;
  category k is the value ``v_k``.
* ``{"type": "real", "mean": m, "std": s, "components": C}``: one column of real
  numbers, modelled standardized, ``(x - m) / s``, with the training split's mean
  and std, by a Gaussian (C = 1) or a mixture of C Gaussians.
* ``{"type": "onehot", "width": w, "codes": [[...], ...]}``: w 0/1 columns that
  hold one categorical value; category k is the bit pattern ``codes[k]``.

Users may write the short forms (``{"type": "real"}``, ``{"type": "categorical"}``
or ``{"type": "categorical", "categories": K}`` for the values 0..K-1,
``{"type": "onehot", "width": 3}``); :func:`fit_schema` fills in values, statistics
and codes from the training split. A one-hot group's categories are its w one-hot
patterns (always valid, even if unseen in training) followed by every other pattern
seen in training (DNA's all-zero pattern, for instance). Categories and codes are in
one-to-one correspondence with the original values, so a categorical log-likelihood
equals the log-likelihood of the original columns: NLLs stay comparable in nats per
example. Real columns are the exception: their density is computed on the
standardized scale, and :func:`in_original_units` adds ``sum(log std)`` to report
the NLL in the data's own units.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .data import DataError, Splits, format_value
from .evaluate import NLLResult
from .families import DEFAULT_MIN_SCALE, Family
from .schema import SchemaError, check_fields

__all__ = [
    "infer_schema",
    "onehot_widths",
    "read_schema",
    "resolve_schema",
    "fit_schema",
    "encode",
    "encode_observed",
    "decode",
    "encode_splits",
    "model_columns",
    "family_config",
    "check_fitted_schema",
    "log_scales",
    "in_original_units",
    "dimension_names",
    "num_columns",
]

DEFAULT_MAX_CATEGORIES = 20  # integer columns with at most this many values are categorical
SHOWN_VALUES = 8  # known values listed in an error before the rest are counted
_KEYS = {
    "binary": {"type"},
    "categorical": {"type", "values", "categories"},
    "real": {"type", "mean", "std", "components"},
    "onehot": {"type", "width", "codes"},
}


# ---------------------------------------------------------------- inference
def onehot_widths(bits: np.ndarray) -> list[int]:
    """Split 0/1 columns into contiguous groups in which no row has two ones.

    Greedy, left to right: a column joins the current group unless some training
    row already has a one in that group. This recovers one-hot codes (exactly one
    one, as in Mushrooms) and at-most-one codes (DNA's three bits per base, whose
    fourth value is all zeros), because the next attribute's columns always meet a
    one of the current attribute in some row.
    """
    widths: list[int] = []
    used = np.zeros(bits.shape[0], dtype=bool)
    for column in bits.T.astype(bool):
        if widths and not (used & column).any():
            widths[-1] += 1
            used |= column
        else:
            widths.append(1)
            used = column.copy()
    return widths


def infer_schema(train: np.ndarray, max_categories: int = DEFAULT_MAX_CATEGORIES, onehot: bool = False) -> list[dict]:
    """Short-form schema of ``train``, one rule per column:

    values in {0, 1} -> binary; integers with at most ``max_categories`` distinct
    values -> categorical; anything else -> real. With ``onehot=True``, runs of
    binary columns are cut by :func:`onehot_widths` and every group of two or more
    columns becomes one categorical dimension.
    """
    kinds = []
    for column in train.T:
        values = np.unique(column)
        if np.isin(values, (0.0, 1.0)).all():
            kinds.append("binary")
        elif (values == np.round(values)).all() and len(values) <= max_categories:
            kinds.append("categorical")
        else:
            kinds.append("real")
    schema: list[dict] = []
    start = 0
    while start < len(kinds):
        if kinds[start] != "binary" or not onehot:
            schema.append({"type": kinds[start]})
            start += 1
            continue
        stop = start
        while stop < len(kinds) and kinds[stop] == "binary":
            stop += 1
        for width in onehot_widths(train[:, start:stop]):
            schema.append({"type": "onehot", "width": width} if width > 1 else {"type": "binary"})
        start = stop
    return schema


def read_schema(path: str | Path) -> list[dict]:
    """A schema from a JSON file: a list of column dicts, or ``{"columns": [...]}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such schema file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    columns = data.get("columns") if isinstance(data, dict) else data
    if not isinstance(columns, list) or not columns:
        raise DataError(f"{path}: expected a non-empty list of column dicts (or {{\"columns\": [...]}})")
    return columns


def resolve_schema(
    choice: str, train: np.ndarray, max_categories: int = DEFAULT_MAX_CATEGORIES, components: int = 1
) -> list[dict]:
    """The fitted schema for a command-line choice: ``binary``, ``auto``, ``onehot`` or a JSON file."""
    if choice == "binary":
        schema: list[dict] = [{"type": "binary"}] * train.shape[1]
    elif choice in ("auto", "onehot"):
        schema = infer_schema(train, max_categories, onehot=choice == "onehot")
    else:
        schema = read_schema(choice)  # its own errors name the file
        try:
            return fit_schema(schema, train, components)
        except DataError as err:
            raise DataError(f"{Path(choice)}: {err}") from None
    return fit_schema(schema, train, components)


# ------------------------------------------------------------------ fitting
def _width(column: dict) -> int:
    return int(column.get("width", 1)) if column["type"] == "onehot" else 1


def num_columns(schema: Sequence[dict]) -> int:
    """Number of data-file columns the schema reads."""
    return sum(_width(c) for c in schema)


def _check_column(column: object, index: int) -> dict:
    if not isinstance(column, dict) or column.get("type") not in _KEYS:
        raise DataError(f"schema[{index}]: expected an object with type {', '.join(_KEYS)}, got {column!r:.80}")
    unknown = set(column) - _KEYS[column["type"]]
    if unknown:
        raise DataError(f"schema[{index}]: unknown keys {sorted(unknown)} for type {column['type']}")
    if column["type"] == "onehot" and not _is_count(column.get("width")):
        raise DataError(f"schema[{index}]: a onehot column needs a positive integer width")
    if "categories" in column and not _is_count(column["categories"]):
        raise DataError(f"schema[{index}]: categories must be a positive integer (a count), "
                        f"got {column['categories']!r:.40}")
    return dict(column)


def _is_count(value: object) -> bool:
    """A positive integer as JSON writes one (not ``true``, ``"3"`` or ``3.5``)."""
    return type(value) is int and value >= 1
    return dict(column)


def _fit_column(column: dict, block: np.ndarray, index: int, start: int, components: int) -> dict:
    kind = column["type"]
    if kind == "binary":
        return column
    if kind == "categorical":
        if "values" not in column:
            k = column.pop("categories", None)
            values = np.arange(k) if k is not None else np.unique(block[:, 0])
            column["values"] = [float(v) for v in values]
        column.pop("categories", None)
        if len(set(column["values"])) != len(column["values"]) or not column["values"]:
            raise DataError(f"schema[{index}]: categorical values must be distinct and non-empty")
        return column
    if kind == "real":
        column.setdefault("components", components)
        values = block[:, 0].astype(np.float64)  # the statistics at full precision, whatever the file's dtype
        column.setdefault("mean", float(values.mean()))
        if "std" not in column:
            column["std"] = float(values.std())
            if not column["std"] > 0:
                raise DataError(
                    f"data column {start + 1} is constant ({format_value(block[0, 0])}) in the training split and cannot be "
                    "standardized; declare it categorical in a schema file"
                )
        return column
    if "codes" not in column:
        width = column["width"]
        onehots = [tuple(int(i == j) for j in range(width)) for i in range(width)]
        seen = sorted(set(map(tuple, block.astype(int).tolist())) - set(onehots))
        column["codes"] = [list(c) for c in onehots + seen]
    return column


def fit_schema(schema: Sequence[dict], train: np.ndarray, components: int = 1) -> list[dict]:
    """The schema with every value list, statistic and code list filled in from ``train``;
    real columns that do not say get ``components`` Gaussians."""
    columns = [_check_column(c, i) for i, c in enumerate(schema)]
    if num_columns(columns) != train.shape[1]:
        raise DataError(f"the schema describes {num_columns(columns)} data columns, the data has {train.shape[1]}")
    fitted, start = [], 0
    for index, column in enumerate(columns):
        width = _width(column)
        fitted.append(_fit_column(column, train[:, start : start + width], index, start, components))
        start += width
    try:
        _check_fitted_columns(fitted, "schema")  # what a user wrote: values, statistics, codes
    except SchemaError as err:
        raise DataError(str(err)) from None
    return fitted


# ----------------------------------------------------------------- encoding
Where = Callable[[int], str]  # row index -> where the row is in the file ("line 7")


def _row_number(row: int) -> str:
    return f"row {row + 1}"


def _lookup(table: np.ndarray, keys: np.ndarray, what: str, source: str, start: int, where: Where) -> np.ndarray:
    """Row index of each key in ``table`` (``[K, w]``, keys ``[N, w]``), or a DataError."""
    match = (keys[:, None, :] == table[None, :, :]).all(-1)
    found = match.any(1)
    if not found.all():
        row = int(np.argmin(found))
        known = ", ".join(_show(entry) for entry in table[:SHOWN_VALUES])
        more = f", ... ({len(table)} in all)" if len(table) > SHOWN_VALUES else ""
        raise DataError(
            f"{source}: {where(row)}, column {start + 1}: {what} {_show(keys[row])} was not seen in the "
            f"training split (known: {known}{more})"
        )
    return match.argmax(1)


def _show(entry: np.ndarray) -> str:
    """A value (``7``) or a code (``[1, 0, 0]``) as written in the data."""
    text = ", ".join(format_value(v) for v in entry)
    return text if len(entry) == 1 else f"[{text}]"


def encode(schema: Sequence[dict], data: np.ndarray, source: str = "data", where: Where = _row_number,
           dtype: np.dtype | type = np.float64) -> np.ndarray:
    """Data-file rows ``[N, columns]`` -> model inputs ``[N, D]`` in ``dtype``.

    Values are compared and standardized at float64 (or the data's own integer
    precision) and only the result is rounded to ``dtype``; ``where`` names a row
    in errors as the file shows it.
    """
    if data.shape[1] != num_columns(schema):
        raise DataError(f"{source}: has {data.shape[1]} columns, the schema describes {num_columns(schema)}")
    out = np.empty((data.shape[0], len(schema)), dtype=dtype)
    start = 0
    for d, column in enumerate(schema):
        width = _width(column)
        block = data[:, start : start + width]
        if column["type"] == "binary":
            bad = (block[:, 0] != 0) & (block[:, 0] != 1)
            if bad.any():
                row = int(np.argmax(bad))
                raise DataError(f"{source}: {where(row)}, column {start + 1}: {format_value(block[row, 0])} "
                                "is not binary")
            out[:, d] = block[:, 0]
        elif column["type"] == "real":
            out[:, d] = (block[:, 0].astype(np.float64) - column["mean"]) / column["std"]
        elif column["type"] == "categorical":
            table = np.asarray(column["values"], dtype=np.float64)[:, None]
            out[:, d] = _lookup(table, block.astype(np.float64), "value", source, start, where)
        else:
            out[:, d] = _lookup(np.asarray(column["codes"]), block, "code", source, start, where)
        start += width
    return out


def _placeholder(column: dict) -> list[float]:
    """Data-file values that ``column`` accepts, standing in for missing ones so the row encodes."""
    if column["type"] == "real":
        return [column["mean"]]
    if column["type"] == "categorical":
        return [column["values"][0]]
    if column["type"] == "onehot":
        return list(column["codes"][0])
    return [0.0]


def encode_observed(schema: Sequence[dict], data: np.ndarray, hidden: np.ndarray, source: str = "data",
                    where: Where = _row_number) -> tuple[np.ndarray, np.ndarray]:
    """Rows with hidden cells -> model inputs ``[N, D]`` (float64) and which dimensions are observed.

    ``hidden`` (bool, the data's shape) marks the cells to impute; NaN cells must be
    among them and are encoded as a stand-in value. A one-hot group is observed when
    all its columns are and hidden when all are; a group hidden in part is refused.
    """
    observed = np.empty((data.shape[0], len(schema)), dtype=bool)
    filled = data.astype(np.float64)
    start = 0
    for d, column in enumerate(schema):
        width = _width(column)
        block = hidden[:, start : start + width]
        partial = block.any(1) & ~block.all(1)
        if partial.any():
            row = int(np.argmax(partial))
            raise DataError(f"{source}: {where(row)}, columns {start + 1}-{start + width}: a one-hot group is "
                            "missing in part; give all its columns or none")
        observed[:, d] = ~block[:, 0]
        gap = np.isnan(filled[:, start : start + width]).any(1)
        filled[gap, start : start + width] = _placeholder(column)
        start += width
    return encode(schema, filled, source, where), observed


def decode(schema: Sequence[dict], values: np.ndarray) -> np.ndarray:
    """Model values ``[N, D]`` (samples, say) -> data-file rows ``[N, columns]`` (float64)."""
    out = np.empty((values.shape[0], num_columns(schema)))
    start = 0
    for d, column in enumerate(schema):
        width = _width(column)
        v = values[:, d].astype(np.float64)  # real columns un-standardized at full precision
        if column["type"] == "binary":
            out[:, start] = v
        elif column["type"] == "real":
            out[:, start] = v * column["std"] + column["mean"]
        elif column["type"] == "categorical":
            out[:, start] = np.asarray(column["values"])[v.astype(int)]
        else:
            out[:, start : start + width] = np.asarray(column["codes"])[v.astype(int)]
        start += width
    return out


def encode_splits(schema: Sequence[dict], splits: Splits, dtype: np.dtype | type = np.float32) -> Splits:
    """The three splits in model space, in the model's ``dtype`` (same name, image shape and labels).
    Errors name the file's line of a row where the splits know it."""
    source = splits.source or splits.name
    parts = {s: encode(schema, splits.split(s), source, splits.where(s), dtype) for s in ("train", "valid", "test")}
    return dataclasses.replace(splits, **parts)


# ------------------------------------------------------------------ meaning
def model_columns(schema: Sequence[dict]) -> list[dict]:
    """The model's view of each dimension, as :class:`~made.families.Mixed` takes it:
    binary, categorical with its number of categories, or real with its components."""
    columns = []
    for column in schema:
        if column["type"] == "binary":
            columns.append({"type": "binary"})
        elif column["type"] == "real":
            columns.append({"type": "real", "components": column["components"]})
        else:
            k = len(column["values"] if column["type"] == "categorical" else column["codes"])
            columns.append({"type": "categorical", "categories": k})
    return columns


def family_config(schema: Sequence[dict], min_scale: float = DEFAULT_MIN_SCALE) -> str | dict:
    """The MADE family for a fitted schema: one family when every column has the same kind, else ``mixed``."""
    columns = model_columns(schema)
    kinds = {(c["type"], c.get("components")) for c in columns}
    if len(kinds) > 1:
        return {"name": "mixed", "columns": columns, "min_scale": min_scale}
    kind, count = kinds.pop()
    if kind == "binary":
        return "bernoulli"
    if kind == "categorical":
        return {"name": "categorical", "categories": [c["categories"] for c in columns]}
    if count == 1:
        return {"name": "gaussian", "min_scale": min_scale}
    return {"name": "mog", "components": count, "min_scale": min_scale}


_FITTED_HINTS = {
    "binary": {"type": str},
    "categorical": {"type": str, "values": list[float]},
    "real": {"type": str, "mean": float, "std": float, "components": int},
    "onehot": {"type": str, "width": int, "codes": list[list[int]]},
}


def _fitted_ok(column: dict) -> bool:
    """Whether a fitted column's values make sense (its types already checked)."""
    kind = column["type"]
    if kind == "categorical":
        return bool(column["values"]) and len(set(column["values"])) == len(column["values"])
    if kind == "real":
        return column["std"] > 0 and math.isfinite(column["std"]) and math.isfinite(column["mean"]) and (
            column["components"] >= 1
        )
    if kind == "onehot":
        codes = column["codes"]
        return (
            bool(codes)
            and all(len(c) == column["width"] and set(c) <= {0, 1} for c in codes)
            and len(set(map(tuple, codes))) == len(codes)
        )
    return True


def _check_fitted_columns(schema: object, where: str) -> None:
    """Every fitted column's fields, with their types and values (raises :class:`SchemaError`)."""
    if not isinstance(schema, list):
        raise SchemaError(f"{where} must be a list of column objects")
    for i, column in enumerate(schema):
        kind = column.get("type") if isinstance(column, dict) else None
        if kind not in _FITTED_HINTS:
            raise SchemaError(f"{where}[{i}] must be an object with type {', '.join(_FITTED_HINTS)}")
        check_fields(column, _FITTED_HINTS[kind], f"{where}[{i}]")
        if not _fitted_ok(column):
            raise SchemaError(f"{where}[{i}] has values outside their allowed range: {column!r:.80}")


def check_fitted_schema(schema: object, model_family: Family, where: str) -> None:
    """Check a fitted schema read from a run's config: every field's type and value, and
    that it describes the dimensions of the run's model (raises :class:`SchemaError`)."""
    _check_fitted_columns(schema, where)
    if model_columns(schema) != model_family.columns:
        raise SchemaError(f"{where} does not describe the dimensions of the run's model")


def log_scales(schema: Sequence[dict]) -> np.ndarray:
    """``log std`` of each real dimension, 0 elsewhere: what turns a standardized density into one in data units."""
    return np.array([math.log(c["std"]) if c["type"] == "real" else 0.0 for c in schema])


def in_original_units(result: NLLResult, schema: Sequence[dict]) -> NLLResult:
    """An NLL computed on standardized data, moved to the data's own units.

    ``-log p(x) = -log p(z) + sum_d log std_d`` for ``z = (x - mean) / std``; the
    standard error does not change. Bits per dimension count the data file's columns.
    """
    nll = result.nll + float(log_scales(schema).sum())
    return dataclasses.replace(result, nll=nll, bits_per_dim=nll / (num_columns(schema) * math.log(2)))


def dimension_names(schema: Sequence[dict]) -> list[str]:
    """A name per model dimension: its data-file column (1-based), or ``a-b`` for a one-hot group."""
    names, start = [], 1
    for column in schema:
        width = _width(column)
        names.append(str(start) if width == 1 else f"{start}-{start + width - 1}")
        start += width
    return names
