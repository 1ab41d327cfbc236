"""Input gradients and input Hessians of a trained run (inputs.json): robustness seen from the input side.

For a fixed sample of images (the first ``samples`` of each split, which are in shuffled order) and the
loss J = cross-entropy at the true label: ||grad_x J|| and lambda_1(H_x), the top eigenvalue of the
per-image input Hessian, by batched Lanczos on all images of a chunk at once, each verified by one more
product and solved again in float64 where that check fails. For the first ``exact_images`` test images and
as many train images the exact H_x is formed in float64 and fully diagonalised (claim 6: for ReLU networks
with softmax it is PSD with rank <= classes - 1), its rank counted above a tolerance float64 can resolve.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from lbhessian.core.data import Split
from lbhessian.core.modes import frozen
from lbhessian.curvature import InputHessian, exact_input_hessian, input_chunk, lanczos
from lbhessian.curvature.base import as_dtype, model_device

SEED = 0  # start vectors of the batched Lanczos solves
TOL = 1e-3  # relative residual at which lambda_1(H_x) is accepted (at most ``iters`` products)
TOP = 10  # eigenvalues listed per exact image


def _stats(v: torch.Tensor) -> tuple[float, float]:
    return float(v.mean()), float(v.std(correction=1)) if len(v) > 1 else 0.0


def verified_top_eigenvalue(op: InputHessian, iters: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """lambda_1 of every image by batched Lanczos, with the residual ||H y - theta y|| / |theta| measured by one
    more product (the Ritz estimate can be wrong where the operator is at roundoff level), and the products used."""
    r = lanczos(op, 1, tol=TOL, max_iter=iters, seed=SEED, vectors=True)
    theta, vec = r.eigenvalues[:, 0], r.eigenvectors[:, 0]
    hy = op.matvec(vec)
    res = (hy - theta.to(hy)[:, None] * vec).norm(dim=1).double().cpu() / theta.abs().clamp_min(1e-300)
    return theta, res, r.total_matvecs + 1


def input_curvature_of(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, iters: int, chunk: int | None = None
) -> dict:
    """Mean/std of ||grad_x J|| and lambda_1(H_x) over the images ``x`` (one split's block of inputs.json),
    ``chunk`` images per solve."""
    chunk = input_chunk(model, x, y, basis_vectors=iters + 2, chunk=chunk)
    norms, lam, res, used = [], [], [], 0
    for i in range(0, len(x), chunk):
        op = InputHessian(model, x[i : i + chunk], y[i : i + chunk])
        norms.append(op.gradients().norm(dim=1).double().cpu())
        lam_c, res_c, n = verified_top_eigenvalue(op, iters)
        lam.append(lam_c)
        res.append(res_c)
        used += n
    norms, lam, res = torch.cat(norms), torch.cat(lam), torch.cat(res)
    # An image whose softmax is saturated has an input Hessian at float32's roundoff (~1e-21), where the
    # operator is noise and Lanczos can return garbage (seen: lambda_1 ~ 1e17, its estimated residual 0).
    # The verified residual catches it; those images are solved again in float64.
    redo = (~(res <= TOL)).nonzero().flatten()
    if len(redo):
        idx = redo.to(x.device)
        op64 = InputHessian(model, x[idx], y[idx], dtype=torch.float64)
        lam[redo], res[redo], n = verified_top_eigenvalue(op64, iters)
        used += n
    g_mean, g_std = _stats(norms)
    l_mean, l_std = _stats(lam)
    return {
        "samples": len(x),
        "grad_norm_mean": g_mean,
        "grad_norm_std": g_std,
        "lambda1_mean": l_mean,
        "lambda1_std": l_std,
        "lambda1_median": float(lam.median()),
        "converged_fraction": float((res <= TOL).double().mean()),
        "float64_resolves": len(redo),
        "residual_max": float(res.max()),
        "matvecs": used,
        "chunk": chunk,
    }


def exact_input_spectrum(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int) -> dict:
    """Eigenvalues of the exact float64 input Hessian of one image, and its numerical rank.

    The rank counts eigenvalues above what float64 can resolve. numpy's rule (d * eps * max|eig|) is too
    tight when the softmax saturates: H = J^T (diag(p) - p p^T) J is then tiny, but the roundoff of
    computing it is ~eps * ||J||^2 (the entries of diag(p) - p p^T carry absolute errors ~eps), so the
    tolerance is the larger of the two.
    """
    h = exact_input_hessian(model, x, y, dtype=torch.float64)
    eig = torch.linalg.eigvalsh(h).cpu()
    d, eps = h.shape[0], torch.finfo(torch.float64).eps
    with frozen(model):
        m64 = as_dtype(model, torch.float64)
        jac = torch.autograd.functional.jacobian(lambda z: m64(z.view(1, *x.shape))[0], x.to(torch.float64).flatten())
    noise = eps * float(torch.linalg.matrix_norm(jac.reshape(-1, d).cpu(), ord=2)) ** 2
    rank_tol = max(float(eig.abs().max()) * d * eps, noise)
    return {
        "classes": classes,
        "eigenvalues_top": [float(v) for v in eig.flip(0)[:TOP]],
        "min_eig": float(eig[0]),
        "max_eig": float(eig[-1]),
        "rank": int((eig.abs() > rank_tol).sum()),
        "rank_tol": rank_tol,
    }


def input_curvature(model: nn.Module, train: Split, test: Split, cfg: dict) -> dict:
    """inputs.json's content (cfg = the validated config["inputs"]): ``input_curvature_of`` per split and
    ``exact_input_spectrum`` of the first images of each. The data follow the model's device."""
    t0 = time.perf_counter()
    dev = model_device(model)
    result: dict = {}
    for name, split in (("train", train), ("test", test)):
        x, y = split.tensors(cfg["samples"], dev)
        result[name] = input_curvature_of(model, x, y, cfg["iters"], cfg["chunk"])
    # Claim 6 is about the inner problem of robust training, which runs on training images: both splits
    # ("exact": test images, as before; "exact_train": the same count of training images).
    for key, split in (("exact", test), ("exact_train", train)):
        xs, ys = split.tensors(cfg["exact_images"] or 1, dev)
        with torch.no_grad(), frozen(model):
            classes = int(model(xs[:1]).shape[-1]) if cfg["exact_images"] else 0
        result[key] = [
            {
                "split": "test" if key == "exact" else "train",
                "index": i,
                **exact_input_spectrum(model, xs[i], ys[i], classes),
            }
            for i in range(min(cfg["exact_images"], len(xs)))
        ]
    result["seconds"] = time.perf_counter() - t0
    return result
