r"""Data: splits and their checks (:mod:`~made.data.splits`), user files (:mod:`~made.data.formats`), named
data sets (:mod:`~made.data.datasets`), checks of JSON fields (:mod:`~made.data.fields`), column schemas
(:mod:`made.data.columns`) and side information (:mod:`~made.data.context`).

The names below are those ``made.data`` held in made 0.2, so ``from made.data import load_dataset`` works.
"""

from .datasets import BUILTIN, DATASETS, DatasetInfo, cache_dir, load_data, load_dataset
from .formats import Table, available_memory, load_file, read_table
from .splits import SPLITS, DataError, DataWarning, Splits, format_value, validate_splits

__all__ = [
    "DataError",
    "DataWarning",
    "Splits",
    "Table",
    "DatasetInfo",
    "DATASETS",
    "BUILTIN",
    "SPLITS",
    "load_dataset",
    "load_file",
    "load_data",
    "read_table",
    "format_value",
    "validate_splits",
    "cache_dir",
    "available_memory",
]
