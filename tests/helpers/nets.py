"""Tiny nets and data for the curvature, attack and training tests, and explicit references (the weight
Hessian by autograd)."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lbhessian.core.data import Split


def fit_sgd(model, x, y, *, epochs=8, lr=0.05, batch=50, seed=0):
    """A few epochs of plain SGD with momentum: a really trained net for attack and curvature tests."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(batch):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


def tiny_net(bn: bool, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 2, 3), nn.Tanh()]
    if bn:
        layers.append(nn.BatchNorm2d(2))
    layers += [nn.Flatten(), nn.Linear(2 * 4 * 4, 5)]
    net = nn.Sequential(*layers).double()
    if bn:  # non-trivial running statistics, then leave the net in train mode
        with torch.no_grad():
            for _ in range(3):
                net(torch.rand(16, 1, 6, 6, dtype=torch.float64) * 2)
    return net


def tiny_data(n: int = 30, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 6, 6, generator=g, dtype=torch.float64), torch.randint(0, 5, (n,), generator=g)


def explicit_weight_hessian(net, x, y):
    """Independent reference: the Hessian of the mean eval-mode loss over a flat parameter vector."""
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    sizes = [s.numel() for s in shapes]

    def f(theta):
        parts = dict(
            zip(names, [t.view(s) for t, s in zip(torch.split(theta, sizes), shapes, strict=False)], strict=False)
        )
        return F.cross_entropy(functional_call(net, parts, (x,)), y)

    training = net.training
    net.eval()
    h = torch.autograd.functional.hessian(f, flat)
    net.train(training)
    return h


def state(net):
    return [m.training for m in net.modules()], {k: v.clone() for k, v in net.state_dict().items()}


def assert_same_state(net, before):
    flags, sd = before
    assert [m.training for m in net.modules()] == flags
    for k, v in net.state_dict().items():
        assert torch.equal(v, sd[k]), k


MNIST_INFO = {"classes": 10, "shape": [1, 28, 28], "mean": [0.1307], "std": [0.3081]}


def mnist_like(n: int, seed: int = 0):
    """Ten noisy class prototypes: learnable in a few steps, uint8 like prepared data."""
    g = torch.Generator().manual_seed(seed)
    proto = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(99))
    y = torch.randint(0, 10, (n,), generator=g)
    x = (0.7 * proto[y] + 0.3 * torch.rand(n, 1, 28, 28, generator=g)).clamp(0, 1)
    return Split((x * 255).round().to(torch.uint8), y)


def relu_bn_net(classes=4):
    """ReLU + max-pool + BatchNorm (eval: affine): piecewise linear in the image."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.ReLU(),
        nn.BatchNorm2d(3),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(12, 16),
        nn.ReLU(),
        nn.Linear(16, classes),
    )
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(32, 1, 6, 6))
    return net


def small_split(n, seed, classes=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 6, 6), generator=g, dtype=torch.uint8)
    return Split(x, torch.randint(0, classes, (n,), generator=g))
