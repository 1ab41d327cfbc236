"""Fixtures for the integration tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slurm_cluster import ClusterUnavailable, SlurmCluster, start_cluster, stop_cluster  # noqa: E402


def in_ci() -> bool:
    """CI services set CI=true (.ci/run sets it too): there every component must really run."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def cluster_unavailable(exc: ClusterUnavailable):
    """No cluster could be installed or started. In CI the run fails (a skip would turn the SLURM tests green
    without running them); elsewhere the tests skip with the reason on one line, shown by `pytest -ra`."""
    lines = str(exc).strip().splitlines()
    said = [line.removeprefix("slurm-up: ") for line in lines if line.startswith("slurm-up: ")]
    reason = (said[-1] if said else lines[-1] if lines else "up.sh exited 3").strip()
    if in_ci():
        pytest.fail(f"CI=true but no SLURM cluster could start here ({reason}):\n{exc}", pytrace=False)
    pytest.skip(f"SLURM tests not run: no cluster on this host ({reason}); they need root and apt-get")


def pytest_collection_modifyitems(config, items):
    """Only one SLURM cluster runs on a host (a file lock): `make test` runs the tests marked cluster in a lane
    of their own (tests/lanes.sh); an unmarked test using the cluster would run in the other lane and wait for
    the cluster lane's whole session. Refuse that up front."""
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("cluster"):
            raise pytest.UsageError(f"{item.nodeid} uses slurm_cluster: mark it @pytest.mark.cluster")


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """A single-node SLURM cluster (real slurmctld, slurmd, munged) for the whole test session.

    Started by .ci/slurm/up.sh, stopped by .ci/slurm/down.sh. Where SLURM cannot be installed the tests skip
    saying why, except in CI (CI=true), where that fails the run; any other start failure is an error. Set
    LBH_SLURM_KEEP=1 to keep its state dir (config and daemon logs) after the session."""
    try:
        cluster = start_cluster()
    except ClusterUnavailable as exc:
        cluster_unavailable(exc)
    try:
        yield cluster
    finally:
        stop_cluster(cluster, keep_state=os.environ.get("LBH_SLURM_KEEP") == "1")
