"""The one exception type users see: the CLI prints its message as a single line and exits 2."""


class LbhError(Exception):
    """A user-facing error: bad config, missing or corrupt file, incompatible checkpoint."""

    exit_status = 2


class Preempted(LbhError):
    """A job stopped by a signal (SLURM's time-limit warning, preemption) after saving its resume state.

    Its exit status (75, EX_TEMPFAIL: "try again") fails the job, so Snakemake's retries run it again, and
    the rerun resumes where it stopped."""

    exit_status = 75
