import pytest
import torch

from lbhessian.core.errors import LbhError
from lbhessian.core.models import build_model, param_count

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
