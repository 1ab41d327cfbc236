"""``lbhessian power``: how often designs with other seed counts (and batch sizes) would decide each claim, from
a pilot run's summary.csv (report.power), judged with a config's thresholds. Prints a table; writes nothing."""

from lbhessian.core.config import load
from lbhessian.report.power import decided, verdict_rates
from lbhessian.report.summary import ok_runs, read_summary


def main(config, summary, seeds, batches=None, simulations=400):
    thresholds = load(config)["report"]["claims"]
    pilot = ok_runs(read_summary(summary))
    sizes = sorted({int(b) for b in batches.split(",")}) if batches else sorted(set(pilot["batch_size"]))
    print(f"{summary}: {len(pilot)} pilot runs; designs at batch sizes {sizes}, {simulations} simulations each")
    print("seeds per setting | " + " | ".join(f"claim {c}: P(holds) / P(fails) / P(decided)" for c in "1234578"))
    for n in seeds:
        rates = verdict_rates(pilot, n, thresholds, simulations, sizes)
        done = decided(rates)
        cells = [f"{rates[c]['holds']:.2f} / {rates[c]['fails']:.2f} / {done[c]:.2f}" for c in "1234578" if c in rates]
        print(f"{n} | " + " | ".join(cells))
