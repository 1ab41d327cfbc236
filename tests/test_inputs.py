"""The inputs step: input gradients, lambda_1(H_x) and the saddle-free check of ReLU + softmax nets."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.configs import section, smoke_config
from helpers.nets import MNIST_INFO, assert_same_state, mnist_like, relu_bn_net, small_split, state
from helpers.workflow import ROOT
from lbhessian.core.errors import LbhError
from lbhessian.core.models import build_model
from lbhessian.curvature import exact_input_hessian
from lbhessian.measure import exact_input_spectrum, input_curvature, input_curvature_of


def test_rank_of_a_saturated_softmax_counts_only_resolvable_eigenvalues():
    # A confident prediction makes H_x tiny (p ~ one-hot): numpy's rule (d * eps * max|eig|) then counts
    # roundoff as rank; the noise floor eps * ||J||^2 must not.
    net = relu_bn_net()
    with torch.no_grad():
        net[-1].weight.mul_(300.0)
    x = small_split(8, 3).x_float()
    with torch.no_grad():
        p = net.eval()(x).softmax(-1)
    i = int(p.max(-1).values.argmax())
    assert p[i].max() > 0.9999  # really saturated
    out = exact_input_spectrum(net, x[i], p[i].argmax(), classes=4)
    assert out["rank"] <= 3 and out["min_eig"] >= -out["rank_tol"]
    h = exact_input_hessian(net, x[i], p[i].argmax())
    eig = torch.linalg.eigvalsh(h)
    numpy_rule = int((eig.abs() > eig.abs().max() * h.shape[0] * torch.finfo(torch.float64).eps).sum())
    assert numpy_rule > 3  # the case this guards against


def test_exact_input_hessian_of_relu_softmax_is_psd_with_rank_below_classes():
    # LeNet (M1) at a trained point and a small ReLU/BN net: H_x = W^T (diag p - p p^T) W
    torch.manual_seed(0)
    model = build_model("M1", MNIST_INFO)
    data = mnist_like(64)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(model(data.x_float()), data.y).backward()
        opt.step()
    before = state(model)
    x = data.x_float()
    for i in range(1):
        out = exact_input_spectrum(model, x[i], data.y[i], classes=10)
        assert out["max_eig"] > 0 and out["min_eig"] >= -1e-6 * out["max_eig"]
        assert 1 <= out["rank"] <= 9 and len(out["eigenvalues_top"]) == 10
    assert_same_state(model, before)
    net = relu_bn_net()
    xs = small_split(3, 1)
    for i in range(3):
        out = exact_input_spectrum(net, xs.x_float()[i], xs.y[i], classes=4)
        assert out["min_eig"] >= -1e-6 * out["max_eig"] and out["rank"] <= 3


def test_a_smooth_net_is_not_rank_limited():
    # the rank bound is specific to piecewise-linear nets: with tanh the exact Hessian has full rank
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(36, 20), nn.Tanh(), nn.Linear(20, 4)).double()
    xs = small_split(1, 2)
    out = exact_input_spectrum(net, xs.x_float()[0].double(), xs.y[0], classes=4)
    assert out["rank"] > 3


def test_measure_layout_and_values():
    net = relu_bn_net()
    train, test = small_split(40, 3), small_split(25, 4)
    before = state(net)
    out = input_curvature(net, train, test, section("inputs", samples=30, iters=36, exact_images=2))
    assert_same_state(net, before)
    json.dumps(out)
    assert out["train"]["samples"] == 30 and out["test"]["samples"] == 25
    # independent: per-image gradient norms and the largest eigenvalue of each exact Hessian
    x, y = train.x_float()[:30], train.y[:30]
    net.eval()
    xg = x.clone().requires_grad_(True)
    g = torch.autograd.grad(F.cross_entropy(net(xg), y, reduction="sum"), xg)[0].flatten(1).norm(dim=1)
    lam = torch.stack([torch.linalg.eigvalsh(exact_input_hessian(net, x[i], y[i]))[-1] for i in range(30)])
    net.train()
    tr = out["train"]
    assert tr["grad_norm_mean"] == pytest.approx(g.mean().item(), rel=1e-5)
    assert tr["grad_norm_std"] == pytest.approx(g.std().item(), rel=1e-4)
    assert tr["lambda1_mean"] == pytest.approx(lam.mean().item(), rel=1e-4)
    assert tr["lambda1_std"] == pytest.approx(lam.std().item(), rel=1e-3)
    assert tr["converged_fraction"] == 1.0
    ex = out["exact"]
    assert [e["index"] for e in ex] == [0, 1] and all(e["split"] == "test" and e["classes"] == 4 for e in ex)
    assert all(e["rank"] <= 3 for e in ex)
    with pytest.raises(LbhError, match="inputs.iters: 0 is less than the minimum of 1"):
        smoke_config(inputs={"iters": 0})


def test_rank_equals_classes_minus_one_for_a_generic_relu_image():
    """Lower bound too: for a generic image the ReLU/BN net's H_x = J^T (diag p - p p^T) J has rank exactly C - 1.

    Independent reference: its nonzero eigenvalues are those of the C x C matrix A^T J J^T A, with
    A A^T = diag p - p p^T (A from eigh), from an independent float64 Jacobian. Catches a too-large rank
    tolerance (which undercounts the rank and makes "rank <= C - 1", claim 6, hold trivially) and eigenvalues
    computed from a wrong Hessian; a relative tolerance (0.1 max|eig|) drops the third eigenvalue (6% of the
    largest here), and one inflated x1e6 breaks the resolution bound."""
    net = relu_bn_net().eval().double()
    xs = small_split(3, 5).x_float().double()
    for i in range(3):
        out = exact_input_spectrum(net, xs[i], torch.tensor(0), classes=4)
        jac = torch.autograd.functional.jacobian(lambda z: net(z.view(1, 1, 6, 6))[0], xs[i].flatten())
        with torch.no_grad():
            p = net(xs[i : i + 1])[0].softmax(-1)
        w, v = torch.linalg.eigh(torch.diag(p) - torch.outer(p, p))
        a = v * w.clamp(min=0).sqrt()
        ref = torch.linalg.eigvalsh(a.T @ jac @ jac.T @ a).flip(0)[:3]
        assert out["rank"] == 3, out
        torch.testing.assert_close(
            torch.tensor(out["eigenvalues_top"][:3], dtype=torch.float64), ref, rtol=1e-8, atol=0
        )
        assert ref[-1] > 100 * out["rank_tol"]  # the smallest nonzero eigenvalue is clearly resolvable
        # The tolerance sits at float64's resolution (d * eps * max|eig| ~ 1e-14 relative here), not above it.
        assert out["rank_tol"] < 1e-9 * out["max_eig"]
        assert abs(out["eigenvalues_top"][3]) <= out["rank_tol"]


def test_lambda1_of_saturated_images_is_verified_not_garbage():
    """At a saturated softmax the float32 input Hessian is roundoff (~1e-21) and Lanczos' own residual estimate
    can be garbage: on this real default-run checkpoint (tests/data/saturated_m1.pt, image 0) float32 Lanczos gives
    lambda_1 ~ 1e8 (1e17 with its estimated residual 0 in the 500-image batch of the run, which made the run's
    mean lambda_1(H_x) 4e14). The step verifies each residual with one more product and solves failures again in
    float64; without that re-solve this test fails (mean ~ 4e7)."""
    blob = torch.load(ROOT / "tests" / "data" / "saturated_m1.pt", weights_only=True)
    net = build_model("M1", blob["info"])
    net.load_state_dict(blob["state_dict"])
    x, y = blob["x"].float() / 255, blob["y"]
    out = input_curvature_of(net.eval(), x, y, iters=20, chunk=8)
    exact = torch.stack([torch.linalg.eigvalsh(exact_input_hessian(net, x[i], y[i]))[-1] for i in range(len(x))])
    assert out["lambda1_mean"] == pytest.approx(exact.mean().item(), rel=1e-3)
    assert out["lambda1_mean"] < 1e3
