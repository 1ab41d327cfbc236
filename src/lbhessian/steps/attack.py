"""The ``attack`` step: attack.json of one trained run, by ``measure.robustness`` (accuracy under FGSM and PGD
over the run's experiment's eps grids)."""

from lbhessian.measure import robustness
from lbhessian.steps.common import expected_run, measure_run


def main(
    *, config, data, checkpoint, metrics, out, threads=None, dataset=None, model=None, mode=None, batch=None, seed=None
):
    expected = expected_run(dataset, model, mode, batch, seed)
    measure_run(
        config=config,
        data=data,
        checkpoint=checkpoint,
        metrics=metrics,
        out=out,
        threads=threads,
        step="attack",
        measure=robustness,
        expected=expected,
    )
