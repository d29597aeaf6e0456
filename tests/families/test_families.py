import itertools
import json
import math
import warnings
from collections.abc import Iterator

import pytest
import torch

import made.families as families
from made import MADE
from made.families import (
    Categorical,
    Family,
    Gaussian,
    Mixed,
    MixtureOfGaussians,
    family_for_columns,
    make_family,
    register_family,
)
from made.io.run import load_model, save_model
from made.model.distribution import MADEDistribution
from made.model.masks import input_degrees

MIXED = [{"type": "binary"}, {"type": "categorical", "categories": 3}, {"type": "real", "components": 2}]


def randomize(model: MADE, std: float = 1.0) -> MADE:
    """Random, not tiny, weights so that every conditional is far from uniform."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, std)
    return model


def all_configurations(categories: list[int]) -> torch.Tensor:
    return torch.tensor(list(itertools.product(*[range(k) for k in categories])), dtype=torch.float64)


def grid(low: float, high: float, points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Trapezoid nodes and weights on [low, high]."""
    nodes = torch.linspace(low, high, points, dtype=torch.float64)
    weights = torch.full_like(nodes, (high - low) / (points - 1))
    weights[0] = weights[-1] = weights[0] / 2
    return nodes, weights


# ------------------------------------------------------------ normalization
@pytest.mark.parametrize(
    "config",
    [
        dict(hidden_sizes=[24, 24], direct=True, ordering="random", seed=1),
        dict(hidden_sizes=[], direct=True, ordering=[3, 1, 0, 2]),
        dict(hidden_sizes=[10], activation="tanh", num_masks=3, seed=2),
        dict(hidden_sizes=[16], direct=True, context_size=3, seed=3),
    ],
)
def test_categorical_probabilities_sum_to_one(config):
    categories = [2, 3, 4, 3]
    model = randomize(MADE(4, family="categorical", categories=categories, **config).double())
    x = all_configurations(categories)  # 72 configurations
    contexts = [None] if not config.get("context_size") else list(torch.randn(3, 1, 3, dtype=torch.float64))
    with torch.no_grad():
        for c in contexts:
            ctx = None if c is None else c.expand(len(x), 3)
            for k in range(2 if config.get("num_masks", 1) > 1 else 1):
                model.set_mask(k)
                total = model.log_prob(x, ctx).exp().sum()
                assert abs(float(total) - 1.0) < 1e-9
            if config.get("num_masks", 1) > 1:
                assert abs(float(model.log_prob(x, ctx, ensemble=3).exp().sum()) - 1.0) < 1e-9


@pytest.mark.parametrize(
    "family", [{"name": "gaussian", "min_scale": 0.3}, {"name": "mog", "components": 3, "min_scale": 0.3}]
)
def test_real_densities_integrate_to_one_in_one_dimension(family):
    model = randomize(MADE(1, [8], family=family, activation="tanh", seed=0).double(), std=0.7)
    nodes, weights = grid(-40, 40, 8001)
    with torch.no_grad():
        mass = (model.log_prob(nodes[:, None]).exp() * weights).sum()
    assert abs(float(mass) - 1.0) < 1e-3


@pytest.mark.parametrize(
    "family, ordering",
    [
        ({"name": "gaussian", "min_scale": 0.3}, [0, 1]),
        ({"name": "mog", "components": 3, "min_scale": 0.3}, [1, 0]),
    ],
)
def test_real_densities_integrate_to_one_in_two_dimensions(family, ordering):
    model = randomize(MADE(2, [16], family=family, activation="tanh", direct=True, ordering=ordering).double(), 0.5)
    nodes, weights = grid(-30, 30, 1201)
    first, second = torch.meshgrid(nodes, nodes, indexing="ij")
    points = torch.stack([first.flatten(), second.flatten()], dim=1)
    cell = (weights[:, None] * weights[None, :]).flatten()
    with torch.no_grad():
        mass = sum(
            float((model.log_prob(chunk).exp() * w).sum())
            for chunk, w in zip(points.split(200_000), cell.split(200_000))
        )
    assert abs(mass - 1.0) < 1e-3


@pytest.mark.parametrize("ordering", [[0, 1, 2], [2, 0, 1]])
def test_mixed_model_sums_and_integrates_to_one(ordering):
    family = {"name": "mixed", "columns": MIXED, "min_scale": 0.3}  # scales the grid resolves
    model = MADE(3, [20], family=family, direct=True, ordering=ordering, activation="tanh", context_size=2)
    model = randomize(model.double(), 0.6)
    nodes, weights = grid(-40, 40, 4001)
    discrete = all_configurations([2, 3])  # binary x categorical
    x = torch.cat([discrete.repeat_interleave(len(nodes), 0), nodes.repeat(len(discrete))[:, None]], dim=1)
    context = torch.tensor([[0.5, -1.0]], dtype=torch.float64).expand(len(x), 2)
    with torch.no_grad():
        mass = (model.log_prob(x, context).exp() * weights.repeat(len(discrete))).sum()
    assert abs(float(mass) - 1.0) < 1e-3


# ----------------------------------------------------- autoregressive property
FAMILIES = [
    {"name": "gaussian"},
    {"name": "mog", "components": 3},
    {"name": "categorical", "categories": [3, 2, 4, 3, 2, 3]},
    {"name": "mixed", "columns": [MIXED[i % 3] for i in range(6)]},
]


def params_of(model: MADE, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
    """The parameters ``[N, D, P]`` of each dimension, whatever the family's layout."""
    out = model(x, context)
    if isinstance(model.family, Mixed):  # flat layout: cut per dimension
        widths = model.family.params_per_dim
        pieces = out.split(widths, dim=1)
        return torch.stack([torch.nn.functional.pad(p, (0, max(widths) - p.shape[1])) for p in pieces], 1)
    return out.reshape(out.shape[0], model.num_inputs, -1).nan_to_num(neginf=0.0)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f["name"])
@pytest.mark.parametrize("hidden", [[], [30], [25, 25]])
@pytest.mark.parametrize("direct", [False, True])
def test_autoregressive_with_several_params_per_dim_and_context(family, hidden, direct):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MADE(6, hidden, family=family, direct=direct, ordering="random", num_masks=3, context_size=4, seed=7)
    model = randomize(model.double(), 0.5)
    assert max(model.family.params_per_dim) > 1
    discrete = family["name"] in ("categorical", "mixed")
    for mask in range(2):
        model.set_mask(mask)
        model.check_autoregressive()  # path counts of every parameter, strictly lower triangular
        position = input_degrees(model.ordering)
        x = (torch.randint(0, 2, (1, 6)) if discrete else torch.randn(1, 6)).double()
        context = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
        base = params_of(model, x, context)
        for j in range(6):  # change x_j: only the dimensions after j may move
            moved = x.clone()
            moved[0, j] = 1 - moved[0, j] if discrete else moved[0, j] + 0.7
            changed = (params_of(model, moved, context) != base).any(-1)[0]
            assert not changed[position <= position[j]].any()
            if direct:  # the direct connection makes every allowed dependence real
                assert changed[position > position[j]].all()
        # the context reaches every dimension, the first one in the ordering included
        first = int(model.ordering[0])
        (grad,) = torch.autograd.grad(base[0, first].sum(), context)
        assert (grad != 0).any()


@pytest.mark.parametrize("family", [{"name": "gaussian"}, {"name": "mog", "components": 2}])
def test_jacobian_with_context_is_strictly_lower_triangular(family):
    model = randomize(MADE(5, [20, 20], family=family, ordering=[4, 2, 0, 1, 3], context_size=3).double(), 0.5)
    x, c = torch.randn(5, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: model(v[None, :5], v[None, 5:])[0], torch.cat([x, c]))
    jac = jac.reshape(5, -1, 8)  # [output dim, its params, input (5 data, 3 context)]
    position = input_degrees(model.ordering)
    forbidden = position[:, None] <= position[None, :]
    assert torch.all(jac[:, :, :5].permute(0, 2, 1)[forbidden] == 0)
    assert torch.all(jac[:, :, 5:].abs().sum((1, 2)) > 0)  # context reaches every dimension


@pytest.mark.parametrize("seed", range(20))
def test_every_layer_keeps_a_context_only_unit(seed):
    """Random degrees could leave no degree-0 unit; the first conditional would then ignore the context."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 3 units over 50 degrees: a bad draw is likely
        model = MADE(50, [3, 3], context_size=2, seed=seed, activation="tanh")
    counts = model.path_counts()
    first = int(model.ordering[0])
    assert (counts[first, 50:] > 0).all()  # paths from each context input to the first output
    x, c = torch.zeros(1, 50), torch.randn(1, 2, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x, c)[0, first], c)
    assert (grad != 0).all()


# ------------------------------------------------------------------- sampling
def test_categorical_samples_follow_the_exact_distribution():
    categories = [3, 2, 4]
    model = randomize(
        MADE(3, [16], family="categorical", categories=categories, direct=True, ordering=[2, 0, 1]).double()
    )
    states = all_configurations(categories)
    exact = model.log_prob(states).exp().detach()
    samples = model.sample(200_000, generator=torch.Generator().manual_seed(0))
    codes = (samples[:, 0] * 8 + samples[:, 1] * 4 + samples[:, 2]).long()
    freq = torch.bincount(codes, minlength=24).double() / len(samples)
    assert 0.5 * (freq - exact).abs().sum() < 0.01


def mixture_cdf(family, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The conditional CDF of each dimension at ``x`` (for the probability integral transform)."""
    if isinstance(family, Gaussian):
        return torch.special.ndtr((x - params[..., 0]) / family.scale(params[..., 1]))
    logits, means, raw = params.unbind(-2)
    z = (x[..., None] - means) / family.scale(raw)
    return (torch.softmax(logits, -1) * torch.special.ndtr(z)).sum(-1)


@pytest.mark.parametrize("family", [{"name": "gaussian"}, {"name": "mog", "components": 3}])
def test_real_samples_follow_the_model(family):
    """F(x_d | x_<d) of exact samples is i.i.d. uniform: Kolmogorov-Smirnov distance per dimension."""
    model = randomize(MADE(3, [16], family=family, direct=True, ordering=[1, 2, 0], context_size=1).double(), 0.7)
    n = 50_000
    context = torch.full((n, 1), 0.3, dtype=torch.float64)
    x = model.sample(n, context, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        u = mixture_cdf(model.family, model(x, context), x)
    ecdf = torch.arange(1, n + 1, dtype=torch.float64) / n
    for d in range(3):
        distance = (u[:, d].sort().values - ecdf).abs().max()
        assert distance < 1.95 / math.sqrt(n)  # the 99.9% Kolmogorov bound, fixed seed


def test_mixture_sampler_is_an_exact_inverse_of_the_chosen_component():
    """With one uniform per dimension the component is picked by the cumulative weights
    and the rescaled residual drives that component's quantile."""
    family = MixtureOfGaussians(1, components=3)
    params = torch.tensor([[[[0.0, math.log(2), math.log(5)], [-5.0, 0.0, 5.0], [0.0, 0.0, 0.0]]]], dtype=torch.float64)
    weights = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64) / 8
    scale = family.scale(torch.zeros((), dtype=torch.float64))
    for u, k, start in [(0.05, 0, 0.0), (0.2, 1, 1 / 8), (0.9, 2, 3 / 8)]:
        x = family.sample(params, torch.tensor([[u]], dtype=torch.float64))
        residual = (u - start) / float(weights[k])
        expected = [-5.0, 0.0, 5.0][k] + scale * torch.special.ndtri(torch.tensor(residual, dtype=torch.float64))
        torch.testing.assert_close(x[0, 0], expected)


def test_inverse_cdf_never_lands_on_an_empty_category():
    family = Categorical(2, categories=[2, 4])
    logits = torch.tensor([[[0.0, -1e4, -math.inf, -math.inf], [0.0, 0.0, 0.0, -1e4]]])
    edge = torch.tensor([[1 - 2**-24, 1 - 2**-24]])
    x = family.sample(logits.expand(1, 2, 4), edge)
    assert x.tolist() == [[0.0, 2.0]]
    mog = MixtureOfGaussians(1, components=2)
    params = torch.tensor([[[[0.0, -200.0], [1.0, 50.0], [0.0, 0.0]]]])
    assert torch.isfinite(mog.sample(params, edge[:, :1])).all()


def test_mixed_sampling_and_log_prob_are_those_of_its_groups():
    model = randomize(MADE(6, [20], family=FAMILIES[3]["columns"], direct=True).double())
    x = model.sample(50, generator=torch.Generator().manual_seed(1))
    assert set(x[:, 0].tolist()) <= {0.0, 1.0} and set(x[:, 1].tolist()) <= {0.0, 1.0, 2.0}
    params, family = model(x), model.family
    uniform = torch.rand(50, 6, dtype=torch.float64)
    drawn, log_p = family.sample(params, uniform), family.log_prob(params, x)
    for group, cols in family.groups:
        own = params[
            :,
            torch.cat(
                [
                    torch.arange(sum(family.params_per_dim[:d]), sum(family.params_per_dim[: d + 1]))
                    for d in cols.tolist()
                ]
            ),
        ]
        shaped = group.shape_params(own)
        torch.testing.assert_close(drawn[:, cols], group.sample(shaped, uniform[:, cols]))
        torch.testing.assert_close(log_p[:, cols], group.log_prob(shaped, x[:, cols]))
    torch.testing.assert_close(family.distribution(params).log_prob(x), log_p)


# --------------------------------------------------------- scales and configs
@pytest.mark.parametrize("family", [Gaussian(1, min_scale=1e-3), MixtureOfGaussians(1, components=2, min_scale=1e-3)])
def test_scales_are_floored_smoothly_and_stay_finite(family):
    width = family.params_per_dim[0]
    for raw in (-1e4, 0.0, 1e4):
        flat = torch.full((1, width), raw, requires_grad=True)
        log_p = family.log_prob(family.shape_params(flat), torch.zeros(1, 1))
        log_p.sum().backward()
        assert torch.isfinite(log_p).all() and torch.isfinite(flat.grad).all()
    raw = torch.linspace(-30, 30, 101, dtype=torch.float64, requires_grad=True)
    scale = family.scale(raw)
    (slope,) = torch.autograd.grad(scale.sum(), raw)
    assert (scale > 1e-3).all() and (slope > 0).all()  # above the floor, and never flat like a clamp


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f["name"])
def test_family_config_round_trips_through_json_and_checkpoints(family, tmp_path):
    model = randomize(MADE(6, [12], family=family, num_masks=2, context_size=2), 0.5)
    rebuilt = make_family(6, json.loads(json.dumps(model.family.config())))
    assert rebuilt.config() == model.family.config()
    save_model(tmp_path, model)
    loaded, _ = load_model(tmp_path)
    c = torch.randn(20, 2)
    x = model.sample(20, c)
    assert torch.equal(model.log_prob(x, c, ensemble=2), loaded.log_prob(x, c, ensemble=2))
    per_dim = model.conditional_log_probs(x, c)
    assert per_dim.shape == (20, 6)
    torch.testing.assert_close(per_dim.sum(-1), model.log_prob(x, c))


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f["name"])
def test_ensemble_is_the_mean_of_probabilities(family):
    model = randomize(MADE(6, [12], family=family, num_masks=3).double(), 0.5)
    x = model.sample(10, generator=torch.Generator().manual_seed(2))
    joint = []
    for k in range(3):
        model.set_mask(k)
        joint.append(model.log_prob(x))
    model.set_mask(0)
    expected = torch.logsumexp(torch.stack(joint), 0) - math.log(3)
    torch.testing.assert_close(model.log_prob(x, ensemble=3), expected)


def test_public_parameter_layouts():
    x = torch.zeros(2, 3)
    assert MADE(3, [8], family="categorical", categories=[2, 3, 5])(x).shape == (2, 3, 5)
    assert torch.isinf(MADE(3, [8], family="categorical", categories=[2, 3, 5])(x)[:, 0, 2:]).all()
    assert MADE(3, [8], family="gaussian")(x).shape == (2, 3, 2)
    assert MADE(3, [8], family="mog", components=4)(x).shape == (2, 3, 3, 4)
    assert MADE(3, [8], family=MIXED)(x).shape == (2, 1 + 3 + 6)


def test_bad_family_options_are_explained():
    with pytest.raises(ValueError, match="unknown family"):
        MADE(3, [8], family="poisson")
    with pytest.raises(ValueError, match="one per dimension"):
        MADE(3, [8], family="categorical", categories=[2, 3])
    with pytest.raises(ValueError, match="categorical"):
        MADE(3, [8], family="categorical")
    with pytest.raises(ValueError, match="conflicts"):
        make_family(2, {"name": "mog", "components": 2}, components=3)
    with pytest.raises(ValueError, match="min_scale"):
        make_family(2, {"name": "gaussian", "min_scale": 0})
    with pytest.raises(ValueError, match="column 1"):
        make_family(2, [{"type": "binary"}, {"type": "ordinal"}])
    model = MADE(2, [8], family="categorical", categories=[2, 3])
    with pytest.raises(ValueError, match=r"dimension 1 must be a category in 0..2, found 3"):
        model.log_prob(torch.tensor([[0.0, 3.0]]))
    with pytest.raises(ValueError, match="binary"):
        MADE(3, [8], family=MIXED).log_prob(torch.tensor([[0.5, 0.0, 1.0]]))


def test_sampling_checks_the_context():
    model = MADE(5, [8], family="gaussian", context_size=2)
    with pytest.raises(ValueError, match=r"context must have shape \[3, 2\], got None"):
        model.sample(3)
    with pytest.raises(ValueError, match=r"context must have shape \[3, 2\], got \[4, 2\]"):
        model.sample(3, torch.zeros(4, 2))
    assert model.sample(3, torch.zeros(3, 2)).shape == (3, 5)


@pytest.mark.parametrize("family", ["bernoulli", "categorical", "gaussian"])
def test_in_support_agrees_with_outside_support_value_by_value(family):
    fam = make_family(1, family, categories=3 if family == "categorical" else None)
    values = [0.0, -0.0, 1.0, 2.0, -1.0, 0.5, 1e-45, 1 - 2**-24, 3.0, 1e30, float("nan"), float("inf"), -float("inf")]
    for dtype in (torch.float32, torch.float64):
        for v in values:
            x = torch.tensor([[v]], dtype=dtype)
            expected = not (bool(fam.outside_support(x).any()) or not bool(torch.isfinite(x).all()))
            assert bool(fam.in_support(x)) == expected, (family, v, dtype)
            # the same value among valid ones, anywhere in a larger block
            block = torch.zeros(7, 5, dtype=dtype)
            block[4, 2] = v
            assert bool(fam.in_support(block)) == expected, (family, v, dtype)
    assert bool(fam.in_support(torch.zeros(0, 1)))


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "family",
    [
        "gaussian",
        {"name": "mog", "components": 3},
        {"name": "mixed", "columns": [{"type": "real", "components": 2}, {"type": "binary"}, {"type": "real"}]},
    ],
)
def test_a_far_out_real_value_is_never_nan(family, dtype, validate):
    """1e30 makes the network's parameters overflow: the log-density is a number or -inf, never NaN,
    from the model, its ensemble and the family's distribution object alike."""
    model = MADE(3, [16], family=family, num_masks=3).to(dtype)
    model.validate_args = validate
    x = torch.tensor([[1e30, 0.0, -1.0], [0.1, 1.0, 1e30], [-1e30, 0.0, 0.5]], dtype=dtype)
    for log_p in (
        model.log_prob(x),
        model.log_prob(x, ensemble=3),
        model.family.distribution(model(x)).log_prob(x).sum(-1),
        model.family.log_prob(model(x), x).sum(-1),
    ):
        assert not log_p.isnan().any() and (log_p < -1e20).all()
    assert model.family.log_prob(model(x), x.new_full((3, 3), float("nan"))).isnan().all()  # NaN in, NaN out


# ------------------------------------------------------------------ registry
@pytest.fixture
def registry() -> Iterator[dict]:
    """The family registry, restored after the test so a stand-in family does not leak."""
    saved = dict(families.FAMILIES)
    yield families.FAMILIES
    families.FAMILIES.clear()
    families.FAMILIES.update(saved)


def define_geometric() -> type[Family]:
    """A stand-in family, one class and one registration: counts 0, 1, 2, ... with geometric
    conditionals, modelling the ``count`` columns of a mixed family."""

    @register_family("geometric")
    class Geometric(Family):
        column_type = "count"

        @classmethod
        def for_columns(cls, columns: list[dict], min_scale: float) -> Family:
            return cls(len(columns))

        @property
        def params_per_dim(self) -> list[int]:
            return [1] * self.num_inputs

        @property
        def columns(self) -> list[dict]:
            return [{"type": "count"} for _ in range(self.num_inputs)]

        def shape_params(self, flat: torch.Tensor) -> torch.Tensor:
            return flat

        def distribution(self, params: torch.Tensor) -> torch.distributions.Distribution:
            return torch.distributions.Geometric(logits=params, validate_args=False)

        def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return self.distribution(params).log_prob(x)

        def sample(self, params: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
            # Inverse CDF: P(X > k) = (1 - p)^(k + 1).
            return torch.floor(torch.log1p(-uniform.to(params.dtype)) / torch.nn.functional.logsigmoid(-params))

        def outside_support(self, x: torch.Tensor) -> torch.Tensor:
            return (x < 0) | (x != x.round())

        def support_text(self, dim: int) -> str:
            return "a count (0, 1, 2, ...)"

    return Geometric


def test_a_registered_family_is_made_by_name_and_models_its_columns_in_a_mixed_family(registry):
    geometric = define_geometric()
    assert registry["geometric"] is geometric and geometric.name == "geometric"
    assert isinstance(make_family(2, "geometric"), geometric)
    columns = [{"type": "count"}, {"type": "binary"}, {"type": "count"}]
    mixed = Mixed(3, columns)
    assert [(type(f), cols.tolist()) for f, cols in mixed.groups] == [(geometric, [0, 2]), (families.Bernoulli, [1])]
    assert family_for_columns([{"type": "count"}] * 2).config() == {"name": "geometric"}
    # tanh units and small weights bound every logit (|logit| < 3): the tail beyond 300 is negligible
    model = randomize(MADE(3, [12], family=columns, activation="tanh", seed=1).double(), 0.2)
    counts = torch.arange(300, dtype=torch.float64)
    grid_x = torch.cartesian_prod(counts, torch.tensor([0.0, 1.0], dtype=torch.float64), counts)
    with torch.no_grad():
        assert abs(float(model.log_prob(grid_x).exp().sum()) - 1.0) < 1e-6
        drawn = model.sample(50, generator=torch.Generator().manual_seed(0))
    assert not bool(model.family.outside_support(drawn).any()) and drawn[:, [0, 2]].max() > 1
    with pytest.raises(ValueError, match=r"column 0: unknown keys \['categories'\] for a count column"):
        Mixed(1, [{"type": "count", "categories": 3}])


def test_the_distribution_support_of_a_registered_family_is_that_familys_rule(registry):
    define_geometric()
    model = MADE(3, [12], family=[{"type": "count"}, {"type": "binary"}, {"type": "count"}], seed=1)
    support = MADEDistribution(model).support
    values = torch.tensor(
        [[5.0, 1.0, 0.0], [2.5, 0.0, 1.0], [3.0, 2.0, 0.0], [-1.0, 0.0, 0.0], [float("inf"), 0.0, 0.0]]
    )
    assert support.check(values).tolist() == [True, False, False, False, False]  # counts beyond 1 are in it
    assert support.check(values[:2].reshape(2, 1, 3)).tolist() == [[True], [False]]  # any batch shape
    assert MADEDistribution(MADE(2, [8], family="geometric")).support.check(
        torch.tensor([[7.0, 0.0], [0.5, 1.0]])
    ).tolist() == [True, False]


def test_the_registry_names_what_it_knows_and_refuses_a_second_family_of_one_name(registry):
    with pytest.raises(ValueError, match="expected a dict with type binary, categorical or real, got"):
        Mixed(1, [{"type": "count"}])
    define_geometric()
    with pytest.raises(ValueError, match="expected a dict with type binary, categorical, real or count, got"):
        Mixed(1, [{"type": "ordinal"}])
    with pytest.raises(ValueError, match="'geometric' is already registered"):
        define_geometric()
