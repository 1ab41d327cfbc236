"""The ``spectrum`` step: spectrum.json of one trained run, by ``measure.weight_spectrum`` (the weight Hessian)."""

from lbhessian.measure import weight_spectrum
from lbhessian.steps.common import measure_run


def main(**args):
    """The CLI's arguments (the rule's paths and wildcards), as ``measure_run`` takes them."""
    measure_run(step="spectrum", measure=weight_spectrum, **args)
