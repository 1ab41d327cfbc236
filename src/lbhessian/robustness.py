"""The `attack` step: accuracy on adversarial versions of the train and test sets over an eps grid.

One forward+backward per batch gives the clean accuracy and the input gradient that every FGSM eps
(l-inf and l2) reuses; each eps then costs one forward. PGD restarts from a generator seeded with 0 per
split, so reruns give identical numbers.
"""

import time

import torch

from .attacks import check_eps, eval_mode, fgsm_step, input_grad, pgd
from .collect import eps_key  # the one spelling of eps keys, which collect parses back
from .errors import LbhError

SPLITS = ("train", "test")
PGD_SEED = 0
DEFAULT_BATCH = 500


def _grid(values, where):
    if values is None:
        return []
    if not isinstance(values, (list, tuple)):
        raise LbhError(f"{where}: expected a list of eps values >= 0, got {values!r}")
    grid = [(eps_key(e), e) for e in (check_eps(v, where) for v in values)]
    keys = [k for k, _ in grid]
    if len(set(keys)) != len(keys):
        raise LbhError(f"{where}: eps values must be distinct, got {values!r}")
    return grid


def _positive_int(value, where, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LbhError(f"{where}: expected an integer >= 1{' or null' if allow_none else ''}, got {value!r}")
    return value


def check_attack_cfg(cfg):
    """Validate config["attack"]; return a normalised copy (grids as (key, eps) pairs)."""
    if not isinstance(cfg, dict):
        raise LbhError(f"attack: expected a mapping, got {type(cfg).__name__}")
    splits = cfg.get("splits", list(SPLITS))
    if not isinstance(splits, (list, tuple)) or not splits or any(s not in SPLITS for s in splits):
        raise LbhError(f"attack.splits: expected a non-empty list drawn from train, test, got {splits!r}")
    pgd_cfg = cfg.get("pgd") or {}
    if not isinstance(pgd_cfg, dict):
        raise LbhError(f"attack.pgd: expected a mapping, got {pgd_cfg!r}")
    out = {
        "samples": _positive_int(cfg.get("samples"), "attack.samples", allow_none=True),
        "splits": list(dict.fromkeys(splits)),
        "batch_size": _positive_int(cfg.get("batch_size", DEFAULT_BATCH), "attack.batch_size"),
        "fgsm_linf": _grid(cfg.get("fgsm_linf"), "attack.fgsm_linf"),
        "fgsm_l2": _grid(cfg.get("fgsm_l2"), "attack.fgsm_l2"),
        "pgd_linf": _grid(pgd_cfg.get("eps"), "attack.pgd.eps"),
    }
    if out["pgd_linf"]:
        out["pgd_steps"] = _positive_int(pgd_cfg.get("steps"), "attack.pgd.steps")
        out["pgd_step_size"] = check_eps(pgd_cfg.get("step_size"), "attack.pgd.step_size")
        out["pgd_random_start"] = bool(pgd_cfg.get("random_start", True))
    headline = cfg.get("headline_eps")
    # Tables and claims read FGSM l-inf accuracy at headline_eps: fail here, not at the table step.
    if headline is not None and eps_key(check_eps(headline, "attack.headline_eps")) not in dict(out["fgsm_linf"]):
        raise LbhError(f"attack.headline_eps: {headline!r} must be one of attack.fgsm_linf {cfg.get('fgsm_linf')!r}")
    return out


def _correct(logits, y):
    return (logits.argmax(dim=1) == y).sum()


def evaluate_split(model, split, c, device):
    """Accuracies of one split (first c["samples"] images) under every attack of the normalised cfg."""
    n = len(split) if c["samples"] is None else min(c["samples"], len(split))
    if n == 0:
        raise LbhError("attack: the split has no images to evaluate")
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
            adv = pgd(model, x, y, eps, c["pgd_steps"], c["pgd_step_size"], c["pgd_random_start"], gen)
            with torch.no_grad():
                counts["pgd_linf"][key] += _correct(model(adv), y)
    result = {"samples": n, "clean_acc": clean.item() / n}
    for attack, per_eps in counts.items():
        result[attack] = {key: count.item() / n for key, count in per_eps.items()}
    return result


def evaluate(model, train, test, cfg, device):
    """attack.json content: per split {samples, clean_acc, fgsm_linf, fgsm_l2, pgd_linf} (eps keys are
    format(eps, "g")), plus seconds and images_per_second (split images through the whole grid)."""
    c = check_attack_cfg(cfg)
    device = torch.device(device)
    model.to(device)
    splits = {"train": train, "test": test}
    out = {}
    t0 = time.perf_counter()
    with eval_mode(model):
        for name in c["splits"]:
            out[name] = evaluate_split(model, splits[name], c, device)
    seconds = time.perf_counter() - t0  # .item() above already synchronised the device
    images = sum(out[name]["samples"] for name in c["splits"])
    out["seconds"] = seconds
    out["images_per_second"] = images / max(seconds, 1e-9)
    return out
