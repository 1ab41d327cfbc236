rule train:
    input:
        data=rules.data.output.prepared,
    output:
        checkpoint=f"{RUN_DIR}/checkpoint.pt",
        history=f"{RUN_DIR}/{RUN_FILES['history']}",
        metrics=f"{RUN_DIR}/{RUN_FILES['metrics']}",
    log:
        log_of("train"),
    benchmark:
        bench_of("train")
    conda:
        ENV
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=GPUS,
        gpu_slots=gpu_slots,
    params:
        run=run_spec,
        resume=f"{RUN_DIR}/resume.pt",  # kept between attempts: an interrupted run resumes from it
    # `exec`: the step is the job's process, so a scheduler's SIGTERM reaches it directly (no shell to die
    # first); it saves its resume state within one step and exits 75, and the retry resumes from there.
    shell:
        'exec python -m lbhessian train --config "$LBH_CONFIG" --data {input.data} --dataset {wildcards.dataset}'
        " --model {wildcards.model} --mode {wildcards.mode} --batch {wildcards.batch} --seed {wildcards.seed}"
        " --checkpoint {output.checkpoint} --history {output.history} --metrics {output.metrics}"
        " --resume {params.resume} --threads {threads} > {log} 2>&1"
