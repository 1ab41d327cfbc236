"""``train_run``: one run of the grid, from its start (or its resume state) to checkpoint, history and metrics."""

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
from lbhessian.training.stopping import StopRule, settle_points, settledness


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


class _Training:
    """The state of one run while it trains: model, optimizer, generator, stop rule, history and the kept
    evaluations, with what carries them through a resume (``save_resume`` / ``_resume``)."""

    def __init__(self, run, train, test, info, *, files: TrainFiles, device):
        self.run, self.info, self.files, self.device = run, info, files, device
        self.train = train.subset(run.get("train_size")).to(device)
        self.test = test.subset(run.get("test_size")).to(device)
        self.batch_size = resolve_batch_size(run["batch_size"], len(self.train))
        self.peak_lr = scaled_lr(run, self.batch_size)
        self.steps_per_epoch = math.ceil(len(self.train) / self.batch_size)
        self.max_epochs = _budget(run, self.steps_per_epoch)
        self.rule = StopRule(run["stop"], self.batch_size)

        seed_everything(run["seed"])
        model = build_model(run["model"], info).to(device).train()
        if run["channels_last"]:  # training-only speed option (training.speed_options); saved in standard format
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        optimizer = run["optimizer"]
        self.opt = SGD(
            model.parameters(), lr=self.peak_lr, momentum=optimizer["momentum"], weight_decay=optimizer["weight_decay"]
        )
        # A CPU generator drives shuffling, augmentation and attacks: the same sequence on any device.
        self.gen = torch.Generator().manual_seed(run["seed"])
        self.history, self.epoch, self.elapsed, self.position, self.vector = [], 0, 0.0, None, None
        # The weights at the last few evaluations, for the settledness check at the end (training.stopping).
        self.recent = deque(maxlen=run["stop"]["settle"]["window"])
        self.status = "ok"
        self._resume()

        self.track = run.get("track") or {}
        # lambda_1 while training and for the settledness check
        self.sample = self.train.tensors(self.track.get("samples"), device)
        self.tracked = self.sample if self.track.get("every") else None
        label = f"{run['dataset']}/{run['model']}/{run['mode']}/bs{run['batch_size']}/seed{run['seed']}"
        steps_done = self.position["step"] if self.position else 0
        steps_left = (self.max_epochs - self.epoch) * self.steps_per_epoch - steps_done
        self.progress = Progress(self.max_epochs, steps_left, label)
        self.evaluate_always = self.rule.target is not None or self.rule.anneal_at is not None
        self.signals = None

    def _resume(self) -> None:
        path = self.files.resume
        if not path.exists():
            return
        state = load_torch(path, what="resume state")
        if state.get("run") != self.run:
            print(f"{path}: made by another config, starting over", file=sys.stderr, flush=True)
            return
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.history, self.epoch, self.elapsed = state["history"], state["epoch"], state["seconds"]
        self.rule.restore(state.get("stop"))
        self.vector = state.get("track_vector")
        self.recent.extend(state.get("recent", []))
        self.position = state.get("position")  # where a stop signal cut the epoch epoch + 1
        where = f", step {self.position['step']}" if self.position else ""
        print(f"resuming {path} from epoch {self.epoch}{where}", file=sys.stderr, flush=True)

    def save_resume(self, **extra) -> None:
        state = {"run": self.run, "model": self.model.state_dict(), "optimizer": self.opt.state_dict()}
        state.update(history=self.history, generator=self.gen.get_state(), torch_rng=torch.get_rng_state())
        state.update(epoch=self.epoch, stop=self.rule.state(), track_vector=self.vector, recent=list(self.recent))
        save_torch(self.files.resume, {**state, **extra})

    def keep(self, step, loss) -> None:
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.recent.append({"step": step, "train_loss": loss, "state": state})

    def on_step(self, pos) -> None:
        self.progress.step()
        if self.signals.received:
            raise _Cut(pos)
        step = self.epoch * self.steps_per_epoch + pos["step"]
        if pos["step"] < self.steps_per_epoch and self.rule.checks_at(step):  # epoch ends are evaluated below
            loss, acc = evaluate(self.model, self.train)
            self.keep(step, loss)
            if self.rule.observe(loss, step):
                raise _Cut(pos, reached=(loss, acc))

    def _epoch(self, t0):
        """One epoch (or the rest of a cut one): (steps done, running mean loss, the stop rule's evaluation or
        None). A stop signal saves the resume state mid-epoch and raises Preempted."""
        try:
            running = run_epoch(
                self.model,
                self.opt,
                self.train,
                self.run,
                batch_size=self.batch_size,
                peak_lr=self.peak_lr,
                epoch=self.epoch,
                generator=self.gen,
                on_step=self.on_step,
                start=self.position,
                lr_scale=self.rule.lr_scale,
            )
            return self.steps_per_epoch, running, None
        except _Cut as cut:
            if cut.reached is None:  # a stop signal: save mid-epoch, exit for a rerun
                pos = {k: (v.detach().cpu().clone() if torch.is_tensor(v) else v) for k, v in cut.position.items()}
                self.save_resume(position=pos, seconds=self.elapsed + time.perf_counter() - t0)
                self.progress.close()
                raise Preempted(
                    f"{self.signals.received} in epoch {self.epoch + 1} after step {pos['step']} of "
                    f"{self.steps_per_epoch}: state saved to {self.files.resume}, a rerun resumes there"
                ) from None
            done = cut.position["step"]
            return done, cut.position["running"].item() / max(done * self.batch_size, 1), cut.reached

    def _end_of_epoch(self, done, running, reached) -> dict:
        """The epoch's history row: the stop rule's evaluation of the training set, the test set when scheduled
        or last, and lambda_1 when tracked. Updates the status (diverged) and the stop rule."""
        step = self.epoch * self.steps_per_epoch + done
        self.epoch += 1
        epoch = self.epoch
        if not math.isfinite(running):
            self.status = "diverged"
        progress_epochs = epoch if done == self.steps_per_epoch else round(epoch - 1 + done / self.steps_per_epoch, 6)
        row = {"epoch": progress_epochs, "step": step, "lr": self.opt.param_groups[0]["lr"]}
        scheduled = epoch % self.run["eval_every"] == 0 or epoch in (1, self.max_epochs)
        row.update(test_loss=float("nan"), test_acc=float("nan"))
        if self.status == "ok" and (reached or self.evaluate_always or scheduled):
            row["train_loss"], row["train_acc"] = reached or evaluate(self.model, self.train)
            if not math.isfinite(row["train_loss"]):
                self.status = "diverged"
            elif not reached:
                self.keep(step, row["train_loss"])
                self.rule.observe(row["train_loss"], step)
        else:  # no evaluation this epoch: the running mean of batch losses stands in
            row.update(train_loss=running, train_acc=float("nan"))
        last = self.rule.reached or epoch == self.max_epochs
        if self.status == "ok" and (scheduled or last):  # the stop rule needs the training set only
            row["test_loss"], row["test_acc"] = evaluate(self.model, self.test)
        every = self.track.get("every")
        if self.status == "ok" and self.tracked is not None and (epoch % every == 0 or epoch == 1 or last):
            measured = track_curvature(self.model, *self.tracked, int(self.track.get("iters", 20)), v0=self.vector)
            self.vector = measured.pop("vector")
            row.update(measured)
        return row

    def loop(self, callback=None) -> None:
        with StopSignals() as self.signals:
            while self.epoch < self.max_epochs and not self.rule.reached:
                t0 = time.perf_counter()
                done, running, reached = self._epoch(t0)
                self.position = None
                row = self._end_of_epoch(done, running, reached)
                self.elapsed += time.perf_counter() - t0
                row["seconds"] = self.elapsed
                self.history.append(row)
                self.progress.epoch(row)
                if self.status != "ok":
                    break
                self.save_resume(seconds=self.elapsed)
                if callback:
                    callback(self.epoch, self.model)
        self.progress.close()

    def metrics(self, settle) -> dict:
        run, stop, rule = self.run, self.run["stop"], self.rule
        last = self.history[-1] if self.history else {}
        target = stop["rule"] == "target_loss"
        return {
            "status": self.status,
            "dataset": run["dataset"],
            "model": run["model"],
            "mode": run["mode"],
            "robust": run.get("robust"),
            "batch_size": self.batch_size,
            "batch_label": str(run["batch_size"]),
            "seed": run["seed"],
            "run_digest": run_digest(run),  # measurement steps check their checkpoint against it
            "stop_rule": stop["rule"],
            "target_loss": stop["target_loss"] if target else None,
            "reached_target": rule.reached if target else None,
            "settling_from_step": rule.settling_from,
            "epochs": last.get("epoch", 0),
            "steps": int(last.get("step", 0)),
            "lr": self.peak_lr,
            "lr_scaling": run["lr_scaling"],
            "micro_batch": run.get("micro_batch"),
            "channels_last": run["channels_last"],
            "autocast": run["autocast"],
            "train_size": len(self.train),
            "test_size": len(self.test),
            **{k: last.get(k) for k in ("train_loss", "train_acc", "test_loss", "test_acc")},
            **settle,
            "seconds": self.elapsed,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "kernels": kernels_in_use() if self.device.type == "cpu" else "cuda",
        }

    def finish(self) -> dict:
        """Settledness, then checkpoint, history and metrics written together; the resume state removed."""
        iters = int(self.track.get("iters", 20))
        points = settle_points(self.model, self.recent, *self.sample, iters) if self.status == "ok" else []
        metrics = self.metrics(settledness(points, self.run["stop"]["settle"]))
        model = self.model
        if self.run["channels_last"]:
            model = model.to(memory_format=torch.contiguous_format)  # checkpoints in the standard layout
        files = self.files
        write_together(  # all three or none: a failed write (e.g. a full disk) leaves no partial set
            (
                files.checkpoint,
                lambda p: save_checkpoint(p, model, self.run, self.info, epoch=self.epoch, status=self.status),
            ),
            (files.history, lambda p: write_history(p, self.history)),
            (files.metrics, lambda p: write_json(p, metrics)),
        )
        try:
            files.resume.unlink(missing_ok=True)
        except OSError as e:
            raise os_error(files.resume, "remove the resume state", e) from None
        return metrics


def train_run(run, train, test, info, *, files, device, callback=None):
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
    training = _Training(run, train, test, info, files=files, device=device)
    training.loop(callback)
    return training.finish()
