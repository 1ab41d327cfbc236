"""Deflated power iteration, the paper's method for the top of a Hessian's spectrum (claim 8 checks it against
Lanczos). Stopping rule: relative residual ||H v - lambda v|| / |lambda| <= tol for every requested pair."""

from __future__ import annotations

import math

import torch

from lbhessian.curvature import krylov
from lbhessian.curvature.base import Operator


def power_iteration(
    op: Operator,
    k: int = 1,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    seed: int = 0,
    rayleigh_ritz: bool = True,
) -> krylov.EigResult:
    """Top-k eigenpairs (largest magnitude) by deflated power iteration, the paper's method.

    Pair i iterates on P H P, P the projector off the accepted pairs 0..i-1 (at most ``max_iter``
    products per pair), until ||P H v - lambda v|| / |lambda| <= tol. With ``rayleigh_ritz`` the k
    vectors are then rotated by a Rayleigh-Ritz step on their span, using the stored products (no
    extra products), which removes the cross-talk that deflating against inexact earlier vectors
    leaves; the residuals reported are the true ||H v - lambda v|| / |lambda| afterwards.
    """
    krylov.check_args(op, k, tol, max_iter)
    B, d = op.batch, op.size
    U = torch.zeros(B, k, d, dtype=op.dtype, device=op.device)
    HU = torch.zeros_like(U)
    lam = torch.zeros(B, k, dtype=torch.float64)
    res = torch.full((B, k), math.inf, dtype=torch.float64)
    counts = torch.zeros(B, k, dtype=torch.long)
    total = 0
    for i in range(k):
        v = krylov.normalize(krylov.orthogonalize(krylov.random_vectors(op, seed + 7919 * i), U[:, :i]))
        active = torch.ones(B, dtype=torch.bool)
        for _ in range(max_iter):
            hv = op.matvec(v)
            total += 1
            w = krylov.orthogonalize(hv, U[:, :i])
            lam_v = krylov.row_dot(v, w)
            r = krylov.rel((w - lam_v.unsqueeze(-1) * v).norm(dim=-1).double().cpu(), lam_v.double().cpu())
            a = active.to(op.device)
            lam[active, i] = lam_v.double().cpu()[active]
            res[active, i] = r[active]
            U[a, i] = v[a]
            HU[a, i] = hv[a]
            counts[active, i] = total
            active &= ~(r <= tol)
            if not active.any():
                break
            v_next = krylov.normalize(krylov.orthogonalize(w, U[:, :i]))
            v = torch.where(active.to(op.device).unsqueeze(-1), v_next, v)
    converged = res <= tol
    if rayleigh_ritz and k > 1:
        # T = U H U^T on the span of the k vectors; rotate into its eigenvectors.
        T = torch.bmm(U, HU.transpose(1, 2)).double()
        T = 0.5 * (T + T.transpose(1, 2))
        theta, S = torch.linalg.eigh(T)
        order = theta.abs().argsort(dim=-1, descending=True)
        theta = torch.gather(theta, 1, order)
        S = torch.gather(S, 2, order.unsqueeze(1).expand_as(S)).to(op.dtype)
        U = torch.bmm(S.transpose(1, 2), U)
        HU = torch.bmm(S.transpose(1, 2), HU)
        lam = theta.cpu()
        res = krylov.rel((HU - theta.to(op.dtype).unsqueeze(-1) * U).norm(dim=-1).double().cpu(), lam)
        converged = res <= tol
    return krylov.EigResult(lam, res, counts, converged, total, krylov.fix_signs(U))
