rule train:
    input:
        data=f"{DATA_ROOT}/prepared/{{dataset}}.pt",
    output:
        checkpoint=f"{RUN_DIR}/checkpoint.pt",
        history=f"{RUN_DIR}/history.csv",
        metrics=f"{RUN_DIR}/metrics.json",
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
    params:
        run=run_spec,
        out=lambda w, output: str(Path(output.checkpoint).parent),
    shell:
        "python -m lbhessian train --dataset {wildcards.dataset} --model {wildcards.model}"
        " --mode {wildcards.mode} --batch {wildcards.batch} --seed {wildcards.seed} --out {params.out}"
        " > {log} 2>&1"
