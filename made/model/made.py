r"""The MADE module: a masked MLP whose outputs are exact autoregressive conditionals.

References:
    Germain, Gregor, Murray, Larochelle. MADE: Masked Autoencoder for Distribution
    Estimation. ICML 2015, arXiv:1502.03509.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..families import make_family
from .conditional import conditional_log_prob, impute
from .config import MADEConfig
from .distribution import as_sample_shape, flatten_batch, flatten_context, refuse_vmap_validation
from .layers import ACTIVATIONS, MaskedLinear, install
from .masks import check_path_counts, make_ordering
from .network import Masks, Network, build_network
from .nll import batched_nll
from .pool import MaskPool, check_pool_state
from .sampling import sample_incremental

__all__ = ["MADE", "NarrowLayerWarning"]

Layer = Callable[[Tensor], Tensor]

# Values checked per chunk: bounded temporaries on the CPU, few kernel launches on a GPU.
CHECK_CHUNK_CPU, CHECK_CHUNK_GPU = 1 << 20, 1 << 24


class NarrowLayerWarning(UserWarning):
    """A hidden layer narrower than D-1: some conditionals cannot see all their predecessors."""


def _warn_narrow(hidden_sizes: list[int], num_inputs: int) -> None:
    """Say so when a hidden layer is narrower than D-1 (the model still works; some conditionals see less)."""
    narrow = [h for h in hidden_sizes if h < num_inputs - 1]
    if narrow:
        warnings.warn(
            f"hidden layers of {narrow} units are narrower than D-1 = {num_inputs - 1}: "
            "some conditionals cannot see all their predecessors",
            NarrowLayerWarning,
            stacklevel=3,
        )


class MADE(nn.Module):
    """Masked Autoencoder for Distribution Estimation.

    Takes the fields of :class:`~made.model.config.MADEConfig` as arguments (``num_inputs`` and
    ``hidden_sizes`` also by position), or one ``MADEConfig``; a value the config refuses is refused in one
    line naming it. ``model.config`` is the model's ``MADEConfig``, its family given by its config dict.

    Example:
        >>> model = MADE(num_inputs=8, hidden_sizes=[32], direct=True)
        >>> model.log_prob(torch.zeros(2, 8)).shape
        torch.Size([2])
    """

    __signature__ = inspect.signature(MADEConfig)

    # Registered in __init__ (buffers, and the output layer by ``install``): declared for type checkers.
    ordering: Tensor
    mask_seed: Tensor
    mask_pool: Tensor
    output: MaskedLinear

    def __init__(self, *args: Any, **settings: Any) -> None:
        super().__init__()
        given = args[0] if len(args) == 1 and not settings and isinstance(args[0], MADEConfig) else None
        config = given or MADEConfig(*args, **settings)
        self.family = make_family(config.num_inputs, config.family, config.categories, config.components)
        self.config = replace(config, family=self.family.config(), categories=None, components=None)
        num_inputs, context_size = config.num_inputs, config.context_size
        self.num_inputs = num_inputs
        self.hidden_sizes = list(config.hidden_sizes)
        self.num_masks = config.num_masks
        self.ordering_spec = config.ordering if isinstance(config.ordering, str) else list(config.ordering)
        make_ordering(num_inputs, self.ordering_spec)  # validate early
        self.seed = config.seed
        self.activation = config.activation
        self.resample = config.resample
        self.degree_rule = config.degrees
        self.context_size = context_size
        self.init = config.init
        self.sorted_degrees = config.sorted_degrees
        self.validate_args = True
        _warn_narrow(self.hidden_sizes, num_inputs)

        self.blocks_spec = list(config.blocks)
        self.dropout = config.dropout
        in_width = sum(self.family.inputs_per_dim) + context_size
        out_width = sum(self.family.params_per_dim)
        self.network: Network = build_network(
            in_width, self.hidden_sizes, out_width, config.direct, self.blocks_spec, self.dropout
        )
        self._build_layers(config.conditioning)
        self.pool = self._build_pool()
        self.register_buffer("ordering", torch.arange(num_inputs))
        self.register_buffer("mask_seed", torch.tensor(0, dtype=torch.long))
        # The pool travels with the state: [seed, pool seeds...] (seeds are below 2^62).
        self.register_buffer("mask_pool", torch.tensor([self.seed, *self.pool.seeds]))
        self.register_load_state_dict_pre_hook(check_pool_state)
        self.register_load_state_dict_post_hook(MADE._adopt_loaded_pool)
        self.set_mask_seed(self.pool.seeds[0])

    def _build_layers(self, conditioning: bool) -> None:
        """One masked layer per link of the network, registered under the link's name, in order."""
        self.hidden = nn.ModuleList()
        self.direct: MaskedLinear | None = None
        groups = self.network.groups
        self._layers: dict[str, MaskedLinear] = {}
        for index, link in self.network.links():
            layer = MaskedLinear(
                groups[link.source].width, groups[index].width, bias=link.bias, conditioning=conditioning and link.bias
            )
            install(self, link.module, layer)
            self._layers[link.module] = layer
        if self.init == "orthogonal":
            for layer in self.masked_layers():
                layer.reset_orthogonal()

    def _build_pool(self) -> MaskPool:
        """The mask pool of this model's settings (its seeds derived from ``seed``)."""
        return MaskPool(
            self.seed,
            self.num_inputs,
            self.ordering_spec,
            self.num_masks,
            self.resample,
            self.degree_rule,
            self.sorted_degrees,
            self.context_size,
            self.network,
            tuple(self.family.inputs_per_dim),
            tuple(self.family.params_per_dim),
        )

    # ----------------------------------------------------------------- masks
    def masked_layers(self) -> list[MaskedLinear]:
        """Every masked layer in the network's order: hidden layers, blocks, output, direct connection."""
        return list(self._layers.values())

    @property
    def mask_seeds(self) -> list[int]:
        """Seeds of the pool's masks (one for ``"unlimited"``, whose masks derive from ``seed``)."""
        return list(self.pool.seeds)

    @mask_seeds.setter
    def mask_seeds(self, seeds: Sequence[int]) -> None:
        """Replace the pool's seeds (a checkpoint may store other ones than the seed derives)."""
        self.pool = self.pool.with_seeds(seeds)
        self.mask_pool = torch.tensor([self.seed, *self.pool.seeds], device=self.mask_pool.device)

    def _adopt_loaded_pool(self, _: object) -> None:
        """After ``load_state_dict``: the pool takes the seeds of the loaded ``mask_pool`` buffer."""
        self.pool = self.pool.with_seeds(self.mask_pool[1:].tolist())

    def current_masks(self) -> Masks:
        """The model's own current mask as a value (its layers' mask buffers, not copies)."""
        ordering, degrees = self.pool.degrees(int(self.mask_seed), self.ordering.cpu())
        return Masks(ordering, degrees, {name: layer.mask for name, layer in self._layers.items()})

    def masks(self, mask_seed: int, ordering: Tensor | None = None) -> Masks:
        """The mask drawn from ``mask_seed`` as a value on the model's device (see :meth:`MaskPool.masks`)."""
        return self.pool.masks(mask_seed, ordering, self.output.mask.device)

    @torch.no_grad()
    def set_mask_seed(self, mask_seed: int, ordering: Tensor | None = None) -> None:
        """Make the mask drawn from ``mask_seed`` the model's own (in place; what training does).

        ``ordering`` (a permutation) replaces the seed's ordering but keeps its hidden
        degrees. To evaluate another mask without changing the model, pass
        ``masks=model.masks(seed)`` to :meth:`forward` instead.
        """
        masks = self.masks(mask_seed, ordering)
        for name, layer in self._layers.items():
            layer.set_mask(masks.links[name])
        self.ordering.copy_(masks.ordering)
        self.mask_seed.fill_(mask_seed)

    def set_mask(self, index: int) -> None:
        """Use mask ``index`` of the pool."""
        self.set_mask_seed(self.pool.seed_of(index))

    def mask_for_step(self, step: int) -> None:
        """Select the training mask of minibatch ``step``: the pool's cycle, or a fresh draw."""
        seed = self.pool.training_seed(step)
        if seed is not None:
            self.set_mask_seed(seed)

    @contextmanager
    def using_mask(self, mask_seed: int, ordering: Tensor | None = None) -> Iterator[None]:
        """Make the mask of ``mask_seed`` the model's own inside a ``with`` block, then restore it.

        This changes the model for every caller; :meth:`masks` gives a mask as a value instead.
        """
        current_seed, current_ordering = int(self.mask_seed), self.ordering.cpu().clone()
        self.set_mask_seed(mask_seed, ordering)
        try:
            yield
        finally:
            self.set_mask_seed(current_seed, current_ordering)

    def path_counts(self, masks: Masks | None = None) -> Tensor:
        """Paths from each input unit to each output unit under ``masks`` (the current mask by default)."""
        masks = self.current_masks() if masks is None else masks
        return self.network.path_counts({k: m.cpu() for k, m in masks.links.items()})

    def check_autoregressive(self, masks: Masks | None = None) -> None:
        """Raise ``ValueError`` unless the path counts of ``masks`` (default: the current
        mask) vanish wherever an output's position is not after the input's."""
        masks = self.current_masks() if masks is None else masks
        check_path_counts(self.path_counts(masks), *self.pool.unit_degrees(masks.ordering))

    # --------------------------------------------------------------- density
    def check_input(self, x: Tensor, context: Tensor | None, values: bool | None = None) -> None:
        """Raise for an ``x`` or ``context`` of the wrong type, dtype, device or shape, or (when
        ``values``, by default ``validate_args``) a value outside the support or a non-finite context."""
        weight = self.output.weight
        for name, value in (("x", x), ("context", context)):
            if value is None and name == "context":
                continue
            if not isinstance(value, Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
            if value.dtype != weight.dtype:
                raise TypeError(f"{name} must have the model's dtype {weight.dtype}, got {value.dtype}")
            if value.device != weight.device:
                raise ValueError(f"{name} is on {value.device} but the model is on {weight.device}")
        self.check_shape(x)
        values = self.validate_args if values is None else values
        if self.context_size and (context is None or context.shape != (x.shape[0], self.context_size)):
            got = None if context is None else list(context.shape)
            raise ValueError(f"context must have shape [{x.shape[0]}, {self.context_size}], got {got}")
        if not self.context_size and context is not None:
            raise ValueError("this model has no context input (context_size=0)")
        if values:
            self.check_values(x)
            if context is not None and not bool(torch.isfinite(context).all()):
                raise ValueError("context contains NaN or infinite values")

    def check_shape(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``[N, D]``."""
        if x.dim() != 2 or x.shape[1] != self.num_inputs:
            raise ValueError(f"x must have shape [N, {self.num_inputs}], got {list(x.shape)}")

    def check_values(self, x: Tensor) -> None:
        """Raise ``ValueError`` for a NaN, an infinity or a value outside the family's support.

        One pass over ``x`` in chunks of bounded size and one host synchronization when
        all is well (on a GPU a synchronization per batch costs more than a small
        model's forward); the error names the first offending value.
        """
        refuse_vmap_validation(x)
        self.check_shape(x)
        rows = max(1, (CHECK_CHUNK_CPU if x.is_cpu else CHECK_CHUNK_GPU) // max(x.shape[1], 1))
        valid = torch.ones((), dtype=torch.bool, device=x.device)
        for chunk in x.split(rows):
            if not chunk.is_floating_point():
                chunk = chunk.to(self.output.weight.dtype)  # integer data (uint8 images) is read as floats
            valid &= self.family.in_support(chunk)
        if not bool(valid):
            x = x if x.is_floating_point() else x.to(self.output.weight.dtype)
            if not bool(torch.isfinite(x).all()):
                raise ValueError("x contains NaN or infinite values")
            self.family.check_support(x)
            raise ValueError("x has values outside the support")  # in_support and check_support disagree

    def forward(self, x: Tensor, context: Tensor | None = None, masks: Masks | None = None) -> Tensor:
        """Parameters of every conditional in one pass, in the family's layout: Bernoulli
        logits ``[N, D]``, categorical ``[N, D, max K]``, Gaussian ``[N, D, 2]``,
        mixture ``[N, D, 3, C]``, mixed the flat ``[N, sum of params per dim]``.

        Under the model's own mask, or under ``masks`` (from :meth:`masks`) without
        changing the model."""
        links = None if masks is None else masks.links
        layers = {
            name: layer if links is None else partial(layer, mask=links[name]) for name, layer in self._layers.items()
        }
        return self._params(x, context, layers, self.training)

    def _params(self, x: Tensor, context: Tensor | None, layers: Mapping[str, Layer], dropout: bool) -> Tensor:
        """Run the network with one function per link (plain, masked by value, or frozen);
        ``dropout`` says whether the groups' dropout applies (training)."""
        inputs = self.family.encode(x)
        if self.context_size:
            if context is None:
                raise ValueError(f"this model takes a context of {self.context_size} values per row; none was given")
            inputs = torch.cat([inputs, context.to(inputs.dtype)], dim=-1)
        act = ACTIVATIONS[self.activation]
        values: list[Tensor] = [inputs]
        for group in self.network.groups[1:]:
            total = layers[group.links[0].module](values[group.links[0].source])
            for link in group.links[1:]:
                total = total + layers[link.module](values[link.source])
            if group.activation:
                total = act(total)
            if group.dropout and dropout:
                total = F.dropout(total, group.dropout)
            if group.residual is not None:
                total = total + values[group.residual]
            values.append(total)
        return self.family.shape_params(values[-1])

    def frozen_log_prob(self, num_rows: int, masks: Masks | None = None) -> Callable[[Tensor, Tensor | None], Tensor]:
        """``log_prob`` under ``masks`` (default: the current mask) as a function of
        ``(x, context)``, for evaluating ``num_rows`` rows in batches without autograd.

        Each layer's effective weight is fixed once (:meth:`MaskedLinear.frozen`), so a
        batch costs the products alone: no per-batch input checks or cache lookups
        (check the data first with :meth:`check_values`), no module hooks and no dropout.
        Valid until the weights change.
        """
        links = {} if masks is None else masks.links
        layers = {
            name: layer.frozen(num_rows * layer.in_features, links.get(name)) for name, layer in self._layers.items()
        }

        def log_prob(x: Tensor, context: Tensor | None = None) -> Tensor:
            return self.family.log_prob(self._params(x, context, layers, False), x).sum(dim=-1)

        return log_prob

    def per_example_nll(
        self, data: Tensor, batch_size: int = 1000, ensemble: int | None = None, context: Tensor | None = None
    ) -> Tensor:
        """``-log p(x)`` for every row of ``data``, float64 ``[N]``, evaluated in batches without changing
        the model (see :func:`made.inference.evaluate.per_example_nll`)."""
        return batched_nll(self, data, batch_size, ensemble, context)

    def conditional_log_probs(
        self, x: Tensor, context: Tensor | None = None, masks: Masks | None = None, validate_args: bool | None = None
    ) -> Tensor:
        """``log p(x_d | x_<d)`` for every dimension, ``[N, D]``, under the current mask or ``masks``;
        ``validate_args`` overrides the model's setting for this call."""
        self.check_input(x, context, values=self.validate_args if validate_args is None else validate_args)
        return self.family.log_prob(self(x, context, masks), x)

    def log_prob(
        self, x: Tensor, context: Tensor | None = None, ensemble: int | None = None, validate_args: bool | None = None
    ) -> Tensor:
        """Exact ``log p(x)`` in nats, ``[N]``.

        With ``ensemble=k``, the log of the mean over k masks of ``p(x)``
        (log-mean-exp of the joint log-likelihoods), the paper's mask ensemble;
        the masks are evaluated as values, the model's own mask is never changed. Any batch
        shape: ``x`` ``[..., D]`` (and ``context`` ``[..., C]``) gives ``[...]``. ``validate_args``
        overrides the model's own setting for this call.
        """
        batch, x, context = flatten_batch(x, context, self.num_inputs, self.context_size)
        if ensemble is None:
            return self.conditional_log_probs(x, context, None, validate_args).sum(dim=-1).reshape(batch)
        seeds = self.pool.ensemble_seeds(ensemble)
        joint = [self.conditional_log_probs(x, context, self.masks(seed), validate_args).sum(dim=-1) for seed in seeds]
        return (torch.logsumexp(torch.stack(joint), dim=0) - math.log(len(seeds))).reshape(batch)

    @torch.no_grad()
    def sample(
        self,
        num_samples: int | Sequence[int] | torch.Size,
        context: Tensor | None = None,
        generator: torch.Generator | None = None,
        ensemble: int | None = None,
    ) -> Tensor:
        """Exact ancestral samples ``[num_samples, D]``, each hidden unit computed once.

        Under the current mask, or with ``ensemble=k`` from the mixture of k masks
        (each sample from a mask picked uniformly), the distribution ``log_prob(x,
        ensemble=k)`` scores. See :mod:`made.model.sampling`. ``num_samples`` may also be a
        torch-style sample shape (a tuple): ``[*sample_shape, D]`` back, and a context,
        if any, of shape ``[*sample_shape, C]``.
        """
        shape = as_sample_shape(num_samples, "num_samples")
        context, num_samples = flatten_context(context, shape, self.context_size), shape.numel()
        if ensemble is not None:
            blank = self.output.weight.new_zeros(num_samples, self.num_inputs)
            observed = torch.zeros_like(blank, dtype=torch.bool)
            drawn = impute(self, blank, observed, context=context, ensemble=ensemble, generator=generator)
            return drawn.reshape(*shape, self.num_inputs)
        device, dtype = self.output.weight.device, self.output.weight.dtype
        uniform = torch.rand(num_samples, self.num_inputs, generator=generator, device=device, dtype=dtype)
        return sample_incremental(self, uniform, context).reshape(*shape, self.num_inputs)

    def impute(
        self,
        x: Tensor,
        observed: Tensor,
        num_samples: int | None = None,
        context: Tensor | None = None,
        ensemble: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Fill the unobserved entries of ``x`` with exact draws from p(x_missing | x_observed).

        ``observed`` is a bool ``[N, D]`` mask; ``[N, D]`` back, or ``[num_samples, N, D]``
        when ``num_samples`` is given. See :func:`made.model.conditional.impute`.
        """
        return impute(self, x, observed, num_samples, context, ensemble, generator)

    def conditional_log_prob(
        self, x: Tensor, observed: Tensor, context: Tensor | None = None, ensemble: int | None = None
    ) -> Tensor:
        """Exact ``log p(x_missing | x_observed)`` in nats, ``[N]``; see :mod:`made.model.conditional`."""
        return conditional_log_prob(self, x, observed, context, ensemble)

    def extra_repr(self) -> str:
        return f"num_inputs={self.num_inputs}, family={self.family.name}, num_masks={self.num_masks}"
