"""The ``spectrum`` step: spectrum.json of one trained run, by ``measure.weight_spectrum`` (the weight Hessian)."""

from lbhessian.core.config import spectrum_settings
from lbhessian.measure import weight_spectrum
from lbhessian.steps.common import expected_run, measure_run


def _settings(cfg, run):
    """The spectrum section for this run's seed (whether it gets the power-iteration check)."""
    return spectrum_settings(cfg, run["seed"])


def main(
    config, data, checkpoint, metrics, out, threads=None, dataset=None, model=None, mode=None, batch=None, seed=None
):
    expected = expected_run(dataset, model, mode, batch, seed)
    measure_run(config, data, checkpoint, metrics, out, threads, _settings, weight_spectrum, expected)
