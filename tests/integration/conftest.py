"""Fixtures for the integration tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slurm_cluster import ClusterUnavailable, SlurmCluster, start_cluster, stop_cluster  # noqa: E402


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """A single-node SLURM cluster (real slurmctld, slurmd, munged) for the whole test session.

    Started by .ci/slurm/up.sh, stopped by .ci/slurm/down.sh. Skips only when SLURM cannot be
    installed here; any other start failure is an error. Set LBH_SLURM_KEEP=1 to keep its state
    dir (config and daemon logs) after the session."""
    try:
        cluster = start_cluster()
    except ClusterUnavailable as exc:
        pytest.skip(f"SLURM cannot be installed on this host, cluster tests skipped: {exc}")
    try:
        yield cluster
    finally:
        stop_cluster(cluster, keep_state=os.environ.get("LBH_SLURM_KEEP") == "1")
