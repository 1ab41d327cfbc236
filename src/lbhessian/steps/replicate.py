"""``lbhessian replicate``: the config of a replication of a design: the same file with other seeds (and
optionally other CPU kernels), its results in a folder of their own (``<results>/replications/<name>``), so
that `snakemake --configfile` on it reruns the whole design without touching the original's results."""

import copy
import sys
from pathlib import Path

import yaml

from lbhessian.core.config import validate
from lbhessian.core.errors import LbhError
from lbhessian.core.io import read_text, write_text


def replication_name(seeds, kernels=None) -> str:
    name = f"seeds-{'-'.join(str(s) for s in seeds)}"
    return f"{name}-{kernels}" if kernels else name


def derive(cfg: dict, seeds, kernels=None) -> dict:
    """``cfg`` (a raw config mapping, as written) with ``seeds``, results under ``<results>/replications/<name>``
    and, if given, ``runtime.kernels``."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise LbhError(f"replicate --seeds: expected distinct seeds, got {list(seeds)}")
    out = copy.deepcopy(cfg)
    if set(seeds) & set(cfg.get("train", {}).get("seeds", [])):
        raise LbhError(f"replicate --seeds {list(seeds)}: overlaps the design's own seeds {cfg['train']['seeds']}")
    out.setdefault("train", {})["seeds"] = [int(s) for s in seeds]
    if kernels:
        out.setdefault("runtime", {})["kernels"] = kernels
    out["results"] = str(Path(cfg.get("results", "results")) / "replications" / replication_name(seeds, kernels))
    return out


def main(*, config, seeds, kernels=None, out=None):
    cfg = yaml.safe_load(read_text(config, "config file"))
    derived = derive(cfg, seeds, kernels)
    validate(yaml.safe_load(yaml.safe_dump(derived)), f"{config} (replicated)")  # the same checks as any config
    path = Path(out) if out else Path(derived["results"]) / "config.yaml"
    header = f"# A replication of {config}: seeds {list(seeds)}" + (f", kernels {kernels}" if kernels else "") + "\n"
    write_text(path, header + yaml.safe_dump(derived, sort_keys=False))
    print(path)
    print(f"{path}: written; run it with snakemake --configfile {path}", file=sys.stderr)
