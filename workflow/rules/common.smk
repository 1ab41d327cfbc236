# Helpers that turn the config into targets. The steps themselves live in src/lbhessian (one CLI each).
import os
import sys
from pathlib import Path

# Steps run as `python -m lbhessian` from this checkout's src/ with the Python that runs Snakemake (or the
# conda env's): no install needed on a cluster node, and the workflow always runs the code next to it.
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")])),
    PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
)
ENV = str(Path(workflow.basedir) / "envs" / "lbhessian.yaml")
from lbhessian import stepserver
from lbhessian.core import config as lbconfig
from lbhessian.core import limits as lblimits
from lbhessian.core.errors import LbhError
from lbhessian.core.names import RunId, config_experiments
from lbhessian.core.results import RUN_FILES

# Relative to the working directory: the report rules take it as an input, and Snakemake's metadata records
# input paths, so a checkout that moves (a clone, a DVC pull elsewhere) must not see it as another file.
CONFIG_FILE = os.path.relpath(
    workflow.overwrite_configfiles[-1] if workflow.overwrite_configfiles else Path(workflow.basedir) / "params.yaml"
)
try:
    lbconfig.validate(config, CONFIG_FILE)  # fills in the schema's defaults: the one home of defaults
    # Every step reads CONFIG_FILE itself, so the workflow's config must be exactly that file.
    if len(workflow.overwrite_configfiles) > 1 or lbconfig.load(CONFIG_FILE) != config:
        raise LbhError(
            "pass one config file (--configfile FILE) and no --config overrides: every step reads "
            "that file (edit it, or use `dvc exp run -S key=value`)"
        )
    # `lbhessian validate`'s limits (network sizes, memory) too: a setting that cannot work fails here,
    # before any job, not in the spectrum step after hours of training.
    lblimits.check(config, CONFIG_FILE)
except LbhError as e:
    raise WorkflowError(str(e)) from None

# Every step gets the config as `--config "$LBH_CONFIG"`: an argument, yet not part of the rule's code or
# params, so a renamed or moved config file reruns nothing. The settings a step uses are its params
# instead, so a changed value reruns exactly the jobs it affects.
os.environ.update(LBH_CONFIG=CONFIG_FILE)

RESULTS = config["results"]
DATA_ROOT = config["data"]["root"]
# The layout of results, defined here and nowhere else: steps write exactly the paths their rule passes.
RUN = "{dataset}/{model}/{mode}/bs{batch}/seed{seed}"
RUN_DIR = f"{RESULTS}/runs/{RUN}"
PREPARED = f"{DATA_ROOT}/prepared/{{dataset}}.pt"
RUNS = lbconfig.runs(config)
GPUS = config["runtime"]["gpus"]
THREADS = config["runtime"]["threads"] or 1


wildcard_constraints:
    dataset="[a-z0-9_]+",
    model="[A-Za-z0-9]+",
    mode="[a-z][a-z0-9_]*",
    batch="[0-9]+|full",
    seed="[0-9]+",


def run_targets(name):
    """Paths of file `name` in every run directory of the grid, in the grid's order."""
    return [os.path.join(RUN_DIR.format(**r), name) for r in RUNS]


def run_spec(wildcards):
    """The resolved settings of one run (what the train step reads), as a param: a changed setting reruns exactly
    the runs it affects."""
    ident = RunId.of(wildcards)
    return lbconfig.params_json(
        lbconfig.run_config(
            config, ident.dataset, ident.model, mode=ident.mode, batch_size=ident.batch, seed=ident.seed
        )
    )


# The report's files per experiment, each spelled once; expand() lists them experiment-major, the order in
# which the figures, tables and page steps read them (core.names.by_experiment).
FIGURE = f"{RESULTS}/figures/{{experiment}}/{{kind}}.{{ext}}"
TABLE = f"{RESULTS}/tables/{{experiment}}.{{ext}}"
# Captions by absolute path: report() outside a rule would resolve a relative one against the main Snakefile.
CAPTIONS = Path(workflow.basedir) / "workflow" / "report"


def measurement_params(step):
    """A measurement rule's params: exactly the settings its step reads for the run (core.config's
    measurement_params, which the step calls too), so a changed setting reruns exactly the jobs it affects."""
    return lambda w: lbconfig.params_json(lbconfig.measurement_params(config, step, RunId.of(w)))


def log_of(step):
    return f"{RESULTS}/logs/{step}/{RUN}.log"


def bench_of(step):
    return f"{RESULTS}/benchmarks/{step}/{RUN}.tsv"


# Packed GPUs (issue 15): every GPU job takes `gpu_slots`; the profile's global `gpu_slots` resource is
# what the machine's GPU holds (profiles/local: 4, i.e. four small trainings at once). Small models take one
# slot, the others all of them. Without GPUs (runtime.gpus 0) no slots are taken.
SMALL_MODELS = {"M1", "M2", "C1", "C2"}


def gpu_slots(wildcards):
    if not GPUS:
        return 0
    if wildcards.model in SMALL_MODELS:
        return 1
    held = workflow.global_resources.get("gpu_slots")  # a Resource; value None when not declared
    return getattr(held, "value", held) or 1


# Grouping the measurement steps of one run into one cluster job is a profile setting (`groups:` and
# `group-components:` in profiles/slurm, opt-in; docs/slurm.md): no rule carries a group of its own.


def replications_if_run(wildcards):
    """<results>/replications.json where `lbhessian replications` (make replicate) has written it: the page then
    shows each claim's verdict over replications. Never a target: the default pipeline does not replicate."""
    path = f"{RESULTS}/replications.json"
    return [path] if os.path.exists(path) else []


def figure_png(experiment, kind):
    """One figure's PNG, flagged for Snakemake's report with its caption."""
    return report(
        expand(FIGURE, experiment=experiment, kind=kind, ext="png")[0],
        caption=str(CAPTIONS / f"fig_{kind}.rst"),
        category="Figures",
        subcategory=experiment,
        labels={"experiment": experiment, "figure": kind},
    )


def plain(files):
    """Paths without their flags: rule all and the page must not carry the report flag, or Snakemake's report
    would caption them as their files."""
    return [str(f) for f in files]
