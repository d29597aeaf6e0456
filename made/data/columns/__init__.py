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

Each ``type`` is one :class:`~made.data.columns.kinds.ColumnKind`, registered by name with
:func:`~made.data.columns.kinds.register_column_kind`; the schema functions dispatch through
that registry, and the model column a kind becomes names the family that models it.
"""

from .kinds import COLUMN_KINDS, ColumnKind, kind_of, register_column_kind
from .schema import (
    DEFAULT_MAX_CATEGORIES,
    check_fitted_schema,
    decode,
    dimension_names,
    encode,
    encode_observed,
    encode_splits,
    family_config,
    fit_schema,
    in_original_units,
    infer_schema,
    log_scales,
    model_columns,
    num_columns,
    onehot_widths,
    read_schema,
    resolve_schema,
)

__all__ = [
    "DEFAULT_MAX_CATEGORIES",
    "check_fitted_schema",
    "decode",
    "dimension_names",
    "encode",
    "encode_observed",
    "encode_splits",
    "family_config",
    "fit_schema",
    "in_original_units",
    "infer_schema",
    "log_scales",
    "model_columns",
    "num_columns",
    "onehot_widths",
    "read_schema",
    "resolve_schema",
    "ColumnKind",
    "COLUMN_KINDS",
    "register_column_kind",
    "kind_of",
]
