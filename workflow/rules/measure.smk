# The per-run measurements (spectrum, inputs, attack): one rule each, defined once here. Each reads its run's
# checkpoint and metrics.json (the step checks that both are of the run its wildcards name) and writes one file.
MEASURE_MINUTES = {"spectrum": 240, "inputs": 120, "attack": 120}  # SLURM time limits


for step in lbconfig.MEASUREMENTS:

    rule:
        name:
            step
        input:
            data=rules.data.output.prepared,
            checkpoint=rules.train.output.checkpoint,
            metrics=rules.train.output.metrics,
        output:
            f"{RUN_DIR}/{RUN_FILES[step]}",
        log:
            log_of(step),
        benchmark:
            bench_of(step)
        conda:
            ENV
        threads: THREADS
        resources:
            mem_mb=8000,
            runtime=MEASURE_MINUTES[step],
            gpu=GPUS,
            gpu_slots=gpu_slots,
        params:
            step=step,  # the shell string must not read `step`: Snakemake evaluates it again when the job runs
            settings=measurement_params(step),
        shell:  # the run's wildcards: the step checks that its checkpoint and metrics.json are of this run
            'python -m lbhessian {params.step} --config "$LBH_CONFIG" --data {input.data} --checkpoint {input.checkpoint}'
            " --metrics {input.metrics} --out {output} --threads {threads} --dataset {wildcards.dataset}"
            " --model {wildcards.model} --mode {wildcards.mode} --batch {wildcards.batch} --seed {wildcards.seed}"
            " > {log} 2>&1"
