import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lbhessian.core.errors import LbhError
from lbhessian.core.models import MaxPool2d, build_model, param_count
from lbhessian.curvature.operators import WeightHessian

CIFAR = {"classes": 10, "shape": [3, 32, 32], "mean": [0.0] * 3, "std": [1.0] * 3}
MNIST = {"classes": 10, "shape": [1, 28, 28], "mean": [0.13], "std": [0.31]}


@pytest.mark.parametrize(
    "name, info, count",
    [("C1", CIFAR, 1_756_682), ("C2", CIFAR, 1_148_746), ("ResNet20", CIFAR, 272_474), ("M1", MNIST, 431_080)],
)
def test_parameter_counts(name, info, count):
    assert param_count(build_model(name, info)) == count


def test_resnet_depths_and_classes():
    r32 = build_model("ResNet32", {**CIFAR, "classes": 100})
    assert r32(torch.rand(2, 3, 32, 32)).shape == (2, 100)
    assert param_count(r32) > param_count(build_model("ResNet20", CIFAR))
    with pytest.raises(LbhError, match="6n\\+2"):
        build_model("ResNet21", CIFAR)


def test_unknown_name_lists_known_ones():
    with pytest.raises(LbhError, match="model 'VGG16' is unknown; known: M1, M2, C1, C2, ResNet20"):
        build_model("VGG16", CIFAR)


def test_image_size_mismatch_is_clear():
    with pytest.raises(LbhError, match=r"model C1 does not fit .* shape \[1, 28, 28\]"):
        build_model("C1", MNIST)


def test_normalisation_is_inside_the_model():
    info = {**MNIST, "mean": [0.5], "std": [0.25]}
    model = build_model("M2", info).eval()
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(model(x), model.net((x - 0.5) / 0.25))


def _relu_before_pool(model):
    """M1 as LeNet is usually written (conv, ReLU, pool): the order M1 swapped for speed."""
    net = copy.deepcopy(model)
    for relu, pool in ((1, 2), (4, 5)):
        assert isinstance(net.net[relu], nn.MaxPool2d) and isinstance(net.net[pool], nn.ReLU)
        net.net[relu], net.net[pool] = nn.ReLU(), nn.MaxPool2d(2)
    return net


def test_m1_pooling_before_relu_changes_no_bit():
    """Forward, gradient and Hessian-vector product of M1 equal the conv-ReLU-pool order bit for bit, on images
    with a blank background (the ties among equal activations that max-pooling must break alike)."""
    torch.manual_seed(0)
    model = build_model("M1", MNIST).eval()
    other = _relu_before_pool(model)
    x = torch.rand(40, 1, 28, 28) * (torch.rand(40, 1, 28, 28) > 0.7)  # 70% blank pixels
    y = torch.randint(0, 10, (40,))
    with torch.no_grad():
        assert torch.equal(model(x), other(x))
    grads = [torch.autograd.grad(F.cross_entropy(m(x), y), list(m.parameters())) for m in (model, other)]
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
    v = torch.randn(1, param_count(model))
    products = [WeightHessian(m, x, y).matvec(v) for m in (model, other)]
    assert torch.equal(*products)
    assert products[0].abs().max() > 0


@pytest.mark.parametrize("args", [(2,), (3, 2, 1)])
def test_pooling_without_gradient_is_max_pool_bit_for_bit(args):
    """models.MaxPool2d against nn.MaxPool2d on activations with ties: the channels-last path (no gradient) gives
    the same output in the input's layout; with a gradient, the same output, input gradient and second-order
    product."""
    torch.manual_seed(1)
    x = torch.randn(6, 5, 12, 12)
    x[:, :, :4] = 0.5  # a blank band: every window there is a tie
    conv = nn.Conv2d(5, 5, 3)
    fast, stock = MaxPool2d(*args), nn.MaxPool2d(*args)
    with torch.no_grad():
        h = torch.relu(conv(x))
        assert fast(h).is_contiguous() and torch.equal(fast(h), stock(h))
    outs, grads, products = [], [], []
    for pool in (fast, stock):
        xi = x.clone().requires_grad_()
        out = pool(torch.relu(conv(xi)))
        g = torch.autograd.grad(out.pow(2).sum(), [xi, conv.weight], create_graph=True)
        outs.append(out.detach())
        grads.append(g[0].detach())
        products.append(torch.autograd.grad(g[1], conv.weight, torch.ones_like(conv.weight))[0])
    assert torch.equal(*outs) and torch.equal(*grads) and torch.equal(*products)
    assert products[0].abs().max() > 0
