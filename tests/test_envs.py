"""The pip pins (README/CI install path) and the conda env file (for --sdm conda) must agree."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    return dict(m.groups() for m in (re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)$", s.strip()) for s in lines) if m)


def test_conda_env_repeats_pip_pins():
    pip = _pins((ROOT / "envs/requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "envs/lbhessian.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip_section) == pip
    assert pip["torch"] == "2.14.1" and pip["torchvision"] == "0.29.1"


def test_installed_versions_match_pins():
    from importlib.metadata import version

    pip = _pins((ROOT / "envs/requirements.txt").read_text().splitlines())
    for name in ("torch", "torchvision", "snakemake", "dvc", "pandas", "seaborn"):
        assert version(name).split("+")[0] == pip[name], name
