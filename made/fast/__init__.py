r"""The speed paths of masked layers, all exact: one switch (:mod:`~made.fast.dispatch`), reused effective
weights (:mod:`~made.fast.frozen`) block-triangular products (:mod:`~made.fast.blocks`)
and, on a GPU, sampling replayed from a CUDA graph (:mod:`~made.fast.cuda_graphs`)."""
