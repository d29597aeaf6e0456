r"""Mixtures of independently trained MADEs: exact, normalized, with weights fitted on validation.

.. math:: p(x) = \sum_i w_i \, p_i(x), \qquad w_i \ge 0, \ \sum_i w_i = 1

Each member ``p_i`` is a trained :class:`~made.MADE` scored with its own mask
ensemble (``ensembles[i]``, ``None`` for its current mask), so the mixture is a
normalized distribution whenever its members are. The weights are equal by default;
:meth:`Mixture.fit_weights` runs EM on them with the members fixed, which never lowers
the likelihood of the data it is fitted on (use validation data, never test).

A mixture's run folder (its config with a ``mixture`` section: :meth:`Mixture.settings`, and one
folder per member) is written and read by :mod:`made.io.run`, whose
:func:`~made.io.run.load_run_model` reads either kind of run folder, so ``made eval``,
``made sample`` and ``made impute`` take both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NoReturn, cast

import torch
from torch import Tensor, nn

from ..families import Family
from .conditional import conditional_orderings, mixture_seeds, observed_patterns, reordered_log_probs
from .distribution import as_count
from .layers import MaskedLinear
from .made import MADE

__all__ = ["Mixture", "em_weights", "check_member_log_probs", "MAX_MEMBERS", "MIXTURE_HINTS"]

MAX_MEMBERS = 1000
MIXTURE_HINTS = {"weights": list[float], "ensembles": list[int | None]}


def _row_number(row: int) -> str:
    return f"row {row + 1}"


def check_member_log_probs(log_probs: Tensor, where: Callable[[int], str] = _row_number) -> None:
    """Refuse members' ``log p_i(x_n)`` ``[M, N]`` that no weights can mix: a NaN or ``+inf`` (a member
    that cannot score the row), or a row that every member gives probability 0 (its mixture NLL is inf
    whatever the weights). ``where`` names a row as the user sees it (``line 7``)."""
    if not isinstance(log_probs, Tensor) or log_probs.dim() != 2 or 0 in log_probs.shape:
        got = list(log_probs.shape) if isinstance(log_probs, Tensor) else type(log_probs).__name__
        raise ValueError(f"log_probs must be a tensor [members, rows] with at least one of each, got {got}")
    if not log_probs.dtype.is_floating_point:
        log_probs = log_probs.double()  # integer log-probabilities (a test's), compared as numbers
    bad = torch.isnan(log_probs) | (log_probs == math.inf)
    if bool(bad.any()):
        member, row = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{where(row)}: member {member} scores it {float(log_probs[member, row])}, not a log-probability; "
            "weights cannot be fitted or applied"
        )
    unscored = (log_probs == -math.inf).all(dim=0)
    if bool(unscored.any()):
        row = int(unscored.nonzero()[0])
        raise ValueError(
            f"{where(row)}: every member gives it probability 0 (log p = -inf), so any mixture of them "
            "does too; check that row, or mix members that can score it"
        )


def em_weights(
    log_probs: Tensor, iterations: int = 100, tolerance: float = 1e-10, where: Callable[[int], str] = _row_number
) -> Tensor:
    """Mixture weights maximizing ``sum_n log sum_i w_i p_i(x_n)`` by EM, from ``log_probs`` ``[M, N]``.

    Starts from equal weights; each step sets ``w_i`` to the mean responsibility of member i,
    which cannot lower the likelihood. Stops after ``iterations`` or when no weight moves by
    more than ``tolerance``. Returns float64 ``[M]`` summing to 1. Rows no weights can mix are
    refused first (:func:`check_member_log_probs`, ``where`` naming them).
    """
    check_member_log_probs(log_probs, where)
    log_probs = log_probs.double()
    m, n = log_probs.shape
    log_w = torch.full((m,), -math.log(m), dtype=torch.float64, device=log_probs.device)
    for _ in range(iterations):
        joint = log_w[:, None] + log_probs  # [M, N]
        responsibility = joint - torch.logsumexp(joint, dim=0, keepdim=True)
        new = torch.logsumexp(responsibility, dim=1) - math.log(n)
        moved = float((new.exp() - log_w.exp()).abs().max())
        log_w = new
        if moved < tolerance:
            break
    weights = log_w.exp()
    return weights / weights.sum()


class Mixture(nn.Module):
    """A weighted mixture of trained MADEs over the same data columns.

    Arguments:
        members: the trained models (same ``num_inputs``, family and context size).
        weights: non-negative mixture weights, normalized here; ``None`` for equal weights.
        ensembles: per member, the number of masks its ``p_i`` averages (``None``: its current mask).
    """

    weights: Tensor  # the buffer registered in __init__, declared for type checkers

    def __init__(
        self,
        members: Sequence[MADE],
        weights: Sequence[float] | Tensor | None = None,
        ensembles: Sequence[int | None] | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= len(members) <= MAX_MEMBERS:
            raise ValueError(f"a mixture needs 1 to {MAX_MEMBERS} members, got {len(members)}")
        first = members[0]
        for i, member in enumerate(members[1:], 1):
            if (member.num_inputs, member.family.config(), member.context_size) != (
                first.num_inputs,
                first.family.config(),
                first.context_size,
            ):
                raise ValueError(f"member {i} models other data than member 0 (inputs, family or context differ)")
        self.members = nn.ModuleList(members)
        self.ensembles = list(ensembles) if ensembles is not None else [None] * len(members)
        if len(self.ensembles) != len(members):
            raise ValueError(f"ensembles must have one entry per member ({len(members)}), got {len(self.ensembles)}")
        self.register_buffer("weights", self._normalized(weights, len(members)))

    @property
    def member_models(self) -> list[MADE]:
        """The members as MADEs (``members``, the ``nn.ModuleList`` that registers them, holds them untyped)."""
        return cast(list[MADE], list(self.members))

    @staticmethod
    def _normalized(weights: Sequence[float] | Tensor | None, count: int) -> Tensor:
        """The weights divided by their sum; where the sum overflows (``[1e308, 1e308]``), by their largest
        first. Anything else than ``count`` usable weights is refused."""
        if weights is None:
            return torch.full((count,), 1.0 / count, dtype=torch.float64)
        try:
            w = torch.as_tensor(weights, dtype=torch.float64).flatten().cpu()
        except (TypeError, ValueError, RuntimeError):
            w = torch.full((0,), math.nan, dtype=torch.float64)  # not numbers: refused below
        if w.numel() != count or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or not float(w.max()) > 0:
            raise ValueError(
                f"weights must be {count} finite non-negative numbers with a positive sum, got {weights!r:.80}"
            )
        if not math.isfinite(float(w.sum())):
            w = w / w.max()
        return w / w.sum()

    def _checked_weights(self) -> Tensor:
        """The weights buffer, refused in one line when something (a loaded state, an edit) left it
        unusable: sampling and scoring with NaN, infinite or negative weights would fail deep in torch
        or give NaN."""
        w = self.weights.detach().cpu()
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or not float(w.sum()) > 0:
            raise ValueError(
                f"this mixture's weights {[float(v) for v in w][:8]} are not finite non-negative numbers with "
                "a positive sum; set them with Mixture(weights=...) or fit_weights()"
            )
        return self.weights

    # The attributes the CLI reads from a model, taken from the first member.
    @property
    def num_inputs(self) -> int:
        return self.member_models[0].num_inputs

    @property
    def family(self) -> Family:
        return self.member_models[0].family

    @property
    def context_size(self) -> int:
        return self.member_models[0].context_size

    @property
    def output(self) -> MaskedLinear:
        """The first member's output layer: its weight gives the mixture's device and dtype."""
        return self.member_models[0].output

    def _ensemble(self, i: int, ensemble: int | None) -> int | None:
        """Member i's mask count: ``ensemble`` when given (for every member), else its own."""
        if ensemble is None:
            return self.ensembles[i]
        try:
            # the member's own check of the size, named with the member
            self.member_models[i].pool.ensemble_seeds(ensemble)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"member {i} of this mixture: {error}; without it each member averages its own masks"
            ) from None
        return ensemble

    def _log_weights(self, like: Tensor) -> Tensor:
        return self._checked_weights().to(device=like.device, dtype=like.dtype).log()[:, None]

    # -------------------------------------------------------------- density
    def log_prob(self, x: Tensor, context: Tensor | None = None, ensemble: int | None = None) -> Tensor:
        """Exact ``log p(x)`` in nats, ``[N]``: log-sum-exp of ``log w_i + log p_i(x)``."""
        parts = torch.stack(
            [m.log_prob(x, context, self._ensemble(i, ensemble)) for i, m in enumerate(self.member_models)]
        )
        return self.mixed_log_prob(parts)

    def mixed_log_prob(self, parts: Tensor) -> Tensor:
        """``log p(x)`` ``[N]`` from the members' ``log p_i(x)`` ``[M, N]`` (:meth:`member_log_probs`)."""
        return torch.logsumexp(self._log_weights(parts) + parts, dim=0)

    def member_log_probs(
        self, data: Tensor, batch_size: int = 1000, ensemble: int | None = None, context: Tensor | None = None
    ) -> Tensor:
        """``log p_i(x)`` of every member and row, float64 ``[M, N]``, evaluated in batches."""
        return -torch.stack(
            [
                m.per_example_nll(data, batch_size, self._ensemble(i, ensemble), context)
                for i, m in enumerate(self.member_models)
            ]
        )

    def per_example_nll(
        self, data: Tensor, batch_size: int = 1000, ensemble: int | None = None, context: Tensor | None = None
    ) -> Tensor:
        """``-log p(x)`` for every row, float64 ``[N]``: what :func:`made.inference.evaluate.per_example_nll`
        returns for a mixture."""
        return -self.mixed_log_prob(self.member_log_probs(data, batch_size, ensemble, context))

    def fit_weights(
        self, valid: Tensor, context: Tensor | None = None, iterations: int = 100, batch_size: int = 1000
    ) -> Mixture:
        """Set the weights by EM on ``valid`` with the members fixed (:func:`em_weights`); returns self.
        A row of ``valid`` that no member can score is refused, named as ``valid`` row n."""
        log_probs = self.member_log_probs(valid, batch_size, None, context)
        self.weights.copy_(em_weights(log_probs, iterations, where=lambda n: f"valid row {n + 1}").to(self.weights))
        return self

    def conditional_log_probs(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Not defined: a mixture has no single ordering whose conditionals add up to its log p(x)."""
        raise ValueError("a mixture has no per-dimension conditionals; evaluate one member (RUN/members/I)")

    def check_autoregressive(self) -> NoReturn:
        """Refused like :meth:`conditional_log_probs`: the mask picture is a member's."""
        raise ValueError("a mixture has no masks of its own; draw a member's (RUN/members/I)")

    # ------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(
        self,
        num_samples: int,
        context: Tensor | None = None,
        generator: torch.Generator | None = None,
        ensemble: int | None = None,
    ) -> Tensor:
        """Exact draws ``[num_samples, D]``: a member picked per sample with probability w_i, then its draw."""
        num_samples = as_count(num_samples, "num_samples")
        device, dtype = self.output.weight.device, self.output.weight.dtype
        choice = torch.multinomial(
            self._checked_weights().to(device, torch.float64), num_samples, replacement=True, generator=generator
        )
        out = torch.empty(num_samples, self.num_inputs, device=device, dtype=dtype)
        for i, member in enumerate(self.member_models):
            rows = (choice == i).nonzero().squeeze(1)
            if rows.numel():
                ctx = None if context is None else context[rows]
                out[rows] = member.sample(rows.numel(), ctx, generator, self._ensemble(i, ensemble)).to(dtype)
        return out

    # ---------------------------------------------------- conditional inference
    @torch.no_grad()
    def _observed_log_probs(self, x: Tensor, observed: Tensor, context: Tensor | None, ensemble: int | None) -> Tensor:
        """``log q_i(x_observed)`` of every member and row, ``[M, N]``: each member's marginal of the
        observed part under the masks its conditionals use (:mod:`made.model.conditional`), so the
        reweighting below is exact for the mixture of those conditionals."""
        filled = torch.where(observed, x, torch.zeros_like(x))  # missing values (NaN) must not reach a product
        out = filled.new_zeros(len(self.members), x.shape[0])
        for i, member in enumerate(self.member_models):
            seeds = mixture_seeds(member, self._ensemble(i, ensemble))
            for pattern, rows in observed_patterns(observed):
                orderings = conditional_orderings(member, seeds, pattern)
                ctx = None if context is None else context[rows]
                log_observed, _ = reordered_log_probs(member, filled[rows], pattern, seeds, orderings, ctx)
                out[i, rows] = torch.logsumexp(log_observed, dim=0) - math.log(len(seeds))
        return out

    @torch.no_grad()
    def conditional_log_prob(
        self, x: Tensor, observed: Tensor, context: Tensor | None = None, ensemble: int | None = None
    ) -> Tensor:
        """Exact ``log p(x_missing | x_observed)`` in nats, ``[N]``, members reweighted by w_i q_i(x_observed)."""
        observed = observed.to(x.device)
        marginal = self._log_weights(x) + self._observed_log_probs(x, observed, context, ensemble)
        conditional = torch.stack(
            [
                m.conditional_log_prob(x, observed, context, self._ensemble(i, ensemble))
                for i, m in enumerate(self.member_models)
            ]
        )
        return torch.logsumexp(marginal + conditional, dim=0) - torch.logsumexp(marginal, dim=0)

    @torch.no_grad()
    def impute(
        self,
        x: Tensor,
        observed: Tensor,
        num_samples: int | None = None,
        context: Tensor | None = None,
        ensemble: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Exact draws of the missing entries: per draw and row, a member picked with probability
        proportional to w_i q_i(x_observed), then its own draw. Shapes as :meth:`MADE.impute`."""
        num_samples = None if num_samples is None else as_count(num_samples, "num_samples")
        observed = observed.to(x.device)
        draws = num_samples or 1
        marginal = self._log_weights(x) + self._observed_log_probs(x, observed, context, ensemble)
        posterior = torch.softmax(marginal.double(), dim=0)  # [M, N]
        choice = torch.multinomial(posterior.T, draws, replacement=True, generator=generator).T  # [draws, N]
        out = torch.empty(draws, *x.shape, device=x.device, dtype=self.output.weight.dtype)
        for i, member in enumerate(self.member_models):
            picked = choice == i
            if bool(picked.any()):
                out[picked] = member.impute(x, observed, draws, context, self._ensemble(i, ensemble), generator)[picked]
        return out[0] if num_samples is None else out

    def settings(self) -> dict:
        """The ``mixture`` section of its run folder's config: the weights and each member's ensemble."""
        return {"weights": [float(w) for w in self.weights], "ensembles": list(self.ensembles)}
