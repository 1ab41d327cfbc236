"""Curvature during training: lambda_1 and the full-gradient norm on a fixed sample of training images."""

from __future__ import annotations

import torch
from torch import nn

from lbhessian.curvature.base import model_device
from lbhessian.curvature.operators import WeightHessian
from lbhessian.curvature.solvers import lanczos

SEED = 0  # start vector of the tracking solve: fixed, so a rerun gives the same curve


def track(model: nn.Module, x: torch.Tensor, y: torch.Tensor, iters: int = 20) -> dict:
    """lambda_1 (at most ``iters`` Lanczos steps, stopping earlier at relative residual 1e-3) and the
    full-gradient norm of the mean loss over ``(x, y)``. Leaves the model's mode, buffers, gradients and
    the global RNG untouched."""
    op = WeightHessian(model, x.to(model_device(model)), y.to(model_device(model)))
    _, grad = op.loss_and_gradient()
    r = lanczos(op, 1, tol=1e-3, max_iter=iters, seed=SEED, vectors=False)
    op.release()
    return {"lambda1": float(r.eigenvalues[0, 0]), "grad_norm": float(grad.norm())}
