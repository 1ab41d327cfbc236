"""One config schema for every experiment file: load, validate (one clear line per error), expand the grid."""

import copy
import functools
import json
from pathlib import Path

import yaml

from lbhessian.core.errors import LbhError
from lbhessian.core.io import read_text
from lbhessian.core.names import RunId
from lbhessian.core.results import RESNET, eps_key

SCHEMA = Path(__file__).with_name("config.schema.json")  # ships inside the package


@functools.cache
def schema() -> dict:
    return json.loads(SCHEMA.read_text())


def _train_keys() -> set[str]:
    """Training settings an experiment entry may override (the schema's train_common)."""
    return set(schema()["$defs"]["train_common"]["properties"])


def _validator():
    """A Draft 2020-12 validator that also fills in every default of the schema (the one home of defaults)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def properties(validator, props, instance, sch):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, sch)

    return jsonschema.validators.extend(base, {"properties": properties})(schema())


def defaults(section: str) -> dict:
    """The schema's defaults of one config section, e.g. ``defaults("spectrum")`` (for library use and tests)."""
    train = {"experiments": [{"dataset": "digits", "model": "M1"}], "batch_sizes": [1], "seeds": [0]}
    return validate({"results": "results", "data": {"root": "data"}, "train": train})[section]


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
    """Fill in the schema's defaults (in place) and raise LbhError naming the first bad key; return cfg."""
    if not isinstance(cfg, dict):
        raise LbhError(f"{source}: expected a mapping of sections (results, runtime, data, train, ...)")
    errors = sorted(_validator().iter_errors(cfg), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
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
    for i, exp in enumerate([None, *cfg["train"]["experiments"]]):
        where = "train.robust" if exp is None else f"train.experiments[{i - 1}].robust"
        names = [r["name"] for r in (cfg["train"]["robust"] if exp is None else robust_modes(cfg, exp))]
        if len(set(names)) != len(names):
            raise LbhError(f"{source}: {where}: mode names must be unique, got {names}")
        where = "attack" if exp is None else f"train.experiments[{i - 1}].attack"
        _check_attack(
            cfg["attack"] if exp is None else attack_settings(cfg, exp["dataset"], exp["model"]), where, source
        )
    return cfg


def _check_attack(attack, where, source):
    for key, grid in (
        ("fgsm_linf", attack["fgsm_linf"]),
        ("fgsm_l2", attack["fgsm_l2"]),
        ("pgd.eps", attack["pgd"]["eps"]),
    ):
        if len({eps_key(e) for e in grid}) != len(grid):
            raise LbhError(f"{source}: {where}.{key}: eps values must be distinct, got {grid}")
    headline = attack["headline_eps"]
    # Tables and claims read FGSM l-inf accuracy at headline_eps: fail here, not at the report step.
    if headline is not None and eps_key(headline) not in {eps_key(e) for e in attack["fgsm_linf"]}:
        raise LbhError(
            f"{source}: {where}.headline_eps: {headline!r} must be one of {where}.fgsm_linf {attack['fgsm_linf']}"
        )


def load(path):
    path = Path(path)
    text = read_text(path, "config file")
    try:
        cfg = yaml.safe_load(text)
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


def _experiment(cfg, dataset, model):
    matches = [e for e in cfg["train"]["experiments"] if e["dataset"] == dataset and e["model"] == model]
    if not matches:
        raise LbhError(f"no experiment for dataset {dataset} and model {model} in train.experiments")
    return matches[0]


def robust_modes(cfg, exp):
    """An experiment's robust-training modes: its own list, else train.robust."""
    return exp.get("robust", cfg["train"]["robust"])


def attack_settings(cfg, dataset, model):
    """The attack section as one experiment sees it: its own eps grids / headline eps over the defaults."""
    return _merge(cfg["attack"], _experiment(cfg, dataset, model).get("attack", {}))


def spectrum_settings(cfg, run) -> dict:
    """What the spectrum step reads for ``run`` (a names.RunId: its ``mode`` and ``seed``): the spectrum section,
    with ``check_power`` resolved to whether this run gets the power-iteration check: all runs, the first seed of
    train.seeds (first_seed: at every mode and batch size; first_seed_clean: in clean training only, at every batch
    size), or none."""
    out = copy.deepcopy(cfg["spectrum"])
    first = int(run.seed) == cfg["train"]["seeds"][0]
    checked = {"all": True, "first_seed": first, "first_seed_clean": first and run.mode == "clean", "none": False}
    out["check_power"] = checked[out["check_power"]]
    return out


# The runtime settings that can change a step's numbers: the device, the thread count (CPU reductions), cuDNN's
# determinism and the CPU kernels. runtime.gpus only asks the scheduler for a GPU (device: auto then picks it).
RESULT_RUNTIME = ("device", "threads", "deterministic", "kernels")
MEASUREMENTS = ("spectrum", "inputs", "attack")  # the per-run measurement steps, one rule each


def measurement_params(cfg, step, run) -> dict:
    """Every setting measurement ``step`` reads for ``run`` (a names.RunId): its section as this run sees it
    (spectrum: the power check of its mode and seed; attack: its experiment's grid) and the runtime settings that change
    numbers. The rule's params and the step both use this: a changed setting reruns exactly the jobs it affects."""
    if step == "spectrum":
        settings = spectrum_settings(cfg, run)
    elif step == "attack":
        settings = attack_settings(cfg, run.dataset, run.model)
    elif step == "inputs":
        settings = copy.deepcopy(cfg["inputs"])
    else:
        raise LbhError(f"{step}: not a measurement step (one of {', '.join(MEASUREMENTS)})")
    return {"settings": settings, "runtime": result_runtime(cfg)}


def result_runtime(cfg) -> dict:
    """The runtime settings that can change a step's numbers (RESULT_RUNTIME)."""
    return {k: cfg["runtime"][k] for k in RESULT_RUNTIME}


def params_json(params) -> str:
    """A rule's params as Snakemake compares them between runs: one canonical JSON string."""
    return json.dumps(params, sort_keys=True)


def modes_for(cfg, exp, batch_size):
    """Training modes run at this batch size: clean always, each robust mode where it lists the batch size."""
    modes = ["clean"]
    for r in robust_modes(cfg, exp):
        if batch_size in r.get("batch_sizes", exp.get("batch_sizes", cfg["train"]["batch_sizes"])):
            modes.append(r["name"])
    return modes


def runs(cfg):
    """The experiment grid: one dict per run, its RunId's fields (dataset, model, mode, batch label, seed)."""
    out = []
    for exp in cfg["train"]["experiments"]:
        for bs in exp.get("batch_sizes", cfg["train"]["batch_sizes"]):
            for mode in modes_for(cfg, exp, bs):
                for seed in cfg["train"]["seeds"]:
                    out.append(RunId(exp["dataset"], exp["model"], mode, str(bs), seed)._asdict())
    return out


def run_config(cfg, dataset, model, *, mode, batch_size, seed):
    """All settings of one training run, resolved: train section (with defaults) < experiment entry."""
    exp = _experiment(cfg, dataset, model)
    keys = _train_keys()
    train = {k: v for k, v in cfg["train"].items() if k in keys}
    run = _merge(train, {k: v for k, v in exp.items() if k in keys})
    robust = None
    if mode != "clean":
        found = [r for r in robust_modes(cfg, exp) if r["name"] == mode]
        if not found:
            raise LbhError(f"training mode {mode!r} is neither 'clean' nor a train.robust name")
        robust = {k: v for k, v in found[0].items() if k != "batch_sizes"}
    batch_size = batch_size if batch_size == "full" else int(batch_size)
    run.update(dataset=dataset, model=model, mode=mode, batch_size=batch_size, seed=int(seed), robust=robust)
    run["track"] = copy.deepcopy(cfg["train"]["track"])
    run["runtime"] = copy.deepcopy(cfg["runtime"])
    return run
