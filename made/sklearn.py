r"""MADE as a scikit-learn density estimator: :class:`MADEDensity`.

It takes NumPy arrays and pandas DataFrames of binary, integer, real, string and
pandas categorical columns. String and categorical columns become integer codes
here; from there on the columns go the way ``made train --schema auto`` takes
them (:mod:`made.data.columns`: inferred, fitted, encoded), the network is trained by
:func:`made.training.loop.fit` with early stopping on a validation split carved from ``X``,
and log-likelihoods are reported in the data's own units. pandas is optional: it
is only used when the data comes as a DataFrame.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .data.columns import (
    DEFAULT_MAX_CATEGORIES,
    decode,
    encode,
    family_config,
    fit_schema,
    infer_schema,
    log_scales,
    num_columns,
)
from .data.precision import EXACT_INTEGERS, in_dtype, inexact_cell
from .inference.evaluate import per_example_nll
from .model import MADE
from .model.distribution import as_count
from .training.loop import TrainConfig, validation_masks
from .training.loop import fit as train_model

__all__ = ["MADEDensity"]

SCHEMA_CHOICES = ("auto", "binary", "onehot")


@dataclass(frozen=True)
class _Column:
    """How one input column maps to numbers: its label, its dtype (restored on samples) and,
    for string and categorical columns, the categories coded 0..K-1."""

    name: Hashable
    dtype: Any
    categories: tuple | None


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _is_frame(X: Any) -> bool:
    """Whether ``X`` is a pandas DataFrame (without importing pandas: if it is not loaded, it is not one)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(X, pandas.DataFrame)


def _seed(random_state: int | np.random.RandomState | None) -> int:
    """A torch seed drawn from a scikit-learn ``random_state``."""
    return int(check_random_state(random_state).randint(2**31 - 1))


def _raw_columns(X: Any, checked: np.ndarray) -> list[tuple[Hashable, Any, np.ndarray]]:
    """``(label, dtype, values)`` per column: a DataFrame's own columns (numbers as float64, the rest as
    objects with missing values as None), else the columns of the checked array, labelled 0..n-1."""
    if not _is_frame(X):
        return [(j, checked.dtype, checked[:, j]) for j in range(checked.shape[1])]
    columns = []
    for j, label in enumerate(X.columns):
        series = X.iloc[:, j]
        if series.dtype.kind in "biuf" and not hasattr(series.dtype, "categories"):
            own = np.dtype(getattr(series.dtype, "numpy_dtype", series.dtype))  # a nullable Int64's int64
            _check_exact(label, series.to_numpy(dtype=own, na_value=0))
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = series.to_numpy(dtype=object, na_value=None)
        columns.append((label, series.dtype, values))
    return columns


def _learn_column(name: Hashable, dtype: Any, values: np.ndarray) -> _Column:
    """The coding of a column seen in ``fit``: categories for pandas categoricals and for columns of
    strings (sorted), numbers for the rest. A column of strings and numbers (a stray ``"x"`` among
    numbers) is refused: it is neither, and reading it as categories would make every number one."""
    if hasattr(dtype, "categories"):  # pandas categorical: every declared category, seen or not
        return _Column(name, dtype, tuple(dtype.categories))
    if dtype.kind in "biuf":
        return _Column(name, dtype, None)
    if dtype.kind not in "OUS":
        raise ValueError(f"X column {name!r} has dtype {dtype}; expected numbers, booleans, strings or categories")
    strings = [isinstance(v, (str, bytes)) for v in values]
    if not any(strings):
        return _Column(name, dtype, None)  # numbers stored as objects
    for row, (value, string) in enumerate(zip(values, strings)):
        if _is_missing(value):
            raise ValueError(f"X column {name!r}, row {row + 1}: missing value (NaN or None)")
        if not string:
            first = strings.index(True)
            raise ValueError(
                f"X column {name!r} mixes strings ({values[first]!r:.40} in row {first + 1}) with other values "
                f"({value!r:.40} in row {row + 1}); a column holds numbers or categories: convert it to one kind"
            )
    return _Column(name, dtype, tuple(sorted(set(values), key=lambda v: (type(v).__name__, v))))


def _inexact(name: Hashable, row: int, value: object) -> ValueError:
    return ValueError(
        f"X column {name!r}, row {row + 1}: {value} cannot be represented exactly in float64, the precision made "
        f"computes in (integers beyond 2**53 = {EXACT_INTEGERS} lose digits); drop the column (an id?) or shift "
        "its values"
    )


def _check_exact(name: Hashable, values: np.ndarray) -> None:
    """Refuse a value of a numeric column that float64, the precision made computes in, would change."""
    cell = inexact_cell(values.reshape(-1, 1))
    if cell is not None:
        raise _inexact(name, cell[0], values[cell[0]])


def _numbers(column: _Column, values: np.ndarray) -> np.ndarray:
    """A numeric column's cells as float64 (None as NaN), refusing a cell that is not a real number, as
    a TypeError naming it (a dict, a list, a stray string), and one that float64 would change."""
    if values.dtype != object:
        _check_exact(column.name, values)
        return values.astype(np.float64)
    for row, value in enumerate(values):
        if value is None:
            continue
        if not isinstance(value, numbers.Real) or isinstance(value, (str, bytes)):
            raise TypeError(
                f"X column {column.name!r}, row {row + 1}: a cell of type {type(value).__name__} ({value!r:.40}) "
                "in a column of numbers: the argument must be a string or a real number, and strings go in "
                "columns of strings"
            )
        if isinstance(value, numbers.Integral) and abs(int(value)) > EXACT_INTEGERS:
            try:
                exact = int(float(value)) == int(value)
            except OverflowError:
                exact = False
            if not exact:
                raise _inexact(column.name, row, value)
    return values.astype(np.float64)


def _code_column(column: _Column, values: np.ndarray) -> np.ndarray:
    """A column as float64 numbers: its codes 0..K-1, or its (finite) values."""
    if column.categories is None:
        numeric = _numbers(column, values)
        bad = ~np.isfinite(numeric)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"X column {column.name!r}, row {row + 1}: {numeric[row]} (NaN and infinity are refused)")
        return numeric
    lookup = {category: code for code, category in enumerate(column.categories)}
    codes = np.fromiter((lookup.get(v, -1) for v in values), dtype=np.float64, count=len(values))
    if (codes < 0).any():
        row = int(np.argmax(codes < 0))
        value = values[row]
        what = "missing value (NaN or None)" if _is_missing(value) else f"{value!r} was not seen in fit"
        raise ValueError(f"X column {column.name!r}, row {row + 1}: {what}")
    return codes


def _decoded_column(column: _Column, values: np.ndarray) -> np.ndarray:
    """A column of samples in its own terms: categories back from codes, numbers in the column's dtype and
    range (the draws of an integer column modelled as real are rounded, a uint8 one's clipped to 0..255)."""
    if column.categories is not None:
        return np.asarray(column.categories, dtype=object)[values.astype(np.int64)]
    return in_dtype(values, np.dtype(getattr(column.dtype, "numpy_dtype", column.dtype)))


class MADEDensity(DensityMixin, BaseEstimator):
    """A MADE density estimator with scikit-learn's interface (as ``GaussianMixture``'s).

    ``fit`` learns p(x) of the rows of ``X``; ``score_samples`` gives each row's
    log-likelihood (nats, in the data's own units: real columns are standardized for
    the network and their log-std added back), ``score`` their mean, and ``sample``
    draws new rows. Binary columns are Bernoulli, integer columns with at most
    ``max_categories`` values and all string and categorical columns are
    categorical, the rest real (``components`` Gaussians). A model fitted on a
    DataFrame samples a DataFrame with the same columns, dtypes and categories.

    Arguments:
        hidden_sizes: widths of the hidden layers.
        num_masks: size of the mask pool (``> 1``: connectivity-agnostic training, and
            scores and samples from the mixture over the pool).
        epochs: most training epochs.
        batch_size: minibatch size.
        lr: Adam's learning rate.
        patience: epochs without validation improvement before training stops.
        validation_fraction: share of ``X`` held out (at random) for early stopping.
        schema: ``"auto"``, ``"binary"``, ``"onehot"`` (as ``made train --schema``), or a
            list of column dicts (see :mod:`made.data.columns`) over the columns' numbers or codes.
        max_categories: ``"auto"``: integer columns with at most this many values are categorical.
        components: Gaussians per real column.
        random_state: seed (an int, a ``RandomState`` or None) of the initialization, the
            masks, the validation split and the minibatch order.
        device: torch device to train and evaluate on.
        verbose: show a progress bar while training.

    Example:
        >>> import numpy as np
        >>> X = (np.random.RandomState(0).rand(200, 4) < 0.3).astype(float)
        >>> est = MADEDensity(hidden_sizes=(16,), epochs=3, random_state=0).fit(X)
        >>> est.score_samples(X[:2]).shape, est.sample(5).shape
        ((2,), (5, 4))
    """

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (128,),
        num_masks: int = 1,
        epochs: int = 200,
        batch_size: int = 100,
        lr: float = 1e-3,
        patience: int = 20,
        validation_fraction: float = 0.1,
        schema: str | Sequence[dict] = "auto",
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        components: int = 1,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.num_masks = num_masks
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.schema = schema
        self.max_categories = max_categories
        self.components = components
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # -------------------------------------------------------------- data
    def _codes(self, X: Any, reset: bool) -> np.ndarray:
        """``X`` as float64 numbers ``[N, columns]`` (codes for string and categorical columns);
        ``reset`` learns the columns (in ``fit``), else uses the fitted ones."""
        frame, least = _is_frame(X), 2 if reset else 1  # fit holds out a validation row
        # A DataFrame is read column by column, in its own dtypes: not copied into one object array.
        checked = validate_data(
            self, X, reset=reset, skip_check_array=frame, dtype=None, ensure_all_finite=False, ensure_min_samples=least
        )
        if frame and (X.shape[0] < least or X.shape[1] < 1):
            raise ValueError(f"X has shape {X.shape}; at least {least} row(s) and 1 column are needed")
        raw = _raw_columns(X, checked)
        if reset:
            self._columns = [_learn_column(*column) for column in raw]
            self._frame_columns = X.columns if frame else None
            self._array_dtype = None if frame else checked.dtype
        codes = [_code_column(column, values) for column, (_, _, values) in zip(self._columns, raw)]
        return np.stack(codes, axis=1)

    def _short_schema(self, codes: np.ndarray) -> list[dict]:
        """The schema choice in short form (:func:`made.data.columns.fit_schema` fills it in); string and
        categorical columns are categorical over all their categories unless they fit in a binary one."""
        if not isinstance(self.schema, str):
            return [dict(column) for column in self.schema]
        if self.schema not in SCHEMA_CHOICES:
            choices = ", ".join(SCHEMA_CHOICES)
            raise ValueError(f"schema must be one of {choices} or a list of column dicts, got {self.schema!r}")
        short: list[dict]
        if self.schema == "binary":
            short = [{"type": "binary"} for _ in range(codes.shape[1])]
        else:
            short = infer_schema(codes, self.max_categories, onehot=self.schema == "onehot")
        schema, start = [], 0
        for entry in short:
            categories = self._columns[start].categories
            coded = num_columns([entry]) == 1 and categories is not None
            if coded and categories is not None and not (entry["type"] == "binary" and len(categories) == 2):
                # a coded column of one category is not 0/1: categorical
                entry = {"type": "categorical", "values": [float(k) for k in range(len(categories))]}
            schema.append(entry)
            start += num_columns([entry])
        return schema

    def _tensor(self, codes: np.ndarray) -> torch.Tensor:
        """Model inputs for the rows ``codes`` (standardized, categories as indices), float64 on the device."""
        return torch.from_numpy(encode(self.schema_, codes, "X")).to(self.model_.output.weight)

    # --------------------------------------------------------------- API
    def fit(self, X: Any, y: None = None) -> MADEDensity:
        """Learn the density of the rows of ``X`` (``y`` is ignored); returns ``self``."""
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")
        codes = self._codes(X, reset=True)
        seed = _seed(self.random_state)
        self.schema_ = fit_schema(self._short_schema(codes), codes, self.components)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = MADE(
                len(self.schema_),
                list(self.hidden_sizes),
                family_config(self.schema_),
                num_masks=self.num_masks,
                seed=seed,
            )
        self.model_ = model.to(device=torch.device(self.device), dtype=torch.float64)
        data = self._tensor(codes)
        order = torch.from_numpy(np.random.RandomState(seed).permutation(len(codes)))
        held_out = min(len(codes) - 1, max(1, round(self.validation_fraction * len(codes))))
        config = TrainConfig(
            batch_size=self.batch_size, lr=self.lr, patience=self.patience, epochs=self.epochs, seed=seed
        )
        train, valid = data[order[held_out:]], data[order[:held_out]]
        history = train_model(self.model_, train, valid, config, progress=bool(self.verbose))
        self.model_.set_mask(0)
        self._ensemble = validation_masks(self.model_, config)  # the mixture early stopping chose on
        self._log_scale = float(log_scales(self.schema_).sum())
        self.n_iter_ = history.epochs
        self.best_validation_score_ = -(history.best_valid_nll + self._log_scale)
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """Log-likelihood of each row of ``X``, ``[N]`` (nats, the data's own units)."""
        check_is_fitted(self)
        nll = per_example_nll(self.model_, self._tensor(self._codes(X, reset=False)), ensemble=self._ensemble)
        return -nll.cpu().numpy() - self._log_scale

    def score(self, X: Any, y: None = None) -> float:
        """Mean log-likelihood per row of ``X`` (``y`` is ignored), as ``GaussianMixture.score``."""
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples: int = 1, random_state: int | np.random.RandomState | None = None) -> Any:
        """``n_samples`` rows drawn from the fitted density: a DataFrame like the one ``fit`` saw (same
        columns, dtypes and categories), else a NumPy array of ``X``'s dtype.

        Unlike ``GaussianMixture.sample``, which returns ``(X, component labels)``, only the rows
        are returned. ``random_state`` (default: the estimator's) seeds the draws.
        """
        check_is_fitted(self)
        try:
            n_samples = as_count(n_samples, "n_samples")
        except (TypeError, ValueError):  # sklearn's wording, and its ValueError for 0 (GaussianMixture's)
            if isinstance(n_samples, numbers.Integral) and not isinstance(n_samples, bool):
                raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}") from None
            raise TypeError(f"n_samples must be a positive integer, got {n_samples!r:.40}") from None
        seed = _seed(self.random_state if random_state is None else random_state)
        generator = torch.Generator(self.model_.output.weight.device).manual_seed(seed)
        drawn = self.model_.sample(int(n_samples), generator=generator, ensemble=self._ensemble)
        return self._as_fitted_input(decode(self.schema_, drawn.cpu().numpy()))

    def _as_fitted_input(self, rows: np.ndarray) -> Any:
        """Rows of numbers and codes ``[N, columns]`` in the form ``fit`` was given: a DataFrame with its
        columns and dtypes, or an array of its dtype."""
        columns = [_decoded_column(column, rows[:, j]) for j, column in enumerate(self._columns)]
        if self._frame_columns is not None:
            import pandas as pd

            parts = {j: pd.Series(values, dtype=c.dtype) for j, (c, values) in enumerate(zip(self._columns, columns))}
            frame = pd.DataFrame(parts)
            frame.columns = self._frame_columns
            return frame
        out = np.empty((len(rows), len(columns)), dtype=self._array_dtype)
        for j, values in enumerate(columns):
            out[:, j] = values
        return out
