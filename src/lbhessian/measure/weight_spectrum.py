"""The weight Hessian of a trained run (spectrum.json): its spectrum, trace and density, and the loss around it.

Per split (cfg["splits"]): top-k eigenpairs of the Hessian of the mean loss (eval mode) with residuals
and product counts, optionally the other solver on the same data as a check (claim 8: deflated power iteration
against Lanczos), the most negative eigenvalue, the full-gradient norm and loss, Hutchinson's trace and an SLQ
spectral density. On the train split also the 1-D loss (train and test) along v1 and the 2-D train-loss surface
along (v1, v2); see ``curvature.landscape`` for the scale rule.

How: Lanczos (``both_ends`` when cfg["bottom"] is "joint": top-k and the most negative eigenvalue from one Krylov
space; else ``lanczos`` and a separate ``min_eigenvalue``) or deflated power iteration; Hutchinson's trace over
cfg["trace_samples"] vectors. The Lanczos run's Gaussian start g (E[g g^T] = I, as a Hutchinson vector) is the
trace's first sample: its first product gives g^T H g = ||g||^2 alpha_1 for free ("trace_free_samples": 1;
"matvecs_by_part"'s "trace" counts the Rademacher samples 2.. only). The eigenvalues are those of the same Lanczos
run as without the trace, bit for bit.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from lbhessian.core.data import Split
from lbhessian.curvature import (
    WeightHessian,
    both_ends,
    hutchinson_trace,
    lanczos,
    lanczos_sample,
    min_eigenvalue,
    power_iteration,
    slq_density,
)
from lbhessian.curvature.base import model_device
from lbhessian.curvature.krylov import random_vectors
from lbhessian.curvature.landscape import loss_1d, loss_2d

SEED = 0  # start vectors of every solver; fixed so reruns give the same numbers
DENSITY_VECTORS = 2  # SLQ start vectors; each costs min(max_iter, DENSITY_STEPS) products
DENSITY_STEPS = 64


def _eig_block(r, k: int) -> dict:
    return {
        "eigenvalues": [float(v) for v in r.eigenvalues[0, :k]],
        "residuals": [float(v) for v in r.residuals[0, :k]],
        "matvecs": int(r.total_matvecs),
        "matvecs_per_pair": [int(v) for v in r.matvecs[0, :k]],
        "converged": [bool(v) for v in r.converged[0, :k]],
    }


class _Parts:
    """Seconds and Hessian-vector products of each part of one split's measurement, in the order they ran."""

    def __init__(self, op: WeightHessian):
        self.op, self.seconds, self.products = op, {}, {}
        self.clock = time.perf_counter()

    def done(self, name: str, *, products: bool = True) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self.clock
        self.clock = now
        if products:
            self.products[name] = self.op.matvecs - sum(self.products.values())


def _cross_check(op: WeightHessian, main, k: int, cfg: dict) -> tuple[str, dict]:
    """The other solver on the same operator (claim 8): its block, named "power" when the main method is
    Lanczos, with its largest relative difference from the main solver's eigenvalues."""
    name = "power" if cfg["method"] == "lanczos" else "lanczos"
    solve = power_iteration if name == "power" else lanczos
    kc = min(cfg["power_k"] or k, k)
    other = solve(op, kc, tol=cfg["tol"], max_iter=cfg["max_iter"], seed=SEED + 1)
    a, b = main.eigenvalues[0, :kc], other.eigenvalues[0, :kc]
    diff = ((a - b).abs() / a.abs().clamp_min(torch.finfo(torch.float64).tiny)).max()
    return name, {**_eig_block(other, kc), "max_rel_diff": float(diff)}


def _trace_and_density(op: WeightHessian, cfg: dict, parts: _Parts, first: torch.Tensor | None) -> dict:
    """Hutchinson's trace (``first``: its first sample, known from the Lanczos run, or None) and the SLQ density."""
    out = {"trace": None, "trace_stderr": None, "trace_free_samples": 0}  # trace_samples 0: not measured
    if cfg["trace_samples"] > 0:
        tr, se = hutchinson_trace(op, cfg["trace_samples"], seed=SEED + 3, first=first)
        out["trace"], out["trace_stderr"] = float(tr[0]), float(se[0])
        out["trace_free_samples"] = 0 if first is None else 1
        parts.done("trace")
    if cfg["density"]:
        dens = slq_density(op, vectors=DENSITY_VECTORS, steps=min(cfg["max_iter"], DENSITY_STEPS), seed=SEED + 4)
        out["density"] = {"grid": dens["grid"], "density": dens["density"], "sigma": dens["sigma"]}
        parts.done("density")
    return out


def _main_solve(op: WeightHessian, k_run: int, cfg: dict) -> tuple:
    """(top-k result, bottom result from the same run or None, the trace's first sample or None). Lanczos's start
    vector, the Gaussian it draws for ``SEED``, is also a Hutchinson vector: with the trace measured its sample is
    handed on (it costs no product)."""
    solver = {"tol": cfg["tol"], "max_iter": cfg["max_iter"], "seed": SEED}
    if cfg["method"] != "lanczos":
        return power_iteration(op, k_run, **solver), None, None
    v0 = random_vectors(op, SEED)  # what Lanczos draws for SEED without a v0: the same run, bit for bit
    if cfg["bottom"] == "joint":  # one Krylov space for the top-k and the most negative eigenvalue
        main, low = both_ends(op, k_run, **solver, v0=v0)
    else:
        main, low = lanczos(op, k_run, **solver, v0=v0), None
    return main, low, (lanczos_sample(main, v0) if cfg["trace_samples"] > 0 else None)


def weight_spectrum_of(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: dict, *, vectors: int = 0
) -> tuple[dict, torch.Tensor]:
    """The weight-Hessian measurements on one data set ``(x, y)`` (one split's block of spectrum.json); also
    returns the top ``vectors`` eigenvectors (the landscape's directions)."""
    op = WeightHessian(model, x, y, chunk_size=cfg["chunk_size"], dtype=cfg["dtype"])
    op.vector_batch = cfg["vector_batch"]
    parts = _Parts(op)
    k = min(cfg["top_k"], op.size)
    k_run = min(max(k, vectors), op.size)
    loss, grad = op.loss_and_gradient()
    parts.done("gradient", products=False)
    main, low, first = _main_solve(op, k_run, cfg)
    joint = low is not None
    parts.done(cfg["method"])
    out = {"samples": len(x), "method": cfg["method"], **_eig_block(main, k)}
    out["chunk_size"], out["cached_graphs"] = op.chunk_size, op.cache
    if cfg["check_power"]:
        name, out[name] = _cross_check(op, main, k, cfg)
        parts.done(name)
    if not joint:
        low = min_eigenvalue(op, tol=cfg["tol"], max_iter=cfg["max_iter"], seed=SEED + 2)
        parts.done("min_eigenvalue")
    out["min_eigenvalue"] = float(low.eigenvalues[0, 0])
    out["min_eigenvalue_residual"] = float(low.residuals[0, 0])  # relative to ||H|| (see min_eigenvalue)
    out["min_eigenvalue_matvecs"] = int(low.total_matvecs)
    out["min_eigenvalue_from"] = "lanczos (joint)" if joint else "min_eigenvalue (separate)"
    out["grad_norm"] = float(grad.norm())
    out["loss"] = float(loss)
    out.update(_trace_and_density(op, cfg, parts, first))
    out["matvecs_total"] = op.matvecs
    out["matvecs_by_part"] = parts.products
    out["seconds_by_part"] = parts.seconds
    vecs = main.eigenvectors[0, :vectors].detach()
    op.release()
    return out, vecs


def weight_spectrum(model: nn.Module, train: Split, test: Split, cfg: dict) -> dict:
    """spectrum.json's content (cfg = the validated config["spectrum"]): ``weight_spectrum_of`` per split, and on
    the train split the loss landscapes along its top eigenvectors. The data follow the model's device."""
    t0 = time.perf_counter()
    dev = model_device(model)
    n = cfg["samples"]
    land = cfg["landscape"]
    result: dict = {}
    for name in cfg["splits"]:
        x, y = (train if name == "train" else test).tensors(n, dev)
        want = 2 if name == "train" else 0
        out, vecs = weight_spectrum_of(model, x, y, cfg, vectors=want)
        if name == "train":
            t_land = time.perf_counter()
            xt, yt = test.tensors(n, dev)
            theta = torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])
            out["theta_norm"] = float(theta.norm())
            out["landscape_1d"] = {
                **loss_1d(model, vecs[0], land["radius"], land["points_1d"], {"train": (x, y), "test": (xt, yt)}),
                "radius": land["radius"],
            }
            if len(vecs) >= 2:
                out["landscape_2d"] = loss_2d(
                    model, vecs[0], vecs[1], radius=land["radius"], points=land["points_2d"], x=x, y=y
                )
            out["seconds_by_part"]["landscape"] = time.perf_counter() - t_land
        result[name] = out
    result["seconds"] = time.perf_counter() - t0
    return result
