r"""The exact speed paths of masked layers: the choice of kernel and its caches (:mod:`~made.fast.dispatch`),
reused effective weights (:mod:`~made.fast.frozen`), block-triangular products (:mod:`~made.fast.blocks`) and,
on a GPU, CUDA-graph recording and replay (:mod:`~made.fast.replay`). Imports nothing of made's other packages."""
