"""Robustness of a trained run (attack.json): accuracy on adversarial versions of the train and test sets over
an eps grid.

One forward+backward per batch gives the clean accuracy and the input gradient that every FGSM eps
(l-inf and l2) reuses; each eps then costs one forward. PGD restarts from a generator seeded with 0 per
split, so reruns give identical numbers.
"""

import time

import torch

from lbhessian.attacks import fgsm_step, input_grad, pgd
from lbhessian.core.errors import LbhError
from lbhessian.core.modes import frozen
from lbhessian.core.results import eps_key
from lbhessian.curvature.base import model_device

PGD_SEED = 0


def _grid(values):
    return [(eps_key(e), float(e)) for e in values]


def _correct(logits, y):
    return (logits.argmax(dim=1) == y).sum()


def adversarial_accuracy(model, split, c):
    """Accuracies of one split (first c["samples"] images) under every attack of the normalised grid ``c``
    (see ``robustness``); the images go to the model's device."""
    n = len(split) if c["samples"] is None else min(c["samples"], len(split))
    if n == 0:
        raise LbhError("attack: the split has no images to evaluate")
    device = model_device(model)
    sub = split.subset(n).to(device)
    x_all, y_all = sub.x_float(), sub.y
    gen = torch.Generator().manual_seed(PGD_SEED)
    # Counts stay on the device: one host sync at the end instead of one per batch and eps.
    zero = torch.zeros((), dtype=torch.long, device=device)
    clean = zero.clone()
    counts = {a: {k: zero.clone() for k, _ in c[a]} for a in ("fgsm_linf", "fgsm_l2", "pgd_linf")}
    for start in range(0, n, c["batch_size"]):
        x = x_all[start : start + c["batch_size"]]
        y = y_all[start : start + c["batch_size"]]
        grad, logits = input_grad(model, x, y)
        clean += _correct(logits, y)
        with torch.no_grad():
            for attack, norm in (("fgsm_linf", "linf"), ("fgsm_l2", "l2")):
                for key, eps in c[attack]:
                    counts[attack][key] += _correct(model(fgsm_step(x, grad, eps, norm)), y)
        for key, eps in c["pgd_linf"]:
            step = c["pgd_step_size"] or 2.5 * eps / c["pgd_steps"]  # Madry et al.'s rule when not set
            adv = pgd(
                model,
                x,
                y,
                eps,
                steps=c["pgd_steps"],
                step_size=step,
                random_start=c["pgd_random_start"],
                generator=gen,
            )
            with torch.no_grad():
                counts["pgd_linf"][key] += _correct(model(adv), y)
    result = {"samples": n, "clean_acc": clean.item() / n}
    for attack, per_eps in counts.items():
        result[attack] = {key: count.item() / n for key, count in per_eps.items()}
    return result


def robustness(model, train, test, cfg):
    """attack.json's content: per split {samples, clean_acc, fgsm_linf, fgsm_l2, pgd_linf} (eps keys are
    format(eps, "g")), plus seconds and images_per_second (split images through the whole grid).
    cfg is an experiment's validated attack grid (``core.config.attack_settings``); the data follow the model's
    device."""
    pgd_cfg = cfg["pgd"]
    c = {
        "samples": cfg["samples"],
        "batch_size": cfg["batch_size"],
        "fgsm_linf": _grid(cfg["fgsm_linf"]),
        "fgsm_l2": _grid(cfg["fgsm_l2"]),
        "pgd_linf": _grid(pgd_cfg["eps"]),
        "pgd_steps": pgd_cfg["steps"],
        "pgd_step_size": pgd_cfg["step_size"],
        "pgd_random_start": pgd_cfg["random_start"],
    }
    splits = {"train": train, "test": test}
    out = {}
    t0 = time.perf_counter()
    with frozen(model):
        for name in dict.fromkeys(cfg["splits"]):
            out[name] = adversarial_accuracy(model, splits[name], c)
    seconds = time.perf_counter() - t0  # .item() above already synchronised the device
    images = sum(out[name]["samples"] for name in out)
    out["seconds"] = seconds
    out["images_per_second"] = images / max(seconds, 1e-9)
    return out
