r"""The speed paths of masked layers, all exact: one switch (:mod:`~made.fast.dispatch`), reused effective
weights (:mod:`~made.fast.frozen`) and block-triangular products (:mod:`~made.fast.blocks`)."""
