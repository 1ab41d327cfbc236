"""Curvature engine: Hessian operators (weights, inputs) and the solvers written once against them.

Public API (see docs/api.md): build an operator on your model and data, hand it to any solver.

    op = WeightHessian(model, x, y)              # Hessian of the mean cross-entropy w.r.t. the weights
    top = lanczos(op, k=5, tol=1e-3)             # top-5 eigenpairs with residuals and product counts
"""

from lbhessian.core.modes import frozen
from lbhessian.curvature.base import DenseOperator, Operator
from lbhessian.curvature.input_hessian import InputHessian, exact_input_hessian, input_chunk
from lbhessian.curvature.krylov import EigResult
from lbhessian.curvature.lanczos import both_ends, lanczos, min_eigenvalue
from lbhessian.curvature.landscape import loss_1d, loss_2d
from lbhessian.curvature.operators import WeightHessian
from lbhessian.curvature.power import power_iteration
from lbhessian.curvature.stochastic import hutchinson_trace, hutchinson_vector, lanczos_sample, slq_density
from lbhessian.curvature.tracking import track

__all__ = [
    "DenseOperator",
    "EigResult",
    "InputHessian",
    "Operator",
    "WeightHessian",
    "both_ends",
    "exact_input_hessian",
    "frozen",
    "hutchinson_trace",
    "hutchinson_vector",
    "input_chunk",
    "lanczos",
    "lanczos_sample",
    "loss_1d",
    "loss_2d",
    "min_eigenvalue",
    "power_iteration",
    "slq_density",
    "track",
]
