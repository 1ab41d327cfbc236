"""The paper's networks. Each takes [0, 1] pixels; normalisation is its first layer. Their first convolution and
their max-pooling are core.layers' (torch.nn's, bit for bit, in less CPU time)."""

import torch
from torch import nn
from torch.nn import functional as F

from lbhessian.core.errors import LbhError
from lbhessian.core.layers import ImageConv2d, MaxPool2d
from lbhessian.core.results import RESNET


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        # Buffers without persistence: they come from the dataset info, not from training.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def m1(info):
    """LeNet-5 style (the paper's M1 architecture was not recovered): 431,080 weights on MNIST.

    Each block pools before its ReLU: both are monotone and exact, so relu(pool(x)) = pool(relu(x)) bit for bit,
    and so are the gradients and Hessian products (tests/test_models.py), while the ReLU sees a quarter of the
    values (benchmarks/bench_models.py)."""
    c, h, w = info["shape"]
    flat = 50 * ((h - 4) // 2 - 4) // 2 * (((w - 4) // 2 - 4) // 2)
    return nn.Sequential(
        ImageConv2d(c, 20, 5),
        MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(20, 50, 5),
        MaxPool2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(flat, 500),
        nn.ReLU(),
        nn.Linear(500, info["classes"]),
    )


def m2(info):
    """A small MLP (stands in for the paper's unrecovered fifth network); works on any image size."""
    c, h, w = info["shape"]
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(c * h * w, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, info["classes"]),
    )


def c1(info):
    """C1 of the paper (CIFAR-10): 1,756,682 weights."""
    c = info["shape"][0]
    return nn.Sequential(
        ImageConv2d(c, 64, 5, padding=2),
        nn.ReLU(),
        nn.BatchNorm2d(64),
        MaxPool2d(3, 2, 1),
        nn.Conv2d(64, 64, 5, padding=2),
        nn.ReLU(),
        nn.BatchNorm2d(64),
        MaxPool2d(3, 2, 1),
        nn.Flatten(),
        nn.Linear(4096, 384),
        nn.ReLU(),
        nn.Linear(384, 192),
        nn.ReLU(),
        nn.Linear(192, info["classes"]),
    )


def c2(info):
    """C2 of the paper (CIFAR-10): 1,148,746 weights, no padding anywhere."""
    c = info["shape"][0]
    return nn.Sequential(
        ImageConv2d(c, 64, 3),
        nn.ReLU(),
        nn.BatchNorm2d(64),
        nn.Conv2d(64, 64, 3),
        nn.ReLU(),
        nn.BatchNorm2d(64),
        MaxPool2d(2),
        nn.Conv2d(64, 128, 3),
        nn.ReLU(),
        nn.BatchNorm2d(128),
        nn.Conv2d(128, 128, 3),
        nn.ReLU(),
        nn.BatchNorm2d(128),
        MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3200, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, info["classes"]),
    )


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        # Projection shortcut (1x1 conv + BN) where the shape changes: gives the paper's 272,474 for ResNet-20.
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth, in_channels, classes):
        super().__init__()
        n = (depth - 2) // 6
        self.conv = ImageConv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                layers.append(BasicBlock(cin, width, stride if i == 0 else 1))
                cin = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        x = self.layers(F.relu(self.bn(self.conv(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


MODELS = {"M1": m1, "M2": m2, "C1": c1, "C2": c2}
MODEL_NAMES = [*MODELS, "ResNet20", "ResNet<6n+2>"]


def build_model(name, info):
    """Build network `name` for a dataset described by info (classes, shape, mean, std)."""
    match = RESNET.match(name)
    if match:
        depth = int(match.group(1))
        if depth < 8 or (depth - 2) % 6:
            raise LbhError(f"model {name}: ResNet depth must be 6n+2 >= 8 (20, 32, 44, 56, 110, ...)")
        body = CifarResNet(depth, info["shape"][0], info["classes"])
    elif name in MODELS:
        body = MODELS[name](info)
    else:
        raise LbhError(f"model {name!r} is unknown; known: {', '.join(MODEL_NAMES)}")
    model = nn.Sequential()
    model.add_module("normalize", Normalize(info["mean"], info["std"]))
    model.add_module("net", body)
    try:  # catch an architecture/image-size mismatch now, with a clear message
        with torch.no_grad():
            model.eval()(torch.zeros(2, *info["shape"]))
    except RuntimeError:
        raise LbhError(
            f"model {name} does not fit {info.get('name', 'the dataset')}'s images of shape {info['shape']}"
        ) from None
    return model.train()


def param_count(model):
    return sum(p.numel() for p in model.parameters())
