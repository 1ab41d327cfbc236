"""The ``inputs`` step: inputs.json of one trained run, by ``measure.input_curvature`` (input gradients and
input Hessians)."""

from lbhessian.measure import input_curvature
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
        step="inputs",
        measure=input_curvature,
        expected=expected,
    )
