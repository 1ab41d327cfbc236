"""What every eigen- and trace solver shares: the result type and the row-wise vector algebra.

Every solver works on ``op.batch`` independent problems at once: vectors are ``(B, d)`` tensors with row-wise
dot products, so the weight Hessian (B = 1) and a batch of per-image input Hessians share the code. Random
start vectors come from a private CPU generator seeded by ``seed`` (never the global RNG), so a rerun gives the
same numbers and training that calls a solver is not perturbed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lbhessian.core.errors import LbhError
from lbhessian.curvature.base import Operator


@dataclass
class EigResult:
    """Eigenpairs of ``B`` problems: values/residuals/matvecs ``(B, k)``, vectors ``(B, k, d)``.

    ``matvecs[b, i]``: operator products used when pair i of row b was accepted; ``total_matvecs``:
    operator calls of the whole solve (each call is one product per row).
    """

    eigenvalues: torch.Tensor
    residuals: torch.Tensor
    matvecs: torch.Tensor
    converged: torch.Tensor
    total_matvecs: int
    eigenvectors: torch.Tensor | None = None


def check_args(op: Operator, k: int, tol: float, max_iter: int) -> None:
    if not isinstance(k, int) or k < 1 or k > op.size:
        raise LbhError(f"top_k: expected an integer in [1, {op.size}], got {k!r}")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise LbhError(f"tol: expected a non-negative number, got {tol!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise LbhError(f"max_iter: expected a positive integer, got {max_iter!r}")


def random_vectors(op: Operator, seed: int, kind: str = "normal", rows: int | None = None) -> torch.Tensor:
    """Seeded ``(rows or B, d)`` random vectors, drawn on the CPU so CPU and GPU runs start alike."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    shape = (rows or op.batch, op.size)
    if kind == "rademacher":
        v = torch.randint(0, 2, shape, generator=gen, dtype=torch.float64) * 2 - 1
    else:
        v = torch.randn(shape, generator=gen, dtype=torch.float64)
    return v.to(device=op.device, dtype=op.dtype)


def row_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(v.dtype).tiny)


def orthogonalize(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Remove from rows of ``w`` (B, d) their components in ``basis`` (B, m, d); twice ("twice is enough")."""
    if basis.shape[1] == 0:
        return w
    for _ in range(2):
        coef = torch.bmm(basis, w.unsqueeze(-1))
        w = w - torch.bmm(basis.transpose(1, 2), coef).squeeze(-1)
    return w


def fix_signs(vecs: torch.Tensor) -> torch.Tensor:
    """Eigenvectors are defined up to sign: make each one's largest-magnitude entry positive."""
    idx = vecs.abs().argmax(dim=-1, keepdim=True)
    sign = torch.sign(torch.gather(vecs, -1, idx))
    sign[sign == 0] = 1
    return vecs * sign


def rel(res: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    return res / lam.abs().clamp_min(torch.finfo(torch.float64).tiny)
