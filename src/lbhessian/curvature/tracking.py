"""Curvature during training: lambda_1 and the full-gradient norm on a fixed sample of training images."""

from __future__ import annotations

import torch
from torch import nn

from lbhessian.curvature.base import model_device
from lbhessian.curvature.lanczos import lanczos
from lbhessian.curvature.operators import WeightHessian

SEED = 0  # start vector of a cold tracking solve: fixed, so a rerun gives the same curve
# Relative residual at which a tracking solve stops before ``iters`` products. The eigenvalue's error is of the
# order of the residual squared (Rayleigh quotient): on the 15 points of a batch-256 default run, 1e-2 stayed
# within 3e-4 of the solves at 1e-3 (tests/test_tracking.py: within 1e-4 of lambda_1 converged to 1e-6), far below
# what the curve and the settledness check (25%) resolve, for two thirds of their products (62 against 90).
TOL = 1e-2


def track(model: nn.Module, x: torch.Tensor, y: torch.Tensor, iters: int = 20, v0: torch.Tensor | None = None) -> dict:
    """lambda_1 (at most ``iters`` Lanczos steps, stopping earlier at relative residual ``TOL``) and the
    full-gradient norm of the mean loss over ``(x, y)``, plus ``vector`` (the Ritz vector, ``(1, d)``) and
    ``track_matvecs`` (the products used).

    ``v0``: the previous evaluation's ``vector``. Weights move little between two evaluations, so Lanczos
    started there needs a few products where a cold start needs many (tests/test_tracking.py measures the
    accuracy against a cold start). Leaves the model's mode, buffers, gradients and the global RNG untouched.
    """
    op = WeightHessian(model, x.to(model_device(model)), y.to(model_device(model)))
    _, grad = op.loss_and_gradient()
    if v0 is not None and v0.shape != (1, op.size):
        v0 = None  # another model's vector (never in training): start cold
    r = lanczos(op, 1, tol=TOL, max_iter=iters, seed=SEED, v0=v0)
    op.release()
    return {
        "lambda1": float(r.eigenvalues[0, 0]),
        "grad_norm": float(grad.norm()),
        "track_matvecs": int(r.total_matvecs),
        "vector": r.eigenvectors[:, 0].detach().clone(),
    }
