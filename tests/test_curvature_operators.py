"""Hessian operators against explicit Hessians from torch.autograd.functional.hessian (float64)."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers.nets import assert_same_state, explicit_weight_hessian, state, tiny_data, tiny_net
from lbhessian.core.errors import LbhError
from lbhessian.curvature import InputHessian, WeightHessian, exact_input_hessian, frozen


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


def budget(monkeypatch, free_bytes):
    """Pretend the machine has ``free_bytes`` free (the only machine state the operators read)."""
    from lbhessian.curvature import memory

    monkeypatch.setattr(memory, "free_memory_bytes", lambda device: free_bytes)


def test_numbers_do_not_depend_on_free_memory(monkeypatch):
    """Issue 13.4: the same spectrum measurement under two memory budgets is bit-identical.

    Catches a chunk size chosen from free memory (the old auto chunk), and a cached path whose sums run
    in another order than the rebuilt one (the old single summed graph over all chunks)."""
    from test_spectrum import tiny_split

    from lbhessian.core.config import load
    from lbhessian.measure import weight_spectrum_of

    net = tiny_net(True).float()
    x, y = tiny_split(100, 1).tensors(100, "cpu")
    smoke = load(str(Path(__file__).parents[1] / "config" / "smoke.yaml"))["spectrum"]
    cfg = {**smoke, "chunk_size": None, "top_k": 3, "power_k": 2, "trace_samples": 3, "tol": 1e-4}
    from lbhessian.curvature import memory

    runs = []
    for free in (3e5, 1e12):  # a few samples' graphs vs everything cached
        budget(monkeypatch, free)
        op = WeightHessian(net, x, y, chunk_size=None)
        runs.append((op.chunk_size, op.cache, weight_spectrum_of(net, x, y, cfg)[0]))
    (c0, cache0, out0), (c1, cache1, out1) = runs
    assert cache0 is False and cache1 is True  # memory did choose something ...
    assert c0 == c1 == min(100, memory.MAX_CHUNK["cpu"])  # ... but not the chunk
    drop = ("seconds_by_part", "cached_graphs")
    assert {k: v for k, v in out0.items() if k not in drop} == {k: v for k, v in out1.items() if k not in drop}


def test_cached_and_rebuilt_chunk_graphs_are_bit_identical():
    """Several chunks: cached per-chunk graphs and graphs rebuilt per product give the same bits.

    Catches summing the chunks' graphs into one before the backward pass (another order of sums)."""
    net = tiny_net(True).float()
    x, y = tiny_data(45)
    x = x.float()
    a = WeightHessian(net, x, y, chunk_size=10, cache=True)
    b = WeightHessian(net, x, y, chunk_size=10, cache=False)
    v = torch.randn(1, a.size, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.loss_and_gradient()[1], b.loss_and_gradient()[1])
    assert torch.equal(a.matvec(v), b.matvec(v))


def test_input_chunk_is_fixed_by_config_not_memory(monkeypatch):
    """Issue 13.4 for the inputs step: two memory budgets, identical inputs.json numbers (chunk included).

    Catches the old rule (images per solve from free memory: 1 on a tight budget, 1024 on a large one)."""
    from test_inputs import relu_bn_net, small_split

    from lbhessian.measure import input_curvature_of

    net = relu_bn_net()
    x, y = small_split(24, 3).tensors(24, "cpu")
    outs = []
    for free in (2e6, 1e12):
        budget(monkeypatch, free)
        outs.append(input_curvature_of(net, x, y, iters=10, chunk=8))
    assert outs[0] == outs[1] and outs[0]["chunk"] == 8
    budget(monkeypatch, 1e3)  # not even one image fits: one line naming the key, nothing computed
    with pytest.raises(LbhError, match="inputs.chunk"):
        input_curvature_of(net, x, y, iters=10, chunk=8)
    with pytest.raises(LbhError, match="spectrum.chunk_size"):
        WeightHessian(net, x, y, chunk_size=24)


@pytest.mark.parametrize("bn", [False, True])
def test_matmat_equals_explicit_hessian(bn):
    """Several vectors per backward pass (is_grads_batched) against the explicit Hessian, chunked.

    Catches stacked vectors split or reshaped along the wrong axis, a block that drops its last rows
    (5 vectors, 2 per pass), and chunk sums that count a chunk twice."""
    net = tiny_net(bn)
    x, y = tiny_data()
    h = explicit_weight_hessian(net, x, y)
    for cache in (True, False):
        op = WeightHessian(net, x, y, chunk_size=7, dtype="float64", cache=cache)
        op.vector_batch = 2
        v = torch.randn(5, op.size, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(op.matmat(v), v @ h, rtol=1e-9, atol=1e-11)
        assert op.matvecs == 5


def test_batched_hutchinson_equals_one_vector_at_a_time():
    """The trace with vector_batch > 1 is the same estimator (same vectors) as one product per pass."""
    from lbhessian.curvature import hutchinson_trace

    net = tiny_net(True)
    x, y = tiny_data()
    op = WeightHessian(net, x, y, dtype="float64")
    one = hutchinson_trace(op, 6, seed=4)
    op.vector_batch = 4
    many = hutchinson_trace(op, 6, seed=4)
    torch.testing.assert_close(many[0], one[0], rtol=1e-12, atol=0)
    torch.testing.assert_close(many[1], one[1], rtol=1e-10, atol=0)


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
