"""Helpers shared by the tests: running the real workflow, checking a report, fitting a tiny net."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "config" / "smoke.yaml"


def snakemake(workdir, *args, timeout=900, check=True):
    """Run the project's real Snakefile on workdir with the venv's snakemake; returns the CompletedProcess."""
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def check_report(html: str):
    """What a finished report must hold: every figure, the tables and claims, captions, nothing fetched."""
    from lbhessian.report import figures

    for kind in figures.FIGURES:
        assert f'"{kind}.png"' in html, kind
    assert '"all.html"' in html and '"claims.html"' in html
    assert html.count("Made by config <tt") == len(figures.FIGURES) + 1  # every figure and the tables name it
    assert "problematic" not in html  # no caption failed to render
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=.https?:", html)  # offline: nothing fetched


def fit_sgd(model, x, y, epochs=8, lr=0.05, batch=50, seed=0):
    """A few epochs of plain SGD with momentum: a really trained net for attack and curvature tests."""
    import torch
    from torch.nn import functional as F

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(batch):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()
