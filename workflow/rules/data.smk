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
        source=lambda w: config["data"].get("local_dirs", {}).get(w.dataset, "download"),  # provenance
    shell:
        "python -m lbhessian data --dataset {wildcards.dataset} > {log} 2>&1"
