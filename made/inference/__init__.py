r"""Inference with a trained model: exact sampling (:mod:`~made.inference.sampling`), conditionals and
imputation (:mod:`~made.inference.conditional`), and dataset-level NLL (:mod:`~made.inference.evaluate`)."""
