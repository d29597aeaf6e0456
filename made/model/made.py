r"""The MADE module: a masked MLP whose outputs are exact autoregressive conditionals.

References:
    Germain, Gregor, Murray, Larochelle. MADE: Masked Autoencoder for Distribution
    Estimation. ICML 2015, arXiv:1502.03509.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..families import Family, make_family
from ..inference.conditional import conditional_log_prob, impute
from ..inference.evaluate import batched_nll
from ..inference.sampling import sample_incremental
from .arguments import Init, Resample, check_model_arguments
from .distribution import as_sample_shape, flatten_batch, flatten_context
from .layers import ACTIVATIONS, MaskedLinear, install
from .masks import DegreeRule, check_path_counts, make_ordering
from .network import Masks, Network, build_network
from .pool import POOL_STREAM, MaskPool, check_pool_state, derive_seeds

__all__ = ["MADE", "Resample", "NarrowLayerWarning"]

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


class MADE(MaskPool, nn.Module):
    """Masked Autoencoder for Distribution Estimation.

    Arguments:
        num_inputs: D, the number of dimensions.
        hidden_sizes: widths of the hidden layers; ``[]`` gives a masked logistic
            regression (with ``direct=True``) or a product of marginals.
        family: output family: ``"bernoulli"``, ``"categorical"``, ``"gaussian"``,
            ``"mog"``, a list of column dicts (a mixed model, see
            :class:`~made.families.Mixed`), a family's config dict, or a
            :class:`~made.families.Family`.
        num_masks: size K of the mask pool cycled during training (one mask per
            minibatch), or ``"unlimited"`` for a fresh mask every minibatch.
        ordering: ``"natural"``, ``"random"`` (drawn from ``seed``) or a permutation;
            used as is when the pool does not resample orderings.
        direct: add the direct input-to-output connection (eq. 11).
        seed: every random choice of connectivity derives from it.
        activation: ``"relu"``, ``"tanh"`` or ``"softplus"``.
        resample: what the pool resamples: ``"full"`` (ordering and connectivity),
            ``"ordering"`` or ``"connectivity"``.
        degrees: hidden-degree rule, ``"random"`` (the paper) or ``"even"``.
        conditioning: add the connectivity-conditioning weights (eq. 14).
        init: ``"default"`` (PyTorch's ``nn.Linear`` initialization) or
            ``"orthogonal"`` (semi-orthogonal weights and zero biases, as in the
            authors' code and their README commands).
        context_size: width of an optional context vector seen by every unit
            (degree 0: every layer keeps a unit that sees only the context, so even
            the first conditional depends on it).
        categories: categories per dimension (or one count for all) of ``"categorical"``.
        components: mixture components of ``"mog"``.
        sorted_degrees: keep each layer's degrees in increasing order when they are not
            redrawn per mask. Units are exchangeable, so this is the same model, and its
            masks are then staircases in storage order (fast block products). ``False``
            rebuilds models saved by made 0.1, which drew them unsorted.
        blocks: block types (registered in :mod:`made.model.network`) after the last hidden
            layer, e.g. ``["residual"] * 2``: residual blocks ``h + W2 act(W1 h)`` whose
            two layers share that layer's degrees.
        dropout: dropout probability on every hidden unit's activation (training only).

    Example:
        >>> model = MADE(num_inputs=8, hidden_sizes=[32], direct=True)
        >>> model.log_prob(torch.zeros(2, 8)).shape
        torch.Size([2])
    """

    # Registered in __init__ (buffers, and layers installed under their link's name): declared here for type checkers.
    ordering: Tensor
    mask_seed: Tensor
    mask_pool: Tensor
    output: MaskedLinear

    def __init__(
        self,
        num_inputs: int,
        hidden_sizes: Sequence[int] = (500,),
        family: str | dict | Sequence[dict] | Family = "bernoulli",
        num_masks: int | Literal["unlimited"] = 1,
        ordering: str | Sequence[int] = "natural",
        direct: bool = False,
        seed: int = 0,
        activation: str = "relu",
        resample: Resample = "full",
        degrees: DegreeRule = "random",
        conditioning: bool = False,
        context_size: int = 0,
        init: Init = "default",
        categories: int | Sequence[int] | None = None,
        components: int | None = None,
        sorted_degrees: bool = True,
        blocks: Sequence[str] = (),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_model_arguments(
            {
                "num_inputs": num_inputs,
                "hidden_sizes": hidden_sizes,
                "num_masks": num_masks,
                "seed": seed,
                "activation": activation,
                "resample": resample,
                "degrees": degrees,
                "context_size": context_size,
                "init": init,
                "blocks": blocks,
                "dropout": dropout,
            }
        )
        self.num_inputs = num_inputs
        self.hidden_sizes = [int(h) for h in hidden_sizes]
        self.family = make_family(num_inputs, family, categories, components)
        self.num_masks = num_masks
        self.ordering_spec = ordering if isinstance(ordering, str) else [int(i) for i in ordering]
        make_ordering(num_inputs, self.ordering_spec)  # validate early
        self.seed = int(seed)
        self.activation = activation
        self.resample = resample
        self.degree_rule = degrees
        self.context_size = context_size
        self.init = init
        self.sorted_degrees = sorted_degrees
        self.validate_args = True
        _warn_narrow(self.hidden_sizes, num_inputs)

        self.blocks_spec = [str(b) for b in blocks]
        self.dropout = float(dropout)
        in_width = sum(self.family.inputs_per_dim) + context_size
        out_width = sum(self.family.params_per_dim)
        self.network: Network = build_network(
            in_width, self.hidden_sizes, out_width, direct, self.blocks_spec, self.dropout
        )
        self._build_layers(conditioning)
        self.register_buffer("ordering", torch.arange(num_inputs))
        self.register_buffer("mask_seed", torch.tensor(0, dtype=torch.long))
        pool = 1 if num_masks == "unlimited" else num_masks
        # The pool travels with the state: [seed, pool seeds...] (seeds are below 2^62).
        self.register_buffer("mask_pool", torch.tensor([self.seed, *derive_seeds(self.seed, POOL_STREAM, pool)]))
        self.register_load_state_dict_pre_hook(check_pool_state)
        self.set_mask_seed(self.mask_seeds[0])

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

    # ----------------------------------------------------------------- masks
    def masked_layers(self) -> list[MaskedLinear]:
        """Every masked layer in the network's order: hidden layers, blocks, output, direct connection."""
        return list(self._layers.values())

    def current_masks(self) -> Masks:
        """The model's own current mask as a value (its layers' mask buffers, not copies)."""
        ordering = self.ordering.cpu()
        _, drawn = self.connectivity(int(self.mask_seed), ordering)
        degrees = self.network.degrees(*self.unit_degrees(ordering), drawn)
        return Masks(ordering, degrees, {name: layer.mask for name, layer in self._layers.items()})

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

    def path_counts(self, masks: Masks | None = None) -> Tensor:
        """Paths from each input unit to each output unit under ``masks`` (the current mask by default)."""
        masks = self.current_masks() if masks is None else masks
        return self.network.path_counts({k: m.cpu() for k, m in masks.links.items()})

    def check_autoregressive(self, masks: Masks | None = None) -> None:
        """Raise ``ValueError`` unless the path counts of ``masks`` (default: the current
        mask) vanish wherever an output's position is not after the input's."""
        masks = self.current_masks() if masks is None else masks
        check_path_counts(self.path_counts(masks), *self.unit_degrees(masks.ordering))

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
        seeds = self.ensemble_seeds(ensemble)
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
        ensemble=k)`` scores. See :mod:`made.inference.sampling`. ``num_samples`` may also be a
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
        when ``num_samples`` is given. See :func:`made.inference.conditional.impute`.
        """
        return impute(self, x, observed, num_samples, context, ensemble, generator)

    def conditional_log_prob(
        self, x: Tensor, observed: Tensor, context: Tensor | None = None, ensemble: int | None = None
    ) -> Tensor:
        """Exact ``log p(x_missing | x_observed)`` in nats, ``[N]``; see :mod:`made.inference.conditional`."""
        return conditional_log_prob(self, x, observed, context, ensemble)

    # ---------------------------------------------------------------- config
    def config(self) -> dict:
        """JSON-ready constructor arguments; ``MADE(**model.config())`` rebuilds the architecture."""
        return {
            "num_inputs": self.num_inputs,
            "hidden_sizes": list(self.hidden_sizes),
            "family": self.family.config(),
            "num_masks": self.num_masks,
            "ordering": self.ordering_spec,
            "direct": self.direct is not None,
            "seed": self.seed,
            "activation": self.activation,
            "resample": self.resample,
            "degrees": self.degree_rule,
            "conditioning": self.output.conditioning is not None,
            "context_size": self.context_size,
            "init": self.init,
            "categories": None,  # both carried by "family"
            "components": None,
            "sorted_degrees": self.sorted_degrees,
            "blocks": list(self.blocks_spec),
            "dropout": self.dropout,
        }

    def extra_repr(self) -> str:
        return f"num_inputs={self.num_inputs}, family={self.family.name}, num_masks={self.num_masks}"
