#!/usr/bin/env bash
# `make test`: the suite as two pytest processes side by side on a 2-core machine. The cluster lane (tests
# marked `cluster`: they need the host's one SLURM cluster and mostly wait on its scheduler) runs in the
# background into a log, printed when it ends; the other lane (unit tests, local Snakemake and DVC runs) runs
# in the foreground. Serially the suite took about 19 minutes here. Exit status: non-zero if either lane
# failed. Arguments go to both pytest runs (a lane that selects no test counts as passed).
set -u
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
log=${CLUSTER_LANE_LOG:-.pytest-cluster-lane.log}
# A background job ignores Ctrl-C; on INT/TERM the trap sends it TERM, which this wrapper turns into pytest's
# KeyboardInterrupt, so that its fixtures stop the SLURM daemons instead of leaving them running.
"$py" -c 'import signal, sys, pytest
signal.signal(signal.SIGTERM, signal.default_int_handler)
sys.exit(pytest.main(sys.argv[1:]))' -ra -p no:cacheprovider -m cluster "$@" > "$log" 2>&1 &
cluster=$!
trap 'kill -TERM "$cluster" 2>/dev/null' INT TERM
echo "cluster lane (SLURM): pid $cluster, output in $log (printed when it ends)"
"$py" -m pytest -ra -m "not cluster" "$@"
rest=$?
wait "$cluster"
lane=$?
echo "=================== cluster lane (SLURM), from $log ==================="
cat "$log"
ok() { [ "$1" -eq 0 ] || [ "$1" -eq 5 ]; } # 5: pytest collected nothing (arguments selected the other lane)
if ok "$rest" && ok "$lane" && ! { [ "$rest" -eq 5 ] && [ "$lane" -eq 5 ]; }; then
  exit 0
fi
echo "make test: failed (other lane exit $rest, cluster lane exit $lane)"
exit 1
