"""Inputs of the claims and report-page tests: a summary table with a planted batch-size effect of known size
(``synthetic``), the thresholds it is judged with, and a claims.json in report.claims' format."""

import math

import numpy as np
import pandas as pd

from lbhessian.core.config import defaults
from lbhessian.core.io import write_text

BATCHES = (32, 128, 512, 2048)


def synthetic(tmp_path, *, effect=1.0, seeds=range(4), batches=BATCHES, noise=0.05, rng=0, robust_eps=(0.05, 0.1)):
    """A summary table with a planted batch-size effect of known size: lambda_i, trace, ||grad_x J|| and
    lambda_1(H_x) scale as batch^(0.3 effect); test and FGSM/PGD accuracy fall by 0.01 / 0.05 effect per
    doubling; robust training (eps levels robust_eps at the smallest batch) halves lambda_1 per 0.1 eps and
    adds 0.3 accuracy per 0.1 eps. effect=-1 reverses every trend; effect=0 is the null."""
    rng = np.random.default_rng(rng)
    history = tmp_path / "history.csv"
    write_text(history, "epoch,train_loss,lambda1,grad_norm\n1,1.0,5.0,1.0\n2,0.3,,\n3,0.1,6.0,0.05\n")
    rows = []
    for bs in batches:
        for eps in (0.0, *robust_eps) if bs == batches[0] else (0.0,):
            for seed in seeds:
                d = math.log2(bs / batches[0])
                jitter = lambda scale=noise: float(rng.normal(0, scale))  # noqa: E731
                lam = 10 * 2 ** (0.3 * effect * d) * 2 ** (-10 * eps) * math.exp(jitter())
                row = {
                    "dataset": "mnist5k",
                    "model": "M1",
                    "mode": "clean" if eps == 0 else f"fgsm{eps:g}",
                    "batch_size": bs,
                    "seed": seed,
                    "status": "ok",
                    "robust": eps > 0,
                    "robust_eps": eps or np.nan,
                    "stop_rule": "target_loss",
                    "reached_target": True,
                    "epochs": 3,
                    "history_file": str(history),
                    "test_acc": 0.97 - 0.01 * effect * d + jitter(0.003) + 0.5 * eps,
                    "min_eigenvalue": -0.01 * lam,
                    "grad_norm": 0.04,
                    "landscape_argmin_alpha": 0.0,
                    "landscape_alpha_step": 0.1,
                    "input_exact_images_train": 2,
                    "input_exact_images_test": 2,
                    "input_exact_min_rel": -1e-16,
                    "input_exact_rank_excess": 0.0,
                    "power_max_rel_diff": 1e-4,
                    "input_grad_norm_test": 0.5 * 2 ** (0.3 * effect * d) * math.exp(jitter()),
                    "input_lambda1_test": 2 * 2 ** (0.3 * effect * d) * math.exp(jitter()),
                    "trace": 50 * 2 ** (0.3 * effect * d) * math.exp(jitter()),
                }
                for i in (1, 2, 3):
                    row[f"lambda_{i}"] = lam / i * math.exp(jitter())
                for col, base in (("acc_fgsm_linf_eps0.2_test", 0.6), ("acc_pgd_linf_eps0.2_test", 0.3)):
                    row[col] = base - 0.05 * effect * d + 3 * eps + jitter(0.01)
                rows.append(row)
    return pd.DataFrame(rows)


def thresholds(**kw):
    return {**defaults("report")["claims"], **kw}


def synthetic_claims() -> dict:
    """A claims.json in the format of report.claims: two claims, three checks, one threshold with its reason."""
    check = {
        "claim": "1",
        "check": "1a",
        "title": "log lambda_1 rises with log batch size",
        "experiment": "mnist5k_M1",
        "mode": "clean",
        "statistic": "slope",
        "effect": 0.4,
        "ci_low": 0.3,
        "ci_high": 0.5,
        "test": "bootstrap",
        "p_value": 0.01,
        "threshold": 0.0,
        "verdict": "holds",
        "detail": "slope 0.4",
        "missing": None,
        "figure": "lambda1_vs_batch",
        "unit": "",
    }
    gap = {
        **check,
        "claim": "4",
        "check": "4",
        "title": "test accuracy gap",
        "statistic": "difference",
        "effect": -0.05,
        "ci_low": -0.07,
        "ci_high": -0.03,
        "unit": "fraction",
        "figure": "accuracy_vs_batch",
        "verdict": "inconclusive",
        "missing": "runs at equal loss",
    }
    return {
        "claims": {
            "1": {
                "title": "Sharpness grows with batch size",
                "verdict": "holds",
                "per_experiment": {"mnist5k_M1": "holds"},
                "summary": "lambda_1 x4 from 32 to 1024",
            },
            "4": {
                "title": "Large batch tests worse",
                "verdict": "inconclusive",
                "per_experiment": {"mnist5k_M1": "inconclusive"},
                "summary": "gap -5 %, interval crosses 0",
            },
        },
        "checks": [
            check,
            {
                **check,
                "check": "1b",
                "statistic": "ratio",
                "effect": 4.0,
                "ci_low": 3.5,
                "ci_high": 4.6,
                "figure": None,
            },
            gap,
        ],
        "thresholds": {"min_ratio": {"value": 2.0, "reason": "the paper's 'at least twice as sharp'"}},
        "runs": 10,
        "runs_ok": 10,
    }
