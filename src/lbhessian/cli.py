"""`lbhessian <step>`: argparse only. Every pipeline step is a verb whose arguments are the files a Snakemake
rule passes ({input}, {output}, {threads}); the step's module (lbhessian.steps.<verb>) does the work."""

import argparse
import importlib
import os
import sys

from lbhessian import stepserver
from lbhessian.core.errors import LbhError
from lbhessian.core.kernels import configured, pin
from lbhessian.core.names import RUN_KEYS
from lbhessian.core.results import RUN_FILES

CONFIG_HELP = "experiment config file (default: $LBH_CONFIG, else params.yaml)"


def _parser():
    p = argparse.ArgumentParser(prog="lbhessian", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def verb(name, help_, *args):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--config", default=os.environ.get("LBH_CONFIG", "params.yaml"), help=CONFIG_HELP)
        for flag, kw in args:
            s.add_argument(flag, **kw)
        return s

    one = {"required": True}
    many = {"required": True, "nargs": "+"}
    threads = ("--threads", {"type": int, "help": "CPU threads (default: runtime.threads)"})
    verb("validate", "check a config file (schema, grid, limits) before any job runs")
    verb(
        "data", "download/prepare a dataset into one file of uint8 tensors", ("--dataset", one), ("--out", one), threads
    )
    verb(
        "train",
        "train one run of the grid",
        ("--data", one),
        *[(f"--{k}", {"type": int, **one} if k == "seed" else one) for k in RUN_KEYS],
        *[(f"--{k}", one) for k in ("checkpoint", "history", "metrics", "resume")],
        threads,
    )
    # The run measured (the rule's wildcards): its metrics.json and checkpoint must be of that run.
    which_run = [(f"--{k}", {"help": "the run measured (checked against the files)"}) for k in RUN_KEYS]
    run_files = [(f"--{k}", one) for k in ("data", "checkpoint", "metrics", "out")] + which_run
    verb("spectrum", "weight-Hessian spectrum, gradient norm, trace and loss landscape of a run", *run_files, threads)
    verb("inputs", "input-gradient norms and input-Hessian spectra of a run", *run_files, threads)
    verb("attack", "adversarial accuracy (FGSM, PGD) of a run over the eps grid", *run_files, threads)
    verb(
        "collect",
        "every run's files -> summary.csv, headline metrics and plot data (one file per run, same order)",
        *[(f"--{k}", many) for k in RUN_FILES],
        ("--out", one),
        ("--headline", one),
        ("--plots", many),
    )
    verb(
        "figures",
        "figures of one experiment (PNG + PDF) from summary.csv",
        ("--summary", one),
        ("--experiment", many),
        ("--kind", many),
        ("--png", many),
        ("--pdf", many),
    )
    verb(
        "tables",
        "per dataset/model tables (CSV, Markdown) and one page with all of them",
        ("--summary", one),
        ("--experiment", many),
        ("--csv", many),
        ("--md", many),
        ("--all-md", one),
        ("--html", one),
    )
    verb(
        "claims",
        "a verdict for each claim of the paper from summary.csv",
        ("--summary", one),
        ("--out", one),
        ("--markdown", one),
        ("--html", one),
    )
    verb(
        "page",
        "the report page (one self-contained HTML file) from summary.csv, claims.json and the figures",
        ("--summary", one),
        ("--claims", one),
        ("--experiment", many),
        ("--kind", many),
        ("--png", many),
        ("--caption", many),
        ("--out", one),
        ("--replications", {"nargs": "*", "default": [], "help": "replications.json, where replications have run"}),
    )
    verb(
        "power",
        "how often designs with more or fewer seeds would decide each claim, from a pilot's summary.csv",
        ("--summary", one),
        ("--seeds", {"type": int, "nargs": "+", "required": True, "help": "seeds per setting"}),
        ("--batches", {"help": "comma-separated batch sizes of the design (default: the pilot's)"}),
        ("--simulations", {"type": int, "default": 400}),
    )
    verb(
        "replicate",
        "write the config of a replication: the same design with other seeds (and kernels), its own results folder",
        ("--seeds", {"type": int, "nargs": "+", "required": True}),
        ("--kernels", {"choices": ["native", "portable"], "help": "runtime.kernels of the replication"}),
        ("--out", {"help": "config file to write (default: <results>/replications/<name>/config.yaml)"}),
    )
    verb(
        "miniature",
        "write the miniature of a config (default config/paper.yaml): the same grid, only the sizes shrunk",
        ("--out", {"required": True, "help": "config file to write"}),
        ("--local-dir", {"action": "append", "metavar": "DATASET=DIR", "help": "set data.local_dirs.DATASET"}),
    )
    verb("replications", "every replication's claim verdicts beside the design's own (results/replications.md)")
    return p


def main(argv=None):
    args = vars(_parser().parse_args(argv))
    command = args.pop("command")
    pin(configured(args["config"]))  # before the step imports torch (core/kernels.py)
    if argv is None and command in stepserver.SERVED:  # a job of a Snakemake run: its step server runs it
        status = stepserver.run_served(sys.argv[1:])
        if status is not None:
            sys.exit(status)
    try:
        step = importlib.import_module(f"lbhessian.steps.{command}")
        step.main(**args)
    except LbhError as e:
        print(f"lbhessian {command}: error: {e}", file=sys.stderr)
        sys.exit(e.exit_status)
    except OSError as e:  # one the step did not wrap: still one line naming the path, never a traceback
        where = f"{e.filename}: " if e.filename else ""
        print(f"lbhessian {command}: error: {where}{e.strerror or e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"lbhessian {command}: interrupted (a rerun resumes)", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
