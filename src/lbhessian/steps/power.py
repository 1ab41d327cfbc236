"""``lbhessian power``: how often designs with other seed counts (and batch sizes) would decide each claim, from
a pilot run's summary.csv (report.power), judged with a config's thresholds. Prints two tables; writes nothing.

Claims 3 and 6 are not simulated: their checks read per-run files (training curves, landscapes, exact input
Hessians) that a resampled summary does not have; they are sanity checks decided in every pilot."""

import warnings

from lbhessian.core.config import load
from lbhessian.report.power import decided, two_group_power, verdict_rates
from lbhessian.report.summary import ok_runs, read_summary

SIMULATED = "124578"  # the paper's findings (1, 2, 4, 5, 7) and claim 8
# (claim, column, on the log scale): the two-group checks with a closed-form power (Welch, scipy.stats.nct)
ANALYTIC = (("1b", "lambda_1", True), ("2b", "trace", True), ("4", "test_acc", False))


def main(*, config, summary, seeds, batches=None, simulations=400):
    thresholds = load(config)["report"]["claims"]
    pilot = ok_runs(read_summary(summary))
    sizes = sorted({int(b) for b in batches.split(",")}) if batches else sorted(set(pilot["batch_size"]))
    print(f"{summary}: {len(pilot)} pilot runs; designs at batch sizes {sizes}, {simulations} simulations each")
    print("seeds per setting | " + " | ".join(f"claim {c}: holds / fails / decided" for c in SIMULATED))
    with warnings.catch_warnings():  # near-identical groups (claim 8's differences) make scipy warn per test
        warnings.simplefilter("ignore", RuntimeWarning)
        for n in seeds:
            rates = verdict_rates(pilot, n, thresholds, simulations=simulations, batches=sizes)
            done = decided(rates)
            cells = [
                f"{rates[c]['holds']:.2f} / {rates[c]['fails']:.2f} / {done[c]:.2f}" if c in rates else "-"
                for c in SIMULATED
            ]
            print(f"{n} | " + " | ".join(cells))
    clean = pilot[pilot["mode"] == "clean"]
    print(f"\nWelch power (scipy.stats.nct) of the largest-vs-smallest batch checks, pilot effect and sds, {sizes}:")
    print("check | pilot effect | " + " | ".join(f"{n} seeds" for n in seeds))
    for check, column, log in ANALYTIC:
        if column not in clean:
            continue
        effect, powers = two_group_power(
            clean, column, log=log, seeds=seeds, confidence=thresholds["confidence"], batches=sizes
        )
        print(f"{check} {column}{' (log)' if log else ''} | {effect:.3g} | " + " | ".join(f"{p:.2f}" for p in powers))
