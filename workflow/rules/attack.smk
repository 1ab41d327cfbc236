rule attack:
    input:
        data=PREPARED,
        checkpoint=f"{RUN_DIR}/checkpoint.pt",
        metrics=f"{RUN_DIR}/metrics.json",
    output:
        f"{RUN_DIR}/attack.json",
    log:
        log_of("attack"),
    benchmark:
        bench_of("attack")
    conda:
        ENV
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPUS,
        gpu_slots=gpu_slots,
    params:
        # The experiment's own settings: a changed one reruns exactly its jobs.
        settings=lambda w: json.dumps(lbconfig.attack_settings(config, w.dataset, w.model), sort_keys=True),
    shell:  # the run's wildcards: the step checks that its checkpoint and metrics.json are of this run
        'python -m lbhessian attack --config "$LBH_CONFIG" --data {input.data} --checkpoint {input.checkpoint}'
        " --metrics {input.metrics} --out {output} --threads {threads} --dataset {wildcards.dataset}"
        " --model {wildcards.model} --mode {wildcards.mode} --batch {wildcards.batch} --seed {wildcards.seed}"
        " > {log} 2>&1"
