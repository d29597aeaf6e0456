r"""``made tune`` as a library: the search (:mod:`~made.tune.search`: the search space, the study and its
budget), pruning poor trials (:mod:`~made.tune.pruning`, which needs Optuna) and mixing finished runs
into one run folder (:mod:`~made.tune.mixing`, which ``made mix`` uses too).

Optuna is optional: importing this package does not import it.
"""
