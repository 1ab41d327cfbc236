"""One config schema for every experiment file: load, validate (one clear line per error), expand the grid."""

import copy
import json
from pathlib import Path

import yaml

from .errors import LbhError
from .models import RESNET

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.json"

# Training settings an experiment entry may override (everything in the schema's train_common).
TRAIN_DEFAULTS = {
    "optimizer": {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0},
    "base_batch_size": 128,
    "lr_scaling": "none",
    "warmup_epochs": 0,
    "lr_milestones": [],
    "lr_gamma": 0.1,
    "stop": {"rule": "epochs", "epochs": 10, "target_loss": 0.01},
    "micro_batch": None,
    "augment": False,
    "eval_every": 1,
    "train_size": None,
    "test_size": None,
}
TRACK_DEFAULTS = {"every": 0, "samples": 1000, "iters": 20}
ROBUST_DEFAULTS = {"norm": "linf"}  # PGD steps/step size default in attacks.perturb


def _schema():
    return json.loads(SCHEMA.read_text())


def _path_of(error):
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path]
    return "".join(parts).lstrip(".") or "(top level)"


def _message(error):
    # Enum and pattern failures get the list of what is allowed, which is what a user needs to fix it.
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "pattern" and "ResNet" in error.validator_value:
        return f"{error.instance!r} is not a known model (M1, M2, C1, C2, ResNet<6n+2>)"
    if error.validator == "unevaluatedProperties":
        return error.message.replace("Unevaluated properties are not allowed", "unknown key(s)")
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown key(s)")
    return error.message


def validate(cfg, source="config"):
    """Raise LbhError naming the first bad key; return cfg."""
    import jsonschema

    if not isinstance(cfg, dict):
        raise LbhError(f"{source}: expected a mapping of sections (results, runtime, data, train, ...)")
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if errors:
        # anyOf/oneOf wrap the useful error: report the deepest one.
        err = errors[0]
        while err.context:
            err = max(err.context, key=lambda e: len(list(e.absolute_path)))
        raise LbhError(f"{source}: {_path_of(err)}: {_message(err)}")
    for i, exp in enumerate(cfg["train"]["experiments"]):
        m = RESNET.match(exp["model"])
        if m and (int(m.group(1)) < 8 or (int(m.group(1)) - 2) % 6):
            raise LbhError(f"{source}: train.experiments[{i}].model: {exp['model']}: ResNet depth must be 6n+2 >= 8")
    names = [r["name"] for r in cfg["train"].get("robust", [])]
    if len(set(names)) != len(names):
        raise LbhError(f"{source}: train.robust: mode names must be unique, got {names}")
    return cfg


def load(path):
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise LbhError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise LbhError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return validate(cfg, str(path))


def _merge(base, override):
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def modes_for(cfg, exp, batch_size):
    """Training modes run at this batch size: clean always, each robust mode where it lists the batch size."""
    modes = ["clean"]
    for r in cfg["train"].get("robust", []):
        if batch_size in r.get("batch_sizes", exp.get("batch_sizes", cfg["train"]["batch_sizes"])):
            modes.append(r["name"])
    return modes


def runs(cfg):
    """The experiment grid: one dict per run (dataset, model, mode, batch, seed)."""
    out = []
    for exp in cfg["train"]["experiments"]:
        for bs in exp.get("batch_sizes", cfg["train"]["batch_sizes"]):
            for mode in modes_for(cfg, exp, bs):
                for seed in cfg["train"]["seeds"]:
                    out.append(
                        {"dataset": exp["dataset"], "model": exp["model"], "mode": mode, "batch": str(bs), "seed": seed}
                    )
    return out


def run_config(cfg, dataset, model, mode, batch_size, seed):
    """All settings of one training run, resolved: train defaults < train section < experiment entry."""
    matches = [e for e in cfg["train"]["experiments"] if e["dataset"] == dataset and e["model"] == model]
    if not matches:
        raise LbhError(f"no experiment for dataset {dataset} and model {model} in train.experiments")
    train = {k: v for k, v in cfg["train"].items() if k in TRAIN_DEFAULTS}
    run = _merge(_merge(TRAIN_DEFAULTS, train), {k: v for k, v in matches[0].items() if k in TRAIN_DEFAULTS})
    robust = None
    if mode != "clean":
        found = [r for r in cfg["train"].get("robust", []) if r["name"] == mode]
        if not found:
            raise LbhError(f"training mode {mode!r} is neither 'clean' nor a train.robust name")
        robust = _merge(ROBUST_DEFAULTS, found[0])
        robust.pop("batch_sizes", None)
    batch_size = batch_size if batch_size == "full" else int(batch_size)
    run.update(dataset=dataset, model=model, mode=mode, batch_size=batch_size, seed=int(seed), robust=robust)
    run["track"] = _merge(TRACK_DEFAULTS, cfg["train"].get("track", {}))
    run["runtime"] = cfg.get("runtime", {})
    return run
