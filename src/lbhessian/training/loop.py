"""The SGD loop of one run: learning-rate rules, one step (with ghost batches), one epoch, evaluation.

``training.run.train_run`` drives these with resume, the stop rule and the run's outputs.
"""

import math

import torch
from torch.nn import functional as F

from lbhessian.attacks import perturb
from lbhessian.core.data import augment
from lbhessian.core.modes import frozen


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
    loss, correct = 0.0, 0
    with frozen(model):
        for i in range(0, len(split), batch):
            x = split.x[i : i + batch].float().div_(255.0)
            y = split.y[i : i + batch]
            logits = model(x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    n = max(len(split), 1)
    return loss / n, correct / n


def speed_options(run: dict) -> tuple[torch.memory_format, torch.dtype | None]:
    """The training-only speed settings of a run: memory format and autocast dtype (None: float32).

    They apply to the training forward/backward only; evaluation, attacks (robust training included) and
    every curvature measurement run outside them, in float32/float64 and the standard format."""
    fmt = torch.channels_last if run.get("channels_last") else torch.contiguous_format
    return fmt, torch.bfloat16 if run.get("autocast", "none") == "bfloat16" else None


def train_step(model, optimizer, x, y, *, micro_batch=None, speed=(torch.contiguous_format, None)):
    """One SGD step on batch (x, y); with micro_batch, gradients of micro-batches are accumulated so the
    update equals that of the whole batch while BatchNorm sees micro-batches ("ghost batch").
    ``speed``: (memory format, autocast dtype or None) from ``speed_options``."""
    fmt, amp = speed
    optimizer.zero_grad(set_to_none=True)
    n = x.shape[0]
    total = x.new_zeros(())
    chunk = micro_batch if micro_batch and micro_batch < n else n
    for i in range(0, n, chunk):
        xb, yb = x[i : i + chunk], y[i : i + chunk]
        if fmt is not torch.contiguous_format and xb.dim() == 4:
            xb = xb.contiguous(memory_format=fmt)
        with torch.autocast(x.device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            loss = F.cross_entropy(model(xb), yb, reduction="sum") / n
        loss.backward()
        total += loss.detach()
    optimizer.step()
    return total


def run_epoch(
    model, optimizer, train, run, *, batch_size, peak_lr, epoch, generator, on_step=None, start=None, lr_scale=None
):
    """One pass over `train` (a Split on the model's device) in shuffled batches; returns the mean batch loss.

    The lr of every step is ``lr_at(run, peak_lr, progress)``, times ``lr_scale()`` when given (the stop
    rule's settling phase, which can begin in the middle of an epoch).

    ``on_step(position)`` runs after every step with where the epoch stands (``perm``, the next ``step``, the
    ``running`` loss sum); an epoch stopped there (e.g. by a signal) continues from ``start`` = that position,
    with the generator's state of that moment, exactly as if it had not stopped.
    Only one host sync per epoch: checking the loss every step would stall a GPU.
    """
    n = len(train)
    steps = math.ceil(n / batch_size)
    robust = run.get("robust")
    dev = train.y.device
    if start is None:
        perm, first, running = torch.randperm(n, generator=generator).to(dev), 0, torch.zeros((), device=dev)
    else:
        perm, first, running = start["perm"].to(dev), start["step"], start["running"].to(dev)
    for step in range(first, steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(run, peak_lr, epoch + step / steps) * (lr_scale() if lr_scale else 1.0)
        idx = perm[step * batch_size : (step + 1) * batch_size]
        x, y = train.x[idx].float().div_(255.0), train.y[idx]
        if run.get("augment"):
            x = augment(x, generator)
        if robust:
            x = perturb(model, x, y, robust, generator)
        running += train_step(
            model, optimizer, x, y, micro_batch=run.get("micro_batch"), speed=speed_options(run)
        ) * len(idx)
        if on_step:
            on_step({"perm": perm, "step": step + 1, "running": running})
    return running.item() / n
