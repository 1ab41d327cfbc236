"""SGD training of one run: batch-size grid, lr scaling and warm-up, ghost batches, robust training, resume."""

import csv
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lbhessian.core.checkpoint import run_digest, save_checkpoint
from lbhessian.core.config import load, run_config
from lbhessian.core.data import load_prepared
from lbhessian.core.errors import Preempted
from lbhessian.core.io import (
    load_torch,
    make_dir,
    os_error,
    read_text,
    save_torch,
    write_json,
    write_text,
    write_together,
)
from lbhessian.core.models import build_model
from lbhessian.core.runtime import seed_everything, setup_runtime
from lbhessian.curvature import track as track_curvature
from lbhessian.training import evaluate, resolve_batch_size, run_epoch, scaled_lr


@dataclass(frozen=True)
class TrainFiles:
    """What one training run writes. The workflow passes every path (common.smk defines the layout);
    ``in_dir`` names them for library use and tests."""

    checkpoint: Path
    history: Path
    metrics: Path
    resume: Path

    @classmethod
    def in_dir(cls, directory) -> "TrainFiles":
        d = Path(directory)
        return cls(d / "checkpoint.pt", d / "history.csv", d / "metrics.json", d / "resume.pt")


HISTORY_FIELDS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "lambda1", "grad_norm"]


class _Progress:
    """A progress bar on a terminal, one plain line per epoch in logs ("epoch 3/4": of all epochs of the run,
    also when it resumed)."""

    def __init__(self, total_epochs, steps_left, label):
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=steps_left, desc=label, unit="step", leave=False)
        self.label, self.total = label, total_epochs

    def step(self):
        if self.bar:
            self.bar.update()

    def epoch(self, row):
        line = (
            f"{self.label} epoch {row['epoch']}/{self.total} lr {row['lr']:.4g} "
            f"train_loss {row['train_loss']:.4f} train_acc {row['train_acc']:.4f} "
            f"test_acc {row['test_acc']:.4f} {row['seconds']:.1f}s"
        )
        if self.bar:
            self.bar.write(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self):
        if self.bar:
            self.bar.close()


# What a scheduler sends before it kills a job: SLURM sends SIGTERM at the time limit and on preemption (and
# profiles/slurm asks for it early with --signal); SIGUSR1 where a cluster's warning signal is that one.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class _StopSignals:
    """While active, a stop signal only sets ``received``: training saves its state at the next step."""

    def __init__(self):
        self.received, self._previous = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._note)
        return self

    def _note(self, signum, frame):
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _Stop(Exception):
    def __init__(self, position):
        self.position = position


def _write_history(path, history):
    lines = [",".join(HISTORY_FIELDS)]
    for row in history:
        lines.append(",".join("" if row.get(k) is None else repr(row[k]) for k in HISTORY_FIELDS))
    write_text(path, "\n".join(lines) + "\n")


def read_history(path):
    lines = read_text(path, "history").splitlines()
    return [{k: (float(v) if v != "" else None) for k, v in row.items()} for row in csv.DictReader(lines)]


def train_run(run, train, test, info, files, device, callback=None):
    """Train one run and write its checkpoint, history and metrics (``files``: TrainFiles, or a directory
    for the default names); returns the metrics.

    An interrupted run resumes from files.resume (saved after every epoch, and within one step of a stop
    signal: SIGTERM, SIGUSR1, then Preempted is raised) and ends with the same weights as an uninterrupted
    one. A non-finite loss ends the run with status "diverged".
    `callback(epoch, model)` is called after each epoch (used by tests to interrupt a run).
    """
    files = files if isinstance(files, TrainFiles) else TrainFiles.in_dir(files)
    for path in (files.checkpoint, files.history, files.metrics, files.resume):  # fail now, not after training
        make_dir(path.parent)
    train = train.subset(run.get("train_size")).to(device)
    test = test.subset(run.get("test_size")).to(device)
    n = len(train)
    batch_size = resolve_batch_size(run["batch_size"], n)
    peak_lr = scaled_lr(run, batch_size)
    stop = run["stop"]
    steps_per_epoch = math.ceil(n / batch_size)
    max_epochs = stop["epochs"]
    if stop.get("min_steps"):  # stop.min_steps: a step budget, so large/full batches are not cut short by epochs
        max_epochs = max(max_epochs, math.ceil(stop["min_steps"] / steps_per_epoch))

    seed_everything(run["seed"])
    model = build_model(run["model"], info).to(device).train()
    if run["channels_last"]:  # training-only speed option (training.speed_options); saved in standard format
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(
        model.parameters(), lr=peak_lr, momentum=run["optimizer"]["momentum"],
        weight_decay=run["optimizer"]["weight_decay"],
    )  # fmt: skip
    # A CPU generator drives shuffling, augmentation and attacks: the same sequence on any device.
    gen = torch.Generator().manual_seed(run["seed"])
    history, start_epoch, elapsed, position = [], 0, 0.0, None

    resume_path = files.resume
    if resume_path.exists():
        state = load_torch(resume_path, what="resume state")
        if state.get("run") == run:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            history, start_epoch, elapsed = state["history"], state["epoch"], state["seconds"]
            position = state.get("position")  # where a stop signal cut the epoch start_epoch + 1
            where = f", step {position['step']}" if position else ""
            print(f"resuming {resume_path} from epoch {start_epoch}{where}", file=sys.stderr, flush=True)
        else:
            print(f"{resume_path}: made by another config, starting over", file=sys.stderr, flush=True)

    robust = run.get("robust")
    track = run.get("track") or {}
    label = f"{run['dataset']}/{run['model']}/{run['mode']}/bs{run['batch_size']}/seed{run['seed']}"
    steps_done = position["step"] if position else 0
    progress = _Progress(max_epochs, (max_epochs - start_epoch) * steps_per_epoch - steps_done, label)
    status, reached = "ok", False
    if history and stop["rule"] == "target_loss":
        reached = history[-1]["train_loss"] <= stop["target_loss"]
    epoch = start_epoch

    def save_resume(**extra):
        save_torch(
            resume_path,
            {"run": run, "model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
             "torch_rng": torch.get_rng_state(), "history": history, "epoch": epoch, **extra},
        )  # fmt: skip

    def on_step(pos):
        progress.step()
        if signals.received:
            raise _Stop(pos)

    with _StopSignals() as signals:
        while epoch < max_epochs and not reached:
            t0 = time.perf_counter()
            try:
                running = run_epoch(model, opt, train, run, batch_size, peak_lr, epoch, gen, on_step, position)
            except _Stop as cut:  # the next safe point after a stop signal: save mid-epoch, exit for a rerun
                pos = {k: (v.detach().cpu().clone() if torch.is_tensor(v) else v) for k, v in cut.position.items()}
                save_resume(position=pos, seconds=elapsed + time.perf_counter() - t0)
                progress.close()
                raise Preempted(
                    f"{signals.received} in epoch {epoch + 1} after step {pos['step']} of {steps_per_epoch}: "
                    f"state saved to {resume_path}, a rerun resumes there"
                ) from None
            position = None
            epoch += 1
            if not math.isfinite(running):
                status = "diverged"
            row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"]}
            evaluate_now = epoch % run["eval_every"] == 0 or epoch == max_epochs or stop["rule"] == "target_loss"
            if status == "ok" and evaluate_now:
                row["train_loss"], row["train_acc"] = evaluate(model, train)
                row["test_loss"], row["test_acc"] = evaluate(model, test)
                if not math.isfinite(row["train_loss"]):
                    status = "diverged"
            else:  # no evaluation this epoch: the running mean of batch losses stands in
                row.update(train_loss=running, train_acc=float("nan"), test_loss=float("nan"), test_acc=float("nan"))
            if status == "ok" and track.get("every") and epoch % track["every"] == 0:
                x, y = train.tensors(track.get("samples"), device)
                row.update(track_curvature(model, x, y, int(track.get("iters", 20))))
            elapsed += time.perf_counter() - t0
            row["seconds"] = elapsed
            history.append(row)
            progress.epoch(row)
            if status != "ok":
                break
            reached = stop["rule"] == "target_loss" and row["train_loss"] <= stop["target_loss"]
            save_resume(seconds=elapsed)
            if callback:
                callback(epoch, model)
    progress.close()

    last = history[-1] if history else {}
    metrics = {
        "status": status,
        "dataset": run["dataset"],
        "model": run["model"],
        "mode": run["mode"],
        "robust": robust,
        "batch_size": batch_size,
        "batch_label": str(run["batch_size"]),
        "seed": run["seed"],
        "run_digest": run_digest(run),  # measurement steps check their checkpoint against it
        "stop_rule": stop["rule"],
        "target_loss": stop["target_loss"] if stop["rule"] == "target_loss" else None,
        "reached_target": reached if stop["rule"] == "target_loss" else None,
        "epochs": len(history),
        "steps": len(history) * steps_per_epoch,
        "lr": peak_lr,
        "lr_scaling": run["lr_scaling"],
        "micro_batch": run.get("micro_batch"),
        "channels_last": run["channels_last"],
        "autocast": run["autocast"],
        "train_size": n,
        "test_size": len(test),
        **{k: last.get(k) for k in ("train_loss", "train_acc", "test_loss", "test_acc")},
        "seconds": elapsed,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    if run["channels_last"]:
        model = model.to(memory_format=torch.contiguous_format)  # checkpoints in the standard layout
    write_together(  # all three or none: a failed write (e.g. a full disk) leaves no partial set
        (files.checkpoint, lambda p: save_checkpoint(p, model, run, info, epoch=len(history), status=status)),
        (files.history, lambda p: _write_history(p, history)),
        (files.metrics, lambda p: write_json(p, metrics)),
    )
    try:
        resume_path.unlink(missing_ok=True)
    except OSError as e:
        raise os_error(resume_path, "remove the resume state", e) from None
    return metrics


def main(config, data, dataset, model, mode, batch, seed, checkpoint, history, metrics, resume, threads=None):
    cfg = load(config)
    run = run_config(cfg, dataset, model, mode, batch, seed)
    device = setup_runtime(cfg["runtime"], run["seed"], threads=threads)
    train, test, info = load_prepared(data)
    files = TrainFiles(Path(checkpoint), Path(history), Path(metrics), Path(resume))
    result = train_run(run, train, test, info, files, device)
    print(f"{checkpoint}: {result['status']} after {result['epochs']} epochs", file=sys.stderr)
