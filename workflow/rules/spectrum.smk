rule spectrum:
    input:
        data=PREPARED,
        checkpoint=f"{RUN_DIR}/checkpoint.pt",
        metrics=f"{RUN_DIR}/metrics.json",
    output:
        f"{RUN_DIR}/spectrum.json",
    log:
        log_of("spectrum"),
    benchmark:
        bench_of("spectrum")
    conda:
        ENV
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=GPUS,
    params:
        settings=json.dumps(config["spectrum"], sort_keys=True),  # a changed setting reruns the step
    shell:
        'python -m lbhessian spectrum --config "$LBH_CONFIG" --data {input.data} --checkpoint {input.checkpoint}'
        " --metrics {input.metrics} --out {output} --threads {threads} " + RUN_ARGS + " > {log} 2>&1"
