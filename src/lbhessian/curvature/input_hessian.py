"""Input Hessians: per-image blocks of the loss's Hessian w.r.t. the input images, batched and explicit.

The model is always measured in eval mode and restored exactly after every call (``frozen``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lbhessian.core.errors import LbhError
from lbhessian.core.modes import frozen
from lbhessian.curvature.base import LossFn, Operator, as_dtype, model_device, resolve_dtype, sum_cross_entropy
from lbhessian.curvature.memory import check_fits, saved_bytes


class InputHessian(Operator):
    """Per-example Hessians of the loss w.r.t. the input images, one block per image (batch = B).

    Row b of ``matvec(V)`` is H_x(x_b) V[b]: in eval mode images do not interact, so the Hessian of the
    summed loss over the batch is block diagonal and one double backward gives every block's product.
    The first-order graph is built once and reused by every product.
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        dtype: str | torch.dtype | None = torch.float32,
        loss_fn: LossFn = sum_cross_entropy,
    ):
        if len(x) == 0 or len(x) != len(y):
            raise LbhError(f"data: expected equal, non-zero numbers of images and labels, got {len(x)}, {len(y)}")
        self.dtype = resolve_dtype(dtype)
        self.device = model_device(model)
        self.model = as_dtype(model, self.dtype)
        self.image_shape = tuple(x.shape[1:])
        self.batch = len(x)
        self.size = math.prod(self.image_shape)
        self.x = x.to(device=self.device, dtype=self.dtype).detach().requires_grad_(True)
        self.y = y.to(device=self.device)
        self.loss_fn = loss_fn
        self.matvecs = 0
        with frozen(self.model):
            # Only the input is differentiated: weights stay out of the graph.
            req = [(p, p.requires_grad) for p in self.model.parameters()]
            for p, _ in req:
                p.requires_grad_(False)
            try:
                logits = self.model(self.x)
                self.losses = F.cross_entropy(logits, self.y, reduction="none").detach()
                total = self.loss_fn(logits, self.y)
                (self._g,) = torch.autograd.grad(total, self.x, create_graph=True)
            finally:
                for p, flag in req:
                    p.requires_grad_(flag)

    def gradients(self) -> torch.Tensor:
        """Per-image input gradients, ``(B, size)``."""
        return self._g.detach().reshape(self.batch, -1)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        v = self._check(v)
        self.matvecs += 1
        if not self._g.requires_grad:  # piecewise-constant gradient: zero Hessian
            return torch.zeros_like(v)
        (hv,) = torch.autograd.grad(
            self._g, self.x, grad_outputs=v.view(self.batch, *self.image_shape), retain_graph=True
        )
        return hv.reshape(self.batch, -1)


# Default images per batched input-Hessian solve: beyond this the batched Lanczos gains nothing.
MAX_IMAGES = 1024


def input_chunk(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, basis_vectors: int, chunk: int | None = None
) -> int:
    """Images per batched solve: ``chunk`` from the config (default ``MAX_IMAGES``), never from free memory
    (batch shapes can change kernels and thus the last bits); stops with one line when it cannot fit."""
    chunk = MAX_IMAGES if chunk is None else chunk
    probe = min(4, len(x))
    graph = saved_bytes(lambda: InputHessian(model, x[:probe], y[:probe])) / probe
    basis = basis_vectors * x[0].numel() * x.element_size()
    check_fits("inputs.chunk", min(chunk, len(x)), graph + basis, model_device(model))
    return chunk


def exact_input_hessian(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    dtype: str | torch.dtype | None = torch.float64,
    block: int = 256,
    batched: bool = True,
) -> torch.Tensor:
    """The explicit input Hessian ``(d, d)`` of the loss at one image ``x`` (C, H, W) with label ``y``.

    Rows are products of the input-Hessian operator with unit vectors, ``block`` at a time: one forward
    graph, its double backward vectorised over the block (``is_grads_batched``); where an op has no
    batching rule, the image is repeated ``block`` times instead. Symmetrised.
    """
    d = x.numel()
    dtype = resolve_dtype(dtype)
    device = model_device(model)
    model = as_dtype(model, dtype)  # one copy for all blocks
    eye = torch.eye(d, dtype=dtype, device=device)
    op = InputHessian(model, x.unsqueeze(0), y.reshape(1), dtype=dtype)
    rows = []
    for i in range(0, d, block):
        e = eye[i : i + block]
        try:
            if not batched:
                raise RuntimeError("repeat the image")
            (h,) = torch.autograd.grad(
                op._g, op.x, grad_outputs=e.view(len(e), 1, *x.shape), retain_graph=True, is_grads_batched=True
            )
            rows.append(h.reshape(len(e), d))
        except RuntimeError:
            rep = InputHessian(model, x.unsqueeze(0).expand(len(e), *x.shape), y.reshape(1).expand(len(e)), dtype=dtype)
            rows.append(rep.matvec(e))
    h = torch.cat(rows)
    return 0.5 * (h + h.T)
