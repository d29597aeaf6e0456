"""What the ``made`` commands do, as a library: train a run folder, load it, evaluate, sample and impute.

``read_data`` -> ``build_model`` -> ``train_run`` turns a data set into a run folder (its layout:
:mod:`made.io.run`) and returns its metrics; :func:`train_settings` does it from ``made train``'s
settings, in a fresh folder or one swapped in for an earlier run, or continuing an interrupted one.
:func:`load_for_inference` reads any run folder back, and :func:`evaluate_run`, :func:`sample_run` and
:func:`impute_run` do what ``made eval``, ``made sample`` and ``made impute`` do with it; :mod:`.output`
writes what they make. The modules: :mod:`.reading` (a run's data and model), :mod:`.train`,
:mod:`.evaluate`, :mod:`.draw` (sampling and imputation) and :mod:`.output`."""

from .draw import (
    Imputation,
    Inpainting,
    batches,
    complete_rows,
    conditional_nll,
    impute_run,
    inpaint_run,
    read_missing,
    sample_run,
)
from .evaluate import Evaluation, eval_spec, evaluate_run
from .output import samples_path, save_rows, write_inpainting, write_per_dim, write_samples
from .reading import (
    DataWarning,
    RunData,
    RunModel,
    all_binary,
    context_tensor,
    data_spec,
    load_for_inference,
    load_splits,
    new_model,
    nll_units,
    read_data,
    read_run_splits,
    run_schema,
    to_tensor,
)
from .train import ProcessInfo, build_model, processes, resumed_settings, settings_data, train_run, train_settings

__all__ = [
    "DataWarning",
    "RunModel",
    "RunData",
    "data_spec",
    "load_splits",
    "read_run_splits",
    "read_data",
    "load_for_inference",
    "new_model",
    "run_schema",
    "all_binary",
    "to_tensor",
    "context_tensor",
    "nll_units",
    "ProcessInfo",
    "build_model",
    "train_run",
    "settings_data",
    "train_settings",
    "resumed_settings",
    "processes",
    "Evaluation",
    "eval_spec",
    "evaluate_run",
    "batches",
    "sample_run",
    "Imputation",
    "impute_run",
    "complete_rows",
    "conditional_nll",
    "read_missing",
    "Inpainting",
    "inpaint_run",
    "save_rows",
    "samples_path",
    "write_samples",
    "write_per_dim",
    "write_inpainting",
]
