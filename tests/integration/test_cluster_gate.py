"""A SLURM cluster that cannot start must not turn the SLURM tests green unseen: fail in CI, skip with a reason
elsewhere. Runs in a child pytest session whose cluster start is replaced by what up.sh reports when apt-get
fails (exit 3), so it needs no cluster and no root."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # child pytest sessions: part of `make test`, not of `make check`

HERE = Path(__file__).resolve().parent

CHILD_CONFTEST = textwrap.dedent(
    f"""
    import importlib.util, sys
    sys.path.insert(0, {str(HERE)!r})
    spec = importlib.util.spec_from_file_location("integration_conftest", {str(HERE / "conftest.py")!r})
    real = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(real)
    from slurm_cluster import ClusterUnavailable

    def start_cluster():
        raise ClusterUnavailable(".ci/slurm/up.sh exited 3:\\nE: Unable to locate package slurmctld\\n"
                                 "slurm-up: apt-get could not install slurmctld slurmd slurm-client munge")

    real.start_cluster = start_cluster
    slurm_cluster = real.slurm_cluster
    """
)


def _child(tmp_path, ci):
    (tmp_path / "conftest.py").write_text(CHILD_CONFTEST)
    (tmp_path / "test_uses_cluster.py").write_text("def test_needs_cluster(slurm_cluster):\n    assert False\n")
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_cluster_fails_the_run_in_ci(tmp_path, ci):
    """Catches the old behaviour (skip everywhere): in CI a skipped SLURM suite would leave `make test` green."""
    proc = _child(tmp_path, ci)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 error" in out and "CI=true but no SLURM cluster could start here" in out, out
    assert "apt-get could not install" in out


@pytest.mark.parametrize("ci", [None, "false"])
def test_missing_cluster_skips_with_the_reason_in_the_summary(tmp_path, ci):
    """On a user's machine the tests skip, and `pytest -ra` prints why on one line (catches a bare skip)."""
    proc = _child(tmp_path, ci)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "1 skipped" in out, out
    summary = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert len(summary) == 1, out
    assert "no cluster on this host (apt-get could not install slurmctld slurmd slurm-client munge)" in summary[0]
