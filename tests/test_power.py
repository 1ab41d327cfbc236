"""Power of a design: the noncentral-t power of Welch's interval against a simulation with scipy's own Welch
test, and the resampled verdict rates of whole claims (report.power)."""

import numpy as np
import pytest
from scipy import stats

from helpers.claims import synthetic, thresholds
from lbhessian.report.claims import HOLDS
from lbhessian.report.power import decided, resample, two_group_power, verdict_rates, welch_power


def test_welch_power_equals_a_simulation_of_welchs_interval():
    """delta 1, sd 0.5 and 1.5, 4 and 6 runs: P(the 95% Welch interval lies above 0), analytically (noncentral t
    with Welch-Satterthwaite df) and over 20,000 simulated experiments with scipy.stats.ttest_ind, agree to 0.02;
    a bar at the true effect gives 2.5% (the interval's level). Catches a z instead of a t, pooled variances, a
    one-sided critical value."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.5, (20000, 4)), rng.normal(0.0, 1.5, (20000, 6))
    low = stats.ttest_ind(a, b, axis=1, equal_var=False).confidence_interval(0.95).low
    assert welch_power(1.0, 0.5, 1.5, 4, 6) == pytest.approx((low > 0).mean(), abs=0.02)
    assert welch_power(1.0, 0.5, 1.5, 4, 6, bar=1.0) == pytest.approx(0.025, abs=0.005)
    assert welch_power(1.0, 0.5, 1.5, 12, 12) > welch_power(1.0, 0.5, 1.5, 4, 6)


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # constant synthetic columns
def test_resampled_designs_keep_the_pilots_spread_and_decide_a_planted_effect(tmp_path):
    """Resampled runs have the pilots' group means and about their spread (inflated by sqrt(n/(n-1)), not
    shrunk); a design resampled from a planted effect decides claim 1 every time, one from no effect holds it
    at most at the calibration's 5%."""
    pilot = synthetic(tmp_path, effect=1.0, seeds=range(4), robust_eps=(), noise=0.2)
    big = resample(pilot, 400, np.random.default_rng(1))
    for bs, group in pilot.groupby("batch_size"):
        drawn = big[big["batch_size"] == bs]
        assert np.log(drawn["lambda_1"]).mean() == pytest.approx(np.log(group["lambda_1"]).mean(), abs=0.05)
        assert np.log(drawn["lambda_1"]).std() == pytest.approx(np.log(group["lambda_1"]).std(), rel=0.25)
    assert len(resample(pilot, 3, np.random.default_rng(1), batches=[32, 2048])) == 6
    rates = verdict_rates(pilot, 4, thresholds(), simulations=20)
    assert rates["1"][HOLDS] == 1.0 and decided(rates)["1"] == 1.0
    null = synthetic(tmp_path, effect=0.0, seeds=range(4), robust_eps=(), noise=0.2)
    assert verdict_rates(null, 4, thresholds(), simulations=60, seed=2)["1"][HOLDS] <= 0.05


def test_two_group_power_takes_the_pilots_groups_and_either_direction():
    """The largest-minus-smallest batch effect of a pilot column (on the log scale where asked) and Welch's power
    with the groups' own sds; an effect running downward (claim 4: the small batch tests better) gets the same
    power as its mirror image, not the power of an effect against the bar."""
    import pandas as pd

    small, large = [1.0, 1.4, 0.8, 1.2], [4.0, 5.0, 4.5]
    df = pd.DataFrame({"batch_size": [16] * 4 + [256] * 3, "v": small + large})
    effect, powers = two_group_power(df, "v", log=True, seeds=[3, 6])
    ls, ll = np.log(small), np.log(large)
    assert effect == pytest.approx(ll.mean() - ls.mean())
    assert powers == pytest.approx([welch_power(effect, ll.std(ddof=1), ls.std(ddof=1), n, n) for n in (3, 6)])
    down, mirrored = df.assign(v=-df["v"]), two_group_power(df.assign(v=-df["v"]), "v", log=False, seeds=[4])[1]
    assert two_group_power(down, "v", log=False, seeds=[4])[0] < 0
    assert mirrored == pytest.approx(two_group_power(df, "v", log=False, seeds=[4])[1])
