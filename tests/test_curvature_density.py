"""Spectral density by stochastic Lanczos quadrature: the quadrature weights carry the multiplicities.

On a spectrum of distinct eigenvalues with a Rademacher start on a diagonal matrix every weight is 1/d, the
same as uniform weights, so such a test cannot tell the two apart. Here eigenvalues repeat: Lanczos sees three
distinct nodes, and their weights must be the multiplicities over d, not 1/3 each.
"""

import pytest
import torch

from lbhessian.curvature.base import DenseOperator
from lbhessian.curvature.stochastic import slq_density

EIGS = torch.tensor([1.0] * 7 + [4.0] * 2 + [9.0], dtype=torch.float64)  # multiplicities 7, 2, 1 of d = 10
MULT = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)


def test_weights_are_multiplicities_on_a_diagonal_matrix():
    """Catches weights replaced by uniform 1/m over the Ritz values, or taken from the wrong row/column of the
    Ritz vectors (S[:, 0] instead of S[0]): both give weights that differ from 0.7/0.2/0.1 here.

    Independent reference: a Rademacher z on diag(EIGS) has weight sum_{i in eigenspace} z_i^2 / d =
    multiplicity / d, whatever the signs; the density's mean is then trace / d = 2.5, not the node mean 4.67."""
    out = slq_density(DenseOperator(torch.diag(EIGS)), vectors=3, steps=10, points=2000)
    for nodes, weights in zip(out["nodes"], out["weights"], strict=True):
        torch.testing.assert_close(torch.tensor(nodes, dtype=torch.float64), torch.tensor([1.0, 4.0, 9.0]).double())
        torch.testing.assert_close(torch.tensor(weights, dtype=torch.float64), MULT)
    grid = torch.tensor(out["grid"], dtype=torch.float64)
    dens = torch.tensor(out["density"], dtype=torch.float64)
    assert torch.trapezoid(dens, grid).item() == pytest.approx(1.0, abs=1e-3)
    assert torch.trapezoid(dens * grid, grid).item() == pytest.approx(EIGS.mean().item(), abs=1e-2)


def test_weights_average_to_multiplicities_on_a_rotated_matrix():
    """Catches the same breakages when the eigenvectors are not coordinate axes: each start vector then gives
    different weights ((q_j^T z)^2 / d summed over an eigenspace), but E[z z^T] = I makes their mean over
    start vectors multiplicity / d (standard error ~0.02 over 120 vectors; uniform weights would give 1/3)."""
    q, _ = torch.linalg.qr(torch.randn(10, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    out = slq_density(DenseOperator(q @ torch.diag(EIGS) @ q.T), vectors=120, steps=10, points=50)
    weights = torch.tensor(out["weights"], dtype=torch.float64)
    assert weights.shape == (120, 3)
    torch.testing.assert_close(weights.sum(1), torch.ones(120, dtype=torch.float64))
    mean, se = weights.mean(0), weights.std(0) / 120**0.5
    assert ((mean - MULT).abs() < 4 * se + 1e-3).all(), (mean, se)
    assert (weights.std(0) > 0.01).all()  # the weights really vary with the start vector here
