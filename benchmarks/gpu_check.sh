#!/usr/bin/env bash
# The GPU checks, in one short script for a machine with a CUDA GPU: the tests marked `cuda`, the smoke
# chain's steps on the GPU (timed), and the benchmarks with --device cuda. Run from the repository root
# with the project's packages importable (PYTHONPATH=src works); data/prepared/mnist5k.pt is made if
# missing. Writes logs to ${OUT:-/tmp/gpu-check}.
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

echo "== smoke chain on the GPU, step by step (config/smoke.yaml)"
start=$SECONDS
$PY - <<'EOF' 2>&1 | tee "$OUT/smoke-gpu.log" | tail -12
import subprocess, sys, time
from lbhessian import config
cfg = config.load("config/smoke.yaml")
t = {}
def step(name, *args):
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lbhessian", name, "--config", "config/smoke.yaml", *args], check=True)
    t[name] = t.get(name, 0.0) + time.perf_counter() - t0
step("data", "--dataset", "mnist5k")
for r in config.runs(cfg):
    d = f"results-gpu/runs/{r['dataset']}/{r['model']}/{r['mode']}/bs{r['batch']}/seed{r['seed']}"
    step("train", "--dataset", r["dataset"], "--model", r["model"], "--mode", r["mode"], "--batch", r["batch"],
         "--seed", str(r["seed"]), "--out", d)
    for s in ("spectrum", "inputs", "attack"):
        step(s, "--run-dir", d, "--out", f"{d}/{s}.json")
print("seconds per step (including Python start-up):", {k: round(v, 1) for k, v in t.items()})
print("device in metrics:", open(d + "/metrics.json").read().split('"device": ')[1].split(",")[0])
EOF
echo "smoke chain total: $((SECONDS - start)) s"

echo "== benchmarks (--device cuda)"
for b in "bench_train.py --quick" "bench_hessian.py" "bench_attacks.py --quick"; do
    echo "-- $b"
    # shellcheck disable=SC2086  # $b carries the script and its flags
    $PY benchmarks/$b --device cuda 2>&1 | tee "$OUT/$(basename "${b%% *}" .py).log" | tail -25
done
