"""SGD training of one run: batch-size grid, lr scaling and warm-up, ghost batches, robust training, resume."""

import csv
import math
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from .checkpoint import save_checkpoint
from .data import augment
from .io import load_torch, save_torch, write_json, write_text
from .models import build_model
from .runtime import seed_everything

RESUME = "resume.pt"
HISTORY_FIELDS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "lambda1", "grad_norm"]


def resolve_batch_size(batch_size, n_train):
    return n_train if batch_size == "full" else min(int(batch_size), n_train)


def scaled_lr(run, batch_size):
    """Base lr scaled from base_batch_size to batch_size by the configured rule (none, linear, sqrt)."""
    ratio = batch_size / run["base_batch_size"]
    factor = {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[run["lr_scaling"]]
    return run["optimizer"]["lr"] * factor


def lr_at(run, peak_lr, epoch_progress):
    """Linear warm-up over warmup_epochs, then step decay by lr_gamma at each milestone epoch."""
    warm = run["warmup_epochs"]
    if warm and epoch_progress < warm:
        return peak_lr * (epoch_progress + 1e-12) / warm
    drops = sum(1 for m in run["lr_milestones"] if epoch_progress >= m)
    return peak_lr * run["lr_gamma"] ** drops


@torch.no_grad()
def evaluate(model, split, batch=1000):
    """Mean loss and accuracy over a split, in eval mode; the model's mode is restored."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(split), batch):
        x = split.x[i : i + batch].float().div_(255.0)
        y = split.y[i : i + batch]
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    model.train(was_training)
    n = max(len(split), 1)
    return loss / n, correct / n


def train_step(model, optimizer, x, y, micro_batch=None):
    """One SGD step on batch (x, y); with micro_batch, gradients of micro-batches are accumulated so the
    update equals that of the whole batch while BatchNorm sees micro-batches ("ghost batch")."""
    optimizer.zero_grad(set_to_none=True)
    n = x.shape[0]
    total = x.new_zeros(())
    chunk = micro_batch if micro_batch and micro_batch < n else n
    for i in range(0, n, chunk):
        xb, yb = x[i : i + chunk], y[i : i + chunk]
        loss = F.cross_entropy(model(xb), yb, reduction="sum") / n
        loss.backward()
        total += loss.detach()
    optimizer.step()
    return total


def run_epoch(model, optimizer, train, run, batch_size, peak_lr, epoch, generator, on_step=None):
    """One pass over `train` (a Split on the model's device) in shuffled batches; returns the mean batch loss.

    Only one host sync per epoch: checking the loss every step would stall a GPU.
    """
    n = len(train)
    steps = math.ceil(n / batch_size)
    robust = run.get("robust")
    if robust:
        from .attacks import perturb
    perm = torch.randperm(n, generator=generator).to(train.y.device)
    running = torch.zeros((), device=train.y.device)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(run, peak_lr, epoch + step / steps)
        idx = perm[step * batch_size : (step + 1) * batch_size]
        x, y = train.x[idx].float().div_(255.0), train.y[idx]
        if run.get("augment"):
            x = augment(x, generator)
        if robust:
            x = perturb(model, x, y, robust, generator)
        running += train_step(model, optimizer, x, y, run.get("micro_batch")) * len(idx)
        if on_step:
            on_step()
    return running.item() / n


class _Progress:
    """A progress bar on a terminal, one plain line per epoch in logs."""

    def __init__(self, total_epochs, steps_per_epoch, label):
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total_epochs * steps_per_epoch, desc=label, unit="step", leave=False)
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


def _write_history(path, history):
    lines = [",".join(HISTORY_FIELDS)]
    for row in history:
        lines.append(",".join("" if row.get(k) is None else repr(row[k]) for k in HISTORY_FIELDS))
    write_text(path, "\n".join(lines) + "\n")


def read_history(path):
    with open(path) as f:
        return [{k: (float(v) if v != "" else None) for k, v in row.items()} for row in csv.DictReader(f)]


def train_run(run, train, test, info, out_dir, device, callback=None):
    """Train one run and write checkpoint.pt, history.csv and metrics.json into out_dir; returns metrics.

    An interrupted run resumes from out_dir/resume.pt (saved after every epoch) and ends with the same
    weights as an uninterrupted one. A non-finite loss ends the run with status "diverged".
    `callback(epoch, model)` is called after each epoch (used by tests to interrupt a run).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train = train.subset(run.get("train_size")).to(device)
    test = test.subset(run.get("test_size")).to(device)
    n = len(train)
    batch_size = resolve_batch_size(run["batch_size"], n)
    peak_lr = scaled_lr(run, batch_size)
    stop = run["stop"]
    max_epochs = stop["epochs"]

    seed_everything(run["seed"])
    model = build_model(run["model"], info).to(device).train()
    opt = torch.optim.SGD(
        model.parameters(), lr=peak_lr, momentum=run["optimizer"]["momentum"],
        weight_decay=run["optimizer"]["weight_decay"],
    )  # fmt: skip
    # A CPU generator drives shuffling, augmentation and attacks: the same sequence on any device.
    gen = torch.Generator().manual_seed(run["seed"])
    history, start_epoch, elapsed = [], 0, 0.0

    resume_path = out_dir / RESUME
    if resume_path.exists():
        state = load_torch(resume_path, what="resume state")
        if state.get("run") == run:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            history, start_epoch, elapsed = state["history"], state["epoch"], state["seconds"]
            print(f"resuming {out_dir} from epoch {start_epoch}", file=sys.stderr, flush=True)
        else:
            print(f"{resume_path}: made by another config, starting over", file=sys.stderr, flush=True)

    robust = run.get("robust")
    track = run.get("track") or {}
    steps_per_epoch = math.ceil(n / batch_size)
    label = f"{run['dataset']}/{run['model']}/{run['mode']}/bs{run['batch_size']}/seed{run['seed']}"
    progress = _Progress(max_epochs - start_epoch, steps_per_epoch, label)
    status, reached = "ok", False
    if history and stop["rule"] == "target_loss":
        reached = history[-1]["train_loss"] <= stop["target_loss"]
    epoch = start_epoch
    while epoch < max_epochs and not reached:
        t0 = time.perf_counter()
        running = run_epoch(model, opt, train, run, batch_size, peak_lr, epoch, gen, progress.step)
        epoch += 1
        if not math.isfinite(running):
            status = "diverged"
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"]}
        if status == "ok" and (epoch % run["eval_every"] == 0 or epoch == max_epochs or stop["rule"] == "target_loss"):
            row["train_loss"], row["train_acc"] = evaluate(model, train)
            row["test_loss"], row["test_acc"] = evaluate(model, test)
            if not math.isfinite(row["train_loss"]):
                status = "diverged"
        else:  # no evaluation this epoch: the running mean of batch losses stands in
            row.update(train_loss=running, train_acc=float("nan"), test_loss=float("nan"), test_acc=float("nan"))
        if status == "ok" and track.get("every") and epoch % track["every"] == 0:
            from .spectrum import track as track_curvature

            row.update(track_curvature(model, train, track, device))
        elapsed += time.perf_counter() - t0
        row["seconds"] = elapsed
        history.append(row)
        progress.epoch(row)
        if status != "ok":
            break
        reached = stop["rule"] == "target_loss" and row["train_loss"] <= stop["target_loss"]
        save_torch(
            resume_path,
            {"run": run, "model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
             "torch_rng": torch.get_rng_state(), "history": history, "epoch": epoch, "seconds": elapsed},
        )  # fmt: skip
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
        "stop_rule": stop["rule"],
        "target_loss": stop["target_loss"] if stop["rule"] == "target_loss" else None,
        "reached_target": reached if stop["rule"] == "target_loss" else None,
        "epochs": len(history),
        "steps": len(history) * steps_per_epoch,
        "lr": peak_lr,
        "lr_scaling": run["lr_scaling"],
        "micro_batch": run.get("micro_batch"),
        "train_size": n,
        "test_size": len(test),
        **{k: last.get(k) for k in ("train_loss", "train_acc", "test_loss", "test_acc")},
        "seconds": elapsed,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    save_checkpoint(out_dir / "checkpoint.pt", model, run, info, epoch=len(history), status=status)
    _write_history(out_dir / "history.csv", history)
    write_json(out_dir / "metrics.json", metrics)
    resume_path.unlink(missing_ok=True)
    return metrics
