import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lbhessian.core.errors import LbhError
from lbhessian.core.models import build_model, param_count
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


def _stock(model):
    """M1 in plain torch.nn as LeNet is usually written (nn.Conv2d, ReLU, nn.MaxPool2d) with the same weights."""
    net = copy.deepcopy(model)
    first = nn.Conv2d(1, 20, 5)
    first.load_state_dict(net.net[0].state_dict())
    net.net[0] = first
    for pool, relu in ((1, 2), (4, 5)):
        assert isinstance(net.net[pool], nn.MaxPool2d) and isinstance(net.net[relu], nn.ReLU)
        net.net[pool], net.net[relu] = nn.ReLU(), nn.MaxPool2d(2)
    return net


def test_m1_is_lenet_in_plain_torch_bit_for_bit():
    """M1 (pooling before ReLU, core.layers' convolution and pooling) against the same weights in plain torch.nn
    in LeNet's usual order: forward (with and without a gradient), weight gradient, input gradient and
    Hessian-vector product are equal bit for bit, on images with a blank background (ties in max-pooling)."""
    torch.manual_seed(0)
    model = build_model("M1", MNIST).eval()
    stock = _stock(model)
    assert type(model.net[0]) is not nn.Conv2d and type(stock.net[0]) is nn.Conv2d
    x = torch.rand(40, 1, 28, 28) * (torch.rand(40, 1, 28, 28) > 0.7)  # 70% blank pixels
    y = torch.randint(0, 10, (40,))
    with torch.no_grad():
        assert torch.equal(model(x), stock(x))
    grads = [torch.autograd.grad(F.cross_entropy(m(x), y), list(m.parameters())) for m in (model, stock)]
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
    xs = [x.clone().requires_grad_() for _ in range(2)]
    inputs = [torch.autograd.grad(F.cross_entropy(m(xi), y), xi)[0] for m, xi in zip((model, stock), xs, strict=True)]
    assert torch.equal(*inputs)
    v = torch.randn(1, param_count(model))
    products = [WeightHessian(m, x, y).matvec(v) for m in (model, stock)]
    assert torch.equal(*products)
    assert products[0].abs().max() > 0
