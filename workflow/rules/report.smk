# Summary table, figures, tables and claim verdicts. Everything after `collect` reads summary.csv (and
# the per-run curve files it points to): figures and tables regenerate without retraining.
# The config file is an input of every rule here, not a param: an edit (thresholds, headline eps) redoes
# these cheap steps, and report captions can name it as {{ snakemake.input.config }} (they see no params).


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
# Captions by absolute path: report() outside a rule would resolve a relative one against the main Snakefile.
CAPTIONS = Path(workflow.basedir) / "workflow" / "report"
PLOT_DATA = ["lambda1_vs_batch", "accuracy_vs_batch", "training_curves"]
FIGURE_PNGS = {
    f"{exp}__{kind}": report(
        f"{RESULTS}/figures/{exp}/{kind}.png",
        caption=str(CAPTIONS / f"fig_{kind}.rst"),
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
    # Plain paths: rule all must not carry the report flag, or the report would caption them as its files.
    *[f"{RESULTS}/figures/{exp}/{kind}.png" for exp in REPORT_EXPERIMENTS for kind in FIGURE_KINDS],
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
        config=CONFIG_FILE,
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
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        plots=lambda w, output: str(Path(output.plots[0]).parent),
    shell:
        "python -m lbhessian collect --config {input.config} --out {output.summary} --metrics {output.metrics}"
        " --plots {params.plots} {input.metrics} > {log} 2>&1"


rule figures:
    input:
        config=CONFIG_FILE,
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
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        out=lambda w, output: str(Path(output[0]).parents[1]),  # figures/<experiment>/<kind>.png
        experiments=_EXP_ARGS,
    shell:
        "python -m lbhessian figures --summary {input.summary} --out {params.out} --config {input.config}"
        " {params.experiments} > {log} 2>&1"


rule tables:
    input:
        config=CONFIG_FILE,
        summary=f"{RESULTS}/summary.csv",
    output:
        **TABLE_FILES,
        md=f"{RESULTS}/tables/all.md",
        html=report(
            f"{RESULTS}/tables/all.html",
            caption=str(CAPTIONS / "tables.rst"),
            category="Tables",
            labels={"table": "per dataset and model"},
        ),
    log:
        f"{RESULTS}/logs/report/tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/tables.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        out=lambda w, output: str(Path(output.md).parent),
        experiments=_EXP_ARGS,
    shell:
        "python -m lbhessian tables --summary {input.summary} --out {params.out} {params.experiments} > {log} 2>&1"


rule claims:
    input:
        config=CONFIG_FILE,
        summary=f"{RESULTS}/summary.csv",
    output:
        json=f"{RESULTS}/claims.json",
        md=f"{RESULTS}/claims.md",
        html=report(
            f"{RESULTS}/claims.html",
            caption=str(CAPTIONS / "claims.rst"),
            category="Claims",
            labels={"table": "claim verdicts"},
        ),
    log:
        f"{RESULTS}/logs/report/claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/claims.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m lbhessian claims --summary {input.summary} --config {input.config} --out {output.json}"
        " --markdown {output.md} --html {output.html} > {log} 2>&1"
