rule data:
    output:
        f"{DATA_ROOT}/prepared/{{dataset}}.pt",
    log:
        f"{RESULTS}/logs/data/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/data/{{dataset}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        config=CONFIG_FILE,
    shell:
        "python -m lbhessian data --config {params.config} --dataset {wildcards.dataset} > {log} 2>&1"
