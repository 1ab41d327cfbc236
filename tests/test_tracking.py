"""Tracking lambda_1, warm-started from the previous evaluation's eigenvector: as accurate as a cold start and
cheaper where evaluations are close (the settledness check's points, a few small steps apart)."""

import torch
import torch.nn.functional as F

from helpers.nets import MNIST_INFO
from lbhessian.core.models import build_model
from lbhessian.curvature import WeightHessian, lanczos, track


def test_warm_started_tracking_is_as_accurate_as_a_cold_start_for_fewer_products(mnist5k):
    """M1 on 128 real MNIST images, trained 40 steps, then 5 evaluations 4 small steps apart (lr 0.005, as in a
    settling phase): at tracking's tolerance (residual 1e-2) both starts agree with lambda_1 converged to 1e-6
    within 1e-4, and the warm start needs at most two thirds of the cold start's products in total (measured
    here: 16 against 27).
    Catches a warm start that is silently ignored, or one that stops before it converged."""
    train, _, _ = mnist5k
    x, y = train.tensors(128)
    torch.manual_seed(0)
    model = build_model("M1", MNIST_INFO)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def steps(n):
        for _ in range(n):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

    steps(40)
    for group in opt.param_groups:
        group["lr"] = 0.005
    vector = track(model, x, y, iters=20)["vector"]
    cold_products = warm_products = 0
    for _ in range(5):
        steps(4)
        ref = lanczos(WeightHessian(model, x, y), 1, tol=1e-6, max_iter=150, seed=3).eigenvalues[0, 0].item()
        cold = track(model, x, y, iters=20)
        warm = track(model, x, y, iters=20, v0=vector)
        vector = warm["vector"]
        assert abs(cold["lambda1"] - ref) / ref < 1e-4 and abs(warm["lambda1"] - ref) / ref < 1e-4
        cold_products += cold["track_matvecs"]
        warm_products += warm["track_matvecs"]
    assert warm_products <= 2 / 3 * cold_products, (warm_products, cold_products)
