r"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al., ICML 2015), in PyTorch."""

__version__ = "0.3.0"

from .model import MADE, MADEConfig  # noqa: E402

__all__ = ["MADE", "MADEConfig", "__version__"]
