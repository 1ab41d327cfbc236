"""Stochastic estimators on any operator: Hutchinson's trace and the spectral density by stochastic Lanczos
quadrature (SLQ). Start vectors are seeded Rademacher vectors, as in the solvers.

A Lanczos run gives one sample for free: its first product is H q0 with q0 = v0 / ||v0||, so v0^T H v0 =
||v0||^2 alpha_1 (``lanczos_sample``). Where v0 is drawn with E[v0 v0^T] = I (the solvers' Gaussian start, or
Hutchinson's own z_s from ``hutchinson_vector``) that is a Hutchinson sample, and ``hutchinson_trace(...,
first=...)`` takes it in place of its first vector and spends products on the others only.
"""

from __future__ import annotations

import math

import torch

from lbhessian.core.errors import LbhError
from lbhessian.curvature.base import Operator
from lbhessian.curvature.krylov import EigResult, random_vectors, row_dot
from lbhessian.curvature.lanczos import lanczos


def hutchinson_vector(op: Operator, s: int, *, seed: int = 0) -> torch.Tensor:
    """Hutchinson's ``s``-th Rademacher vector (s = 0, 1, ...) for ``seed``, ``(B, d)``: what ``hutchinson_trace``
    draws, so a caller can start another solver from it and hand the sample back (``first``)."""
    return random_vectors(op, seed + 15485863 * (s + 1), kind="rademacher")


def lanczos_sample(result: EigResult, v0: torch.Tensor) -> torch.Tensor:
    """``v0^T H v0`` per row, ``(B,)`` float64 on the CPU, from a Lanczos run started at ``v0``: its first product
    is H q0 with q0 = v0 / ||v0||, so the quadratic form is ||v0||^2 alpha_1 and costs no product."""
    return v0.double().pow(2).sum(-1).cpu() * result.alpha[:, 0]


def hutchinson_trace(
    op: Operator, samples: int = 10, *, seed: int = 0, first: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hutchinson's trace estimate E[z^T H z] with Rademacher z: (mean, standard error), each ``(B,)``.

    ``first``: n samples v^T H v already known (``(B,)`` for one, ``(n, B)`` for n), of vectors independent of the
    others with E[v v^T] = I (a Lanczos run's start: ``lanczos_sample``); they take the place of the first n
    Rademacher vectors, and only the other ``samples - n`` cost products. Each sample is unbiased, so the mean is;
    the standard error (the samples' spread / sqrt(samples)) stays unbiased for its variance though a Gaussian
    sample's variance differs from a Rademacher one's."""
    if not isinstance(samples, int) or samples < 1:
        raise LbhError(f"trace_samples: expected a positive integer, got {samples!r}")
    known = (
        torch.zeros(0, op.batch, dtype=torch.float64) if first is None else first.double().cpu().reshape(-1, op.batch)
    )
    if len(known) > samples:
        raise LbhError(f"first: {len(known)} known samples, more than samples = {samples}")
    zs = [hutchinson_vector(op, s, seed=seed) for s in range(len(known), samples)]
    if not zs:
        v = known
    elif getattr(op, "vector_batch", 1) > 1 and op.batch == 1:
        # Several vectors per backward pass (WeightHessian.matmat): same estimator, fewer passes.
        z = torch.cat(zs)
        v = torch.cat([known, row_dot(z, op.matmat(z)).double().cpu().unsqueeze(1)])
    else:
        v = torch.cat([known, torch.stack([row_dot(z, op.matvec(z)).double().cpu() for z in zs])])
    se = v.std(dim=0, unbiased=True) / math.sqrt(samples) if samples > 1 else torch.zeros_like(v[0])
    return v.mean(dim=0), se


def slq_density(
    op: Operator,
    *,
    vectors: int = 4,
    steps: int = 50,
    points: int = 200,
    sigma: float | None = None,
    seed: int = 0,
) -> dict:
    """Spectral density by stochastic Lanczos quadrature (row 0 of the operator batch).

    For each Rademacher start, ``steps`` Lanczos steps give nodes theta_j (Ritz values) and weights
    s_{1j}^2; the density is their average Gaussian mixture on a grid. ``sigma`` defaults to 1% of the
    node range. The density integrates to one; it is divided among ``size`` eigenvalues.
    """
    nodes, weights = [], []
    for s in range(vectors):
        z = random_vectors(op, seed + 32452843 * (s + 1), kind="rademacher")
        r = lanczos(op, 1, tol=0.0, max_iter=steps, v0=z, vectors=False, restart=False)
        m = int(r.lengths[0])
        T = torch.diag(r.alpha[0, :m]) + torch.diag(r.beta[0, : m - 1], 1) + torch.diag(r.beta[0, : m - 1], -1)
        theta, S = torch.linalg.eigh(T)
        nodes.append(theta)
        weights.append(S[0] ** 2)
    lo = min(float(n.min()) for n in nodes)
    hi = max(float(n.max()) for n in nodes)
    span = max(hi - lo, 1e-12)
    sig = sigma if sigma is not None else 0.01 * span
    grid = torch.linspace(lo - 0.05 * span - 3 * sig, hi + 0.05 * span + 3 * sig, points, dtype=torch.float64)
    dens = torch.zeros_like(grid)
    for theta, wts in zip(nodes, weights, strict=True):
        g = torch.exp(-0.5 * ((grid[:, None] - theta[None, :]) / sig) ** 2) / (sig * math.sqrt(2 * math.pi))
        dens += (g * wts[None, :]).sum(-1)
    dens /= len(nodes)
    return {
        "grid": grid.tolist(),
        "density": dens.tolist(),
        "sigma": sig,
        "nodes": [n.tolist() for n in nodes],
        "weights": [w.tolist() for w in weights],
    }
