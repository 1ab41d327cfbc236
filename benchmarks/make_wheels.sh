#!/usr/bin/env bash
# Wheels for running the workflow on a machine that has torch but not Snakemake (the GPU machine of
# benchmarks/gpu_check.sh): Snakemake, its slurm plugin, pandas, jsonschema and pyyaml with all their
# dependencies, for this Python (3.11, x86_64), into wheels/ (ignored by git; carried to the GPU machine).
# Left out to stay under the device tool's 64 MiB carry limit: numpy (torch machines have it), and the
# plotting and statistics stack (matplotlib, seaborn, scipy; gpu_check.sh skips the report steps without
# them). Usage: bash benchmarks/make_wheels.sh [DIR]
set -euo pipefail
DIR=${1:-wheels}
PIP=${PIP:-.venv/bin/pip}
mkdir -p "$DIR"
$PIP download -q -d "$DIR" snakemake==9.27.1 snakemake-executor-plugin-slurm==2.8.0 pandas==2.3.3 \
    jsonschema==4.25.1 pyyaml==6.0.3 setuptools wheel  # the last two build the one sdist (connection_pool)
rm -f "$DIR"/numpy-*.whl
du -sh "$DIR"
