"""The report's words and numbers against the data (issue 21): figure text that never overlaps, captions that say
what the panel plots (also when the effect runs against the paper), numbers in the units of the quantity, the
data description from the resolved config, and the replication status on the first screen."""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.legend import Legend

from helpers.claims import synthetic, thresholds
from helpers.runs import synthetic_results
from lbhessian.core.config import load
from lbhessian.report import figtext, figures, verdicts
from lbhessian.report import numbers as nb
from lbhessian.report.claims import evaluate
from lbhessian.report.page import build

REPO = Path(__file__).resolve().parents[1]
EXP = "mnist5k_M1"


@pytest.fixture(scope="module")
def cfg():
    return load(REPO / "params.yaml")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    # Three training modes, as in the default config: three panels side by side where figures split by mode.
    return root, synthetic_results(root, diverged={(256, 1)}, robust=("fgsm", "fgsm05"))


def _boxes(fig):
    """(name, window box) of every visible text on the figure, and of every legend as one box."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    out = []
    legends = [*fig.legends, *[ax.get_legend() for ax in fig.axes if ax.get_legend()]]
    in_legend = {id(t) for leg in legends for t in [*leg.get_texts(), leg.get_title()]}
    for leg in legends:
        out.append(("legend", leg.get_window_extent(r)))
    texts = list(fig.texts) + ([fig._suptitle] if fig._suptitle and fig._suptitle not in fig.texts else [])
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            texts += list(ax.texts)
            continue
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        for axis in (ax.xaxis, ax.yaxis):  # tick labels drawn: those inside the axis' view
            lo, hi = sorted(axis.get_view_interval())
            texts += [
                t.label1
                for t in axis.get_major_ticks()
                if lo - 1e-9 * abs(hi - lo) <= t.get_loc() <= hi + 1e-9 * abs(hi - lo)
            ]
    for t in texts:
        if id(t) in in_legend or not t.get_visible() or not t.get_text().strip() or isinstance(t, Legend):
            continue
        box = t.get_window_extent(r)
        if box.width > 0 and box.height > 0:
            out.append((t.get_text()[:40], box))
    return out


def _overlaps(fig) -> list:
    boxes = _boxes(fig)
    bad = []
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1 :]:
            # 1 pixel of grace: touching glyph boxes are not overlapping words
            ix = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
            iy = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            if ix > 1 and iy > 1:
                bad.append((a, b))
    return bad


@pytest.mark.parametrize("kind", figures.FIGURES)
def test_no_text_overlaps_another_in_any_figure(grid, cfg, kind):
    """Catches: panel titles running into each other or into the legend, ~40 overlapping tick labels on a log
    axis, a note over an axis label (issue 21). Every title, label, tick label, note and legend box."""
    root, df = grid
    settings = {"headline_eps": 0.1, "claims": cfg["report"]["claims"], "config": cfg, "path": "params.yaml"}
    with figures.theme():
        fig = figures.draw(df, EXP, kind, settings, base=root)
        bad = _overlaps(fig)
        plt.close(fig)
    assert not bad, (kind, bad)


def test_overlap_check_can_fail():
    """The overlap test itself: two titles drawn on top of each other are found."""
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_title("a long title that runs on")
    ax.text(0.5, 1.04, "another text", transform=ax.transAxes, ha="center")
    assert _overlaps(fig)
    plt.close(fig)


def _mean_line(fig, ax, label) -> dict:
    lines = [a for a in ax.lines if a.get_gid() == f"mean:{label}"]
    return {float(x): float(y) for ln in lines for x, y in zip(ln.get_xdata(), ln.get_ydata(), strict=True)}


@pytest.mark.parametrize("effect", [1.0, -1.0])
def test_captions_agree_with_the_plotted_data_either_way(tmp_path, effect):
    """Catches (issue 21): "Claim 5: both rise with batch size" above curves that fall. On a summary where every
    batch-size effect runs against the paper (effect -1), the "Shown:" line says "falls" and quotes the very
    means the figure draws; with effect +1 it says "rises"."""
    df = synthetic(tmp_path, effect=effect)
    settings = {"headline_eps": 0.2, "claims": thresholds(), "config": {}, "path": None}
    with figures.theme():
        fig = figures.draw(df, EXP, "input_measures_vs_batch", settings)
    said = " ".join(figtext.shown("input_measures_vs_batch", df, settings))
    word = "rises" if effect > 0 else "falls"
    assert f"||grad_x J|| test ({'clean'}) {word}" in said and f"lambda_1(H_x) test (clean) {word}" in said
    assert ("rises" in said) != ("falls" in said)
    drawn = _mean_line(fig, fig.axes[0], "clean, test")
    lo, hi = min(drawn), max(drawn)
    assert f"from {nb.sig(drawn[lo])} at batch {int(lo)} to {nb.sig(drawn[hi])} at {int(hi)}" in said
    plt.close(fig)
    acc = " ".join(figtext.shown("accuracy_vs_batch", df, settings))
    assert f"clean test accuracy (clean) {'falls' if effect > 0 else 'rises'}" in acc


def test_a_small_fall_is_a_fall():
    """Catches: 94.3 % -> 92.6 % called "stays level" above a line that visibly falls."""
    assert figtext.direction(0.943, 0.926) == "falls" and figtext.direction(0.5, 0.5) == "stays level"


def test_landscape_caption_names_runs_whose_minimum_is_off_zero(tmp_path):
    """Catches: "the minimum at alpha = 0 shows the end point is not a saddle" above runs whose minimum lies at
    alpha = +-0.2."""
    df = synthetic(tmp_path)
    df.loc[df.index[:2], "landscape_argmin_alpha"] = [0.2, -0.2]
    said = " ".join(figtext.shown("landscape_1d", df, {}))
    assert f"lowest at alpha = 0 in {len(df) - 2} of {len(df)} runs" in said and "alpha = -0.2, 0.2" in said
    caption = (REPO / "workflow/report/fig_landscape_1d.rst").read_text()
    assert "shows the end point is not a saddle" not in caption


def test_numbers_in_the_units_of_the_quantity():
    """Catches: 17-digit p-values, slopes on accuracy as % ("213 % [159 %, 268 %]" per unit eps), slopes of
    log2 values shown raw."""
    acc7 = {"check": "7b.bs256.1", "effect": 2.13, "ci_low": 1.59, "ci_high": 2.68, "unit": "fraction"}
    assert nb.effect(acc7) == "+21 pp per 0.1 training eps [+16, +27]"
    acc5 = {"check": "5a.2", "effect": 0.009, "ci_low": -0.004, "ci_high": 0.022, "unit": "fraction"}
    assert nb.effect(acc5) == "+0.9 pp per doubling of batch [-0.4, +2.2]"
    ratio = {"check": "1b", "effect": 4.4, "ci_low": 3.21, "ci_high": 6.04, "unit": "x"}
    assert nb.effect(ratio) == "4.4x [3.21x, 6.04x]"
    slope = {"check": "1a", "effect": 1.0, "ci_low": 0.5, "ci_high": 1.5}
    assert nb.effect(slope) == "2x per doubling of batch [1.41x, 2.83x]"
    assert nb.p_value(0.012345678901234567, "one-sided, H1: > 0") == "p = 0.012 (one-sided, H1: > 0)"
    log_slope = {"check": "5b", "effect": -0.04, "p_value": 0.9012345678, "p_alternative": "one-sided, H1: > 0"}
    assert nb.check_p(log_slope) == "p = 0.9 (one-sided, H1: > 1x per doubling of batch)"
    assert nb.p_value(3e-9) == "p < 0.001" and nb.sig(0.0200) == "0.02" and nb.sig(-1.2345e-17, 2) == "-1.2e-17"
    assert nb.means_by_batch("mean bs16 0.708 -> bs256 0.726", acc5) == "70.8 % at batch 16, 72.6 % at 256"


def test_first_screen_words_from_config_claims_and_replications(tmp_path, cfg):
    """Catches: "4,000 train / 1,000 test" when the runs train on 600; an inconclusive claim without the way it
    leans; replications run but not shown (or claimed when none ran); unsettled runs not named."""
    df = synthetic(tmp_path, effect=-1.0)
    df["settled"] = True
    df.loc[df.index[0], "settled"] = False
    claims = evaluate(df, thresholds())
    line = verdicts.scale_line(cfg, df)
    assert "600 train / 1,000 test images" in line and "4,000" not in line
    html = build(df, claims, cfg, "params.yaml", pngs={}, captions={})
    findings = [claims["claims"][k]["verdict"] for k in verdicts.FINDINGS]
    assert f"Of the paper&#x27;s 5 findings {findings.count('holds')} hold here, {findings.count('fails')} fail" in html
    assert "No replication has been run" in html and "make replicate SEEDS=" in html.replace("&quot;", '"')
    assert "leans against the paper" not in html  # every claim fails outright: nothing leans
    claims["claims"]["5"].update(verdict="inconclusive", leans="against")
    html = build(df, claims, cfg, "params.yaml", pngs={}, captions={})
    assert "leans against the paper" in html
    assert "had not settled" in html and claims["unsettled"][0] in html
    reps = {
        "replications": ["design", "seeds20"],
        "claims": {
            k: {
                "verdicts": {"design": c["verdict"], "seeds20": "holds"},
                "overall": "unstable" if c["verdict"] != "holds" else "holds",
            }
            for k, c in claims["claims"].items()
        },
    }
    html = build(df, claims, cfg, "params.yaml", pngs={}, captions={}, replications=json.loads(json.dumps(reps)))
    assert "No replication has been run" not in html and "Replications: 2 (design, seeds20)" in html
    assert html.count('class="badge unstable"') == sum(r["overall"] == "unstable" for r in reps["claims"].values())


def test_key_check_is_the_deciding_one():
    """The effect shown for a claim is the check that decided its verdict, at the headline eps for claim 5."""
    checks = [
        {"claim": "5", "check": "5a.1", "verdict": "holds", "effect": -0.01, "statistic": "slope (test, eps 0.05) x"},
        {
            "claim": "5",
            "check": "5a.2",
            "verdict": "inconclusive",
            "effect": 0.01,
            "statistic": "slope (test, eps 0.1)",
        },
        {"claim": "5", "check": "5b", "verdict": "inconclusive", "effect": 0.2, "statistic": "slope"},
    ]
    assert verdicts.key_check("5", "inconclusive", checks, 0.1)["check"] == "5a.2"
    assert verdicts.key_check("5", "holds", checks, 0.1)["check"] == "5a.1"


def test_saddle_free_panel_uses_claim_6a_data_and_points_stay_by_their_batch(grid, cfg):
    """Catches: the right panel of the input-Hessian figure on test images only and without the noise floor of
    claim 6a (so its minimum differs from the check's), and a dodge that moves robust points halfway to the next
    batch size."""
    root, df = grid
    settings = {"headline_eps": 0.1, "claims": cfg["report"]["claims"], "config": cfg, "path": None}
    with figures.theme():
        fig = figures.draw(df, EXP, "input_hessian_spectrum", settings, base=root)
    right = fig.axes[1]
    ys = [float(y) for c in right.collections for y in np.asarray(c.get_offsets())[:, 1]]
    ok = df[df["status"] == "ok"]
    assert min(ys) == pytest.approx(ok["input_exact_min_rel"].min())  # the very number check 6a judges
    assert len(ys) == int(ok["input_exact_images_train"].sum() + ok["input_exact_images_test"].sum())
    assert right.get_yscale() == "symlog" and fig.axes[0].get_yscale() == "symlog"
    assert any(abs(line.get_ydata()[0] + cfg["report"]["claims"]["input_psd_tol"]) < 1e-12 for line in right.lines)
    for ax in fig.axes[:2]:
        xs = [float(x) for c in ax.collections for x in np.asarray(c.get_offsets())[:, 0]]
        assert xs and max(abs(x - round(x)) for x in xs) < 0.25
        assert len(ax.get_yticks()) <= 7
    plt.close(fig)


def test_coarse_2d_landscape_draws_no_contours_and_says_why(grid, cfg):
    """Catches: a 3 x 3 grid (the default spectrum.landscape.points_2d) drawn as contours."""
    root, df = grid
    assert cfg["spectrum"]["landscape"]["points_2d"] < figtext.MIN_2D_POINTS
    settings = {"headline_eps": 0.1, "claims": cfg["report"]["claims"], "config": cfg, "path": None}
    with figures.theme():
        fig = figures.draw(df, EXP, "landscape_2d", settings, base=root)
    assert not [c for ax in fig.axes for c in ax.collections if hasattr(c, "levels")]
    assert "No contour map" in " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    plt.close(fig)
    assert "no contour map" in " ".join(figtext.shown("landscape_2d", df, {"config": cfg}))


def test_robust_points_sit_beside_their_batch_size(grid, cfg):
    """Catches: a dodge that moves robust points halfway to the next batch size on the log2 batch axis."""
    root, df = grid
    settings = {"headline_eps": 0.1, "claims": cfg["report"]["claims"], "config": cfg, "path": None}
    with figures.theme():
        fig = figures.draw(df, EXP, "lambda1_vs_batch", settings, base=root)
    sizes = sorted(set(df["batch_size"]))
    xs = [
        float(x)
        for c in fig.axes[0].collections
        if (c.get_gid() or "").startswith("seeds:")
        for x in np.asarray(c.get_offsets())[:, 0]
    ]
    assert xs and all(min(abs(np.log2(x / b)) for b in sizes) < 0.2 for x in xs)  # a fifth of a doubling at most
    plt.close(fig)
