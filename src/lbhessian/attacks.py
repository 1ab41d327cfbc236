"""FGSM (l-inf, l2) and PGD (l-inf) in [0, 1] pixel space, and `perturb` for robust training.

Conventions shared by every attack here:
- inputs are float images in [0, 1]; adversarial images are clipped back to [0, 1];
- the loss is mean cross-entropy over the batch, as in torchattacks: the sign (l-inf) and the per-image
  direction (l2) do not depend on the 1/B scale, and the examples match torchattacks bit for bit;
- the model runs in eval mode (BatchNorm running statistics are neither used from the batch nor
  updated) and every module's train/eval flag is restored afterwards;
- gradients are taken with torch.autograd.grad w.r.t. the input only, so parameter .grad buffers are
  never touched (robust training calls these inside its optimizer step).
"""

import math

import torch
import torch.nn.functional as F

from lbhessian.core.errors import LbhError
from lbhessian.core.modes import frozen

NORMS = ("linf", "l2")
ATTACKS = ("fgsm", "pgd")


def check_eps(eps, what="eps"):
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise LbhError(f"{what}: expected a number >= 0, got {eps!r}") from None
    if not math.isfinite(eps) or eps < 0:
        raise LbhError(f"{what}: expected a finite number >= 0, got {eps!r}")
    return eps


def _check_batch(x, y):
    if not torch.is_tensor(x) or not x.is_floating_point() or x.dim() < 2:
        raise LbhError("attack input x: expected a float tensor (N, ...) of pixels in [0, 1]")
    if not torch.is_tensor(y) or y.shape != x.shape[:1]:
        raise LbhError(f"attack labels y: expected shape ({x.shape[0]},), got {tuple(getattr(y, 'shape', ()))}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise LbhError("attack input x: pixels must lie in [0, 1] (models normalise inside)")


def input_grad(model, x, y):
    """(grad_x of the mean cross-entropy, logits at x); the model's current mode is used as is."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        (grad,) = torch.autograd.grad(loss, x)
    return grad, logits.detach()


def fgsm_step(x, grad, eps, norm="linf"):
    """One FGSM step from a precomputed input gradient (so one gradient serves a whole eps grid)."""
    if norm == "linf":
        adv = x + eps * grad.sign()
    elif norm == "l2":
        flat = grad.flatten(1).norm(dim=1).view(-1, *([1] * (grad.dim() - 1)))
        # A zero gradient gives no direction: leave that image unperturbed instead of dividing by 0.
        unit = torch.where(flat > 0, grad / flat.clamp_min(torch.finfo(grad.dtype).tiny), 0.0)
        adv = x + eps * unit
    else:
        raise LbhError(f"attack norm: expected one of {', '.join(NORMS)}, got {norm!r}")
    # Clipping to the pixel box only shrinks each coordinate of the step, so ||adv - x|| <= eps stays true.
    return adv.clamp(0.0, 1.0).detach()


def fgsm(model, x, y, eps, norm="linf"):
    """Fast gradient (sign) method: x + eps * sign(g) (linf) or x + eps * g / ||g||_2 (l2), clipped."""
    eps = check_eps(eps)
    if norm not in NORMS:
        raise LbhError(f"attack norm: expected one of {', '.join(NORMS)}, got {norm!r}")
    _check_batch(x, y)
    with frozen(model):
        grad, _ = input_grad(model, x, y)
    return fgsm_step(x.detach(), grad, eps, norm)


def _uniform_like(x, eps, generator):
    if generator is None:
        # The global RNG, drawn exactly as torchattacks does, so seeded runs match it.
        return torch.empty_like(x).uniform_(-eps, eps)
    # Draw on the generator's device (a CPU generator gives the same start on CPU and GPU).
    noise = torch.empty(x.shape, dtype=x.dtype, device=generator.device)
    return noise.uniform_(-eps, eps, generator=generator).to(x.device)


def pgd(model, x, y, eps, *, steps, step_size, random_start=True, generator=None):
    """Projected gradient descent in l-inf (Madry et al.): `steps` signed steps of `step_size`, each
    projected onto the eps-ball around x and onto [0, 1]; optional uniform random start in the ball.
    `generator` (torch.Generator) seeds the start; None uses the global RNG."""
    eps = check_eps(eps)
    step_size = check_eps(step_size, "pgd step_size")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise LbhError(f"pgd steps: expected an integer >= 1, got {steps!r}")
    _check_batch(x, y)
    x = x.detach()
    adv = x.clone()
    if random_start:
        adv = (adv + _uniform_like(x, eps, generator)).clamp(0.0, 1.0)
    with frozen(model):
        for _ in range(steps):
            grad, _ = input_grad(model, adv, y)
            adv = adv + step_size * grad.sign()
            delta = (adv - x).clamp(-eps, eps)
            adv = (x + delta).clamp(0.0, 1.0).detach()
    return adv


def perturb(model, x, y, robust, generator):
    """Robust-training batch: replace round(fraction * B) seeded-random rows of x by adversarial ones.

    Draw order from `generator` (fixed, for reproducibility): a permutation of the batch, then the eps
    index, then (pgd with random start) the start noise. The attack runs in eval mode and the model's
    mode is restored; parameter gradients are untouched. PGD without step_size uses 2.5 * eps / steps.
    """
    cfg = robust  # an entry of train.robust, validated with its defaults by the config schema
    _check_batch(x, y)
    n = x.shape[0]
    device = generator.device if generator is not None else torch.device("cpu")
    perm = torch.randperm(n, generator=generator, device=device)
    pick = torch.randint(len(cfg["eps"]), (1,), generator=generator, device=device)
    eps = float(cfg["eps"][int(pick)])
    k = round(cfg["fraction"] * n)
    x = x.detach()
    if k == 0 or eps == 0:
        return x.clone()
    idx = perm[:k].to(x.device)
    if cfg["attack"] == "fgsm":
        adv = fgsm(model, x[idx], y[idx], eps, cfg["norm"])
    else:
        step = cfg.get("step_size") or 2.5 * eps / cfg["steps"]
        adv = pgd(
            model,
            x[idx],
            y[idx],
            eps,
            steps=cfg["steps"],
            step_size=step,
            random_start=cfg["random_start"],
            generator=generator,
        )
    mixed = x.clone()
    mixed[idx] = adv
    return mixed
