# Summary table, figures, tables and claim verdicts. Everything after `collect` reads summary.csv (and
# the per-run curve files it points to): figures and tables regenerate without retraining.
# The config file is an input of every rule here, not a param: an edit (thresholds, headline eps) redoes
# these cheap steps, and report captions can name it as {{ snakemake.input.config }} (they see no params).


report: "../report/workflow.rst"


# One figure/table set per experiment of the config (core.names). The kinds must match
# lbhessian.report.figures.FIGURES (a test checks): listed here so that parsing the workflow does not import matplotlib.
REPORT_EXPERIMENTS = config_experiments(config)
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
PLOT_DATA = ["lambda1_vs_batch", "accuracy_vs_batch", "training_curves"]  # lbhessian.report.dvc.PLOTS


rule collect:
    input:
        **{kind: run_targets(name) for kind, name in RUN_FILES.items()},
        config=CONFIG_FILE,
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
        "python -m lbhessian collect --config {input.config} "
        + " ".join(f"--{kind} {{input.{kind}}}" for kind in RUN_FILES)
        + " --out {output.summary} --headline {output.metrics} --plots {output.plots} > {log} 2>&1"


rule figures:
    input:
        # Curves behind the figures (landscapes, training history, input-Hessian spectra).
        **{kind: run_targets(RUN_FILES[kind]) for kind in ("history", "spectrum", "inputs")},
        config=CONFIG_FILE,
        summary=rules.collect.output.summary,
    output:
        png=[figure_png(e, k) for e in REPORT_EXPERIMENTS for k in FIGURE_KINDS],
        pdf=expand(FIGURE, experiment=REPORT_EXPERIMENTS, kind=FIGURE_KINDS, ext="pdf"),
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
        experiments=REPORT_EXPERIMENTS,
        kinds=FIGURE_KINDS,
    shell:
        "python -m lbhessian figures --config {input.config} --summary {input.summary}"
        " --experiment {params.experiments} --kind {params.kinds} --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule tables:
    input:
        config=CONFIG_FILE,
        summary=rules.collect.output.summary,
    output:
        csv=expand(TABLE, experiment=REPORT_EXPERIMENTS, ext="csv"),
        md=expand(TABLE, experiment=REPORT_EXPERIMENTS, ext="md"),
        all_md=f"{RESULTS}/tables/all.md",
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
    shell:
        "python -m lbhessian tables --config {input.config} --summary {input.summary} --experiment {params.experiments}"
        " --csv {output.csv} --md {output.md} --all-md {output.all_md} --html {output.html} > {log} 2>&1"


rule claims:
    input:
        config=CONFIG_FILE,
        summary=rules.collect.output.summary,
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
        summary=rules.collect.output.summary,
        claims=rules.claims.output.json,
        png=plain(rules.figures.output.png),
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


# Everything the report rules make: rule all's targets.
REPORT_TARGETS = plain(
    [*rules.collect.output, *rules.figures.output, *rules.tables.output, *rules.claims.output, *rules.page.output]
)
