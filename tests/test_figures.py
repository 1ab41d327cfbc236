"""Figures and tables read back: the data drawn on each figure kind's axes (line x/y, seed dots, interval
bars) against values recomputed from the formulas the synthetic runs were written with."""

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers.runs import REPORT_EPS, known, synthetic_results
from lbhessian.core.errors import LbhError
from lbhessian.report import figures
from lbhessian.report.figures.style import nice_log_ticks
from lbhessian.report.tables import run_tables, summary_tables, write_tables

REPO = Path(__file__).resolve().parents[1]
EXP = "mnist5k_M1"


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """clean at 32/256/1024, fgsm at 32/1024 only, two seeds; clean bs 256 seed 1 diverged (left out)."""
    root = tmp_path_factory.mktemp("runs")
    return root, synthetic_results(root, diverged={(256, 1)})


def draw(grid, kind):
    root, df = grid
    settings = {"headline_eps": 0.1, "claims": {"input_psd_tol": 1e-3}, "config": {}, "path": None}
    return figures.draw(df, EXP, kind, settings, base=root)


def artists(fig, prefix: str) -> dict:
    """gid -> artist for every artist whose gid starts with prefix ("mean:", "seeds:", "sd:", "seed:")."""
    out = {}
    for ax in fig.axes:
        for a in [*ax.lines, *ax.collections]:
            if (a.get_gid() or "").startswith(prefix):
                out.setdefault(a.get_gid(), []).append(a)
    return out


def mean_xy(fig, label, ax=None):
    """The mean line of one series as {x: y}, over all its segments."""
    lines = [a for a in artists(fig, f"mean:{label}").get(f"mean:{label}", []) if ax is None or a.axes is ax]
    return {float(x): float(y) for line in lines for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)}


def texts(fig) -> str:
    """Every text on the panels, whitespace collapsed (notes are wrapped over lines)."""
    return " ".join(
        " ".join([t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]).split()
    )


def gmean(values):
    return float(np.exp(np.mean(np.log(values))))


def test_lambda1_vs_batch_seeds_mean_gaps_and_log_interval(grid):
    """Catches: arithmetic instead of geometric mean on the log axis, a line drawn across batch 256 where fgsm
    has no run, a diverged run plotted, an sd bar computed on the linear scale, ticks that miss the data."""
    fig = draw(grid, "lambda1_vs_batch")
    left = fig.axes[0]  # the right panel is lambda_min / lambda_1 (check 3a)
    clean = mean_xy(fig, "clean", left)
    assert clean[32] == pytest.approx(gmean([known(32, s)["lambda"][0] for s in (0, 1)]))
    assert clean[256] == pytest.approx(known(256, 0)["lambda"][0])  # seed 1 diverged: not drawn
    fgsm_lines = [a for a in artists(fig, "mean:fgsm")["mean:fgsm"] if a.axes is left]
    assert sorted(len(line.get_xdata()) for line in fgsm_lines) == [1, 1]  # two points, no bridge over 256
    assert "fgsm: no data at batch 256" in texts(fig)
    dots = artists(fig, "seeds:clean")["seeds:clean"][0].get_offsets()
    assert sorted(map(float, dots[:, 1])) == pytest.approx(
        sorted([known(b, s)["lambda"][0] for b in (32, 1024) for s in (0, 1)] + [known(256, 0)["lambda"][0]])
    )
    (bars,) = [a for a in artists(fig, "sd:clean")["sd:clean"] if a.axes is left]
    seg = {float(s[0][0]): (s[0][1], s[1][1]) for s in bars.get_segments()}
    logs = np.log([known(1024, s)["lambda"][0] for s in (0, 1)])
    assert seg[1024] == pytest.approx((np.exp(logs.mean() - logs.std(ddof=1)), np.exp(logs.mean() + logs.std(ddof=1))))
    assert 256 not in seg  # one seed: no interval pretended
    ax = fig.axes[0]
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert min(ticks) <= 1.0 and max(ticks) >= 8.8  # fgsm bs 32 seed 0 is 1.0; clean bs 1024 seed 1 is 8.8
    plt.close(fig)


def test_accuracy_vs_batch_is_test_accuracy_in_percent(grid):
    """Catches: train accuracy plotted as test accuracy, fractions on a % axis, the wrong eps for FGSM."""
    fig = draw(grid, "accuracy_vs_batch")
    left, right = fig.axes[0], fig.axes[1]
    for bs in (32, 1024):
        assert mean_xy(fig, "clean", left)[bs] == pytest.approx(
            np.mean([100 * known(bs, s)["test_acc"] for s in (0, 1)])
        )
        want = np.mean([100 * known(bs, s)["acc"][(0.1, "test")] for s in (0, 1)])
        assert mean_xy(fig, "clean", right)[bs] == pytest.approx(want)
    assert "ε = 0.1" in right.get_title()
    plt.close(fig)


def test_input_measures_by_split(grid):
    """Catches: train and test input-gradient norms swapped or merged."""
    fig = draw(grid, "input_measures_vs_batch")
    for split in ("train", "test"):
        got = mean_xy(fig, f"clean, {split}", fig.axes[0])
        assert got[32] == pytest.approx(gmean([known(32, s)["grad_x"][split] for s in (0, 1)]))
        assert mean_xy(fig, f"clean, {split}", fig.axes[1])[1024] == pytest.approx(
            gmean([2 * known(1024, s)["grad_x"][split] for s in (0, 1)])
        )
    plt.close(fig)


def test_topk_eigenvalues_per_batch(grid):
    """Catches: eigenvalue index off by one, batch sizes mixed up between series, modes mixed."""
    fig = draw(grid, "topk_eigenvalues")
    clean_ax = next(ax for ax in fig.axes if ax.get_title() == "clean")
    got = mean_xy(fig, "bs 1024", clean_ax)
    assert list(got) == [1.0, 2.0, 3.0, 4.0]
    assert list(got.values()) == pytest.approx([gmean([known(1024, s)["lambda"][i] for s in (0, 1)]) for i in range(4)])
    fgsm_ax = next(ax for ax in fig.axes if ax.get_title() == "fgsm")
    assert clean_ax.get_ylim() == fgsm_ax.get_ylim()  # one y axis: clean and robust compared at a glance
    assert mean_xy(fig, "bs 32", fgsm_ax)[1.0] == pytest.approx(
        gmean([known(32, s, "fgsm")["lambda"][0] for s in (0, 1)])
    )
    plt.close(fig)


def test_adversarial_vs_eps_starts_at_clean_accuracy(grid):
    """Catches: train split drawn as test, eps = 0 not the clean accuracy, % scale lost."""
    fig = draw(grid, "adversarial_vs_eps")
    ax = next(ax for ax in fig.axes if "clean training" in ax.get_title())
    got = mean_xy(fig, "bs 1024, test", ax)
    want = [np.mean([100 * known(1024, s)["test_acc"] for s in (0, 1)])]
    want += [np.mean([100 * known(1024, s)["acc"][(e, "test")] for s in (0, 1)]) for e in REPORT_EPS]
    assert list(got) == [0.0, *REPORT_EPS] and list(got.values()) == pytest.approx(want)
    plt.close(fig)


def test_landscape_1d_one_line_per_seed(grid):
    """Catches: test loss drawn as train loss, seeds averaged into a band, alpha axis shifted."""
    fig = draw(grid, "landscape_1d")
    lines = artists(fig, "seed:clean:1024:train")
    line = lines["seed:clean:1024:train:1"][0]
    alpha = np.linspace(-1, 1, 11)
    assert list(line.get_xdata()) == pytest.approx(alpha)
    assert list(line.get_ydata()) == pytest.approx(0.1 + known(1024, 1)["lambda"][0] * alpha**2 / 2)
    plt.close(fig)


def test_training_dynamics_every_batch_or_a_note(grid):
    """Catches: a batch size silently missing (bs 32 stops at epoch 3, before the first tracked epoch 5),
    seeds averaged into a band, tracked values read from the wrong column."""
    fig = draw(grid, "training_dynamics")
    line = artists(fig, "seed:clean:1024:0")["seed:clean:1024:0"][0]
    assert list(line.get_xdata()) == [5, 10] and list(line.get_ydata()) == pytest.approx([4.0, 8.0])
    assert "no tracked point: clean bs 32 (stopped after 3 epochs), fgsm bs 32 (stopped after 3 epochs)" in texts(fig)
    plt.close(fig)


def test_landscape_2d_and_input_hessian(grid):
    """Catches: one batch size drawn twice, the colour scale not covering both surfaces, eigenvalues lost."""
    fig = draw(grid, "landscape_2d")
    titles = [ax.get_title() for ax in fig.axes]
    assert any("batch 32 (mean of 2" in t for t in titles) and any("batch 1024 (mean of 2" in t for t in titles)
    levels = [c for ax in fig.axes for c in ax.collections if hasattr(c, "levels")][0].levels
    assert levels[0] == pytest.approx(0.1) and levels[-1] == pytest.approx(0.1 + 2 * np.mean([8.0, 8.8]))
    plt.close(fig)
    fig = draw(grid, "input_hessian_spectrum")
    ys = sorted(float(y) for c in fig.axes[0].collections for y in c.get_offsets()[:, 1])
    assert sorted(set(ys)) == [1.0, 3.0, 6.0] and len(ys) == 9 * 2 * 2  # 9 ok runs x 2 images x top 2
    rel = sorted({float(y) for c in fig.axes[1].collections for y in np.asarray(c.get_offsets())[:, 1]})
    assert rel == pytest.approx([-1e-6 / 3, -1e-6 / 6])
    plt.close(fig)


def test_every_kind_written_and_bad_kind_refused(grid, tmp_path):
    """Catches: a kind missing from the registry, an experiment without runs crashing, unknown kinds drawn."""
    root, df = grid
    assert sorted(figures.DRAW) == sorted(figures.FIGURES)
    png = [tmp_path / f"{k}.png" for k in figures.FIGURES]
    pdf = [tmp_path / f"{k}.pdf" for k in figures.FIGURES]
    settings = {"headline_eps": 0.1, "claims": {}, "config": {}, "path": None}
    figures.make_figures(df, "cifar10_C1", figures.FIGURES, png=png, pdf=pdf, settings=settings, base=root)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in png)
    assert all(p.read_bytes()[:4] == b"%PDF" for p in pdf)
    with pytest.raises(LbhError, match="figure kind pie"):
        figures.make_figures(df, EXP, ["pie"], png=png[:1], pdf=pdf[:1], settings=settings, base=root)


def test_log_ticks_bracket_the_data():
    """Catches: a log axis over 2-3.6 with no tick inside (matplotlib's default), or ticks not bracketing."""
    for lo, hi in [(2.0, 3.6), (0.004, 0.9), (13.0, 14.0), (1.0, 1000.0)]:
        t = nice_log_ticks(lo, hi)
        assert t[0] <= lo and t[-1] >= hi and len(t) >= 3, (lo, hi, t)


def test_tables_by_topic_every_run_in_percent(grid, tmp_path):
    """Catches: accuracies as fractions, the diverged run missing from the per-run table or averaged into the
    summary, epochs/steps absent, topics mixed into one wide table."""
    root, df = grid
    ok = df[df["status"] == "ok"]
    summary = summary_tables(ok)
    assert list(summary) == ["training", "weight Hessian", "input side", "adversarial"]
    row = summary["training"].set_index("setting").loc["clean · bs 1024"]
    mean, sd = 100 * np.mean([0.9, 0.902]), 100 * np.std([0.9, 0.902], ddof=1)
    assert row["test acc %"] == f"{mean:.1f} ± {sd:.1f}" and row["epochs"] == "12.0 ± 0.0"
    assert (
        summary["weight Hessian"].set_index("setting").loc["clean · bs 256", "λ1(H)"]
        == f"{known(256, 0)['lambda'][0]:.3g}"
    )
    runs = run_tables(df)["training"].set_index("run")
    assert len(runs) == len(df) and runs.loc["clean · bs 256 · seed 1", "status"] == "diverged"
    assert (
        runs.loc["fgsm · bs 32 · seed 1", "test acc %"] == "95.2"
        and runs.loc["clean · bs 32 · seed 0", "steps"] == "375"
    )
    assert max(len(f.columns) for f in run_tables(df).values()) <= 12
    out = [tmp_path / n for n in ("e.csv", "e.md", "all.md", "all.html")]
    write_tables(df, [EXP], csv=[out[0]], md=[out[1]], all_md=out[2], all_html=out[3])
    html = out[3].read_text()
    assert "clean · bs 256 · seed 1" in html and 'class="key"' in html
    assert "95.1 ± 0.1" in out[1].read_text()  # clean bs 32 test acc in %


def test_workflow_lists_every_figure_kind():
    """Catches: a figure kind added in Python but not produced by the workflow, or without a caption."""
    smk = (REPO / "workflow/rules/report.smk").read_text()
    listed = re.search(r"FIGURE_KINDS = \[(.*?)\]", smk, re.S).group(1)
    assert re.findall(r'"(\w+)"', listed) == figures.FIGURES
    for kind in figures.FIGURES:
        assert (REPO / f"workflow/report/fig_{kind}.rst").exists(), kind


def test_report_page_links_units_and_experiment(grid, tmp_path):
    """Catches: a link to a check/figure/table that is not on the page, accuracies left as fractions, an
    unrendered caption, thresholds without reasons, a missing run."""
    from helpers.claims import synthetic_claims
    from lbhessian.report.page import build

    root, df = grid
    kinds = ["lambda1_vs_batch", "accuracy_vs_batch"]
    settings = {"headline_eps": 0.1, "claims": {}, "config": {}, "path": None}
    pngs = {k: tmp_path / f"{k}.png" for k in kinds}
    figures.make_figures(
        df,
        EXP,
        kinds,
        png=list(pngs.values()),
        pdf=[tmp_path / f"{k}.pdf" for k in kinds],
        settings=settings,
        base=root,
    )
    claims = synthetic_claims()
    captions = {k: (REPO / f"workflow/report/fig_{k}.rst").read_text() for k in kinds}
    from lbhessian.core.config import load

    cfg = load(REPO / "params.yaml")
    html = build(df, claims, cfg, "params.yaml", pngs={EXP: pngs}, captions=captions)
    ids = set(re.findall(r'id="([^"]+)"', html)) | set(re.findall(r"id='([^']+)'", html))
    links = set(re.findall(r'href="#([^"]+)"', html))
    assert links and links <= ids, links - ids
    assert {"fig-mnist5k_M1-lambda1_vs_batch", "checks-1", "tables-mnist5k_M1", "runs-mnist5k_M1"} <= links
    assert "-5 pp [-7, -3]" in html  # accuracy gap -0.05 [-0.07, -0.03] in percentage points
    assert "{{" not in html and "Made by config <code>params.yaml</code>" in html
    assert "the paper&#x27;s &#x27;at least twice as sharp&#x27;" in html  # the threshold's reason
    assert "stand-in: the paper&#x27;s M1 architecture was not recovered" in html
    assert html.count("data:image/png;base64,") == 2 and "<script" not in html and "http" not in html.split("<nav>")[0]
    assert all(f"clean · bs {b} · seed {s}" in html for b in (32, 256, 1024) for s in (0, 1))


@pytest.mark.slow
def test_pipeline_report_rules_and_snakemake_report(tmp_path):
    """The report rules (collect, figures, tables, claims, page) on synthetic runs of a small grid, then
    `snakemake --report`: both reports hold every figure; results/report.html is one offline page."""
    import yaml

    from helpers.workflow import SMOKE, check_report, snakemake

    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["train"]["batch_sizes"], cfg["train"]["seeds"] = [32, 256, 1024], [0, 1]
    cfg["train"]["robust"][0]["batch_sizes"] = [32, 1024]
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(cfg))
    synthetic_results(tmp_path)
    (tmp_path / "data/prepared").mkdir(parents=True)
    (tmp_path / "data/prepared/mnist5k.pt").write_bytes(b"")  # upstream inputs: the DAG resolves, nothing retrains
    for p in (tmp_path / "results/runs").rglob("metrics.json"):
        (p.parent / "checkpoint.pt").write_bytes(b"")
    config = ("--configfile", str(tmp_path / "grid.yaml"))
    snakemake(
        tmp_path, *config, "-c1", "--allowed-rules", "collect", "figures", "tables", "claims", "page", timeout=600
    )
    snakemake(tmp_path, *config, "--report", "smk_report.html", timeout=600)
    check_report((tmp_path / "smk_report.html").read_text())
    page = (tmp_path / "results/report.html").read_text()
    assert all(f'id="fig-mnist5k_M1-{k}"' in page for k in figures.FIGURES)
    assert "<script" not in page and not re.search(r"(src|href)=.https?:", page)
    assert "No replication has been run" in page  # the default pipeline never waits on replications
    # `lbhessian replications` (make replicate) writes replications.json: the next run redoes only the page,
    # which then shows each claim's verdict over the replications.
    import json

    verdict = {"verdicts": {"design": "holds", "seeds20": "fails"}, "overall": "unstable"}
    reps = {"replications": ["design", "seeds20"], "claims": {str(k): verdict for k in range(1, 9)}}
    (tmp_path / "results/replications.json").write_text(json.dumps(reps))
    snakemake(tmp_path, *config, "-c1", "--allowed-rules", "page", timeout=600)
    page = (tmp_path / "results/report.html").read_text()
    assert "Replications: 2 (design, seeds20)" in page and page.count('class="badge unstable"') == 8


def test_one_batch_one_seed_says_so(tmp_path):
    """Catches: a trend or a spread drawn from one batch size or one seed without saying it cannot be read."""
    df = synthetic_results(tmp_path, batch_sizes=(256,), seeds=(0,), robust_bs=())
    settings = {"headline_eps": 0.1, "claims": {}, "config": {}, "path": None}
    for kind in ("lambda1_vs_batch", "accuracy_vs_batch", "input_measures_vs_batch"):
        fig = figures.draw(df, EXP, kind, settings, base=tmp_path)
        assert "not enough data for a trend: one batch size; one seed per point: no spread" in texts(fig), kind
        assert not artists(fig, "sd:"), kind
        plt.close(fig)
