"""Curvature: Hessian operators (weights, inputs), solvers written once against them, loss landscapes."""

from lbhessian.curvature.operators import (
    DenseOperator,
    InputHessian,
    Operator,
    WeightHessian,
    exact_input_hessian,
    frozen,
)
from lbhessian.curvature.solvers import (
    EigResult,
    hutchinson_trace,
    lanczos,
    min_eigenvalue,
    power_iteration,
    slq_density,
    top_eigenpairs,
)

__all__ = [
    "DenseOperator",
    "EigResult",
    "InputHessian",
    "Operator",
    "WeightHessian",
    "exact_input_hessian",
    "frozen",
    "hutchinson_trace",
    "lanczos",
    "min_eigenvalue",
    "power_iteration",
    "slq_density",
    "top_eigenpairs",
]
