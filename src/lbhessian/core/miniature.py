"""A config in miniature: the same grid as a full config (config/paper.yaml) with only its sizes shrunk, so that
the whole chain, data to report, runs in a few minutes on 2 CPU cores.

Kept as they are: every experiment (data set, network, augmentation, optimizer), every robust-training mode with
its eps, every attack eps grid and headline eps, the stop rule's shape (rule, target loss, a step budget where
there is one), the lr rules (scaling, milestones, warm-up in proportion), ghost-BatchNorm accumulation and the
measurement options (splits, methods, check_power, bottom, density). Shrunk: images per split, epochs and step
budgets, batch sizes (below), top_k, iterations, samples and seeds (the first one).

Batch labels: the two ends of the grid, its smallest batch and ``full``, are kept (every robust mode runs at the
kept labels it lists): the smallest becomes the micro-batch (``MICRO``); ``full`` stays the whole (shrunk)
training set, accumulated from ``MICRO``-sample micro-batches with ghost BatchNorm when the source accumulates.
The labels in between differ from these two only in size; each run is four jobs (train, spectrum, inputs,
attack) of a few seconds' start-up, which is what bounds the miniature on 2 cores. The miniature is derived
each time from its source: a change there changes it."""

import copy

from lbhessian.core.config import validate
from lbhessian.core.errors import LbhError

# The sizes of the miniature (everything else comes from the source config).
TRAIN_SIZE = 256  # training images per data set (CIFAR-100: 2.56 per class)
TEST_SIZE = 128
MICRO = 16  # the smallest batch and, where the source accumulates, the micro-batch
EPOCHS = 2
MIN_STEPS = 3  # a step budget where the source has one: the full batch then trains past its epochs
SEEDS = 1
SPECTRUM = {"top_k": 3, "power_k": 2, "max_iter": 8, "tol": 1.0e-2, "samples": 16, "trace_samples": 2}
LANDSCAPE = {"points_1d": 5, "points_2d": 3}
# No exact input Hessian: one CIFAR image's is 3,072 products and a 3,072 x 3,072 eigendecomposition, half a
# minute of CPU per ResNet run; its figure says so and claim 6a lacks its data.
INPUTS = {"samples": 8, "iters": 3, "exact_images": 0}
ATTACK_SAMPLES = 32
PGD_STEPS = 2
TRACK = {"every": 1, "samples": 32, "iters": 3}


def batch_map(batch_sizes) -> dict:
    """Source batch label -> miniature batch label, for the labels the miniature keeps."""
    numeric = sorted(b for b in batch_sizes if b != "full")
    out = {numeric[0]: MICRO} if numeric else {}
    if "full" in batch_sizes:
        out["full"] = "full"
    return out


def _at_most(value, cap):
    """A size shrunk to ``cap`` (None, i.e. everything, too); smaller values and 0 (off) stay."""
    return cap if value is None else min(value, cap)


def _epochs(value, scale):
    return max(1, round(value * scale))


def _train_settings(section: dict, scale: float, mapping: dict) -> dict:
    """Shrink the training settings of the train section or of one experiment entry (keys it sets only)."""
    out = copy.deepcopy(section)
    if "stop" in out:
        stop = out["stop"]
        stop["epochs"] = EPOCHS
        if stop.get("min_steps"):
            stop["min_steps"] = MIN_STEPS
    if "lr_milestones" in out:
        out["lr_milestones"] = sorted({_epochs(m, scale) for m in out["lr_milestones"]})
    if out.get("warmup_epochs"):
        out["warmup_epochs"] = round(out["warmup_epochs"] * scale, 3)
    if out.get("micro_batch"):
        out["micro_batch"] = MICRO
    if "base_batch_size" in out:
        out["base_batch_size"] = MICRO
    if "batch_sizes" in out:
        out["batch_sizes"] = [mapping[b] for b in out["batch_sizes"] if b in mapping]
    for key in ("train_size", "test_size"):
        out.pop(key, None)
    return out


def _robust(modes: list, mapping: dict) -> list:
    out = []
    for mode in copy.deepcopy(modes):
        if "batch_sizes" in mode:
            kept = [mapping[b] for b in mode["batch_sizes"] if b in mapping]
            mode["batch_sizes"] = kept or [MICRO]
        if mode["attack"] == "pgd":
            mode["steps"] = min(mode.get("steps", PGD_STEPS), PGD_STEPS)
        out.append(mode)
    return out


def _attack(section: dict) -> dict:
    out = copy.deepcopy(section)
    if "pgd" in out and "steps" in out["pgd"]:
        out["pgd"]["steps"] = min(out["pgd"]["steps"], PGD_STEPS)
    return out


def miniature(source: dict, where: str = "config") -> dict:
    """The miniature of ``source`` (a config mapping, validated here: defaults filled in) as a new mapping."""
    cfg = validate(copy.deepcopy(source), where)
    train = cfg["train"]
    if not train["seeds"]:
        raise LbhError(f"{where}: train.seeds: the miniature needs at least one seed")
    mapping = batch_map(train["batch_sizes"])
    scale = EPOCHS / train["stop"]["epochs"]
    out = copy.deepcopy(cfg)
    out["results"] = f"{cfg['results'].rstrip('/')}/miniature"
    out["runtime"].update(threads=1, gpus=0)  # two jobs share two cores; `make miniature` asks for no GPU
    mini = _train_settings(train, scale, mapping)
    mini["batch_sizes"] = list(dict.fromkeys(mapping[b] for b in train["batch_sizes"] if b in mapping))
    mini["seeds"] = train["seeds"][:SEEDS]
    mini["train_size"], mini["test_size"] = TRAIN_SIZE, TEST_SIZE
    mini["track"] = {**train["track"], **(TRACK if train["track"]["every"] else {})}
    mini["robust"] = _robust(train["robust"], mapping)
    mini["experiments"] = []
    for exp in train["experiments"]:
        exp_scale = EPOCHS / exp["stop"]["epochs"] if "stop" in exp else scale
        entry = _train_settings(exp, exp_scale, mapping)
        if "robust" in exp:
            entry["robust"] = _robust(exp["robust"], mapping)
        if "attack" in exp:
            entry["attack"] = _attack(exp["attack"])
        mini["experiments"].append(entry)
    out["train"] = mini
    spectrum = out["spectrum"]
    for key, value in SPECTRUM.items():
        spectrum[key] = max(spectrum[key], value) if key == "tol" else _at_most(spectrum[key], value)
    spectrum["landscape"].update(LANDSCAPE)
    for key, value in INPUTS.items():
        out["inputs"][key] = _at_most(out["inputs"][key], value)
    out["attack"] = _attack(out["attack"])
    out["attack"]["samples"] = _at_most(out["attack"]["samples"], ATTACK_SAMPLES)
    out["report"]["title"] = f"Miniature of: {cfg['report'].get('title') or where}"
    return validate(out, f"{where} (miniature)")
