# lbhessian: large-batch training, Hessian spectra and adversarial robustness (Yao et al. 2018).
# `snakemake --cores all` runs params.yaml; `--configfile config/paper.yaml` runs another experiment.
# The config is validated against src/lbhessian/core/config.schema.json (defaults filled in) before any job runs.


# Only the default config when none is given: Snakemake would otherwise merge params.yaml into it.
if not workflow.overwrite_configfiles:

    configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/report.smk"


# Local jobs run their steps in a process that has imported torch once (lbhessian/stepserver/); SLURM jobs do not.
onstart:
    if workflow.local_exec:
        stepserver.start(kernels=config["runtime"]["kernels"], threads=THREADS)


onsuccess:
    stepserver.stop()


onerror:
    stepserver.stop()


rule all:
    default_target: True
    input:
        *[run_targets(RUN_FILES[kind]) for kind in ("metrics", *lbconfig.MEASUREMENTS)],
        REPORT_TARGETS,
