"""Hessian operators against explicit Hessians from torch.autograd.functional.hessian (float64)."""

import pytest
import torch
import torch.nn.functional as F

from lbhessian.core.errors import LbhError
from lbhessian.curvature import InputHessian, WeightHessian, exact_input_hessian, frozen
from testing_helpers import assert_same_state, explicit_weight_hessian, state, tiny_data, tiny_net


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("cache", [True, False])
def test_weight_hvp_equals_explicit_hessian(bn, cache):
    net = tiny_net(bn)
    x, y = tiny_data()
    before = state(net)
    h = explicit_weight_hessian(net, x, y)
    # chunk 7 does not divide 30: checks the exact averaging over uneven chunks
    op = WeightHessian(net, x, y, chunk_size=7, dtype="float64", cache=cache)
    assert op.size == h.shape[0] and op.cache is cache and op.chunk_size == 7
    v = torch.randn(3, op.size, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    hv = torch.cat([op.matvec(v[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(hv, v @ h, rtol=1e-10, atol=1e-12)
    assert op.matvecs == 3
    loss, grad = op.loss_and_gradient()
    net.eval()
    ref_loss = F.cross_entropy(net(x), y)
    ref_grad = torch.autograd.grad(ref_loss, list(net.parameters()))
    net.train()
    assert loss == pytest.approx(ref_loss.item(), rel=1e-12)
    torch.testing.assert_close(grad, torch.cat([g.reshape(-1) for g in ref_grad]), rtol=1e-10, atol=1e-12)
    assert_same_state(net, before)


def test_weight_hessian_parameter_subset_is_diagonal_block():
    net = tiny_net(False)
    x, y = tiny_data()
    h = explicit_weight_hessian(net, x, y)
    op = WeightHessian(net, x, y, params=["3"], dtype=torch.float64)  # the Linear layer only
    start = sum(p.numel() for p in net[0].parameters())
    block = h[start:, start:]
    assert op.size == block.shape[0] == 5 * 32 + 5
    v = torch.randn(1, op.size, dtype=torch.float64)
    torch.testing.assert_close(op.matvec(v)[0], block @ v[0], rtol=1e-10, atol=1e-12)
    with pytest.raises(LbhError, match="params"):
        WeightHessian(net, x, y, params=["nope"])


def test_float32_default_and_float64_copy_leave_model_alone():
    net = tiny_net(True).float()
    x, y = tiny_data()
    before = state(net)
    op32 = WeightHessian(net, x.float(), y)
    assert op32.dtype == torch.float32 and op32.model is net
    op64 = WeightHessian(net, x, y, dtype="float64")
    assert op64.model is not net and next(net.parameters()).dtype == torch.float32
    v = torch.randn(1, op32.size, dtype=torch.float64)
    torch.testing.assert_close(op32.matvec(v).double(), op64.matvec(v), rtol=1e-3, atol=1e-5)
    assert_same_state(net, before)
    with pytest.raises(LbhError, match="dtype"):
        WeightHessian(net, x, y, dtype="float16")
    with pytest.raises(LbhError, match="chunk_size"):
        WeightHessian(net, x, y, chunk_size=0)


def test_auto_chunk_and_cache_follow_memory_budget():
    net = tiny_net(False)
    x, y = tiny_data(40)
    op = WeightHessian(net, x, y, dtype="float64", memory_fraction=1e-12)
    # a budget smaller than one sample: single-sample chunks and no cached graphs
    assert op.chunk_size == 1 and op.cache is False and op.bytes_per_sample > 0
    big = WeightHessian(net, x, y, dtype="float64")
    assert big.chunk_size == 40 and big.cache is True
    v = torch.randn(1, op.size, dtype=torch.float64)
    torch.testing.assert_close(op.matvec(v), big.matvec(v), rtol=1e-10, atol=1e-12)


def test_frozen_restores_after_an_error():
    net = tiny_net(True)
    before = state(net)
    with pytest.raises(RuntimeError):
        with frozen(net):
            assert not any(m.training for m in net.modules())
            net[2].running_mean.add_(1.0)
            raise RuntimeError("boom")
    assert_same_state(net, before)


@pytest.mark.parametrize("bn", [False, True])
def test_input_hessian_blocks_equal_explicit_per_image_hessians(bn):
    net = tiny_net(bn)
    x, y = tiny_data(4)
    before = state(net)
    op = InputHessian(net, x, y, dtype="float64")
    assert (op.batch, op.size) == (4, 36)
    v = torch.randn(4, 36, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    hv = op.matvec(v)
    net.eval()
    for i in range(4):
        h = torch.autograd.functional.hessian(
            lambda xi, i=i: F.cross_entropy(net(xi.view(1, 1, 6, 6)), y[i : i + 1]), x[i].reshape(-1)
        )
        torch.testing.assert_close(hv[i], h @ v[i], rtol=1e-10, atol=1e-12)
    net.train()
    # per-image input gradients
    xg = x.clone().requires_grad_(True)
    net.eval()
    ref = torch.autograd.grad(F.cross_entropy(net(xg), y, reduction="sum"), xg)[0]
    net.train()
    torch.testing.assert_close(op.gradients(), ref.reshape(4, -1))
    assert all(p.requires_grad for p in net.parameters())
    assert_same_state(net, before)


@pytest.mark.parametrize("batched", [True, False])
def test_exact_input_hessian_matches_autograd(batched):
    net = tiny_net(True)
    x, y = tiny_data(2)
    before = state(net)
    h = exact_input_hessian(net, x[1], y[1], block=10, batched=batched)  # blocks of 10 rows: 36 = 10+10+10+6
    net.eval()
    ref = torch.autograd.functional.hessian(
        lambda xi: F.cross_entropy(net(xi.view(1, 1, 6, 6)), y[1:2]), x[1].reshape(-1)
    )
    net.train()
    torch.testing.assert_close(h, ref, rtol=1e-10, atol=1e-12)
    assert_same_state(net, before)
