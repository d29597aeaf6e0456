r"""Files: atomic writes and checked JSON (:mod:`~made.io.atomic`), JSON field checks (:mod:`~made.io.schema`),
model files (:mod:`~made.io.checkpoint`) and training checkpoints (:mod:`~made.io.training_state`)."""
