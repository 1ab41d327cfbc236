"""The ``attack`` step: attack.json of one trained run, by ``measure.robustness`` (accuracy under FGSM and PGD
over the run's experiment's eps grids)."""

from lbhessian.measure import robustness
from lbhessian.steps.common import measure_run


def main(**args):
    """The CLI's arguments (the rule's paths and wildcards), as ``measure_run`` takes them."""
    measure_run(step="attack", measure=robustness, **args)
