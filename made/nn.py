r"""Masked linear layers: the only building block MADE adds to a plain MLP."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MaskedLinear"]


class MaskedLinear(nn.Linear):
    """``y = x (W * M)^T + b``, with the mask ``M`` kept as a buffer.

    The mask is a persistent buffer, so ``state_dict``, ``.to(device)`` and
    checkpoints carry it. With ``conditioning=True`` the layer also adds
    ``(U * M) 1``, the paper's conditioning weights (eq. 14): a learned bias that
    depends on the current connectivity, useful when masks are resampled.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        conditioning: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.register_buffer("mask", torch.ones(out_features, in_features, dtype=torch.bool, device=device))
        if conditioning:
            bound = 1.0 / math.sqrt(max(in_features, 1))
            init = torch.empty(out_features, in_features, device=device, dtype=dtype).uniform_(-bound, bound)
            self.conditioning = nn.Parameter(init)
        else:
            self.register_parameter("conditioning", None)

    def set_mask(self, mask: Tensor) -> None:
        """Copy a new ``[out, in]`` boolean mask in place."""
        if mask.shape != self.mask.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} != layer shape {tuple(self.mask.shape)}")
        self.mask.copy_(mask)

    def masked_weight(self) -> Tensor:
        """The effective weight ``W * M``."""
        return self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        out = F.linear(x, self.masked_weight(), self.bias)
        if self.conditioning is not None:
            out = out + (self.conditioning * self.mask).sum(dim=1)
        return out

    def extra_repr(self) -> str:
        return super().extra_repr() + f", conditioning={self.conditioning is not None}"
