# Summary table, figures, tables and claim verdicts. Everything after `collect` reads summary.csv (and
# the per-run curve files it points to): figures and tables regenerate without retraining.


report: "../report/workflow.rst"


# One figure/table set per (dataset, model) of the config. The kinds must match lbhessian.figures.FIGURES
# (a test checks): listed here so that parsing the workflow does not import matplotlib.
REPORT_EXPERIMENTS = sorted({f"{e['dataset']}_{e['model']}" for e in config["train"]["experiments"]})
FIGURE_KINDS = [
    "lambda1_vs_batch",
    "topk_eigenvalues",
    "landscape_1d",
    "landscape_2d",
    "training_dynamics",
    "accuracy_vs_batch",
    "input_measures_vs_batch",
    "input_hessian_spectrum",
    "adversarial_vs_eps",
]
PLOT_DATA = ["lambda1_vs_batch", "accuracy_vs_batch", "training_curves"]
FIGURE_PNGS = {
    f"{exp}__{kind}": report(
        f"{RESULTS}/figures/{exp}/{kind}.png",
        caption=f"../report/fig_{kind}.rst",
        category="Figures",
        subcategory=exp,
        labels={"experiment": exp, "figure": kind},
    )
    for exp in REPORT_EXPERIMENTS
    for kind in FIGURE_KINDS
}
FIGURE_PDFS = {
    f"{exp}__{kind}_pdf": f"{RESULTS}/figures/{exp}/{kind}.pdf" for exp in REPORT_EXPERIMENTS for kind in FIGURE_KINDS
}
TABLE_FILES = {f"{exp}__{ext}": f"{RESULTS}/tables/{exp}.{ext}" for exp in REPORT_EXPERIMENTS for ext in ("csv", "md")}
_EXP_ARGS = " ".join(f"--experiment {exp}" for exp in REPORT_EXPERIMENTS)

REPORT_TARGETS = [
    f"{RESULTS}/summary.csv",
    f"{RESULTS}/metrics.json",
    *[f"{RESULTS}/plots/{name}.csv" for name in PLOT_DATA],
    *FIGURE_PNGS.values(),
    *FIGURE_PDFS.values(),
    *TABLE_FILES.values(),
    f"{RESULTS}/tables/all.md",
    f"{RESULTS}/tables/all.html",
    f"{RESULTS}/claims.json",
    f"{RESULTS}/claims.md",
    f"{RESULTS}/claims.html",
]


rule collect:
    input:
        metrics=run_targets("metrics.json"),
        history=run_targets("history.csv"),
        spectrum=run_targets("spectrum.json"),
        inputs=run_targets("inputs.json"),
        attack=run_targets("attack.json"),
    output:
        summary=f"{RESULTS}/summary.csv",
        metrics=f"{RESULTS}/metrics.json",
        plots=[f"{RESULTS}/plots/{name}.csv" for name in PLOT_DATA],
    log:
        f"{RESULTS}/logs/report/collect.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/collect.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        config=CONFIG_FILE,
        plots=f"{RESULTS}/plots",
        headline_eps=config["attack"].get("headline_eps"),
    shell:
        "python -m lbhessian collect --config {params.config} --out {output.summary} --metrics {output.metrics}"
        " --plots {params.plots} {input.metrics} > {log} 2>&1"


rule figures:
    input:
        summary=f"{RESULTS}/summary.csv",
        # Curves behind the figures (landscapes, training history, input-Hessian spectra).
        history=run_targets("history.csv"),
        spectrum=run_targets("spectrum.json"),
        inputs=run_targets("inputs.json"),
    output:
        **FIGURE_PNGS,
        **FIGURE_PDFS,
    log:
        f"{RESULTS}/logs/report/figures.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/figures.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        config=CONFIG_FILE,
        out=f"{RESULTS}/figures",
        experiments=_EXP_ARGS,
        # What the figures read from the config: a change redraws them.
        settings=json.dumps([config["attack"].get("headline_eps"), config.get("report")], sort_keys=True),
    shell:
        "python -m lbhessian figures --summary {input.summary} --out {params.out} --config {params.config}"
        " {params.experiments} > {log} 2>&1"


rule tables:
    input:
        summary=f"{RESULTS}/summary.csv",
    output:
        **TABLE_FILES,
        md=f"{RESULTS}/tables/all.md",
        html=report(
            f"{RESULTS}/tables/all.html",
            caption="../report/tables.rst",
            category="Tables",
            labels={"table": "per dataset and model"},
        ),
    log:
        f"{RESULTS}/logs/report/tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/tables.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        config=CONFIG_FILE,  # named in the report caption
        out=f"{RESULTS}/tables",
        experiments=_EXP_ARGS,
    shell:
        "python -m lbhessian tables --summary {input.summary} --out {params.out} {params.experiments} > {log} 2>&1"


rule claims:
    input:
        summary=f"{RESULTS}/summary.csv",
    output:
        json=f"{RESULTS}/claims.json",
        md=f"{RESULTS}/claims.md",
        html=report(
            f"{RESULTS}/claims.html",
            caption="../report/claims.rst",
            category="Claims",
            labels={"table": "claim verdicts"},
        ),
    log:
        f"{RESULTS}/logs/report/claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/claims.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        config=CONFIG_FILE,
        # Thresholds live in the config: a changed threshold re-judges the claims.
        thresholds=json.dumps(config.get("report", {}).get("claims", {}), sort_keys=True),
    shell:
        "python -m lbhessian claims --summary {input.summary} --config {params.config} --out {output.json}"
        " --markdown {output.md} --html {output.html} > {log} 2>&1"
