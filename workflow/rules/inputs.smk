rule inputs:
    input:
        data=PREPARED,
        checkpoint=f"{RUN_DIR}/checkpoint.pt",
        metrics=f"{RUN_DIR}/metrics.json",
    output:
        f"{RUN_DIR}/inputs.json",
    log:
        log_of("inputs"),
    benchmark:
        bench_of("inputs")
    conda:
        ENV
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPUS,
        gpu_slots=gpu_slots,
    params:
        settings=json.dumps(config["inputs"], sort_keys=True),  # a changed setting reruns the step
    shell:  # the run's wildcards: the step checks that its checkpoint and metrics.json are of this run
        'python -m lbhessian inputs --config "$LBH_CONFIG" --data {input.data} --checkpoint {input.checkpoint}'
        " --metrics {input.metrics} --out {output} --threads {threads} --dataset {wildcards.dataset}"
        " --model {wildcards.model} --mode {wildcards.mode} --batch {wildcards.batch} --seed {wildcards.seed}"
        " > {log} 2>&1"
