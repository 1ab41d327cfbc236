"""The weight-Hessian operator of a model's loss: Pearlmutter products summed over chunks of samples
(input Hessians: ``curvature.input_hessian``).

The model is always measured in eval mode (BatchNorm uses running statistics, dropout is off) and its
per-module train/eval flags and all buffers are restored exactly after every call (``frozen``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from lbhessian.core.errors import LbhError
from lbhessian.core.modes import frozen
from lbhessian.curvature.base import (
    LossFn,
    Operator,
    as_dtype,
    model_device,
    resolve_dtype,
    select_parameters,
    sum_cross_entropy,
)
from lbhessian.curvature.memory import MAX_CHUNK, budget_bytes, check_fits, saved_bytes


class WeightHessian(Operator):
    """Hessian of the mean loss over ``(x, y)`` w.r.t. (a subset of) the model's weights.

    Products are Pearlmutter's: the gradient of g(theta)^T v, summed exactly over chunks of samples.
    Chunk size: ``chunk_size``, or with None the device's fixed default (``memory.MAX_CHUNK``, evened out over the
    samples). It sets the order of the sums, so free memory never chooses it; a chunk that cannot fit at all
    stops with one line. Caching: ``cache="auto"`` keeps every chunk's first-order graph (built once and reused by
    every product: LeNet on a CPU, about 1.8x a gradient instead of 2.8x) when all the graphs together fit a share
    of free memory (``memory.budget_bytes``), else rebuilds them per product: the same ops in the same order, so
    this choice changes the time, never a number. ``dtype=float64`` measures a float64 copy of the model; float32
    uses the model itself, restored exactly after each call.
    The operator assumes the weights do not change while it is in use.
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        params: Sequence[str] | None = None,
        chunk_size: int | None = None,
        dtype: str | torch.dtype | None = torch.float32,
        loss_fn: LossFn = sum_cross_entropy,
        cache: bool | str = "auto",
        memory_fraction: float | None = None,
    ):
        if len(x) == 0 or len(x) != len(y):
            raise LbhError(f"data: expected equal, non-zero numbers of images and labels, got {len(x)}, {len(y)}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise LbhError(f"chunk_size: expected a positive integer or null, got {chunk_size!r}")
        if cache not in (True, False, "auto"):
            raise LbhError(f"cache: expected true, false or 'auto', got {cache!r}")
        self.dtype = resolve_dtype(dtype)
        self.device = model_device(model)
        # float64 on request: a private copy, so the caller's model is never cast.
        self.model = as_dtype(model, self.dtype)
        named = select_parameters(self.model, params)
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.shapes = [p.shape for p in self.params]
        self.numels = [p.numel() for p in self.params]
        self.size = sum(self.numels)
        self.batch = 1
        self.x = x.to(device=self.device, dtype=self.dtype)
        self.y = y.to(device=self.device)
        self.n = len(self.x)
        self.loss_fn = loss_fn
        self.matvecs = 0
        self._graphs: list[tuple[torch.Tensor, ...]] | None = None
        self._loss_grad: tuple[float, torch.Tensor] | None = None

        self.bytes_per_sample = self._bytes_per_sample()
        if chunk_size is None:
            # The device's fixed default, not free memory: chunks set the order of sums (memory.py).
            chunk_size = min(self.n, MAX_CHUNK.get(self.device.type, 256))
            # Even chunks (300 samples at most 256 a chunk: 150 + 150, not 256 + 44).
            chunk_size = -(-self.n // -(-self.n // chunk_size))
        self.chunk_size = min(chunk_size, self.n)
        check_fits("spectrum.chunk_size", self.chunk_size, self.bytes_per_sample, self.device)
        # Cached or rebuilt graphs give bit-identical products (same chunks, same order): free memory chooses.
        budget = budget_bytes(self.device, memory_fraction)
        self.cache = bool(cache) if cache != "auto" else self.bytes_per_sample * self.n <= budget
        self.vector_batch = 1  # products per pass in matmat (is_grads_batched); >1 changes the last bits

    # -- helpers
    def _chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, self.n, self.chunk_size):
            yield self.x[i : i + self.chunk_size], self.y[i : i + self.chunk_size]

    def _grad_graph(
        self, xc: torch.Tensor, yc: torch.Tensor, create_graph: bool = True
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        loss = self.loss_fn(self.model(xc), yc) / self.n
        grads = torch.autograd.grad(loss, self.params, create_graph=create_graph, allow_unused=True)
        grads = tuple(torch.zeros_like(p) if g is None else g for g, p in zip(grads, self.params, strict=True))
        return loss, grads

    def _bytes_per_sample(self) -> int:
        # Two probe sizes: the slope removes what does not grow with the chunk (weights).
        small, large = min(4, self.n), min(20, self.n)
        with frozen(self.model):
            b_small = saved_bytes(lambda: self._grad_graph(self.x[:small], self.y[:small]))
            if large == small:
                return max(1, b_small // small)
            b_large = saved_bytes(lambda: self._grad_graph(self.x[:large], self.y[:large]))
        return max(1, (b_large - b_small) // (large - small), b_large // (4 * large))

    def flatten(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in tensors])

    def unflatten(self, v: torch.Tensor) -> list[torch.Tensor]:
        return [t.view(s) for t, s in zip(torch.split(v, self.numels), self.shapes, strict=True)]

    def _hvp_from(self, grads: tuple[torch.Tensor, ...], vs: list[torch.Tensor], retain: bool) -> list[torch.Tensor]:
        """H v for one chunk; with ``vs`` of shape (k, *p.shape) and k > 1, k products in one batched pass."""
        # Parameters whose gradient is constant (no second-order path) contribute zero rows.
        pairs = [(i, g) for i, g in enumerate(grads) if g.requires_grad]
        out = [torch.zeros_like(v) for v in vs]
        if not pairs:
            return out
        batched = vs[0].dim() > self.params[0].dim()
        hv = torch.autograd.grad(
            [g for _, g in pairs],
            self.params,
            grad_outputs=[vs[i] for i, _ in pairs],
            retain_graph=retain,
            allow_unused=True,
            is_grads_batched=batched,
        )
        return [o if h is None else h for o, h in zip(out, hv, strict=True)]

    def _graph_per_chunk(self) -> Iterator[tuple[tuple[torch.Tensor, ...], bool]]:
        # The cached graphs, or each chunk's graph built afresh; identical ops in the same order either way.
        if self.cache:
            if self._graphs is None:
                self.loss_and_gradient()
            yield from ((gc, True) for gc in self._graphs)
        else:
            for xc, yc in self._chunks():
                yield self._grad_graph(xc, yc)[1], False

    def _apply(self, vs: list[torch.Tensor]) -> torch.Tensor:
        acc = None
        for gc, retain in self._graph_per_chunk():
            hv = self._hvp_from(gc, vs, retain=retain)
            acc = hv if acc is None else [a + h for a, h in zip(acc, hv, strict=True)]
        return acc

    # -- public
    def loss_and_gradient(self) -> tuple[float, torch.Tensor]:
        """Mean loss and its full gradient (flat, ``(size,)``) over all samples, in eval mode.

        With ``cache`` the chunks' first-order graphs are kept for every later product."""
        if self._loss_grad is None or (self.cache and self._graphs is None):
            loss, grad, graphs = 0.0, None, []
            with frozen(self.model):
                for xc, yc in self._chunks():
                    lc, gc = self._grad_graph(xc, yc, create_graph=self.cache)
                    loss += float(lc.detach())
                    flat = self.flatten([g.detach() for g in gc])
                    grad = flat if grad is None else grad + flat
                    if self.cache:
                        graphs.append(gc)
            self._loss_grad = (loss, grad)
            self._graphs = graphs if self.cache else None
        return self._loss_grad

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        v = self._check(v)
        self.matvecs += 1
        out = torch.empty_like(v)
        with frozen(self.model):
            for r in range(v.shape[0]):
                out[r] = self.flatten(self._apply(self.unflatten(v[r])))
        return out

    def matmat(self, v: torch.Tensor) -> torch.Tensor:
        """H V for the rows of ``v`` (k, size): ``vector_batch`` rows per backward pass (is_grads_batched).

        Each chunk's graph serves all rows of a pass. Counts k products. Ops without a batching rule fall
        back to one row at a time."""
        if v.dim() != 2 or v.shape[1] != self.size:
            raise LbhError(f"matmat: expected vectors of shape (k, {self.size}), got {tuple(v.shape)}")
        v = v.to(dtype=self.dtype, device=self.device)
        self.matvecs += len(v)
        outs = []
        with frozen(self.model):
            for i in range(0, len(v), self.vector_batch):
                block = v[i : i + self.vector_batch]
                if len(block) == 1:
                    outs.append(self.flatten(self._apply(self.unflatten(block[0]))).unsqueeze(0))
                    continue
                vs = [
                    t.reshape(len(block), *s)
                    for t, s in zip(torch.split(block, self.numels, 1), self.shapes, strict=True)
                ]
                try:
                    hv = self._apply(vs)
                except RuntimeError:  # no batching rule for some op: one row at a time
                    rows = [self._apply([t[j] for t in vs]) for j in range(len(block))]
                    hv = [torch.stack(h) for h in zip(*rows, strict=True)]
                outs.append(torch.cat([h.reshape(len(block), -1) for h in hv], dim=1))
        return torch.cat(outs)

    def release(self) -> None:
        """Drop cached graphs (frees their memory)."""
        self._graphs = None
