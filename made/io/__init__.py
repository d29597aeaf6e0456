r"""Files: atomic writes and checked JSON (:mod:`~made.io.atomic`), model files (:mod:`~made.io.checkpoint`),
training checkpoints (:mod:`~made.io.training_state`) and the run folder that holds them, its layout and
operations (:mod:`~made.io.run`)."""
