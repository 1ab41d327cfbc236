"""``train_run``: one run of the grid, from its start (or its resume state) to checkpoint, history and metrics."""

import copy
import math
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import torch

from lbhessian.core.checkpoint import save_checkpoint
from lbhessian.core.errors import Preempted
from lbhessian.core.io import load_torch, make_dir, os_error, save_torch, write_json, write_together
from lbhessian.core.models import build_model
from lbhessian.core.names import run_digest
from lbhessian.core.runtime import kernels_in_use, seed_everything
from lbhessian.curvature import track as track_curvature
from lbhessian.training.loop import evaluate, resolve_batch_size, run_epoch, scaled_lr
from lbhessian.training.records import Progress, write_history
from lbhessian.training.sgd import SGD
from lbhessian.training.signals import StopSignals
from lbhessian.training.stopping import StopRule, settledness


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


class _Cut(Exception):
    """An epoch ended early at ``position``: by a stop signal (``reached`` None) or by the stop rule, whose
    evaluation of the training set (``reached`` = (loss, accuracy)) is kept for the history row."""

    def __init__(self, position, reached=None):
        self.position, self.reached = position, reached


def _budget(run, steps_per_epoch) -> int:
    """Epochs at most: stop.epochs, or more where stop.min_steps (a step budget for large batches) needs them."""
    stop = run["stop"]
    if stop.get("min_steps"):
        return max(stop["epochs"], math.ceil(stop["min_steps"] / steps_per_epoch))
    return stop["epochs"]


def _settle_points(model, recent, x, y, iters) -> list[dict]:
    """lambda_1 (tracking solve, warm-started from the previous point) at each kept evaluation's weights."""
    probe, vector, points = copy.deepcopy(model), None, []
    for kept in recent:
        probe.load_state_dict(kept["state"])
        measured = track_curvature(probe, x, y, iters, v0=vector)
        vector = measured["vector"]
        points.append({"step": kept["step"], "train_loss": kept["train_loss"], "lambda1": measured["lambda1"]})
    return points


def _metrics(run, status, rule, history, settle, batch_size, peak_lr, n, n_test, elapsed, device) -> dict:
    stop = run["stop"]
    last = history[-1] if history else {}
    target = stop["rule"] == "target_loss"
    return {
        "status": status,
        "dataset": run["dataset"],
        "model": run["model"],
        "mode": run["mode"],
        "robust": run.get("robust"),
        "batch_size": batch_size,
        "batch_label": str(run["batch_size"]),
        "seed": run["seed"],
        "run_digest": run_digest(run),  # measurement steps check their checkpoint against it
        "stop_rule": stop["rule"],
        "target_loss": stop["target_loss"] if target else None,
        "reached_target": rule.reached if target else None,
        "settling_from_step": rule.settling_from,
        "epochs": last.get("epoch", 0),
        "steps": int(last.get("step", 0)),
        "lr": peak_lr,
        "lr_scaling": run["lr_scaling"],
        "micro_batch": run.get("micro_batch"),
        "channels_last": run["channels_last"],
        "autocast": run["autocast"],
        "train_size": n,
        "test_size": n_test,
        **{k: last.get(k) for k in ("train_loss", "train_acc", "test_loss", "test_acc")},
        **settle,
        "seconds": elapsed,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "kernels": kernels_in_use() if device.type == "cpu" else "cuda",
    }


def train_run(run, train, test, info, files, device, callback=None):
    """Train one run and write its checkpoint, history and metrics (``files``: TrainFiles, or a directory
    for the default names); returns the metrics.

    An interrupted run resumes from files.resume (saved after every epoch, and within one step of a stop
    signal: SIGTERM, SIGUSR1, then Preempted is raised) and ends with the same weights as an uninterrupted
    one. A non-finite loss ends the run with status "diverged". The stop rule (training.stopping) may end the
    last epoch early. `callback(epoch, model)` is called after each epoch (used by tests to interrupt a run).
    """
    files = files if isinstance(files, TrainFiles) else TrainFiles.in_dir(files)
    for path in (files.checkpoint, files.history, files.metrics, files.resume):  # fail now, not after training
        make_dir(path.parent)
    train = train.subset(run.get("train_size")).to(device)
    test = test.subset(run.get("test_size")).to(device)
    n = len(train)
    batch_size = resolve_batch_size(run["batch_size"], n)
    peak_lr = scaled_lr(run, batch_size)
    steps_per_epoch = math.ceil(n / batch_size)
    max_epochs = _budget(run, steps_per_epoch)
    rule = StopRule(run["stop"], batch_size)

    seed_everything(run["seed"])
    model = build_model(run["model"], info).to(device).train()
    if run["channels_last"]:  # training-only speed option (training.speed_options); saved in standard format
        model = model.to(memory_format=torch.channels_last)
    opt = SGD(
        model.parameters(),
        lr=peak_lr,
        momentum=run["optimizer"]["momentum"],
        weight_decay=run["optimizer"]["weight_decay"],
    )
    # A CPU generator drives shuffling, augmentation and attacks: the same sequence on any device.
    gen = torch.Generator().manual_seed(run["seed"])
    history, epoch, elapsed, position, vector = [], 0, 0.0, None, None
    # The weights at the last few evaluations, for the settledness check at the end (training.stopping).
    recent = deque(maxlen=run["stop"]["settle"]["window"])

    resume_path = files.resume
    if resume_path.exists():
        state = load_torch(resume_path, what="resume state")
        if state.get("run") == run:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            history, epoch, elapsed = state["history"], state["epoch"], state["seconds"]
            rule.restore(state.get("stop"))
            vector = state.get("track_vector")
            recent.extend(state.get("recent", []))
            position = state.get("position")  # where a stop signal cut the epoch epoch + 1
            where = f", step {position['step']}" if position else ""
            print(f"resuming {resume_path} from epoch {epoch}{where}", file=sys.stderr, flush=True)
        else:
            print(f"{resume_path}: made by another config, starting over", file=sys.stderr, flush=True)

    track = run.get("track") or {}
    sample = train.tensors(track.get("samples"), device)  # lambda_1 while training and for the settledness check
    tracked = sample if track.get("every") else None

    def keep(step, loss):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        recent.append({"step": step, "train_loss": loss, "state": state})

    label = f"{run['dataset']}/{run['model']}/{run['mode']}/bs{run['batch_size']}/seed{run['seed']}"
    steps_done = position["step"] if position else 0
    progress = Progress(max_epochs, (max_epochs - epoch) * steps_per_epoch - steps_done, label)
    status = "ok"
    evaluate_always = rule.target is not None or rule.anneal_at is not None

    def save_resume(**extra):
        state = {"run": run, "model": model.state_dict(), "optimizer": opt.state_dict(), "history": history}
        state.update(generator=gen.get_state(), torch_rng=torch.get_rng_state(), epoch=epoch)
        state.update(stop=rule.state(), track_vector=vector, recent=list(recent))
        save_torch(resume_path, {**state, **extra})

    def on_step(pos):
        progress.step()
        if signals.received:
            raise _Cut(pos)
        step = epoch * steps_per_epoch + pos["step"]
        if pos["step"] < steps_per_epoch and rule.checks_at(step):  # epoch ends are evaluated below anyway
            loss, acc = evaluate(model, train)
            keep(step, loss)
            if rule.observe(loss, step):
                raise _Cut(pos, reached=(loss, acc))

    with StopSignals() as signals:
        while epoch < max_epochs and not rule.reached:
            t0 = time.perf_counter()
            reached = None
            try:
                running = run_epoch(
                    model, opt, train, run, batch_size, peak_lr, epoch, gen, on_step, position, rule.lr_scale
                )
                done = steps_per_epoch
            except _Cut as cut:
                if cut.reached is None:  # a stop signal: save mid-epoch, exit for a rerun
                    pos = {k: (v.detach().cpu().clone() if torch.is_tensor(v) else v) for k, v in cut.position.items()}
                    save_resume(position=pos, seconds=elapsed + time.perf_counter() - t0)
                    progress.close()
                    raise Preempted(
                        f"{signals.received} in epoch {epoch + 1} after step {pos['step']} of {steps_per_epoch}: "
                        f"state saved to {resume_path}, a rerun resumes there"
                    ) from None
                reached, done = cut.reached, cut.position["step"]
                running = cut.position["running"].item() / max(done * batch_size, 1)
            position = None
            step = epoch * steps_per_epoch + done
            epoch += 1
            if not math.isfinite(running):
                status = "diverged"
            progress_epochs = epoch if done == steps_per_epoch else round(epoch - 1 + done / steps_per_epoch, 6)
            row = {"epoch": progress_epochs, "step": step, "lr": opt.param_groups[0]["lr"]}
            scheduled = epoch % run["eval_every"] == 0 or epoch == 1 or epoch == max_epochs
            row.update(test_loss=float("nan"), test_acc=float("nan"))
            if status == "ok" and (reached or evaluate_always or scheduled):
                row["train_loss"], row["train_acc"] = reached or evaluate(model, train)
                if not math.isfinite(row["train_loss"]):
                    status = "diverged"
                elif not reached:
                    keep(step, row["train_loss"])
                    rule.observe(row["train_loss"], step)
            else:  # no evaluation this epoch: the running mean of batch losses stands in
                row.update(train_loss=running, train_acc=float("nan"))
            last = rule.reached or epoch == max_epochs
            if status == "ok" and (scheduled or last):  # the stop rule needs the training set only
                row["test_loss"], row["test_acc"] = evaluate(model, test)
            if status == "ok" and tracked is not None and (epoch % track["every"] == 0 or epoch == 1 or last):
                measured = track_curvature(model, *tracked, int(track.get("iters", 20)), v0=vector)
                vector = measured.pop("vector")
                row.update(measured)
            elapsed += time.perf_counter() - t0
            row["seconds"] = elapsed
            history.append(row)
            progress.epoch(row)
            if status != "ok":
                break
            save_resume(seconds=elapsed)
            if callback:
                callback(epoch, model)
    progress.close()

    points = _settle_points(model, recent, *sample, int(track.get("iters", 20))) if status == "ok" else []
    settle = settledness(points, run["stop"]["settle"])
    metrics = _metrics(run, status, rule, history, settle, batch_size, peak_lr, n, len(test), elapsed, device)
    if run["channels_last"]:
        model = model.to(memory_format=torch.contiguous_format)  # checkpoints in the standard layout
    write_together(  # all three or none: a failed write (e.g. a full disk) leaves no partial set
        (files.checkpoint, lambda p: save_checkpoint(p, model, run, info, epoch=epoch, status=status)),
        (files.history, lambda p: write_history(p, history)),
        (files.metrics, lambda p: write_json(p, metrics)),
    )
    try:
        resume_path.unlink(missing_ok=True)
    except OSError as e:
        raise os_error(resume_path, "remove the resume state", e) from None
    return metrics
