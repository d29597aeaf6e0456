r"""Training: the loop (:mod:`~made.training.loop`), data-parallel runs (:mod:`~made.training.distributed`),
the memory check before a run (:mod:`~made.training.memory`) and mixtures of trained runs
(:mod:`~made.training.mixture`)."""
