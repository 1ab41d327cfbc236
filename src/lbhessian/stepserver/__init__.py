"""The step server: one process per Snakemake run that has imported torch and the steps, and forks a child for each
step a job asks for, so that a job no longer spends ~2 s of CPU importing torch (96 jobs in the default run).

Snakemake starts it before the first job and stops it after the last (the Snakefile's onstart/onsuccess/onerror)
and puts its socket in the jobs' environment (``LBH_STEP_SERVER``; ``off`` there before Snakemake starts: no
server). ``python -m lbhessian <step>`` then sends its arguments, working directory, environment and standard
streams to the server (``job.run_served``), which forks; the child runs the step exactly as the job's own process would
(``cli.main``), and the job waits for it, forwards the signals it gets (SIGTERM still makes training save its resume
point) and exits with the child's status. A job runs the step itself when there is no server, when it is a SLURM
job (its CPUs and memory are the allocation's), or when the server's torch was imported under other kernel
settings or from other code (``protocol.fingerprint``): the numbers are the same either way
(tests/test_stepserver.py).

The server never computes anything itself, so the children fork from a process with no thread pool of torch's.
``LBH_STEP_SERVER_LOG``: a file to which the server appends, per child, its command, status and CPU seconds (a job's
own resource figures in Snakemake's benchmark files cover only the waiting process; benchmarks/bench_default.py
reads this file). Nothing here imports torch but the server: the job's side must stay cheap.

Modules: protocol (what both sides share: names, the fingerprint, the messages), job (the job's side), server (the
server process: ``python -m lbhessian.stepserver.server``), lifecycle (Snakemake's side: start and stop).
"""

from lbhessian.stepserver.job import run_served
from lbhessian.stepserver.lifecycle import start, stop
from lbhessian.stepserver.protocol import ENV, LOG_ENV, SERVED, fingerprint

__all__ = ["ENV", "LOG_ENV", "SERVED", "fingerprint", "run_served", "start", "stop"]
