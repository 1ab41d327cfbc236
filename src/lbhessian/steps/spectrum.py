"""The ``spectrum`` step: spectrum.json of one trained run, by ``measure.weight_spectrum`` (the weight Hessian)."""

from lbhessian.measure import weight_spectrum
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
        step="spectrum",
        measure=weight_spectrum,
        expected=expected,
    )
