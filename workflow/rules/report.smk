# Summary table, figures, tables and claim verdicts. Everything after `collect` reads summary.csv (and
# the per-run curve files it points to): figures and tables regenerate without retraining.
# The config file is an input of every rule here, not a param: an edit (thresholds, headline eps) redoes
# these cheap steps, and report captions can name it as {{ snakemake.input.config }} (they see no params).


report: "../report/workflow.rst"


# One figure/table set per (dataset, model) of the config. The kinds must match lbhessian.report.figures.FIGURES
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
    "robust_vs_train_eps",
]
# Captions by absolute path: report() outside a rule would resolve a relative one against the main Snakefile.
CAPTIONS = Path(workflow.basedir) / "workflow" / "report"
PLOT_DATA = ["lambda1_vs_batch", "accuracy_vs_batch", "training_curves"]  # lbhessian.report.dvc.PLOTS
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
    f"{RESULTS}/report.html",
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
    shell:
        "python -m lbhessian collect --config {input.config} --metrics {input.metrics} --history {input.history}"
        " --spectrum {input.spectrum} --inputs {input.inputs} --attack {input.attack} --out {output.summary}"
        " --headline {output.metrics} --plots {output.plots} > {log} 2>&1"


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
        # One experiment's kinds, PNGs and PDFs in the same order (experiment-major).
        experiments=REPORT_EXPERIMENTS,
        kinds=FIGURE_KINDS,
        png=[f"{RESULTS}/figures/{exp}/{kind}.png" for exp in REPORT_EXPERIMENTS for kind in FIGURE_KINDS],
        pdf=list(FIGURE_PDFS.values()),
    shell:
        "python -m lbhessian figures --config {input.config} --summary {input.summary}"
        " --experiment {params.experiments} --kind {params.kinds} --png {params.png} --pdf {params.pdf} > {log} 2>&1"


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
        experiments=REPORT_EXPERIMENTS,
        csv=[TABLE_FILES[f"{exp}__csv"] for exp in REPORT_EXPERIMENTS],
        md=[TABLE_FILES[f"{exp}__md"] for exp in REPORT_EXPERIMENTS],
    shell:
        "python -m lbhessian tables --config {input.config} --summary {input.summary} --experiment {params.experiments}"
        " --csv {params.csv} --md {params.md} --all-md {output.md} --html {output.html} > {log} 2>&1"


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
        "python -m lbhessian claims --config {input.config} --summary {input.summary} --out {output.json}"
        " --markdown {output.md} --html {output.html} > {log} 2>&1"


# The report a researcher reads: one self-contained page (figures embedded, captions under them, no script).
# `snakemake --report` still makes Snakemake's own report from the files flagged above.
rule page:
    input:
        config=CONFIG_FILE,
        summary=f"{RESULTS}/summary.csv",
        claims=f"{RESULTS}/claims.json",
        png=[f"{RESULTS}/figures/{exp}/{kind}.png" for exp in REPORT_EXPERIMENTS for kind in FIGURE_KINDS],
        # Relative, like CONFIG_FILE: Snakemake's metadata records input paths, and a clone elsewhere (a DVC
        # pull) must not see other files and rerun the page.
        captions=[os.path.relpath(CAPTIONS / f"fig_{kind}.rst") for kind in FIGURE_KINDS],
        replications=replications_if_run,
    output:
        html=f"{RESULTS}/report.html",
    log:
        f"{RESULTS}/logs/report/page.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/page.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        experiments=REPORT_EXPERIMENTS,
        kinds=FIGURE_KINDS,
    shell:
        "python -m lbhessian page --config {input.config} --summary {input.summary} --claims {input.claims}"
        " --experiment {params.experiments} --kind {params.kinds} --png {input.png} --caption {input.captions}"
        " --replications {input.replications} --out {output.html} > {log} 2>&1"
