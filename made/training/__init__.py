r"""Training: the loop (:mod:`~made.training.loop`), data-parallel runs (:mod:`~made.training.distributed`)
and the memory check before a run (:mod:`~made.training.memory`)."""
