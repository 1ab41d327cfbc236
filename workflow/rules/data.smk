rule data:
    output:
        prepared=PREPARED,
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
        source=lambda w: config["data"]["local_dirs"].get(w.dataset, "download"),  # provenance
        checksums=lambda w: lbconfig.params_json(config["data"]["checksums"].get(w.dataset)),
    shell:
        'python -m lbhessian data --config "$LBH_CONFIG" --dataset {wildcards.dataset} --out {output}'
        " --threads {threads} > {log} 2>&1"
