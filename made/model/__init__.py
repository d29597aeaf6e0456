r"""The model: masks and their pool, masked layers, the network description, the :class:`MADE` module,
its settings, what it computes of itself (exact sampling: :mod:`~made.model.sampling`; conditionals and imputation:
:mod:`~made.model.conditional`; batched NLL: :mod:`~made.model.nll`), mixtures of MADEs and its
``torch.distributions`` face.

The names below are those ``made.model`` held in made 0.2, and ``MADEConfig``, the model's settings.
"""

from .config import MADEConfig, Resample
from .made import MADE, NarrowLayerWarning
from .pool import derive_seeds

__all__ = ["MADE", "MADEConfig", "Resample", "derive_seeds", "NarrowLayerWarning"]
