"""Running the real workflow and checking what it made: the Snakefile on a working directory, a finished report,
a run's folder in the results layout, JSON content without wall-clock fields."""

import re
import subprocess
import sys
from pathlib import Path

from lbhessian.core.names import RUN_KEYS, RunId

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "config" / "smoke.yaml"


def run_dir(workdir, cfg, r):
    """The folder of run ``r`` (an item of config.runs) of ``cfg`` under ``workdir``: the layout of common.smk."""
    return (
        workdir
        / cfg["results"]
        / "runs"
        / r["dataset"]
        / r["model"]
        / r["mode"]
        / f"bs{r['batch']}"
        / f"seed{r['seed']}"
    )


def run_flags(batch, seed=0, *, dataset="mnist5k", model="M1", mode="clean") -> list[str]:
    """The CLI flags that name one run (``--dataset ... --seed``), in RunId's order, as the workflow passes them."""
    run = RunId(dataset, model, mode, str(batch), seed)
    return [x for key, value in zip(RUN_KEYS, run, strict=True) for x in (f"--{key}", str(value))]


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


def without_timings(value):
    """JSON content minus wall-clock fields (seconds, images_per_second): the only things allowed to differ
    between two runs of the same command."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if "second" not in k and "time" not in k}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value
