"""The house rules of docs/architecture.md, checked: layers, one step module per rule, no import-time side effects."""

import re
import subprocess
import sys
from pathlib import Path

from helpers.workflow import ROOT
from lbhessian.core.config import MEASUREMENTS

SRC = ROOT / "src" / "lbhessian"
MAX_LINES = 300


def test_imports_flow_one_way():
    """import-linter's contracts (pyproject.toml): e.g. `from lbhessian.report import summary` in training.py, or
    a core module importing a step, breaks a contract and fails here."""
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_every_rule_has_its_step_module_and_no_module_is_long():
    """A rule named X calls `lbhessian X`, implemented by lbhessian/steps/X.py with a main(); modules stay short."""
    rules = set()
    for smk in [ROOT / "Snakefile", *(ROOT / "workflow" / "rules").glob("*.smk")]:
        rules |= set(re.findall(r"^rule (\w+):", smk.read_text(), re.MULTILINE))
    rules.discard("all")
    # The measurement rules are defined once, in a loop over their names (workflow/rules/measure.smk).
    assert "for step in lbconfig.MEASUREMENTS:" in (ROOT / "workflow" / "rules" / "measure.smk").read_text()
    rules |= set(MEASUREMENTS)
    assert {"data", "train", "spectrum", "inputs", "attack", "collect", "figures", "tables", "claims"} <= rules
    for rule in rules:
        text = (SRC / "steps" / f"{rule}.py").read_text()
        assert "\ndef main(" in text, rule
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_importing_the_package_changes_no_global_state():
    """Importing every module leaves the umask, matplotlib's backend and rcParams and torch's settings alone (the
    old io.py reset the umask at import, figures.py switched the backend and theme)."""
    code = """
import importlib, os, pkgutil, sys
import matplotlib
import torch
umask = os.umask(0o022); os.umask(umask)
rc = dict(matplotlib.rcParams); backend = matplotlib.get_backend(); threads = torch.get_num_threads()
import lbhessian
for m in pkgutil.walk_packages(lbhessian.__path__, "lbhessian."):
    if m.name != "lbhessian.__main__":
        importlib.import_module(m.name)
now = os.umask(0o022); os.umask(now)
assert now == umask, (now, umask)
assert matplotlib.get_backend() == backend
changed = [k for k, v in matplotlib.rcParams.items() if rc.get(k) != v and k != "backend"]
assert not changed, changed
assert torch.get_num_threads() == threads
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_schema_ships_inside_the_package():
    """The installed package must work outside a checkout: the schema is package data, read via the package."""
    from lbhessian.core import config

    assert config.SCHEMA.is_relative_to(SRC) and config.SCHEMA.exists()
    assert not (ROOT / "workflow" / "schemas").exists()


# What each step's process loads at start-up (a job's fixed cost: importing torch is ~2-3 s, torchvision as much
# again; the report steps need neither). Measured by benchmarks/bench_default.py.
STEP_IMPORTS = {
    "train": {"torch"},
    "spectrum": {"torch"},
    "inputs": {"torch"},
    "attack": {"torch"},
    "collect": {"pandas"},
    "tables": {"pandas"},
    "claims": {"pandas", "scipy"},
    "page": {"pandas"},
    "figures": {"pandas", "matplotlib", "scipy", "seaborn"},
}


def test_each_step_imports_only_the_heavy_packages_it_uses():
    heavy = ("torch", "torchvision", "pandas", "matplotlib", "scipy", "seaborn", "sklearn", "mlxtend")
    code = "import importlib, sys; importlib.import_module(sys.argv[1]); print(*set(sys.argv[2:]) & set(sys.modules))"
    for step, allowed in STEP_IMPORTS.items():
        out = subprocess.run(
            [sys.executable, "-c", code, f"lbhessian.steps.{step}", *heavy], capture_output=True, text=True, check=True
        )
        assert set(out.stdout.split()) == allowed, (step, out.stdout)
