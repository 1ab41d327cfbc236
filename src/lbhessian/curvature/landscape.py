"""Loss along directions in weight space: 1-D curves and 2-D surfaces around the trained weights.

Scale rule: directions are unit vectors (the Hessian's eigenvectors, ||v|| = 1) and ``alpha`` is the
Euclidean distance moved in weight space, alpha in [-radius, radius]. The same absolute scale is used for
every run of a model, so a sharper minimum shows as a steeper curve (the paper's comparison); radius is a
per-model config choice (spectrum.landscape.radius) and ||theta|| is reported beside the curves so they
can be read relative to the weights' size.

The weights are never written: losses are evaluated with ``torch.func.functional_call`` on perturbed
copies, in eval mode, with mode and buffers restored by ``frozen``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lbhessian.core.errors import LbhError
from lbhessian.core.modes import frozen
from lbhessian.curvature.base import model_device, model_dtype, select_parameters


def _split(model: nn.Module, names: Sequence[str] | None, v: torch.Tensor) -> dict[str, torch.Tensor]:
    named = select_parameters(model, names)
    sizes = [p.numel() for _, p in named]
    if v.numel() != sum(sizes):
        raise LbhError(f"direction: expected {sum(sizes)} entries (selected parameters), got {v.numel()}")
    parts = torch.split(v.reshape(-1), sizes)
    return {n: t.view_as(p).to(dtype=p.dtype, device=p.device) for (n, p), t in zip(named, parts, strict=True)}


@torch.no_grad()
def mean_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    params: Mapping[str, torch.Tensor] | None = None,
    chunk: int = 1000,
) -> float:
    """Mean cross-entropy over ``(x, y)`` in eval mode, optionally with some parameters replaced."""
    dev, dt = model_device(model), model_dtype(model)
    total = 0.0
    with frozen(model):
        for i in range(0, len(x), chunk):
            xc = x[i : i + chunk].to(device=dev, dtype=dt)
            yc = y[i : i + chunk].to(dev)
            logits = functional_call(model, dict(params), (xc,)) if params else model(xc)
            total += float(F.cross_entropy(logits, yc, reduction="sum"))
    return total / len(x)


def surface(
    model: nn.Module,
    directions: Sequence[torch.Tensor],
    coords: torch.Tensor,
    data: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    names: Sequence[str] | None = None,
) -> dict[str, list[float]]:
    """Loss at theta + sum_i coords[p, i] * directions[i] for every row p of ``coords``, per data set."""
    base = {n: p.detach() for n, p in select_parameters(model, names)}
    dirs = [_split(model, names, d) for d in directions]
    out: dict[str, list[float]] = {k: [] for k in data}
    for c in coords.tolist():
        params = {n: base[n] + sum(ci * d[n] for ci, d in zip(c, dirs, strict=True)) for n in base}
        for key, (x, y) in data.items():
            out[key].append(mean_loss(model, x, y, params))
    return out


def loss_1d(
    model: nn.Module,
    v: torch.Tensor,
    radius: float,
    points: int,
    data: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    names: Sequence[str] | None = None,
) -> dict[str, list[float]]:
    """{"alpha": [...], "<name>_loss": [...]} along the unit direction ``v`` (normalised here)."""
    if points < 2 or radius <= 0:
        raise LbhError(f"landscape: expected points >= 2 and radius > 0, got {points}, {radius}")
    alpha = torch.linspace(-radius, radius, points, dtype=torch.float64)
    v = v / v.norm()
    losses = surface(model, [v], alpha[:, None], data, names=names)
    return {"alpha": alpha.tolist(), **{f"{k}_loss": val for k, val in losses.items()}}


def loss_2d(
    model: nn.Module,
    v1: torch.Tensor,
    v2: torch.Tensor,
    *,
    radius: float,
    points: int,
    x: torch.Tensor,
    y: torch.Tensor,
    names: Sequence[str] | None = None,
) -> dict[str, list]:
    """{"alpha", "beta", "loss"}: loss[i][j] at theta + alpha[i] v1 + beta[j] v2 (unit directions)."""
    if points < 2 or radius <= 0:
        raise LbhError(f"landscape: expected points >= 2 and radius > 0, got {points}, {radius}")
    grid = torch.linspace(-radius, radius, points, dtype=torch.float64)
    coords = torch.cartesian_prod(grid, grid)  # row-major: alpha outer, beta inner
    vals = surface(model, [v1 / v1.norm(), v2 / v2.norm()], coords, {"loss": (x, y)}, names=names)["loss"]
    loss = [vals[i * points : (i + 1) * points] for i in range(points)]
    return {"alpha": grid.tolist(), "beta": grid.tolist(), "loss": loss}
