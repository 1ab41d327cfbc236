"""The same checks on a GPU: products, eigenvalues, input-Hessian rank, state restored (skipped without CUDA)."""

import copy

import pytest
import torch
from test_curvature_operators import assert_same_state, explicit_weight_hessian, state, tiny_data, tiny_net
from test_inputs import relu_bn_net, small_split

from helpers.configs import section
from lbhessian.core.data import Split
from lbhessian.curvature import InputHessian, WeightHessian, lanczos, power_iteration
from lbhessian.measure import exact_input_spectrum, input_curvature, weight_spectrum

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
GPU = torch.device("cuda")


def test_weight_hessian_and_solvers_on_gpu():
    net = tiny_net(True)
    x, y = tiny_data()
    h = explicit_weight_hessian(net, x, y)
    eigs = torch.linalg.eigvalsh(h)
    gnet = copy.deepcopy(net).to(GPU)
    before = state(gnet)
    op = WeightHessian(gnet, x.to(GPU), y.to(GPU), chunk_size=7, dtype="float64")
    assert op.device.type == "cuda"
    v = torch.randn(1, op.size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(op.matvec(v).cpu(), v @ h, rtol=1e-9, atol=1e-11)
    lz = lanczos(op, 3, tol=1e-8, max_iter=200)
    torch.testing.assert_close(lz.eigenvalues[0], eigs.flip(0)[:3], rtol=1e-5, atol=0)
    pw = power_iteration(op, 2, tol=1e-7, max_iter=3000)
    by_mag = eigs[eigs.abs().argsort(descending=True)][:2]
    torch.testing.assert_close(pw.eigenvalues[0], by_mag, rtol=1e-5, atol=0)
    assert lz.eigenvectors.device.type == "cuda"
    assert_same_state(gnet, before)


def test_input_hessian_rank_and_steps_on_gpu():
    net = relu_bn_net().to(GPU)
    before = state(net)
    xs = small_split(3, 1)
    for i in range(3):
        out = exact_input_spectrum(net, xs.x_float()[i].to(GPU), xs.y[i].to(GPU), classes=4)
        assert out["min_eig"] >= -1e-6 * out["max_eig"] and out["rank"] <= 3
    op = InputHessian(net, xs.x_float().to(GPU), xs.y.to(GPU), dtype="float64")
    assert lanczos(op, 1, tol=1e-6, max_iter=36).converged.all()
    out = input_curvature(
        net, small_split(20, 2), small_split(10, 3), {"samples": 20, "iters": 36, "exact_images": 1, "chunk": 1024}
    )
    cpu = input_curvature(
        relu_bn_net(),
        small_split(20, 2),
        small_split(10, 3),
        {"samples": 20, "iters": 36, "exact_images": 1, "chunk": 1024},
    )
    assert out["train"]["lambda1_mean"] == pytest.approx(cpu["train"]["lambda1_mean"], rel=1e-3)
    assert_same_state(net, before)
    solver = {"top_k": 2, "samples": 30, "tol": 1e-5, "max_iter": 200, "trace_samples": 2, "check_power": False}
    cfg = section("spectrum", density=True, landscape={"radius": 0.1, "points_1d": 3, "points_2d": 3}, **solver)
    tnet = tiny_net(True).float()
    train = Split((tiny_data(40)[0] * 255).to(torch.uint8), tiny_data(40)[1])
    g = weight_spectrum(copy.deepcopy(tnet).to(GPU), train, train, cfg)
    c = weight_spectrum(tnet, train, train, cfg)
    assert g["train"]["eigenvalues"] == pytest.approx(c["train"]["eigenvalues"], rel=1e-3)


def test_matmat_and_fixed_chunk_on_gpu():
    """Several vectors per pass on the GPU against the explicit Hessian; the default chunk is the device's
    fixed one, whatever memory is free (issue 13.4)."""
    from lbhessian.curvature.memory import MAX_CHUNK

    net = tiny_net(True)
    x, y = tiny_data()
    h = explicit_weight_hessian(net, x, y)
    op = WeightHessian(copy.deepcopy(net).to(GPU), x.to(GPU), y.to(GPU), chunk_size=7, dtype="float64")
    op.vector_batch = 3
    v = torch.randn(5, op.size, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(op.matmat(v).cpu(), v @ h, rtol=1e-9, atol=1e-11)
    auto = WeightHessian(copy.deepcopy(net).to(GPU), x.to(GPU), y.to(GPU))
    assert auto.chunk_size == min(len(x), MAX_CHUNK["cuda"])


def test_speed_options_on_gpu():
    """channels_last and bf16 autocast train on the GPU and stay close to the float32 step."""
    from test_speed_options import one_step

    base, _ = one_step({"channels_last": False, "autocast": "none"}, "cuda")
    fast, _ = one_step({"channels_last": True, "autocast": "bfloat16"}, "cuda")
    assert fast != base and abs(fast - base) <= 0.05 * abs(base)
