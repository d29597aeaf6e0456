r"""Dataset-level metrics of a trained model or mixture (:mod:`~made.inference.evaluate`): the mean NLL with its
standard error, bits per dimension and the per-dimension terms. What a MADE computes of itself (sampling,
conditionals, batched NLL) lives in :mod:`made.model`."""
