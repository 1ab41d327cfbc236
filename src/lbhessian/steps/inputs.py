"""The ``inputs`` step: inputs.json of one trained run, by ``measure.input_curvature`` (input gradients and
input Hessians)."""

from lbhessian.measure import input_curvature
from lbhessian.steps.common import measure_run


def main(**args):
    """The CLI's arguments (the rule's paths and wildcards), as ``measure_run`` takes them."""
    measure_run(step="inputs", measure=input_curvature, **args)
