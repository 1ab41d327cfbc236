"""core.layers against torch.nn: the same numbers bit for bit (the time is benchmarks/bench_models.py's)."""

import pytest
import torch
from torch import nn

from lbhessian.core.layers import ImageConv2d, MaxPool2d


def _second_order(first, pool, x, conv, v):
    """Output, input gradient (when x needs one) and a Hessian-vector product in the weights of ``first`` and
    ``conv`` of sum(pool(relu(conv(relu(first(x))))) ** 2)."""
    params = [first.weight, conv.weight] + ([first.bias] if first.bias is not None else [])
    out = pool(torch.relu(conv(torch.relu(first(x)))))
    wrt = params + ([x] if x.requires_grad else [])
    grads = torch.autograd.grad(out.pow(2).sum(), wrt, create_graph=True)
    products = torch.autograd.grad(grads[: len(params)], params, v[: len(params)])
    return out.detach(), [g.detach() for g in grads], products


@pytest.mark.parametrize("args", [(2,), (3, 2, 1)])
def test_max_pool_is_torch_bit_for_bit(args):
    """Without a gradient (channels-last path): the same output in the input's layout; with one: the same
    output, gradients and second-order products. Activations with ties (a blank band)."""
    torch.manual_seed(1)
    x = torch.randn(6, 3, 14, 14)
    x[:, :, :4] = 0.5  # every window there is a tie
    first, conv = nn.Conv2d(3, 5, 3), nn.Conv2d(5, 5, 1)
    fast, stock = MaxPool2d(*args), nn.MaxPool2d(*args)
    with torch.no_grad():
        h = torch.relu(first(x))
        assert fast(h).is_contiguous() and torch.equal(fast(h), stock(h))
    v = [torch.randn_like(p) for p in (first.weight, conv.weight, first.bias)]
    ours, theirs = (_second_order(first, pool, x, conv, v) for pool in (fast, stock))
    assert torch.equal(ours[0], theirs[0])
    assert all(torch.equal(a, b) for a, b in zip(ours[1] + list(ours[2]), theirs[1] + list(theirs[2]), strict=True))


@pytest.mark.parametrize("bias, padding, stride", [(True, 0, 1), (False, 1, 1), (True, 2, 2)])
@pytest.mark.parametrize("input_grad", [False, True])
def test_image_conv_is_torch_bit_for_bit(bias, padding, stride, input_grad):
    """ImageConv2d against nn.Conv2d with the same weights: output, gradients and Hessian-vector products in the
    weights, with an input that needs no gradient (its own path) and one that does (torch's)."""
    torch.manual_seed(2)
    x = torch.rand(8, 2, 12, 12) * (torch.rand(8, 2, 12, 12) > 0.6)
    ours = ImageConv2d(2, 4, 3, stride, padding, bias=bias)
    stock = nn.Conv2d(2, 4, 3, stride, padding, bias=bias)
    stock.load_state_dict(ours.state_dict())
    conv = nn.Conv2d(4, 3, 3)
    v = [torch.randn_like(p) for p in (ours.weight, conv.weight) + ((ours.bias,) if bias else ())]
    results = [
        _second_order(first, nn.MaxPool2d(2), x.clone().requires_grad_(input_grad), conv, v) for first in (ours, stock)
    ]
    (out_a, grads_a, prod_a), (out_b, grads_b, prod_b) = results
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a + list(prod_a), grads_b + list(prod_b), strict=True))
    assert prod_a[0].abs().max() > 0


def test_image_conv_skips_the_input_term():
    """The point of ImageConv2d: a Hessian-vector product through it runs no transposed convolution back to the
    image (torch's double backward does, whether or not the image needs a gradient)."""
    torch.manual_seed(3)
    x = torch.rand(16, 1, 28, 28)
    counts = {}
    for name, first in (("ours", ImageConv2d(1, 6, 5)), ("torch", nn.Conv2d(1, 6, 5))):
        g = torch.autograd.grad(torch.relu(first(x)).pow(2).sum(), first.weight, create_graph=True)[0]
        with torch.profiler.profile() as prof:
            torch.autograd.grad(g, first.weight, torch.ones_like(g))
        counts[name] = sum(e.count for e in prof.key_averages() if e.key in ("aten::convolution", "aten::_convolution"))
    assert counts["ours"] < counts["torch"], counts
