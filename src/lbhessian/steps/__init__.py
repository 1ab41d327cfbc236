"""One module per pipeline step, named as its Snakemake rule. Each has a ``main(...)`` that takes the paths
the rule passes ({input}, {output}, {threads}), by name only (the CLI calls ``main(**args)``), and writes exactly
the files it is given."""
