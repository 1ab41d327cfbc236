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
        gpu_slots=gpu_slots,
    params:
        # What the step reads for this run (the power check depends on its seed): a changed one reruns it.
        settings=lambda w: json.dumps(lbconfig.spectrum_settings(config, w.seed), sort_keys=True),
    shell:  # the run's wildcards: the step checks that its checkpoint and metrics.json are of this run
        'python -m lbhessian spectrum --config "$LBH_CONFIG" --data {input.data} --checkpoint {input.checkpoint}'
        " --metrics {input.metrics} --out {output} --threads {threads} --dataset {wildcards.dataset}"
        " --model {wildcards.model} --mode {wildcards.mode} --batch {wildcards.batch} --seed {wildcards.seed}"
        " > {log} 2>&1"
