# Per-run measurements: the same steps for clean and robust-trained runs (mode is a wildcard).
# One rule per step, generated here because they differ only in the step's name, config section and runtime.

for _step, _minutes in (("spectrum", 240), ("inputs", 120), ("attack", 120)):

    rule:
        name:
            _step
        input:
            data=f"{DATA_ROOT}/prepared/{{dataset}}.pt",
            checkpoint=f"{RUN_DIR}/checkpoint.pt",
            metrics=f"{RUN_DIR}/metrics.json",
        output:
            f"{RUN_DIR}/{_step}.json",
        log:
            log_of(_step),
        benchmark:
            bench_of(_step)
        conda:
            ENV
        threads: THREADS
        resources:
            mem_mb=8000,
            runtime=_minutes,
            gpu=GPUS,
        params:
            step=_step,  # bound now: the shell command is formatted later, after the loop has moved on
            settings=json.dumps(config[_step], sort_keys=True),  # a changed setting reruns the step
            run_dir=lambda w, input: str(Path(input.checkpoint).parent),
        shell:
            "python -m lbhessian {params.step} --run-dir {params.run_dir} --out {output} > {log} 2>&1"
