import copy

import pytest
import torch
import torch.nn.functional as F

import made.fast.dispatch
from made.fast.dispatch import fast_path
from made.model.layers import MaskedLinear


def test_mask_is_a_buffer_that_moves_and_saves():
    layer = MaskedLinear(3, 2)
    assert "mask" in layer.state_dict()
    layer.set_mask(torch.tensor([[True, False, False], [False, True, True]]))
    double = layer.double()
    assert double.weight.dtype == torch.float64 and double.mask.dtype == torch.bool
    x = torch.randn(4, 3, dtype=torch.float64)
    expected = x @ (layer.weight * layer.mask).T + layer.bias
    torch.testing.assert_close(layer(x), expected)


def test_masked_weights_get_no_gradient_through_the_mask():
    layer = MaskedLinear(3, 2, conditioning=True)
    mask = torch.tensor([[True, False, False], [False, True, True]])
    layer.set_mask(mask)
    layer(torch.randn(5, 3)).sum().backward()
    assert torch.all(layer.weight.grad[~mask] == 0)
    assert torch.all(layer.conditioning.grad[~mask] == 0)
    assert torch.all(layer.conditioning.grad[mask] != 0)


def test_wrong_mask_shape_rejected():
    with pytest.raises(ValueError, match="mask shape"):
        MaskedLinear(3, 2).set_mask(torch.ones(3, 2, dtype=torch.bool))


# ---------------------------------------------------------------- fast paths
def made_layer(out=300, inp=200, conditioning=False, bias=True, seed=0):
    """A float64 layer with a MADE mask (random degrees), large enough for block products."""
    gen = torch.Generator().manual_seed(seed)
    layer = MaskedLinear(inp, out, bias=bias, conditioning=conditioning).double()
    deg_in = torch.randint(1, 60, (inp,), generator=gen)
    layer.set_mask(torch.randint(1, 60, (out,), generator=gen)[:, None] >= deg_in[None, :])
    return layer


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_same_state(module, before):
    after = module.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


@pytest.mark.parametrize("mode", ["auto", "dense", "blocks"])
@pytest.mark.parametrize("conditioning", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_reused_weights_equal_the_plain_path_and_touch_nothing(mode, conditioning, bias):
    layer = made_layer(conditioning=conditioning, bias=bias)
    x = torch.randn(50, 200, dtype=torch.float64)
    with fast_path("off"), torch.no_grad():
        expected = layer(x)
    before = snapshot(layer)
    with fast_path(mode), torch.no_grad():
        for _ in range(3):  # first call, reuse, and (auto) the block upgrade
            torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    assert_same_state(layer, before)
    assert all(not k.startswith("_") for k in layer.state_dict())


@pytest.mark.parametrize("conditioning", [False, True])
def test_training_gradients_equal_the_plain_path(conditioning):
    layers = {mode: made_layer(conditioning=conditioning) for mode in ("off", "auto")}
    layers["auto"].load_state_dict(layers["off"].state_dict())
    grads = {}
    for mode, layer in layers.items():
        x = torch.randn(40, 200, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
        with fast_path(mode):
            for _ in range(2):  # the second step reuses the product buffer
                layer.zero_grad()
                x.grad = None
                (layer(x) ** 2).sum().backward()
        grads[mode] = [x.grad] + [p.grad for p in layer.parameters()]
    for fast, plain in zip(grads["auto"], grads["off"]):
        torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
    assert torch.all(layers["auto"].weight.grad[~layers["auto"].mask] == 0)


@pytest.mark.parametrize("conditioning", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_training_on_the_staircase_equals_the_plain_path_step_after_step(conditioning, bias):
    """From the second step with the same mask, 'auto' trains a large layer on its staircase."""
    layers = {mode: made_layer(out=300, inp=300, conditioning=conditioning, bias=bias) for mode in ("off", "auto")}
    layers["auto"].load_state_dict(layers["off"].state_dict())
    optimizers = {mode: torch.optim.Adam(layer.parameters(), lr=0.01) for mode, layer in layers.items()}
    gen = torch.Generator().manual_seed(1)
    for step in range(4):
        x = torch.randn(30, 300, dtype=torch.float64, generator=gen)
        for mode, layer in layers.items():
            with fast_path(mode):
                optimizers[mode].zero_grad()
                torch.tanh(layer(x)).square().sum().backward()
                optimizers[mode].step()
        assert (layers["auto"].kernels.plan is not None) == (step > 0)
        for fast, plain in zip(layers["auto"].parameters(), layers["off"].parameters()):
            torch.testing.assert_close(fast, plain, rtol=1e-10, atol=1e-12)
    assert torch.all(layers["auto"].weight.grad[~layers["auto"].mask] == 0)


def test_a_mask_that_changes_every_step_keeps_the_dense_product():
    layer = made_layer(out=300, inp=300)
    masks = [layer.mask.clone(), made_layer(out=300, inp=300, seed=3).mask]
    for step in range(4):
        layer.set_mask(masks[step % 2])
        layer(torch.randn(5, 300, dtype=torch.float64)).sum().backward()
    assert layer.kernels.plan is None


def test_two_forwards_before_one_backward_keep_their_own_products():
    """The second forward must not overwrite the product the first one's backward needs."""
    x = torch.randn(10, 200, dtype=torch.float64)
    grads = {}
    for mode in ("off", "auto"):
        layer = made_layer()
        torch.nn.init.constant_(layer.weight, 0.5)
        torch.nn.init.constant_(layer.bias, -0.25)
        with fast_path(mode):
            first = layer(x)
            with torch.no_grad():
                layer.weight.mul_(3.0)  # a different product for the second forward
            second = layer(x)
            (first * second).sum().backward()
        grads[mode] = layer.weight.grad
    torch.testing.assert_close(grads["auto"], grads["off"], rtol=1e-12, atol=1e-12)


def fused_adam_available():
    try:
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], fused=True)
    except (RuntimeError, ValueError):
        return False
    return True


@pytest.mark.parametrize(
    "change",
    ["adam", "adam-foreach", "adam-fused", "sgd", "set_mask", "load_state_dict", "no_grad_edit", "to_float"],
)
def test_reused_weights_follow_every_change(change):
    if change == "adam-fused" and not fused_adam_available():
        pytest.skip("no fused Adam on this build")
    layer = made_layer(conditioning=True)
    x = torch.randn(20, 200, dtype=torch.float64)
    with torch.no_grad():
        layer(x), layer(x)  # dense, then blocks
    if change.startswith("adam") or change == "sgd":
        kwargs = {"adam-foreach": dict(foreach=True), "adam-fused": dict(fused=True)}.get(change, {})
        opt = (
            torch.optim.SGD(layer.parameters(), lr=0.1)
            if change == "sgd"
            else torch.optim.Adam(layer.parameters(), lr=0.1, **kwargs)
        )
        layer(x).square().sum().backward()
        opt.step()
    elif change == "set_mask":
        layer.set_mask(~layer.mask)
    elif change == "load_state_dict":
        layer.load_state_dict(made_layer(conditioning=True, seed=9).state_dict())
    elif change == "no_grad_edit":
        with torch.no_grad():
            layer.bias.add_(1.0)
            layer.conditioning.mul_(2.0)
    else:
        layer.float()
        x = x.float()
    with torch.no_grad():
        fast = layer(x)
        with fast_path("off"):
            plain = layer(x)
    tolerance = 1e-5 if change == "to_float" else 1e-12
    torch.testing.assert_close(fast, plain, rtol=tolerance, atol=tolerance)


def test_writes_through_data_need_clear_cache():
    layer = made_layer()
    x = torch.randn(5, 200, dtype=torch.float64)
    with torch.no_grad():
        layer(x)
        layer.weight.data.mul_(2.0)  # bypasses the version counter
        layer.clear_cache()
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight * layer.mask, layer.bias))


def test_function_transforms_and_compile_take_the_plain_path():
    layer = made_layer(out=20, inp=15)
    x = torch.randn(15, dtype=torch.float64)
    jac = torch.func.jacrev(layer)(x)
    torch.testing.assert_close(jac, layer.weight * layer.mask)
    _, tangent = torch.func.jvp(layer, (x,), (torch.ones_like(x),))
    torch.testing.assert_close(tangent, (layer.weight * layer.mask).sum(1))
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x[None]), F.linear(x[None], layer.weight * layer.mask, layer.bias))


def test_unknown_fast_path_rejected():
    with pytest.raises(ValueError, match="fast path"):
        with fast_path("fastest"):
            pass


def test_pickles_carry_no_caches(tmp_path):
    layer = made_layer()
    x = torch.randn(30, 200, dtype=torch.float64)
    layer(x).sum().backward()  # fills the product buffer
    with torch.no_grad():
        expected = layer(x)  # and the reused weights
    torch.save(layer, tmp_path / "layer.pt")
    loaded = torch.load(tmp_path / "layer.pt", weights_only=False)
    assert loaded.kernels.frozen is None and loaded.kernels.product.tensor is None
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(copy.deepcopy(layer)(x), expected, rtol=1e-12, atol=1e-12)


def test_conditioning_weights_are_masked_and_applied_to_the_ones_vector():
    """Eq. 14: h = g(b + (W * M) x + (U * M) 1), the same mask on W and on U."""
    layer = MaskedLinear(4, 3, conditioning=True).double()
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    layer.set_mask(mask)
    x = torch.randn(5, 4, dtype=torch.float64)
    ones = torch.ones(4, dtype=torch.float64)
    expected = x @ (layer.weight * mask).T + layer.bias + (layer.conditioning * mask) @ ones
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    # the term depends on the connectivity only: a unit with no inputs gets its bias alone
    torch.testing.assert_close(layer(torch.zeros(1, 4, dtype=torch.float64))[0, 2], layer.bias[2])
    other = torch.tensor([[0, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    before = layer(torch.zeros(1, 4, dtype=torch.float64))
    layer.set_mask(other)
    after = layer(torch.zeros(1, 4, dtype=torch.float64))
    assert before[0, 0] != after[0, 0] and before[0, 1] == after[0, 1]


def test_made_puts_conditioning_weights_on_hidden_and_output_layers_not_direct():
    from made import MADE

    model = MADE(6, [10, 10], direct=True, conditioning=True, num_masks=3)
    assert all(layer.conditioning is not None for layer in [*model.hidden, model.output])
    assert model.direct.conditioning is None
    assert MADE(6, [10], direct=True).output.conditioning is None


@pytest.mark.parametrize("shape", [(3, 7), (7, 3), (5, 5)])
def test_orthogonal_reset_gives_semi_orthogonal_weights_and_zero_biases(shape):
    out_features, in_features = shape
    layer = MaskedLinear(in_features, out_features, conditioning=True).double()
    layer.reset_orthogonal()
    for weight in (layer.weight, layer.conditioning):
        small = min(shape)
        gram = weight @ weight.T if out_features == small else weight.T @ weight
        torch.testing.assert_close(gram, torch.eye(small, dtype=torch.float64), rtol=0, atol=1e-6)
    assert torch.all(layer.bias == 0)


@pytest.mark.parametrize("mode", ["auto", "dense", "blocks", "off"])
@pytest.mark.parametrize("inputs", [1, 1 << 20])
def test_frozen_layer_equals_the_plain_path_until_rebuilt(mode, inputs):
    layer = made_layer(conditioning=True)
    x = torch.randn(9, 200, dtype=torch.float64)
    with fast_path(mode), torch.no_grad():
        frozen = layer.frozen(inputs)
        torch.testing.assert_close(
            frozen(x),
            F.linear(x, layer.masked_weight(), layer.bias) + (layer.conditioning * layer.mask).sum(1),
            rtol=1e-12,
            atol=1e-12,
        )
        layer.weight.mul_(2.0)
        rebuilt = layer.frozen(inputs)
        expected = F.linear(x, layer.masked_weight(), layer.bias) + (layer.conditioning * layer.mask).sum(1)
        torch.testing.assert_close(rebuilt(x), expected, rtol=1e-12, atol=1e-12)


def test_frozen_layer_under_autograd_is_the_module_itself():
    layer = made_layer()
    assert layer.frozen(100) == layer.forward


def test_a_new_mask_gets_block_products_only_over_enough_rows():
    from made.fast.dispatch import BLOCKS_NEW_MASK_ROWS

    layer = made_layer(out=300, inp=300)  # 90,000 weights: block products pay on the CPU
    x = torch.randn(BLOCKS_NEW_MASK_ROWS, 300, dtype=torch.float64)
    with torch.no_grad():
        expected = F.linear(x, layer.masked_weight(), layer.bias)
        small = layer.frozen(300 * 300)  # 300 rows of a mask never seen: the dense product
        assert layer.kernels.frozen.blocks is None
        torch.testing.assert_close(small(x), expected, rtol=1e-12, atol=1e-12)
        layer.set_mask(made_layer(out=300, inp=300, seed=4).mask)
        expected = F.linear(x, layer.masked_weight(), layer.bias)
        large = layer.frozen(x.numel())  # enough rows to pay for finding the staircase
        assert layer.kernels.frozen.blocks is not None
        torch.testing.assert_close(large(x), expected, rtol=1e-12, atol=1e-12)
        layer.weight.mul_(0.5)  # same mask, staircase known: blocks at once for 100 rows
        layer.frozen(300 * 100)
        assert layer.kernels.frozen.blocks is not None


def test_no_process_wide_optimizer_hook():
    """Building and training a model registers no global optimizer hook (a fresh interpreter)."""
    import subprocess
    import sys

    code = (
        "import torch, torch.optim.optimizer as o; before = dict(o._global_optimizer_post_hooks); "
        "import made, made.cli, made.io.checkpoint, made.training.loop; "
        "m = made.MADE(3, [4]); opt = torch.optim.Adam(m.parameters()); "
        "m.log_prob(torch.ones(2, 3)).sum().backward(); opt.step(); "
        "assert dict(o._global_optimizer_post_hooks) == before, 'global hook'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("fused", [False, True])
def test_reused_weights_built_between_backward_and_step_are_not_reused_after_it(fused):
    """A fused optimizer updates weights without bumping their version counters."""
    if fused and not fused_adam_available():
        pytest.skip("no fused Adam on this build")
    layer = made_layer(conditioning=True)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1, fused=fused)
    x = torch.randn(20, 200, dtype=torch.float64)
    for _ in range(2):
        layer(x).square().sum().backward()
        with torch.no_grad():
            layer(x), layer(x)  # evaluated while the step is pending
        opt.step()
        with torch.no_grad():
            fast = layer(x)
            with fast_path("off"):
                plain = layer(x)
        torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
        opt.zero_grad()  # set_to_none: the next backward is counted


@pytest.mark.parametrize("mode", ["auto", "blocks"])
def test_a_layer_used_under_inference_mode_then_trained_and_evaluated(mode):
    """Caches made under torch.inference_mode() hold inference tensors; autograd refuses them outside."""
    layer = made_layer(out=300, inp=300, conditioning=True)
    x = torch.randn(30, 300, dtype=torch.float64)
    with fast_path(mode):
        with torch.inference_mode():
            inside = layer(x), layer(x)
        loss = layer(x).square().sum()
        loss.backward()
        with torch.no_grad():
            after = layer(x)
    with fast_path("off"), torch.no_grad():
        plain = layer(x)
    torch.testing.assert_close(inside[1], plain, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(after, plain, rtol=1e-12, atol=1e-12)
    assert torch.all(layer.weight.grad[~layer.mask] == 0)


def test_fast_path_choice_is_scoped_to_its_thread():
    import threading

    seen = []
    with fast_path("off"):
        thread = threading.Thread(target=lambda: seen.append(made.fast.dispatch.get_fast_path()))
        thread.start()
        thread.join()
        assert made.fast.dispatch.get_fast_path() == "off"
    assert seen == ["auto"] and made.fast.dispatch.get_fast_path() == "auto"


def test_reused_weights_follow_a_layer_unfrozen_after_its_first_evaluation():
    """Fine-tuning: parameters that did not require gradients when first evaluated, then do."""
    layer = made_layer(conditioning=True)
    layer.requires_grad_(False)
    x = torch.randn(20, 200, dtype=torch.float64)
    with torch.no_grad():
        layer(x)
    layer.requires_grad_(True)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1, fused=fused_adam_available())
    layer(x).square().sum().backward()
    opt.step()
    opt.zero_grad()
    with torch.no_grad():
        fast = layer(x)
        with fast_path("off"):
            plain = layer(x)
    torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
