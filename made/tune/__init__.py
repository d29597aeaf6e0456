r"""``made tune`` as a library: the search (:mod:`~made.tune.search`: the search space, the study and its
budget), pruning poor trials (:mod:`~made.tune.pruning`, which needs Optuna), mixing finished runs
into one run folder (:mod:`~made.tune.mixing`, which ``made mix`` uses too) and several machines on one
study, with one best model across them (:mod:`~made.tune.machines`).

Optuna is optional: importing this package does not import it.
"""
